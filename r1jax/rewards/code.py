"""The code reward: run model-written Python against test cases in a sandbox.

Place in the pipeline: the accuracy term of code tasks. `run_tests(code, tests, timeout_s=...)`
returns the fraction of tests passed. A test is either a string of Python statements run after
the code in the same namespace (`"assert add(1, 2) == 3"`; passes when it raises nothing), or a
mapping `{"input": stdin_text, "output": expected_stdout}` for a program that reads stdin (the
code runs afresh per test; outputs compare after stripping trailing whitespace on each line and
trailing blank lines). Tests run in order in one child process; tests that reported before a
timeout or crash keep their result.

HumanEval-style tests: `CheckTest(prompt, check, entry_point)` (or `humaneval_test(problem)`
from a HumanEval record with `prompt`, `test` and `entry_point`) is one test: the program is
`prompt + code` (or `code` alone when that does not parse), and the test passes when every
assertion of `check(candidate)` holds with `candidate = <entry_point>`. Its assertions are
judged in this (the parent) process wherever they reduce to call + expected value.

What is enforced (by the OS unless noted; the child is `python -I -S`, standard library only):
- Time: the parent kills the child's whole process group (SIGKILL) at `timeout_s` wall time;
  RLIMIT_CPU is timeout_s + 1 s.
- Memory: RLIMIT_AS (`memory_mb`, default 1024): allocating 10 GB raises MemoryError.
- Files: a fresh temporary working directory, deleted afterwards; RLIMIT_FSIZE 16 MB per file
  and at most 64 opens for writing (so at most ~1 GB of disk); RLIMIT_NOFILE 64. An audit hook
  (PEP 578; in-process, enforced by the interpreter) refuses opening files for writing, and any
  path operation (remove, rename, link, symlink, mkdir, chmod, listdir, ...) outside that
  directory; reads are allowed only inside it, the Python installation and /dev/null.
- Processes: the audit hook refuses fork, exec, spawn, posix_spawn, system, subprocess, kill,
  setsid/setpgid, raising rlimits, and importing modules that could go around it (ctypes,
  cffi, _posixsubprocess, multiprocessing, sqlite3/dbm). The child runs in its own session and
  its process group is SIGKILLed at the end whatever happens. When `unshare` works (as root,
  or unprivileged with user namespaces) the child also runs in new PID and network namespaces
  (`unshare --net --pid --fork --kill-child`): killing it kills every process it made.
  RLIMIT_NPROC cannot stop a fork bomb as root (root ignores it), so when running as root the
  child drops to uid/gid 65534 (nobody) with RLIMIT_NPROC 16. That needs an interpreter whose
  standard library nobody can read: this one, or else the system `/usr/bin/python3` (a pyenv
  under /root is unreadable); with neither, the hook and namespaces are what stop forks, and
  `sandbox_capabilities()` says so. As nobody, file permissions also protect the rest of the
  filesystem and other processes' /proc entries.
- Network: the audit hook refuses creating sockets; with `unshare` the child also has an empty
  network namespace (no interfaces up, not even the host's loopback).
- Environment: the child gets a scrubbed environment (PATH, LANG, HOME and TMPDIR = its
  directory) and cannot read /proc/<parent>/environ (audit hook; permissions as nobody).
- Reporting: results go back over a pipe, each line tagged with a random nonce, so code that
  prints fake results, writes to the pipe, or exits early (`os._exit(0)`) gains nothing. This is
  containment, not an anti-cheat proof: code and harness share one interpreter, and code that
  walks the interpreter's frames could find the nonce (blocking frame access would break
  `typing` and `collections.namedtuple`); nor does it stop an object whose `__eq__` always
  returns True from passing `assert f(x) == y`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Mapping, Optional, Sequence, Union

__all__ = [
    "CodeTests",
    "SandboxResult",
    "run_program",
    "run_tests",
    "sandbox_capabilities",
]

Test = Union[str, Mapping[str, str]]
_NOBODY = 65534
_MAX_RESULT_BYTES = 16 << 20

# The child's program (run with -c, so it needs no file access as nobody).
_HARNESS = pathlib.Path(__file__).with_name("code_harness.py").read_text(encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class SandboxResult:
  """What one sandboxed run did."""
  passed: tuple[bool, ...]  # One entry per test; False for tests that never reported.
  timed_out: bool  # Killed at timeout_s.
  returncode: Optional[int]  # Negative: killed by that signal.
  wall_s: float
  pid: int  # The child's pid, also its process group id (gone when this returns).

  @property
  def fraction(self) -> float:
    return sum(self.passed) / len(self.passed) if self.passed else 0.0


_CAPS: Optional[dict[str, Any]] = None
_CAPS_LOCK = threading.Lock()


def _readable_by_others(path: str) -> bool:
  """Whether a user with no special rights can read `path` (every parent searchable)."""
  try:
    mode = os.stat(path).st_mode
    if mode & (stat.S_IROTH | stat.S_IXOTH) != (stat.S_IROTH | stat.S_IXOTH):
      return False
    while True:
      parent = os.path.dirname(path)
      if parent == path:
        return True
      path = parent
      if not os.stat(path).st_mode & stat.S_IXOTH:
        return False
  except OSError:
    return False


def _stdlib_dir(python: str) -> Optional[str]:
  """The standard library directory of interpreter `python` (3.8+, for audit hooks), or None."""
  if python == sys.executable:
    return os.path.realpath(os.path.dirname(os.__file__))
  try:
    out = subprocess.run(
        [python, "-I", "-S", "-c",
         "import os, sys; print(sys.version_info >= (3, 8)); print(os.path.dirname(os.__file__))"],
        capture_output=True, text=True, timeout=10, env={"PATH": "/usr/bin:/bin"})
  except (OSError, subprocess.SubprocessError):
    return None
  lines = out.stdout.split("\n")
  if out.returncode != 0 or lines[0] != "True":
    return None
  return os.path.realpath(lines[1])


def sandbox_capabilities() -> dict[str, Any]:
  """Which optional protections this machine gives (probed once).

  Returns:
    A dict: `prefix` (the `unshare` command line, or None), `network_namespace` and
    `pid_namespace` (the child runs in new namespaces; killing it then kills every process it
    made), `drop_to_nobody` (running as root and an interpreter whose standard library uid
    65534 can read was found), and `python` (the child's interpreter: this one, or a system
    `python3` when only that one can run as nobody).
  """
  global _CAPS
  with _CAPS_LOCK:
    if _CAPS is None:
      prefix: Optional[list[str]] = None
      unshare = shutil.which("unshare")
      if unshare:
        ns = ["--net", "--pid", "--fork", "--kill-child"]
        for candidate in ([unshare, *ns, "--"], [unshare, "-r", *ns, "--"],
                          [unshare, "--net", "--"], [unshare, "-r", "-n", "--"]):
          try:
            ok = subprocess.run(candidate + ["true"], capture_output=True,
                                timeout=10).returncode == 0
          except (OSError, subprocess.SubprocessError):
            ok = False
          if ok:
            prefix = candidate
            break
      python, drop = sys.executable, False
      if hasattr(os, "geteuid") and os.geteuid() == 0 and "-r" not in (prefix or []):
        # Root ignores RLIMIT_NPROC, so prefer running as nobody; that needs an interpreter
        # nobody can read (a pyenv under /root is not; the system python3 usually is).
        for candidate in (sys.executable, shutil.which("python3", path="/usr/bin:/bin")):
          lib = _stdlib_dir(candidate) if candidate else None
          if lib and _readable_by_others(lib) and _readable_by_others(candidate):
            python, drop = candidate, True
            break
      _CAPS = {"prefix": prefix,
               "network_namespace": prefix is not None,
               "pid_namespace": prefix is not None and "--pid" in prefix,
               "drop_to_nobody": drop,
               "python": python}
    return dict(_CAPS)


def _output_matches(got: str, want: str) -> bool:
  def canon(s: str) -> list[str]:
    lines = [line.rstrip() for line in s.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
      lines.pop()
    return lines
  return canon(got) == canon(want)


def _validate(tests: Sequence[Test], timeout_s: float) -> None:
  if timeout_s <= 0:
    raise ValueError(f"timeout_s must be positive, got {timeout_s}.")
  for i, t in enumerate(tests):
    if isinstance(t, str):
      continue
    if isinstance(t, Mapping) and "input" in t and "output" in t:
      continue
    raise ValueError(f"test {i} is {t!r}; accepted: a string of Python statements or a "
                     "mapping with 'input' and 'output'.")


def _kill_group(pid: int) -> None:
  try:
    os.killpg(pid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):
    pass


def _wait_group_gone(pid: int, timeout_s: float = 10.0) -> None:
  """Waits until no process of group `pid` is left (killed members are reaped asynchronously,
  e.g. inside a pid namespace), killing again meanwhile; bounded so it can never hang."""
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    try:
      os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
      return
    time.sleep(0.01)


def run_program(code: str, tests: Sequence[Test], *, timeout_s: float = 10.0,
                memory_mb: int = 1024, max_output_bytes: int = 1 << 20,
                namespaces: Optional[bool] = None,
                as_nobody: Optional[bool] = None) -> SandboxResult:
  """Runs `code` against `tests` in the sandbox (module docstring) and reports per test.

  Args:
    code: Python source.
    tests: assert-style strings and/or {"input", "output"} mappings.
    timeout_s: wall-clock limit for the whole run.
    memory_mb: address-space limit of the child.
    max_output_bytes: stdout kept per stdin/stdout test.
    namespaces: run inside new PID and network namespaces: None = when `unshare` works,
      False = never, True = required.
    as_nobody: when root, run the child as uid 65534: None = when possible, False = never,
      True = required. With both False only the audit hook and rlimits contain the code.
  """
  tests = list(tests)
  _validate(tests, timeout_s)
  if memory_mb < 64:
    raise ValueError(f"memory_mb must be at least 64 (Python itself needs it), got {memory_mb}.")
  caps = sandbox_capabilities()
  if namespaces and not caps["prefix"]:
    raise ValueError("namespaces=True but `unshare` does not work on this machine; pass "
                     "namespaces=None or False.")
  use_ns = caps["prefix"] is not None and namespaces is not False
  if as_nobody and not caps["drop_to_nobody"]:
    raise ValueError("as_nobody=True but this process is not root or no interpreter readable "
                     "by uid 65534 was found; pass as_nobody=None or False.")
  drop = caps["drop_to_nobody"] and as_nobody is not False
  python = caps["python"] if drop else sys.executable
  box = tempfile.mkdtemp(prefix="r1jax_sandbox_")
  drop_uid = _NOBODY if drop else 0
  nonce = secrets.token_hex(16)
  job = {
      "code": str(code),
      "tests": [t if isinstance(t, str) else {"input": str(t["input"])} for t in tests],
      "nonce": nonce, "drop_uid": drop_uid, "max_out": max_output_bytes,
      "limits": {"cpu": int(math.ceil(timeout_s)) + 1, "mem": memory_mb << 20,
                 "fsize": 16 << 20},
  }
  if drop_uid:
    os.chown(box, drop_uid, drop_uid)
  cmd = [python, "-I", "-S", "-c", _HARNESS]
  if use_ns:
    cmd = caps["prefix"] + cmd
  env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": box, "TMPDIR": box}
  passed = [False] * len(tests)
  start = time.monotonic()
  deadline = start + timeout_s
  timed_out = False
  proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, cwd=box, env=env, close_fds=True,
                          start_new_session=True)
  try:
    try:
      proc.stdin.write(json.dumps(job).encode())
      proc.stdin.close()
    except (BrokenPipeError, OSError):
      pass
    fd = proc.stdout.fileno()
    buf, total = b"", 0
    while True:
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        timed_out = True
        break
      readable, _, _ = select.select([fd], [], [], remaining)
      if not readable:
        continue
      chunk = os.read(fd, 1 << 16)
      if not chunk:
        break
      total += len(chunk)
      if total > _MAX_RESULT_BYTES:
        break
      buf += chunk
      *lines, buf = buf.split(b"\n")
      for line in lines:
        try:
          msg = json.loads(line)
          i = msg["i"]
          if msg.get("nonce") != nonce or not 0 <= i < len(tests):
            continue
          test = tests[i]
          ok = bool(msg.get("ok"))
          if not isinstance(test, str):
            ok = ok and _output_matches(str(msg.get("out", "")), str(test["output"]))
          passed[i] = ok
        except (ValueError, KeyError, TypeError):
          continue
  finally:
    _kill_group(proc.pid)
    proc.wait()
    end = time.monotonic()  # The program's wall time; reaping its group is cleanup.
    _wait_group_gone(proc.pid)
    proc.stdout.close()
    shutil.rmtree(box, ignore_errors=True)
  return SandboxResult(passed=tuple(passed), timed_out=timed_out,
                       returncode=proc.returncode, wall_s=end - start,
                       pid=proc.pid)


def run_tests(code: str, tests: Sequence[Test], *, timeout_s: float = 10.0,
              memory_mb: int = 1024, namespaces: Optional[bool] = None,
              as_nobody: Optional[bool] = None) -> float:
  """The fraction of `tests` that `code` passes in the sandbox (0.0 for no tests).

  Arguments as in `run_program`; `timeout_s` bounds the whole run (all tests).
  """
  if not tests:
    return 0.0
  return run_program(code, tests, timeout_s=timeout_s, memory_mb=memory_mb,
                     namespaces=namespaces, as_nobody=as_nobody).fraction


@dataclasses.dataclass(frozen=True)
class CodeTests:
  """A RewardFn: `run_tests` on the completion's code and `example[tests_key]`.

  The code is the last fenced ```python block of the completion (else its `<answer>` content,
  else the whole completion).
  """
  tests_key: str = "tests"
  timeout_s: float = 10.0
  memory_mb: int = 1024

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    return run_tests(extract_code(completion), example[self.tests_key],
                     timeout_s=self.timeout_s, memory_mb=self.memory_mb)


def extract_code(completion: str) -> str:
  """The last ```python (or bare ```) fenced block, else the `<answer>` content, else all."""
  text = str(completion)
  end = text.rfind("```")
  start = text.rfind("```", 0, end) if end > 0 else -1
  if start >= 0:
    block = text[start + 3:end]
    first, _, rest = block.partition("\n")
    return rest if first.strip() in ("python", "py", "python3", "") else block
  i = text.rfind("<answer>")
  if i >= 0:
    j = text.find("</answer>", i)
    return text[i + len("<answer>"):j if j >= 0 else len(text)]
  return text
