"""Tests for r1jax.rewards.combine: weighted named reward terms, errors counted not raised."""

import logging
import math

import numpy as np
import pytest

from r1jax.rewards import (CountdownAccuracy, MathAccuracy, R1Format, RewardTerm, combine,
                           score_batch)
from r1jax.rewards.combine import CombinedReward

COMPLETIONS = [
    "<think>half of 1</think><answer>\\frac{1}{2}</answer>",  # Right, well formed.
    "<think>hm</think><answer>0.4</answer>",  # Wrong, well formed.
    "the answer is \\boxed{0.5}",  # Right, badly formed.
    "no idea",  # Wrong, badly formed.
]
EXAMPLES = [{"answer": "0.5"}] * 4


def test_total_is_the_weighted_sum_and_terms_are_kept_apart():
  reward = combine(accuracy=MathAccuracy(), format=(R1Format(), 0.5))
  scores = score_batch(reward, COMPLETIONS, EXAMPLES)
  np.testing.assert_array_equal(scores.per_term["accuracy"], [1, 0, 1, 0])
  np.testing.assert_array_equal(scores.per_term["format"], [1, 1, 0, 0])
  np.testing.assert_array_equal(scores.total, [1.5, 0.5, 1.0, 0.0])
  assert scores.total.dtype == np.float32 and scores.total.shape == (4,)
  assert scores.errors == {"accuracy": 0, "format": 0}


def test_calling_the_combined_reward_scores_one_completion():
  reward = combine(("accuracy", MathAccuracy()), RewardTerm("format", R1Format(), 0.5))
  assert reward(COMPLETIONS[0], EXAMPLES[0]) == 1.5
  assert reward.names == ("accuracy", "format")


def test_threaded_and_serial_scoring_agree():
  reward = combine(accuracy=MathAccuracy(), format=R1Format())
  threaded = score_batch(reward, COMPLETIONS * 4, EXAMPLES * 4, max_workers=8)
  serial = score_batch(reward, COMPLETIONS * 4, EXAMPLES * 4, max_workers=None)
  np.testing.assert_array_equal(threaded.total, serial.total)


def test_a_raising_term_scores_zero_is_counted_and_logged_once(caplog):
  calls = []

  def flaky(completion, example):
    calls.append(completion)
    if "no idea" in completion or "0.4" in completion:
      raise RuntimeError("grader bug")
    return 1.0

  reward = combine(flaky=flaky, format=R1Format())
  with caplog.at_level(logging.WARNING):
    scores = score_batch(reward, COMPLETIONS, EXAMPLES)
  np.testing.assert_array_equal(scores.per_term["flaky"], [1, 0, 1, 0])
  np.testing.assert_array_equal(scores.per_term["format"], [1, 1, 0, 0])
  assert scores.errors == {"flaky": 2, "format": 0}
  assert len(calls) == 4
  assert sum("flaky" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "high", None])
def test_non_finite_or_non_numeric_results_count_as_errors(bad):
  reward = combine(bad=lambda c, e: bad, ok=lambda c, e: 1.0)
  scores = score_batch(reward, ["x", "y"], [{}, {}])
  np.testing.assert_array_equal(scores.per_term["bad"], [0, 0])
  np.testing.assert_array_equal(scores.total, [1, 1])
  assert scores.errors["bad"] == 2


def test_missing_example_field_is_an_error_not_a_crash():
  reward = combine(countdown=CountdownAccuracy())
  scores = score_batch(reward, ["<answer>1+2</answer>"], [{"target": 3}])
  assert scores.errors["countdown"] == 1 and scores.total[0] == 0


def test_metrics_are_flat_scalars_named_by_term():
  reward = combine(accuracy=MathAccuracy(), format=(R1Format(), 0.5))
  metrics = score_batch(reward, COMPLETIONS, EXAMPLES).metrics()
  assert metrics == {"reward/mean": 0.75, "reward/accuracy/mean": 0.5,
                     "reward/accuracy/errors": 0.0, "reward/format/mean": 0.5,
                     "reward/format/errors": 0.0}
  assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


def test_bad_configurations_are_clear_errors():
  with pytest.raises(ValueError, match="at least one term"):
    combine()
  with pytest.raises(ValueError, match="unique; repeated: \\['a'\\]"):
    combine(("a", R1Format()), ("a", R1Format()))
  with pytest.raises(ValueError, match="not callable"):
    combine(a=3)
  with pytest.raises(ValueError, match="weight nan"):
    combine(a=(R1Format(), float("nan")))
  with pytest.raises(ValueError, match="not a RewardTerm"):
    combine(R1Format())
  with pytest.raises(ValueError, match="2 completions but 1 examples"):
    score_batch(combine(f=R1Format()), ["a", "b"], [{}])
  assert isinstance(combine(f=R1Format()), CombinedReward)


def test_empty_batch():
  scores = score_batch(combine(f=R1Format()), [], [])
  assert scores.total.shape == (0,)
  assert scores.metrics()["reward/mean"] == 0.0
