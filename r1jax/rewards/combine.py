"""A task's reward: a weighted sum of named reward functions, each logged on its own.

Place in the pipeline: after sampling, the trainer calls `score_batch(reward, completions,
examples)` on the host and gets the total reward per completion ([B] = [P*R], what
`grpo.advantages` reshapes to [P, R]) plus each named term's scores and error count for the
metrics (`reward/<name>/mean`, `reward/<name>/errors`).

A reward function is anything with the `RewardFn` signature `(completion, example) -> float`;
`r1jax.rewards` ships `MathAccuracy`, `R1Format`, `CountdownAccuracy`, `LanguageConsistency`
and `CodeTests`. An exception in one function (or a NaN/inf or non-number result) scores that
term 0 for that completion and is counted and logged once per term; it never crashes a step.
Scoring runs on a thread pool: the maths grader's sympy stage and the code sandbox wait on
other processes, so threads keep the grading workers busy.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, Union

import numpy as np

__all__ = ["BatchScores", "CombinedReward", "RewardFn", "RewardTerm", "combine", "score_batch"]

_log = logging.getLogger(__name__)


class RewardFn(Protocol):
  """Scores one completion given its example (the task's row: gold answer, numbers, tests)."""

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    ...


@dataclasses.dataclass(frozen=True)
class RewardTerm:
  """One named, weighted reward function."""
  name: str
  fn: RewardFn
  weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class BatchScores:
  """Scores of a batch of B completions."""
  total: np.ndarray  # [B] float32: sum over terms of weight * score.
  per_term: dict[str, np.ndarray]  # name -> [B] float32 unweighted scores.
  errors: dict[str, int]  # name -> completions whose score raised or was not finite.

  def metrics(self, prefix: str = "reward") -> dict[str, float]:
    """Flat scalar metrics: `reward/mean`, `reward/<name>/mean`, `reward/<name>/errors`."""
    out = {f"{prefix}/mean": float(self.total.mean()) if self.total.size else 0.0}
    for name, scores in self.per_term.items():
      out[f"{prefix}/{name}/mean"] = float(scores.mean()) if scores.size else 0.0
      out[f"{prefix}/{name}/errors"] = float(self.errors[name])
    return out


@dataclasses.dataclass(frozen=True)
class CombinedReward:
  """A weighted sum of named reward terms. Calling it scores one completion (total only)."""
  terms: tuple[RewardTerm, ...]
  # Names of terms whose failure was already logged (each is logged once, then only counted).
  logged_failures: set = dataclasses.field(default_factory=set, init=False, repr=False,
                                           compare=False)

  def __post_init__(self):
    names = [t.name for t in self.terms]
    if not names:
      raise ValueError("a combined reward needs at least one term, got none.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
      raise ValueError(f"reward term names must be unique; repeated: {dupes}.")
    for t in self.terms:
      if not callable(t.fn):
        raise ValueError(f"reward term {t.name!r} has fn={t.fn!r}, which is not callable.")
      if not math.isfinite(t.weight):
        raise ValueError(f"reward term {t.name!r} has weight {t.weight}; it must be finite.")

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(t.name for t in self.terms)

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    return sum(t.weight * _safe_score(t, completion, example, self.logged_failures)[0]
               for t in self.terms)


TermSpec = Union[RewardTerm, tuple, Callable]


def combine(*terms: TermSpec, **named: Union[RewardFn, tuple[RewardFn, float]]
            ) -> CombinedReward:
  """Builds a CombinedReward.

  Examples:
    combine(accuracy=MathAccuracy(), format=(R1Format(), 0.5))
    combine(RewardTerm("accuracy", MathAccuracy()), ("format", R1Format(), 0.5))

  Args:
    *terms: RewardTerm, or (name, fn) / (name, fn, weight) tuples.
    **named: name=fn (weight 1) or name=(fn, weight).
  """
  out = []
  for t in terms:
    if isinstance(t, RewardTerm):
      out.append(t)
    elif isinstance(t, tuple) and len(t) in (2, 3) and isinstance(t[0], str):
      out.append(RewardTerm(*t))
    else:
      raise ValueError(f"reward term {t!r} is not a RewardTerm or a (name, fn[, weight]) "
                       "tuple.")
  for name, spec in named.items():
    if isinstance(spec, tuple):
      out.append(RewardTerm(name, *spec))
    else:
      out.append(RewardTerm(name, spec))
  return CombinedReward(tuple(out))


def _safe_score(term: RewardTerm, completion: str, example: Mapping[str, Any],
                logged: set) -> tuple[float, bool]:
  """(score, failed): exceptions and non-finite or non-numeric results score 0."""
  try:
    value = float(term.fn(completion, example))
    if not math.isfinite(value):
      raise ValueError(f"returned {value}")
    return value, False
  except Exception as e:  # pylint: disable=broad-except
    if term.name not in logged:  # Once per term: a broken reward must not flood the log.
      logged.add(term.name)
      _log.warning("reward term %r failed (scored 0; further failures only counted): %s: %s",
                   term.name, type(e).__name__, e)
    return 0.0, True


def score_batch(reward: CombinedReward, completions: Sequence[str],
                examples: Sequence[Mapping[str, Any]], *,
                max_workers: Optional[int] = 8) -> BatchScores:
  """Scores B completions against their examples (one example per completion).

  Args:
    reward: the task's CombinedReward.
    completions: B decoded completions.
    examples: B example rows (repeat each prompt's row R times for a GRPO group).
    max_workers: threads for scoring; None or 1 scores in this thread.
  """
  if len(completions) != len(examples):
    raise ValueError(f"got {len(completions)} completions but {len(examples)} examples; "
                     "pass one example per completion.")
  b = len(completions)
  per_term = {t.name: np.zeros((b,), np.float32) for t in reward.terms}
  errors = {t.name: 0 for t in reward.terms}

  def score_one(i: int) -> list[tuple[float, bool]]:
    return [_safe_score(t, completions[i], examples[i], reward.logged_failures)
            for t in reward.terms]

  if max_workers and max_workers > 1 and b > 1:
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(max_workers, b)) as pool:
      rows = list(pool.map(score_one, range(b)))
  else:
    rows = [score_one(i) for i in range(b)]
  for i, row in enumerate(rows):
    for t, (value, failed) in zip(reward.terms, row):
      per_term[t.name][i] = value
      errors[t.name] += int(failed)
  total = np.zeros((b,), np.float32)
  for t in reward.terms:
    total += np.float32(t.weight) * per_term[t.name]
  return BatchScores(total=total, per_term=per_term, errors=errors)
