"""Hard timeouts for host-side grading: a small pool of persistent worker processes.

Place in the pipeline: `rewards.math` does its cheap string and number checks in the calling
thread and sends only the sympy work here. A pathological answer (`9^{9^{9^9}}`, an expression
whose simplification explodes) must cost at most the timeout, also when the trainer scores
completions from a thread pool. `signal.alarm` works only in the main thread, and a Python thread
cannot be stopped, so the work runs in a separate process: the calling thread writes one request
to a pipe and waits for the reply with a deadline; on expiry it SIGKILLs the worker and starts a
replacement.

Workers are plain subprocesses (`python -c "...timeout._serve(...)"`), not `multiprocessing`:
no Python-level fork of a process that holds JAX's threads (subprocess execs at once, in C), and
no re-import of the user's `__main__` (which 'spawn' and 'forkserver' do, re-running an
unguarded training script). Each worker imports its
preload modules (sympy) once, says `ready`, then serves JSON-line requests `{"target":
"module:function", "args": [...]}` until its stdin closes. Only functions under `r1jax.rewards.`
can be called, and results must be JSON values. A worker limits its own address space
(RLIMIT_AS), so a runaway big-integer power ends in MemoryError rather than swapping the host.

Cost, measured on the 2-core CI machine: a round trip to a warm worker is ~0.3 ms plus the
work (a typical symbolic comparison ~2 ms); starting a worker (Python + sympy import) takes
~1-2 s, paid once per worker (call `warm_up()` before training to pay it up front) and again only
after a timeout kills one (the replacement starts at once, in the background). Waiting for a
worker to start or to become free does not count against a call's timeout.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import resource
import selectors
import subprocess
import sys
import threading
import time
from typing import Any, Sequence

__all__ = [
    "GradingTimeout",
    "WorkerError",
    "WorkerPool",
    "call",
    "configure",
    "shutdown",
    "warm_up",
]

_ALLOWED_PREFIX = "r1jax.rewards."
_DEFAULT_PRELOAD = ("r1jax.rewards.math_symbolic",)
_STARTUP_TIMEOUT_S = 120.0  # A loaded 2-core machine can take seconds to import sympy.
_MAX_REPLY_BYTES = 1 << 20


class GradingTimeout(TimeoutError):
  """The worker did not answer within the timeout; it was killed."""


class WorkerError(RuntimeError):
  """The worker failed to start, died, or the called function raised."""


class _RemoteError(WorkerError):
  """The called function raised inside a healthy worker (which stays in the pool)."""


def _package_root() -> str:
  # The directory that holds the `r1jax` package, so workers import this very copy of it even
  # when it is not installed (tests run from a checkout, notebooks add it to sys.path).
  return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Worker:
  """One worker process and the read buffer of its stdout."""

  def __init__(self, memory_mb: int, preload: Sequence[str]):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_package_root(), env.get("PYTHONPATH", "")) if p)
    # Workers must not grab accelerators or spawn BLAS thread pools.
    env["JAX_PLATFORMS"] = "cpu"
    env["OMP_NUM_THREADS"] = "1"
    self.proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from r1jax.rewards.timeout import _serve; "
         "_serve(int(sys.argv[1]), sys.argv[2:])", str(memory_mb), *preload],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=env, close_fds=True,
        # Own session: a Ctrl-C aimed at the trainer's process group does not kill workers
        # mid-request; they exit when their stdin closes with the parent.
        start_new_session=True)
    self._buf = b""
    self.ready = False

  def _readline(self, deadline: float) -> bytes | None:
    """One line from the worker, or None at the deadline. Raises WorkerError on EOF."""
    fd = self.proc.stdout.fileno()
    while b"\n" not in self._buf:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        return None
      # selectors (epoll/poll), not select.select: a large process has fds >= 1024.
      with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        readable = sel.select(remaining)
      if not readable:
        return None
      chunk = os.read(fd, 65536)
      if not chunk:
        raise WorkerError("the grading worker exited unexpectedly")
      self._buf += chunk
      if len(self._buf) > _MAX_REPLY_BYTES:
        raise WorkerError("the grading worker sent an oversized reply")
    line, self._buf = self._buf.split(b"\n", 1)
    return line

  def wait_ready(self) -> None:
    if self.ready:
      return
    line = self._readline(time.monotonic() + _STARTUP_TIMEOUT_S)
    if line != b"ready":
      raise WorkerError(f"the grading worker did not start (said {line!r})")
    self.ready = True

  def request(self, target: str, args: Sequence[Any], timeout_s: float) -> Any:
    data = json.dumps({"target": target, "args": list(args)}).encode() + b"\n"
    try:
      self.proc.stdin.write(data)
      self.proc.stdin.flush()
    except (BrokenPipeError, OSError) as e:
      raise WorkerError(f"the grading worker is gone ({e})") from None
    line = self._readline(time.monotonic() + timeout_s)
    if line is None:
      raise GradingTimeout(f"{target} took longer than {timeout_s} s")
    reply = json.loads(line)
    if "error" in reply:
      raise _RemoteError(reply["error"])
    return reply["ok"]

  def kill(self) -> None:
    try:
      self.proc.kill()
    except OSError:
      pass
    self.proc.wait()
    for f in (self.proc.stdin, self.proc.stdout):
      try:
        f.close()
      except OSError:
        pass


class WorkerPool:
  """`num_workers` persistent processes; each call checks one out exclusively.

  Thread-safe: concurrent callers use different workers (and wait for a free one when all are
  busy; that wait does not count against their timeout).
  """

  def __init__(self, num_workers: int, memory_mb: int = 2048,
               preload: Sequence[str] = _DEFAULT_PRELOAD):
    if num_workers < 1:
      raise ValueError(f"num_workers must be at least 1, got {num_workers}.")
    self.num_workers = num_workers
    self.memory_mb = memory_mb
    self.preload = tuple(preload)
    self._idle: queue.Queue[_Worker | None] = queue.Queue()
    for _ in range(num_workers):
      self._idle.put(None)  # Started lazily, on first use.
    self._closed = False
    self.timeouts = 0  # Workers killed for running past their timeout (a metric).

  def call(self, target: str, args: Sequence[Any], timeout_s: float) -> Any:
    """Runs `target(*args)` in a worker; raises GradingTimeout or WorkerError."""
    if not target.startswith(_ALLOWED_PREFIX):
      raise ValueError(f"target {target!r} is not under {_ALLOWED_PREFIX!r}.")
    if self._closed:
      raise WorkerError("the worker pool was shut down")
    worker = self._idle.get()
    try:
      if worker is None:
        worker = _Worker(self.memory_mb, self.preload)
      worker.wait_ready()
      return worker.request(target, args, timeout_s)
    except GradingTimeout:
      self.timeouts += 1
      worker.kill()
      worker = None
      try:
        # Start the replacement now so its sympy import overlaps with other work.
        worker = _Worker(self.memory_mb, self.preload)
      except OSError:
        pass  # The next caller tries again.
      raise
    except _RemoteError:
      raise
    except (WorkerError, OSError, ValueError) as e:
      # Died, failed to start, or sent garbage: discard it; the next caller starts a new one.
      if worker is not None:
        worker.kill()
        worker = None
      if isinstance(e, WorkerError):
        raise
      raise WorkerError(str(e)) from e
    finally:
      if self._closed and worker is not None:
        worker.kill()  # Shut down while this call ran.
        worker = None
      self._idle.put(worker)

  def warm_up(self) -> None:
    """Starts every idle worker now and waits until each has imported its modules."""
    taken = []
    for _ in range(self.num_workers):
      try:
        taken.append(self._idle.get_nowait())
      except queue.Empty:
        break
    try:
      # Start all first so their imports run in parallel, then wait.
      taken = [w if w is not None else _Worker(self.memory_mb, self.preload) for w in taken]
      for k, w in enumerate(taken):
        try:
          w.wait_ready()
        except (WorkerError, OSError):
          w.kill()
          taken[k] = None
    finally:
      for w in taken:
        self._idle.put(w)

  def shutdown(self) -> None:
    self._closed = True
    while True:
      try:
        worker = self._idle.get_nowait()
      except queue.Empty:
        break
      if worker is not None:
        worker.kill()  # Workers hold no state worth a graceful exit.


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()
_POOL_SETTINGS = {"num_workers": max(1, min(4, os.cpu_count() or 1)), "memory_mb": 2048}


def configure(*, num_workers: int | None = None, memory_mb: int | None = None) -> None:
  """Sets the shared pool's size and per-worker memory limit (restarts it if running)."""
  global _POOL
  if num_workers is not None and num_workers < 1:
    raise ValueError(f"num_workers must be at least 1, got {num_workers}.")
  if memory_mb is not None and memory_mb < 256:
    raise ValueError(f"memory_mb must be at least 256 (sympy needs it), got {memory_mb}.")
  with _POOL_LOCK:
    if num_workers is not None:
      _POOL_SETTINGS["num_workers"] = num_workers
    if memory_mb is not None:
      _POOL_SETTINGS["memory_mb"] = memory_mb
    if _POOL is not None:
      _POOL.shutdown()
      _POOL = None


