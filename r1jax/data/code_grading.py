"""Grading code answers: find the program in a response, run it in the sandbox, say why it failed.

Place in the pipeline: the rewards of the code tasks (`code_tasks`, `code_generators`). A
response is graded in three stages, and the first that fails names the verdict's `reason`:

1. extraction (`extract_program`): in R1 style, the answer region is the content of the last
   `<answer>...</answer>` (an unclosed last `<answer>` runs to the end), else the text after
   the last `</think>`, else the whole response. The code is the last fenced block in that
   region whose info string is python/py/python3 or empty (a trailing ```text or ```output
   block is skipped). Unfenced fallback: when the region has no such block, the content of an
   `<answer>` tag is taken as code if it parses as Python and holds a statement other than a
   bare expression (so "<answer>5</answer>" is not code); prose outside tags never is.
   Nothing found -> reason "no_code". In completion style the program is the example's prompt
   followed by the completion cut at the first top-level line (Codex's stop sequences:
   "\\ndef", "\\nclass", "\\nif", "\\nprint", "\\n#") or code fence.
2. parsing: the assembled program (the problem's header of imports and helpers, then the
   code) must compile in this process (compiling runs nothing) -> else "syntax_error".
3. the sandbox (`r1jax.rewards.code.run_program`): "passed" when every test passes, else
   "timeout" when the run was killed at its time limit, else "failed".

The accuracy reward is 1 for "passed" and 0 otherwise; the pass fraction and one 0/1 indicator
per failure reason are separate terms (weight 0: logged, never optimized). A task scores its
reward terms and then its accuracies on the same responses, so verdicts are kept in a small
process-wide cache keyed by (program, tests): each response runs in the sandbox once.
Parallelism comes from `rewards.score_batch`'s thread pool, each thread waiting on its own
sandbox process, so B completions take about B / workers sandbox runs of wall time.

Tests are the sandbox's (`r1jax.rewards.code`): assert strings, {"input", "output"} stdin
tests, and HumanEval checks, kept in Examples as {"check", "entry_point"} and run as the
sandbox's `CheckTest` (the sandbox decides what the candidate's calls returned and compares in
the parent; its module docstring says what that guarantees).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import hashlib
import json
import re
import threading
from typing import Any, Mapping, Sequence

from r1jax.rewards import code as code_lib

__all__ = [
    "REASONS",
    "CodeAccuracy",
    "CodeFailure",
    "CodePassFraction",
    "Verdict",
    "answer_region",
    "extract_program",
    "grade",
    "last_python_block",
    "truncate_completion",
]

# Why a response scored what it did; "passed" is the only one worth 1.
REASONS = ("passed", "failed", "timeout", "no_code", "syntax_error")
_PYTHON_INFO = ("python", "py", "python3", "")
# A fence: ``` (or more backticks) at a line start, an info string, the body, the same fence.
_FENCE = re.compile(r"^[ \t]*(`{3,})[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$",
                    re.MULTILINE | re.DOTALL)
# Codex's stop sequences for HumanEval completions: a new top-level statement ends the body.
_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#", "\n```")


@dataclasses.dataclass(frozen=True)
class Verdict:
  """One response's grade: why, and how many of its tests passed."""

  reason: str  # One of REASONS.
  passed: int = 0  # Tests passed.
  total: int = 0  # Tests run (0 when the code never reached the sandbox).

  @property
  def accuracy(self) -> float:
    return float(self.reason == "passed")

  @property
  def fraction(self) -> float:
    return self.passed / self.total if self.total else 0.0


def answer_region(response: str) -> tuple[str, bool]:
  """(The text the answer is read from, whether it came from an <answer> tag)."""
  start = response.rfind("<answer>")
  if start >= 0:
    body = response[start + len("<answer>"):]
    end = body.find("</answer>")
    return (body if end < 0 else body[:end]), True
  end_think = response.rfind("</think>")
  if end_think >= 0:
    return response[end_think + len("</think>"):], False
  return response, False


def last_python_block(text: str) -> str | None:
  """The body of the last closed fenced block tagged python/py/python3 or untagged, or None."""
  found = None
  for match in _FENCE.finditer(text):
    if match.group(2).lower() in _PYTHON_INFO:
      found = match.group(3)
  return found


def _parses(code: str) -> bool:
  try:
    compile(code, "<answer>", "exec", dont_inherit=True)
    return True
  except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
    return False


def _is_program(code: str) -> bool:
  """Whether unfenced text is a program: it parses and holds a statement, not just a value."""
  try:
    tree = ast.parse(code)
  except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
    return False
  return any(not isinstance(node, ast.Expr) for node in tree.body)


def truncate_completion(completion: str) -> str:
  """A completion-style body cut at the first new top-level statement or code fence."""
  cut = len(completion)
  for stop in _STOPS:
    i = completion.find(stop)
    if 0 <= i < cut:
      cut = i
  return completion[:cut]


