"""Starting, feeding, reading and killing one sandboxed child process of the code reward.

Place in the pipeline: `rewards.code.run_program` calls `run_child(job, ...)` once per child it
needs (one for the values of every reducible test and the stdin tests, one more per
irreducible test). Two isolation modes:

- "os" (the default, the boundary): `unshare --mount --pid --net --ipc --uts --fork
  --kill-child` starts the harness (`rewards.code_harness`) as root of new namespaces; it
  builds a root filesystem that holds only read-only views of the interpreter and system
  libraries, four device nodes and its private writable directory, pivots into it, sets
  rlimits, drops to uid 65534 in a new user namespace with no capabilities and
  no_new_privs. Needs root (or CAP_SYS_ADMIN) and a working `unshare`; `capabilities()` probes
  it once by running the real setup.
- "hook": no namespaces: the audit hook and rlimits only (what machines without root get). Each
  run logs a warning, since code could then read files the trainer's user can read and (as
  root) ignore RLIMIT_NPROC.

Every child runs in its own session; at the end its whole process group is SIGKILLed (in "os"
mode the namespace's init first, so that `unshare` reaps it) and awaited, and its directories
removed. Replies are JSON lines tagged with a per-run nonce, read with `selectors` (any fd
number) under a wall-clock deadline and a size cap.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pathlib
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Optional

__all__ = ["ChildRun", "IsolationUnavailable", "MODES", "capabilities", "resolve_mode",
           "run_child"]

_log = logging.getLogger(__name__)
MODES = ("os", "hook")
ENV_VAR = "R1JAX_SANDBOX_ISOLATION"
_NOBODY = 65534
_MAX_REPLY_BYTES = 16 << 20
_NAMESPACES = ["--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "--kill-child"]
# What the child sees of the host, read-only (symlinks such as /lib -> usr/lib are copied).
_SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
_HARNESS = pathlib.Path(__file__).with_name("code_harness.py").read_text(encoding="utf-8")


class IsolationUnavailable(RuntimeError):
  """The machine cannot give the isolation asked for."""


@dataclasses.dataclass(frozen=True)
class ChildRun:
  """What one child did: its nonce-tagged messages (nonce removed) and how it ended."""
  messages: tuple[dict[str, Any], ...]
  timed_out: bool
  returncode: Optional[int]
  wall_s: float
  pid: int


_CAPS: Optional[dict[str, Any]] = None
_CAPS_LOCK = threading.Lock()
_WARNED = [False]


def _read_only_paths() -> list[str]:
  paths = [p for p in _SYSTEM_PATHS if os.path.lexists(p)]
  for p in (sys.prefix, sys.base_prefix, sys.exec_prefix):
    real = os.path.realpath(p)
    if not any(real == q or real.startswith(q + "/") for q in paths):
      paths.append(real)
  return paths


def capabilities() -> dict[str, Any]:
  """Whether "os" isolation works here (probed once by running the real setup).

  Returns:
    A dict: `os_isolation` (bool), `missing` (why not, one phrase each), `namespaces` (those
    the child gets in "os" mode), `uid` (the child's uid there) and `python` (its interpreter).
  """
  global _CAPS
  with _CAPS_LOCK:
    if _CAPS is None:
      missing = []
      if not hasattr(os, "geteuid") or os.geteuid() != 0:
        missing.append("root (the child's mounts, pivot_root and uid drop need it)")
      if not shutil.which("unshare"):
        missing.append("the `unshare` command (util-linux)")
      error = None
      if not missing:
        run = run_child({"mode": "probe"}, mode="os", timeout_s=30.0, memory_mb=256)
        probe = next((m["probe"] for m in run.messages if "probe" in m), None)
        error = next((m["isolation_error"] for m in run.messages if "isolation_error" in m),
                     None)
        if probe is None or probe["uid"] == 0 or probe["writable_root"]:
          missing.append("a working namespace setup ("
                         + (error or f"the probe exited with {run.returncode}") + ")")
      _CAPS = {"os_isolation": not missing, "missing": missing,
               "namespaces": ("user", "mount", "pid", "network", "ipc", "uts"),
               "uid": _NOBODY, "python": sys.executable}
    return dict(_CAPS)


def resolve_mode(isolation: Optional[str]) -> str:
  """The isolation mode to use: the argument, else $R1JAX_SANDBOX_ISOLATION, else "os".

  Raises:
    ValueError: an unknown mode.
    IsolationUnavailable: "os" was asked for and this machine cannot give it.
  """
  mode = isolation if isolation is not None else os.environ.get(ENV_VAR, "os")
  if mode not in MODES:
    raise ValueError(f"isolation must be one of {MODES}, got {mode!r}.")
  if mode == "os":
    caps = capabilities()
    if not caps["os_isolation"]:
      raise IsolationUnavailable(
          "The code sandbox cannot isolate candidate code on this machine (missing: "
          + "; ".join(caps["missing"]) + "); to accept the weaker audit-hook-only mode, pass "
          f"isolation='hook' (CodeTests(isolation='hook')) or set {ENV_VAR}=hook.")
  elif not _WARNED[0]:
    _WARNED[0] = True
    _log.warning("code sandbox in 'hook' isolation: no namespaces; candidate code is held only "
                 "by an in-process audit hook and rlimits (not a security boundary).")
  return mode


def _kill_group(pid: int) -> None:
  try:
    os.killpg(pid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):
    pass


def _running_children(pid: int) -> list[int]:
  """The pids of `pid`'s children that are not zombies (Linux /proc); [] where /proc cannot
  say."""
  try:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
      children = [int(c) for c in f.read().split()]
  except (OSError, ValueError):
    return []
  running = []
  for child in children:
    try:
      with open(f"/proc/{child}/stat", encoding="ascii", errors="replace") as f:
        state = f.read().rpartition(")")[2].split()[0]  # The name before it may hold spaces.
    except (OSError, IndexError):
      continue
    if state not in ("Z", "X"):
      running.append(child)
  return running


def _kill_child(proc: subprocess.Popen, mode: str, reap_s: float = 10.0) -> bool:
  """SIGKILLs the child's whole process group; in "os" mode the namespace's init first.

  Why the init first: SIGKILLed together with `unshare`, the init outlives its parent while the
  kernel empties its pid namespace, and is then left a zombie for the host's init to reap,
  which took up to 2 s on a test machine (a fork bomb). Killed alone, it is reaped by
  `unshare` the moment the namespace is empty, and `unshare` exits. A zombie runs no code,
  but it keeps the process group alive, and the group's end is what `run_child` waits for.

  Returns:
    Whether a running init was killed (`unshare` then exits 1, not -SIGKILL).
  """
  inits = _running_children(proc.pid) if mode == "os" else []
  for init in inits:
    try:
      os.kill(init, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
      pass
  if inits:
    try:
      proc.wait(timeout=reap_s)
    except subprocess.TimeoutExpired:
      pass  # The group kill below ends `unshare` too.
  _kill_group(proc.pid)
  return bool(inits)


def _wait_group_gone(pid: int, timeout_s: float = 10.0) -> None:
  """Waits until no process of group `pid` is left (killed members are reaped asynchronously,
  e.g. inside a pid namespace), killing again meanwhile; bounded so it can never hang."""
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    try:
      os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
      return
    time.sleep(0.005)


def run_child(job: dict[str, Any], *, mode: str, timeout_s: float,
              memory_mb: int) -> ChildRun:
  """Runs the harness on `job` in isolation `mode` for at most `timeout_s` of wall time."""
  work = tempfile.mkdtemp(prefix="r1jax_sandbox_")
  box = os.path.join(work, "box")
  os.mkdir(box, 0o700)
  nonce = secrets.token_hex(16)
  job = dict(job, nonce=nonce, limits={
      "cpu": int(math.ceil(timeout_s)) + 1, "mem": memory_mb << 20, "fsize": 16 << 20,
      "nproc": 16})
  cmd = [sys.executable, "-I", "-S", "-c", _HARNESS]
  if mode == "os":
    root = os.path.join(work, "root")
    os.mkdir(root, 0o700)
    os.chown(box, _NOBODY, _NOBODY)
    job["isolate"] = {"root": root, "box": box, "uid": _NOBODY,
                      "read_only": _read_only_paths()}
    cmd = ["unshare", *_NAMESPACES, "--"] + cmd
  env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": box, "TMPDIR": box}
  messages = []
  start = time.monotonic()
  deadline = start + timeout_s
  timed_out = False
  proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, cwd=box, env=env, close_fds=True,
                          start_new_session=True)
  sel = selectors.DefaultSelector()
  try:
    try:
      proc.stdin.write(json.dumps(job).encode())
      proc.stdin.close()
    except (BrokenPipeError, OSError):
      pass
    fd = proc.stdout.fileno()
    sel.register(fd, selectors.EVENT_READ)
    buf, total = b"", 0
    while True:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        timed_out = True
        break
      if not sel.select(remaining):
        continue
      chunk = os.read(fd, 1 << 16)
      if not chunk:
        break
      total += len(chunk)
      if total > _MAX_REPLY_BYTES:
        break
      buf += chunk
      *lines, buf = buf.split(b"\n")
      for line in lines:
        try:
          msg = json.loads(line)
        except ValueError:
          continue
        if isinstance(msg, dict) and msg.pop("nonce", None) == nonce:
          messages.append(msg)
  finally:
    sel.close()
    killed = _kill_child(proc, mode)
    proc.wait()
    end = time.monotonic()  # The program's wall time; reaping its group is cleanup.
    _wait_group_gone(proc.pid)
    proc.stdout.close()
    shutil.rmtree(work, ignore_errors=True)
  return ChildRun(messages=tuple(messages), timed_out=timed_out,
                  returncode=-signal.SIGKILL if killed else proc.returncode,
                  wall_s=end - start, pid=proc.pid)
