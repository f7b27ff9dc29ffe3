"""The code reward: run model-written Python against test cases in a sandbox.

Place in the pipeline: the accuracy term of code tasks. `run_tests(code, tests, timeout_s=...)`
returns the fraction of tests passed; `run_program` returns per-test detail. A test is one of:
- a string of Python statements run after the code (`"assert add(1, 2) == 3"`; passes when
  every assertion holds and nothing raises; such tests share the program's namespace);
- a mapping `{"input": stdin_text, "output": expected_stdout}` for a program that reads stdin
  (outputs compare after stripping trailing whitespace on each line and trailing blank lines);
- HumanEval-style: `CheckTest(prompt, check, entry_point)` (or `humaneval_test(problem)` from
  a HumanEval record with `prompt`, `test` and `entry_point`) is one test: the program is
  `prompt + code` (or `code` alone when that does not parse), and the test passes when every
  assertion of `check(candidate)` holds with `candidate = <entry_point>`.

Who decides the verdict (`rewards.code_verdict`): assertions of the common forms (`f(x) == y`,
`abs(f(x) - y) < tol`, `not f(x)`, `f(x)`, ...) are split into the candidate's calls, which a
sandboxed child evaluates and returns as plain data (tagged JSON of exact built-in types,
size-capped), and the comparison, which this process makes. stdin tests are compared here
too. Tests that do not reduce (loops, assignments) run in a fresh child each, which reports
pass/fail itself: forgeable by code that walks the interpreter's frames, so the result marks
them `weak` (`SandboxResult.weak`, and `CodeTests` counts them in `code_stats()`).

Isolation (`rewards.code_isolation`), `isolation="os"` (default; or $R1JAX_SANDBOX_ISOLATION):
- Filesystem: the child sees a read-only root holding only read-only, nosuid views of the
  interpreter and system libraries (/usr, /lib*), /dev/{null,zero,random,urandom}, and its
  own fresh writable directory (deleted afterwards); no /proc, /etc, /home, /root or /tmp.
- Identity: new user, mount, PID, network, IPC and UTS namespaces; uid/gid 65534 with no
  groups, no capabilities and no_new_privs.
- Network: an empty network namespace (no interface up, not even loopback).
- Limits: RLIMIT_CPU timeout_s + 1 s, RLIMIT_AS `memory_mb` (10 GB allocations raise
  MemoryError), RLIMIT_NPROC 16, RLIMIT_FSIZE 16 MB, RLIMIT_NOFILE 64, no core files.
- Time: the parent kills the child's whole process group (SIGKILL) at `timeout_s` of wall time
  for the whole run; the PID namespace dies with it, taking every process the code made.
- Environment: scrubbed (PATH, LANG, HOME and TMPDIR = its directory).
- An audit hook (PEP 578) stays as an extra layer: it refuses sockets, subprocesses, forks,
  ctypes and file writes or path operations outside the directory.
It needs root (or CAP_SYS_ADMIN) and `unshare`; without them `run_program` raises
`IsolationUnavailable` naming what is missing, unless `isolation="hook"` accepts the weaker
mode (audit hook and rlimits only; a warning is logged).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import threading
import time
from typing import Any, Mapping, Optional, Sequence, Union

from r1jax.rewards import code_isolation
from r1jax.rewards import code_verdict
from r1jax.rewards.code_isolation import IsolationUnavailable

__all__ = [
    "CheckTest",
    "CodeTests",
    "IsolationUnavailable",
    "SandboxResult",
    "Test",
    "code_stats",
    "extract_code",
    "humaneval_test",
    "run_program",
    "run_tests",
    "sandbox_capabilities",
]


@dataclasses.dataclass(frozen=True)
class CheckTest:
  """A HumanEval-style test: `check(candidate)` run on the program's `entry_point`.

  Attributes:
    prompt: text the program starts with (HumanEval's prompt: imports, helpers, signature).
    check: the test module: optional top-level definitions and `def check(candidate)`.
    entry_point: the function of the program passed to `check` as `candidate`.
  """
  prompt: str
  check: str
  entry_point: str

  def program(self, code: str) -> str:
    """`prompt + code` when that parses (a completion continuing the prompt, or a whole
    function after it), else `code` alone."""
    joined = self.prompt + code
    try:
      ast.parse(joined)
      return joined
    except (SyntaxError, ValueError):
      return code


def humaneval_test(problem: Mapping[str, Any]) -> CheckTest:
  """The `CheckTest` of a HumanEval record (`prompt`, `test`, `entry_point`)."""
  return CheckTest(prompt=str(problem["prompt"]), check=str(problem["test"]),
                   entry_point=str(problem["entry_point"]))


Test = Union[str, Mapping[str, str], CheckTest]


@dataclasses.dataclass(frozen=True)
class SandboxResult:
  """What one sandboxed run did."""
  passed: tuple[bool, ...]  # One entry per test; False for tests that never reported.
  timed_out: bool  # Some child was killed at the deadline.
  returncode: Optional[int]  # Of the values child (negative: killed by that signal).
  wall_s: float  # The children's own run time (starting to being killed), cleanup excluded.
  pid: int  # The values child's pid, also its process group id (gone when this returns).
  # Per test: some of it ran as an irreducible test in a child that reported pass/fail itself.
  weak: tuple[bool, ...] = ()
  pids: tuple[int, ...] = ()  # Every child's pid (all gone when this returns).

  @property
  def fraction(self) -> float:
    return sum(self.passed) / len(self.passed) if self.passed else 0.0


def sandbox_capabilities() -> dict[str, Any]:
  """Whether "os" isolation works on this machine, and if not what is missing (probed once)."""
  return code_isolation.capabilities()


def _output_matches(got: str, want: str) -> bool:
  def canon(s: str) -> list[str]:
    lines = [line.rstrip() for line in s.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
      lines.pop()
    return lines
  return canon(got) == canon(want)


def _validate(tests: Sequence[Test], timeout_s: float, memory_mb: int) -> None:
  if timeout_s <= 0:
    raise ValueError(f"timeout_s must be positive, got {timeout_s}.")
  if memory_mb < 64:
    raise ValueError(f"memory_mb must be at least 64 (Python itself needs it), got {memory_mb}.")
  for i, t in enumerate(tests):
    if isinstance(t, (str, CheckTest)):
      continue
    if isinstance(t, Mapping) and "input" in t and "output" in t:
      continue
    raise ValueError(f"test {i} is {t!r}; accepted: a string of Python statements, a mapping "
                     "with 'input' and 'output', or a CheckTest.")


def _plan(test: Test) -> Optional[code_verdict.Plan]:
  """The test's plan, or None when the test itself does not parse (it fails)."""
  try:
    if isinstance(test, CheckTest):
      return code_verdict.plan_test(test.check, entry_point=test.entry_point)
    return code_verdict.plan_test(test)
  except (SyntaxError, ValueError):
    return None


def run_program(code: str, tests: Sequence[Test], *, timeout_s: float = 10.0,
                memory_mb: int = 1024, max_output_bytes: int = 1 << 20,
                isolation: Optional[str] = None) -> SandboxResult:
  """Runs `code` against `tests` in the sandbox (module docstring) and reports per test.

  Args:
    code: Python source.
    tests: assert-style strings, {"input", "output"} mappings and/or `CheckTest`s.
    timeout_s: wall-clock limit for the whole run (every child together).
    memory_mb: address-space limit of each child.
    max_output_bytes: stdout kept per stdin/stdout test.
    isolation: "os" (namespaces; refuses where unavailable) or "hook" (audit hook and rlimits
      only); None reads $R1JAX_SANDBOX_ISOLATION, default "os".

  Raises:
    IsolationUnavailable: "os" isolation asked for on a machine that cannot give it.
  """
  tests = list(tests)
  _validate(tests, timeout_s, memory_mb)
  mode = code_isolation.resolve_mode(isolation)
  code = str(code)
  plans = [None if isinstance(t, Mapping) else _plan(t) for t in tests]
  units, owner = [], []  # Units of the values child and the test each belongs to.
  for i, (test, plan) in enumerate(zip(tests, plans)):
    if isinstance(test, Mapping):
      units.append({"program": code, "input": str(test["input"])})
      owner.append(i)
    elif plan is not None:
      program = test.program(code) if isinstance(test, CheckTest) else code
      units.append({"program": program, "setup": plan.setup, "local_setup": plan.local_setup,
                    "holes": list(plan.holes),
                    "entry": test.entry_point if isinstance(test, CheckTest) else None})
      owner.append(i)
  start = time.monotonic()
  deadline = start + timeout_s
  main = code_isolation.run_child({"mode": "values", "units": units, "max_out": max_output_bytes},
                                  mode=mode, timeout_s=timeout_s, memory_mb=memory_mb)
  _raise_isolation_error(main)
  loaded, outputs, values = set(), {}, collections.defaultdict(dict)
  for msg in main.messages:
    try:
      u = msg["u"]
      if not 0 <= u < len(units):
        continue
      if "out" in msg:
        outputs[u] = (bool(msg["ok"]), str(msg["out"]))
      elif "loaded" in msg:
        if msg["loaded"] is True:
          loaded.add(u)
      elif "v" in msg:
        values[u][int(msg["h"])] = code_verdict.decode_value(msg["v"])
    except (KeyError, TypeError, ValueError):
      continue  # Malformed data counts as no data: the value stays missing.
  passed = [False] * len(tests)
  weak = [False] * len(tests)
  for u, i in enumerate(owner):
    test, plan = tests[i], plans[i]
    if isinstance(test, Mapping):
      ok, out = outputs.get(u, (False, ""))
      passed[i] = ok and _output_matches(out, str(test["output"]))
    else:
      passed[i] = u in loaded and all(
          code_verdict.check_assertion(a, values[u]) for a in plan.assertions)
  timed_out, pids, wall = main.timed_out, [main.pid], main.wall_s
  for i, plan in enumerate(plans):
    if plan is None or plan.residual is None:
      continue
    weak[i] = True
    remaining = deadline - time.monotonic()
    if not passed[i] or remaining <= 0:
      timed_out = timed_out or remaining <= 0
      passed[i] = False
      continue
    program = tests[i].program(code) if isinstance(tests[i], CheckTest) else code
    run = code_isolation.run_child({"mode": "asserts", "program": program,
                                    "test": plan.residual},
                                   mode=mode, timeout_s=remaining, memory_mb=memory_mb)
    _raise_isolation_error(run)
    pids.append(run.pid)
    wall += run.wall_s
    timed_out = timed_out or run.timed_out
    passed[i] = any(m.get("ok") is True for m in run.messages)
  return SandboxResult(passed=tuple(passed), timed_out=timed_out, returncode=main.returncode,
                       wall_s=wall, pid=main.pid, weak=tuple(weak),
                       pids=tuple(pids))


def _raise_isolation_error(run: code_isolation.ChildRun) -> None:
  for msg in run.messages:
    if "isolation_error" in msg:
      raise IsolationUnavailable(
          f"The code sandbox's isolation setup failed ({msg['isolation_error']}); pass "
          "isolation='hook' to accept the weaker audit-hook-only mode.")


def run_tests(code: str, tests: Sequence[Test], *, timeout_s: float = 10.0,
              memory_mb: int = 1024, isolation: Optional[str] = None) -> float:
  """The fraction of `tests` that `code` passes in the sandbox (0.0 for no tests).

  Arguments as in `run_program`; `timeout_s` bounds the whole run (all tests).
  """
  if not tests:
    return 0.0
  return run_program(code, tests, timeout_s=timeout_s, memory_mb=memory_mb,
                     isolation=isolation).fraction


_STATS = collections.Counter()
_STATS_LOCK = threading.Lock()


def code_stats(reset: bool = False) -> dict[str, float]:
  """Counts kept by `CodeTests`: `code/tests` run and `code/weak_tests` among them (checked
  by a child reporting its own verdict, so forgeable), and `code/weak_frac`."""
  with _STATS_LOCK:
    tests, weak = _STATS["tests"], _STATS["weak"]
    if reset:
      _STATS.clear()
  return {"code/tests": float(tests), "code/weak_tests": float(weak),
          "code/weak_frac": weak / tests if tests else 0.0}


@dataclasses.dataclass(frozen=True)
class CodeTests:
  """A RewardFn: the fraction of `example[tests_key]` the completion's code passes.

  The code is the last fenced ```python block of the completion (else its `<answer>` content,
  else the whole completion).
  """
  tests_key: str = "tests"
  timeout_s: float = 10.0
  memory_mb: int = 1024
  isolation: Optional[str] = None  # "os" or "hook"; None: $R1JAX_SANDBOX_ISOLATION or "os".

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    tests = example[self.tests_key]
    if not tests:
      return 0.0
    result = run_program(extract_code(completion), tests, timeout_s=self.timeout_s,
                         memory_mb=self.memory_mb, isolation=self.isolation)
    with _STATS_LOCK:
      _STATS["tests"] += len(result.passed)
      _STATS["weak"] += sum(result.weak)
    return result.fraction


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
