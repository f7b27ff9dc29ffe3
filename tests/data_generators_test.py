"""Tests for r1jax.data.generators: Countdown and arithmetic are solvable, exact, reproducible."""

import ast
import fractions
import operator
import re

import pytest

from r1jax.data import generators
from r1jax.data.sources import ExampleStream

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def _exact_value(text):
  """Exact value of + - * / integer arithmetic text (an independent check, not the generator's)."""
  def ev(node):
    if isinstance(node, ast.Expression):
      return ev(node.body)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
      return _OPS[type(node.op)](ev(node.left), ev(node.right))
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
      return fractions.Fraction(node.value)
    raise AssertionError(f"unexpected syntax in {text!r}")
  return ev(ast.parse(text, mode="eval"))


def test_countdown_examples_are_solvable_by_their_reference_answer():
  gen = generators.CountdownGenerator(seed=0)
  counts = set()
  for i in range(300):
    ex = gen[i]
    counts.add(len(ex["numbers"]))
    assert _exact_value(ex["answer"]) == ex["target"]
    used = sorted(int(n) for n in re.findall(r"\d+", ex["answer"]))
    assert used == sorted(ex["numbers"])  # Every number exactly once.
    assert 10 <= ex["target"] <= 100
    assert all(1 <= n <= 99 for n in ex["numbers"])
    assert str(ex["numbers"]) in ex["question"] and f"equals {ex['target']}." in ex["question"]
  assert counts == {3, 4}


def test_countdown_respects_its_ranges():
  gen = generators.CountdownGenerator(seed=1, num_numbers=(4,), max_number=9, min_target=20,
                                      max_target=30)
  for i in range(50):
    ex = gen[i]
    assert len(ex["numbers"]) == 4 and max(ex["numbers"]) <= 9
    assert 20 <= ex["target"] <= 30 and _exact_value(ex["answer"]) == ex["target"]


def test_generation_is_random_access_and_determined_by_seed_and_index():
  a = generators.CountdownGenerator(seed=7)
  b = generators.CountdownGenerator(seed=7)
  forward = [a[i] for i in range(20)]
  backward = [b[i] for i in reversed(range(20))][::-1]
  assert forward == backward
  other = generators.CountdownGenerator(seed=8)
  assert [other[i]["numbers"] for i in range(20)] != [e["numbers"] for e in forward]
  assert len({e["id"] for e in forward}) == 20


def test_arithmetic_answers_are_exact_with_precedence():
  gen = generators.ArithmeticGenerator(seed=0, digits=5, num_operands=3, ops=("+", "-", "*"))
  seen_ops = set()
  for i in range(200):
    ex = gen[i]
    expr = re.fullmatch(r"What is (.*)\?", ex["question"]).group(1)
    assert _exact_value(expr) == int(ex["answer"])
    assert all(10_000 <= x <= 99_999 for x in ex["operands"])
    seen_ops.update(ex["ops"])
  assert seen_ops == {"+", "-", "*"}
  assert generators.ArithmeticGenerator._evaluate([2, 3, 4], ["+", "*"]) == 14
  assert generators.ArithmeticGenerator._evaluate([2, 3, 4], ["-", "-"]) == -5


@pytest.mark.parametrize("digits", [1, 3, 8])
def test_arithmetic_difficulty_is_the_operand_digit_count(digits):
  gen = generators.ArithmeticGenerator(seed=2, digits=digits)
  for i in range(30):
    assert all(len(str(x)) == digits for x in gen[i]["operands"])


def test_sized_generator_is_a_finite_data_set():
  gen = generators.ArithmeticGenerator(seed=0, size=6)
  assert len(gen) == 6
  with pytest.raises(IndexError, match="out of range"):
    gen[6]
  stream = ExampleStream(gen, seed=3, num_epochs=1)
  assert sorted(e["id"] for e in stream) == sorted(gen[i]["id"] for i in range(6))
  with pytest.raises(TypeError, match="unbounded"):
    len(generators.ArithmeticGenerator())


def test_bad_generator_options_name_the_value():
  with pytest.raises(ValueError, match="num_numbers must be counts of at least 2"):
    generators.CountdownGenerator(num_numbers=(1,))
  with pytest.raises(ValueError, match="widen the ranges"):
    generators.CountdownGenerator(num_numbers=(2,), max_number=1)[0]
  with pytest.raises(ValueError, match="ops must be a non-empty subset"):
    generators.ArithmeticGenerator(ops=("/",))
  with pytest.raises(ValueError, match="digits must be an integer in \\[1, 18\\], got 0"):
    generators.ArithmeticGenerator(digits=0)
  with pytest.raises(ValueError, match="size must be a positive integer or None"):
    generators.CountdownGenerator(size=0)


@pytest.mark.parametrize("op", ["+", "-", "*"])
def test_arithmetic_word_problems_state_the_same_sum_as_a_story(op):
  gen = generators.ArithmeticGenerator(seed=3, digits=2, ops=(op,), style="word")
  for i in range(20):
    ex = gen[i]
    a, b = ex["operands"]
    assert str(a) in ex["question"] and str(b) in ex["question"]
    assert ex["question"].endswith("?") and "What is" not in ex["question"]
    want = {"+": a + b, "-": a - b, "*": a * b}[op]
    assert ex["answer"] == str(want) and want >= 0


def test_arithmetic_word_style_rejects_bad_options():
  with pytest.raises(ValueError, match="style must be 'plain' or 'word', got 'poem'"):
    generators.ArithmeticGenerator(style="poem")
  with pytest.raises(ValueError, match="two operands, got num_operands=3"):
    generators.ArithmeticGenerator(style="word", num_operands=3)
