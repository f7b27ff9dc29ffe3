"""The maths accuracy reward: extract a completion's final answer and grade it against the gold.

Place in the pipeline: after sampling, the trainer detokenizes each completion and a task's
reward calls `math_reward(completion, gold)` (through `MathAccuracy` in a `combine`d reward).
R1-Zero's accuracy reward is this rule: 1 when the final answer is equivalent to the reference,
else 0. Too strict a grader under-counts correct answers; one that hangs on a pathological
answer stalls the run. So grading has two stages:

1. In the calling thread (microseconds): normalization, structure (tuples, sets, intervals,
   lists) and plain-number checks, in `rewards.math_normalize`. Most answers stop here.
2. What stage 1 cannot decide (symbolic forms such as `\\frac{\\sqrt2}{2}` vs `1/\\sqrt2`) goes
   to sympy in a worker process (`rewards.math_symbolic`) under a hard timeout
   (`rewards.timeout`), which works from any thread; a timeout scores 0 and is counted.

Strict extraction takes the answer only from `<answer>...</answer>` (the boxed part of it if it
has one) or else the last `\\boxed{...}`; lenient extraction also falls back to GSM8K's `#### N`
and then to the last number in the text. Tasks report both accuracies. The normalization rules
(thousands separators, percent, units, `x = 2`, multiple choice, ...) are listed in
`rewards.math_normalize`. Extracted answers longer than 1,000 characters score 0 by design.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from typing import Any, Callable, Mapping, Optional

from r1jax.rewards import math_normalize as mn
from r1jax.rewards import math_verify_backend
from r1jax.rewards.math_boxed import last_boxed
from r1jax.rewards import timeout as timeout_lib

__all__ = [
    "BACKENDS",
    "DEFAULT_TIMEOUT_S",
    "MathAccuracy",
    "extract_answer",
    "gold_answer",
    "grading_stats",
    "is_equivalent",
    "math_reward",
]

DEFAULT_TIMEOUT_S = 3.0
BACKENDS = ("r1jax", "math_verify")
_SYMBOLIC_TARGET = "r1jax.rewards.math_symbolic:equal_strings"
# A minus is a sign only where it cannot be a dash: not after a word character, a closing
# bracket or a dot ("10-15", "2024-05-12", "x-3", "(a)-2" are ranges, dates, differences).
_LAST_NUMBER = re.compile(r"(?:(?<![\w)\]}.])-)?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
# Placeholders of r1jax's and R1's templates that models copy verbatim into <answer>.
_TEMPLATE_ECHOES = frozenset({"answer here", "your answer", "your answer here", "final answer",
                              "your final answer", "final answer here", "the answer", "answer",
                              ""})
_ECHO_STRIP = re.compile(r"[^a-z0-9]+")
_CACHE_SIZE = 1 << 16

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_stats = {"symbolic_calls": 0, "timeouts": 0, "worker_errors": 0}
_cache: dict[tuple[str, ...], bool] = {}


def grading_stats() -> dict[str, int]:
  """Counters since start: answers sent to sympy, timeouts, worker errors (for metrics)."""
  with _lock:
    return dict(_stats)


def _count(key: str) -> None:
  with _lock:
    _stats[key] += 1


def _answer_regions(text: str) -> list[str]:
  """The contents of the `<answer>` regions, last first (an unclosed last one runs to the end)."""
  regions, end = [], len(text)
  while True:
    i = text.rfind("<answer>", 0, end)
    if i < 0:
      return regions
    close = text.find("</answer>", i, end)
    regions.append(text[i + len("<answer>"):close if close >= 0 else end])
    end = i


def _is_template_echo(content: str) -> bool:
  """Whether an `<answer>` region only repeats the prompt's placeholder ("answer here")."""
  return " ".join(_ECHO_STRIP.sub(" ", content.lower()).split()) in _TEMPLATE_ECHOES


def extract_answer(text: str, *, strict: bool = True) -> Optional[str]:
  """The final answer of a completion, or None.

  Args:
    text: the completion (or any text holding an answer).
    strict: take the answer only from the last `<answer>...</answer>` that is not empty and
      not an echo of the template's placeholder ("answer here"; its last `\\boxed{}` if it has
      one; the rest of the text when the closing tag is missing) or else the last box
      (`rewards.math_boxed`). When False, also fall back to GSM8K's `#### N` and then to the
      last number in the text, where a minus sign right after a word, digit or bracket is a
      dash ("10-15 minutes" ends in 15, "2024-05-12" in 12), not a negative sign.

  Returns:
    The answer text, stripped, or None when there is none.
  """
  text = str(text)
  for content in _answer_regions(text):
    boxed = last_boxed(content)
    content = (boxed if boxed is not None else content).strip()
    if content and not _is_template_echo(content):
      return content
  boxed = last_boxed(text)
  if boxed:
    return boxed
  if strict:
    return None
  i = text.rfind("####")
  if i >= 0:
    rest = text[i + 4:].strip().split("\n", 1)[0].strip()
    if rest:
      return rest
  last = None
  for last in _LAST_NUMBER.finditer(text):
    pass
  return last.group() if last else None


