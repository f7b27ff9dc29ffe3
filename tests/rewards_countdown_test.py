"""Tests for r1jax.rewards.countdown: TinyZero's Countdown rule, parsed without eval."""

import time
from fractions import Fraction

import pytest

from r1jax.rewards.countdown import (CountdownAccuracy, countdown_reward, evaluate_equation,
                                     extract_equation)

NUMBERS = [3, 5, 7, 2]
TARGET = 24


def answer(equation: str) -> str:
  return f"<think>try things</think><answer>{equation}</answer>"


@pytest.mark.parametrize("equation", [
    "7 * 3 + 5 - 2",
    "5 * 3 + 7 + 2",
    "2 + 5*3 + 7",
    "(7 * 3) + (5 - 2)",
    "-(2 - 7 * 3) + 5",  # A unary minus, as TinyZero's eval allowed.
    " 7*3+5-2 ",
])
def test_correct_equations_score_one(equation):
  assert countdown_reward(answer(equation), NUMBERS, TARGET) == 1.0


def test_exact_fractions_in_intermediate_steps():
  # 6 / (1 - 3/4) = 24 only with exact division.
  assert countdown_reward(answer("6 / (1 - 3 / 4)"), [1, 3, 4, 6], 24) == 1.0


@pytest.mark.parametrize("equation,why", [
    ("7 * 3 + 5 + 2", "wrong value"),
    ("7 * 3 + 3", "3 used twice, 5 and 2 unused"),
    ("7 * 3 + 5 - 2 + 0", "a number that was not given"),
    ("7 * 3 + 5", "2 unused"),
    ("7 ** 3 + 5 - 2", "power is not allowed"),
    ("7 ^ 3 + 5 - 2", "not an operator"),
    ("7 * 3 + 5 - 2 = 24", "an equals sign is not allowed"),
    ("7.0 * 3 + 5 - 2", "decimals are not allowed"),
    ("7 * 3 + 5 - x", "names are not allowed"),
    ("__import__('os').system('true')", "code is never run"),
    ("(7 * 3 + 5 - 2", "unbalanced"),
    ("7 * 3 + 5 - 2)", "unbalanced"),
    ("7 3 + 5 - 2", "juxtaposition is not multiplication"),
    ("", "empty"),
])
def test_invalid_or_wrong_equations_score_format_score(equation, why):
  assert countdown_reward(answer(equation), NUMBERS, TARGET) == 0.0, why
  assert countdown_reward(answer(equation), NUMBERS, TARGET, format_score=0.1) == 0.1, why


def test_division_by_zero_is_invalid():
  assert countdown_reward(answer("3 / (5 - 5) + 2"), [5, 5, 3, 2], 24, format_score=0.1) == 0.1
  with pytest.raises(ValueError, match="division by zero"):
    evaluate_equation("1 / (2 - 2)")


def test_no_answer_scores_zero_even_with_format_score():
  assert countdown_reward("7 * 3 + 5 - 2", NUMBERS, TARGET, format_score=0.1) == 0.0
  assert countdown_reward("<answer>7 * 3 + 5 - 2", NUMBERS, TARGET, format_score=0.1) == 0.0


def test_the_last_answer_counts():
  text = "<answer>1 + 1</answer> no wait <answer>7 * 3 + 5 - 2</answer>"
  assert extract_equation(text) == "7 * 3 + 5 - 2"
  assert countdown_reward(text, NUMBERS, TARGET) == 1.0


def test_target_tolerance_is_1e_5():
  assert countdown_reward(answer("1 / 3"), [1, 3], 0.333334) == 1.0
  assert countdown_reward(answer("1 / 3"), [1, 3], 0.33335) == 0.0


def test_evaluate_equation_is_exact_and_lists_numbers():
  value, used = evaluate_equation("(10 - 4) / 4 * 2")
  assert value == Fraction(3)
  assert used == [10, 4, 4, 2]


def test_reward_fn_reads_numbers_and_target():
  fn = CountdownAccuracy()
  assert fn(answer("7 * 3 + 5 - 2"), {"numbers": NUMBERS, "target": TARGET}) == 1.0
  assert fn(answer("7 * 3 + 5 + 2"), {"numbers": NUMBERS, "target": TARGET}) == 0.0


@pytest.mark.parametrize("equation", [
    "(" * 10_000 + "1" + ")" * 10_000,
    "1+" * 100_000 + "1",
    "-" * 100_000 + "1",
    "(" * 60 + "2" + ")" * 60,
])
def test_hostile_equations_are_rejected_quickly(equation):
  start = time.monotonic()
  assert countdown_reward(answer(equation), [1], 1) == 0.0
  assert time.monotonic() - start < 0.5
