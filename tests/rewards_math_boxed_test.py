"""Tests for r1jax.rewards.math_boxed: the one boxed extractor, and that every caller uses it."""

import pytest

from r1jax.data import tasks
from r1jax.rewards import math as rmath
from r1jax.rewards import math_boxed
from r1jax.rewards import math_normalize as mn

# (text, the last box's argument): the cases the three old extractors disagreed on first.
CASES = [
    (r"so \boxed 5 is it", "5"),
    (r"\boxed5", "5"),
    (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
    (r"\boxed{\}}", r"\}"),
    (r"\boxed{1} and \boxed{unclosed", None),
    (r"\boxed{unclosed", None),
    (r"\boxed{}", None),
    (r"\boxed{\boxed{3}}", "3"),
    (r"\fbox{9}", "9"),
    (r"\boxedx{3}", None),
    (r"first \boxed{1} then \boxed{ x^{2} }", "x^{2}"),
    ("no box", None),
]


@pytest.mark.parametrize("text,want", CASES)
def test_last_boxed(text, want):
  assert math_boxed.last_boxed(text) == want


@pytest.mark.parametrize("text,want", CASES)
def test_every_caller_agrees(text, want):
  assert tasks.last_boxed(text) == want
  assert rmath.extract_answer(text) == want
  assert rmath.gold_answer(text) == (want if want is not None else text.strip())
  if want is not None and text.startswith("\\") and text.count("\\") == 1:
    assert mn.normalize(text) == mn.normalize(want)


def test_unbox_unwraps_every_box():
  assert math_boxed.unbox(r"\boxed{\boxed{5}} + \boxed 3 = \boxed{x") == "5 + 3 = {x"