def _get_pool() -> WorkerPool:
  global _POOL
  with _POOL_LOCK:
    if _POOL is None:
      _POOL = WorkerPool(**_POOL_SETTINGS)
    return _POOL


def call(target: str, args: Sequence[Any], timeout_s: float) -> Any:
  """Runs `target(*args)` ("module:function") in the shared pool under a hard timeout."""
  return _get_pool().call(target, args, timeout_s)


def warm_up() -> None:
  """Starts the shared pool's workers now (each imports sympy, ~1 s), e.g. before training."""
  _get_pool().warm_up()


def shutdown() -> None:
  """Stops the shared pool's workers (it restarts on the next `call`)."""
  global _POOL
  with _POOL_LOCK:
    if _POOL is not None:
      _POOL.shutdown()
      _POOL = None


def _forget_pool_in_child() -> None:
  # A forked child must not share the parent's worker pipes; it starts its own pool if needed.
  global _POOL, _POOL_LOCK
  _POOL = None
  _POOL_LOCK = threading.Lock()


atexit.register(shutdown)
os.register_at_fork(after_in_child=_forget_pool_in_child)


def _serve(memory_mb: int, preload: Sequence[str]) -> None:
  """The worker side: import, say ready, answer requests until stdin closes."""
  import importlib  # pylint: disable=g-import-not-at-top

  _, hard = resource.getrlimit(resource.RLIMIT_AS)
  limit = memory_mb << 20
  if hard != resource.RLIM_INFINITY:
    limit = min(limit, hard)
  resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
  for name in preload:
    importlib.import_module(name)
  out = sys.stdout.buffer
  out.write(b"ready\n")
  out.flush()
  for line in sys.stdin.buffer:
    try:
      req = json.loads(line)
      target = req["target"]
      if not target.startswith(_ALLOWED_PREFIX):
        raise ValueError(f"target {target!r} is not allowed")
      module, func = target.split(":")
      result = getattr(importlib.import_module(module), func)(*req["args"])
      reply = {"ok": result}
    except Exception as e:  # pylint: disable=broad-except
      # MemoryError and RecursionError included: the caller treats it as "not graded".
      reply = {"error": f"{type(e).__name__}: {e}"[:500]}
    try:
      data = json.dumps(reply)
    except (TypeError, ValueError) as e:
      data = json.dumps({"error": f"unserializable result: {e}"})
    out.write(data.encode() + b"\n")
    out.flush()