def gold_answer(gold: Any) -> str:
  """The reference answer from a dataset field: a solution's last `\\boxed{}` or `#### N`."""
  s = str(gold).strip()
  if "\\boxed" in s or "\\fbox" in s:
    boxed = last_boxed(s)
    if boxed:
      return boxed
  if "####" in s:
    return s[s.rfind("####") + 4:].strip()
  return s


def _remote_equal(key: tuple[str, ...], call: Callable[[], Any]) -> bool:
  """A worker's equality verdict, cached; a timeout or a failed worker scores False (counted)."""
  with _lock:
    if key in _cache:
      return _cache[key]
    _stats["symbolic_calls"] += 1
  try:
    result = bool(call())
  except timeout_lib.GradingTimeout:
    _count("timeouts")
    return False
  except timeout_lib.WorkerError as e:
    # The function raised in the worker (e.g. MemoryError) or the worker died: not graded.
    _count("worker_errors")
    _log.debug("grading failed for %r: %s", [k[:80] for k in key], e)
    result = False
  with _lock:
    if len(_cache) >= _CACHE_SIZE:
      _cache.clear()
    _cache[key] = result
  return result


def _symbolic_equal(p: str, g: str, timeout_s: float) -> bool:
  return _remote_equal((p, g), lambda: timeout_lib.call(_SYMBOLIC_TARGET, [p, g], timeout_s))


def _math_verify_equal(p: str, g: str, timeout_s: float) -> bool:
  return _remote_equal(("math_verify", p, g),
                       lambda: math_verify_backend.equal(p, g, timeout_s))


def is_equivalent(pred: Optional[str], gold: Any, *,
                  timeout_s: float = DEFAULT_TIMEOUT_S, backend: str = "r1jax") -> bool:
  """Whether answer `pred` is mathematically equivalent to the reference `gold`.

  Args:
    pred: an extracted answer (None scores False).
    gold: the reference answer (numbers are converted with str).
    timeout_s: hard limit on the symbolic stage; past it the answer is not equivalent.
    backend: "r1jax" (the rules of `rewards.math_normalize`, then sympy) or "math_verify"
      (`rewards.math_verify_backend`, the grader of open-r1 / lighteval / TRL).
  """
  if backend not in BACKENDS:
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
  if pred is None:
    return False
  if timeout_s <= 0:
    raise ValueError(f"timeout_s must be positive, got {timeout_s}.")
  pred, gold = str(pred), str(gold)
  if len(pred) > mn.MAX_ANSWER_CHARS:
    return False
  if backend == "math_verify":
    return _math_verify_equal(pred.strip(), gold.strip(), timeout_s)
  if len(gold) > mn.MAX_ANSWER_CHARS:
    return pred.strip() == gold.strip()
  p, g = mn.normalize(pred), mn.normalize(gold)
  if not p or not g:
    return False
  letter = mn.choice_letter(g, gold=True)
  if letter is not None:
    picked = mn.choice_letter(p, gold=False)
    if picked is not None:
      return picked == letter
  result = mn.compare_nodes(mn.split_structure(p), mn.split_structure(g), mn.fast_equal)
  if result is not None:
    return result
  return _symbolic_equal(p, g, timeout_s)


def math_reward(completion: str, gold: Any, *, strict: bool = True,
                timeout_s: float = DEFAULT_TIMEOUT_S, backend: str = "r1jax") -> float:
  """1.0 when the completion's final answer is equivalent to `gold`, else 0.0.

  `gold` may be the bare answer or a reference solution ending in `\\boxed{}` or `#### N`;
  `backend` as in `is_equivalent`.
  """
  pred = extract_answer(completion, strict=strict)
  return 1.0 if is_equivalent(pred, gold_answer(gold), timeout_s=timeout_s,
                              backend=backend) else 0.0


@dataclasses.dataclass(frozen=True)
class MathAccuracy:
  """A RewardFn: `math_reward` against `example[gold_key]`."""
  gold_key: str = "answer"
  strict: bool = True
  timeout_s: float = DEFAULT_TIMEOUT_S
  backend: str = "r1jax"  # Or "math_verify": the same extraction, math-verify's verdict.

  def __post_init__(self):
    if self.backend not in BACKENDS:
      raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}.")

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    if self.gold_key not in example:
      raise KeyError(f"example has no field {self.gold_key!r} (fields: {sorted(example)}).")
    return math_reward(completion, example[self.gold_key], strict=self.strict,
                       timeout_s=self.timeout_s, backend=self.backend)