def extract_program(response: str, *, style: str = "r1", prompt: str = "",
                    header: str = "") -> str | None:
  """The program to run for a response (module docstring), or None when it holds no code.

  Args:
    response: the template's prefilled text followed by the completion.
    style: "r1" (code in a fenced block of the answer) or "completion" (the response
      continues `prompt`, e.g. a HumanEval function signature and docstring).
    prompt: the code the completion continues (completion style).
    header: code put before the answer's code in R1 style (a problem's imports and helpers).
  """
  if style == "completion":
    return prompt + truncate_completion(response)
  if style != "r1":
    raise ValueError(f"style must be 'r1' or 'completion', got {style!r}")
  region, tagged = answer_region(response)
  code = last_python_block(region)
  if code is None and tagged and _is_program(region):
    code = region  # The unfenced fallback: a tagged answer that is itself a program.
  if code is None or not code.strip():
    return None
  return f"{header}\n{code}" if header else code


# --- the verdict cache and the sandbox call ---------------------------------------------------

_CACHE_SIZE = 4096
_cache: collections.OrderedDict[str, Verdict] = collections.OrderedDict()
_cache_lock = threading.Lock()


def _key(program: str, tests: Sequence[Any], timeout_s: float,
         memory_mb: int) -> str:
  payload = json.dumps([program, list(tests), timeout_s, memory_mb], sort_keys=True,
                       default=str)
  return hashlib.sha256(payload.encode()).hexdigest()


def _sandbox_test(test: Any) -> code_lib.Test:
  """A test as the sandbox takes it: {"check", "entry_point"} becomes a `CheckTest`.

  Examples keep plain JSON-able tests. The program already holds the problem's prompt or
  header (`extract_program`), so the CheckTest's own prompt is empty.
  """
  if isinstance(test, Mapping) and "check" in test:
    return code_lib.CheckTest(prompt="", check=str(test["check"]),
                              entry_point=str(test["entry_point"]))
  return test


def grade(program: str | None, tests: Sequence[Any], *, timeout_s: float = 10.0,
          memory_mb: int = 1024) -> Verdict:
  """The verdict of a program (None: no code found) on its tests, from the cache if seen."""
  if program is None:
    return Verdict("no_code", 0, len(tests))
  if not _parses(program):
    return Verdict("syntax_error", 0, len(tests))
  if not tests:
    raise ValueError("a code example needs at least one test, got none")
  key = _key(program, tests, timeout_s, memory_mb)
  with _cache_lock:
    if key in _cache:
      _cache.move_to_end(key)
      return _cache[key]
  result = code_lib.run_program(program, [_sandbox_test(t) for t in tests],
                                timeout_s=timeout_s, memory_mb=memory_mb)
  passed = sum(result.passed)
  if passed == len(tests):
    reason = "passed"
  else:
    reason = "timeout" if result.timed_out else "failed"
  verdict = Verdict(reason, passed, len(tests))
  with _cache_lock:
    _cache[key] = verdict
    while len(_cache) > _CACHE_SIZE:
      _cache.popitem(last=False)
  return verdict


# --- reward functions (RewardFn: (response, example) -> float) ---------------------------------


@dataclasses.dataclass(frozen=True)
class _CodeReward:
  """Shared by the code rewards: how to find the program and its tests in an example.

  Examples carry `tests` (sandbox tests), and optionally `prompt` (completion style: the code
  the completion continues) and `header` (R1 style: imports and helpers run before the code).
  """

  style: str = "r1"
  timeout_s: float = 10.0
  memory_mb: int = 1024

  def verdict(self, response: str, example: Mapping[str, Any]) -> Verdict:
    program = extract_program(response, style=self.style, prompt=example.get("prompt", ""),
                              header=example.get("header", ""))
    return grade(program, example["tests"], timeout_s=self.timeout_s,
                 memory_mb=self.memory_mb)


@dataclasses.dataclass(frozen=True)
class CodeAccuracy(_CodeReward):
  """1 when every test passes, else 0."""

  def __call__(self, response: str, example: Mapping[str, Any]) -> float:
    return self.verdict(response, example).accuracy


@dataclasses.dataclass(frozen=True)
class CodePassFraction(_CodeReward):
  """The fraction of tests passed (0 when no code was found or it does not parse)."""

  def __call__(self, response: str, example: Mapping[str, Any]) -> float:
    return self.verdict(response, example).fraction


@dataclasses.dataclass(frozen=True)
class CodeFailure(_CodeReward):
  """1 when the verdict's reason is `reason` (e.g. "no_code"): counts why answers fail."""

  reason: str = "no_code"

  def __post_init__(self):
    if self.reason not in REASONS:
      raise ValueError(f"reason must be one of {REASONS}, got {self.reason!r}")

  def __call__(self, response: str, example: Mapping[str, Any]) -> float:
    return float(self.verdict(response, example).reason == self.reason)
