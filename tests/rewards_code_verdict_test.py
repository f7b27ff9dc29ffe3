"""Tests for r1jax.rewards.code_verdict and CheckTest: assertions judged in the parent."""

import pytest

from r1jax.rewards import code as rcode
from r1jax.rewards import code_verdict as cv

# Small HumanEval-style problems written here (the real 164 are measured by
# experiments/benchmarks/sandbox_humaneval.py).
PROBLEMS = [
    {"prompt": "def add(x: int, y: int):\n    \"\"\"Add two numbers.\"\"\"\n",
     "canonical_solution": "    return x + y\n",
     "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n"
             "    assert candidate(0, 1) == 1\n    assert candidate(5, 7) == 12, 'sum'\n"
             "    assert True, 'a no-op line'\n",
     "entry_point": "add"},
    {"prompt": "import math\n\ndef mean(xs: list):\n    \"\"\"The mean.\"\"\"\n",
     "canonical_solution": "    return sum(xs) / len(xs)\n",
     "test": "def check(candidate):\n    import math\n"
             "    assert abs(candidate([1.0, 2.0]) - 1.5) < 1e-6\n"
             "    assert math.fabs(candidate([3.0]) - 3.0) < 1e-6\n",
     "entry_point": "mean"},
    {"prompt": "def is_even(n):\n    \"\"\"Whether n is even.\"\"\"\n",
     "canonical_solution": "    return n % 2 == 0\n",
     "test": "def check(candidate):\n    assert candidate(2)\n    assert not candidate(3)\n"
             "    assert candidate(4) is True\n",
     "entry_point": "is_even"},
    {"prompt": "def rev(xs):\n    \"\"\"Reversed, as a list.\"\"\"\n",
     "canonical_solution": "    return xs[::-1]\n",
     "test": "def check(candidate):\n    assert tuple(candidate([1, 2, 3])) == (3, 2, 1)\n"
             "    for n in range(3):\n        xs = list(range(n))\n"
             "        assert candidate(xs) == xs[::-1]\n",
     "entry_point": "rev"},
]


@pytest.fixture(autouse=True)
def _isolation(monkeypatch):
  # Tests that do not name a mode run in the strongest one this machine gives.
  os_ok = rcode.sandbox_capabilities()["os_isolation"]
  monkeypatch.setenv("R1JAX_SANDBOX_ISOLATION", "os" if os_ok else "hook")


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p["entry_point"])
def test_check_tests_pass_the_solution_and_fail_an_empty_body(problem):
  test = rcode.humaneval_test(problem)
  assert rcode.run_program(problem["canonical_solution"], [test], timeout_s=10).passed == (True,)
  # The same solution written as a whole function (a chat model's answer) also passes.
  whole = problem["prompt"] + problem["canonical_solution"]
  assert rcode.run_tests(whole, [test], timeout_s=10) == 1.0
  for bad in ("", "    return None\n", "    pass\n"):
    assert rcode.run_tests(bad, [test], timeout_s=10) == 0.0, bad


def test_only_irreducible_statements_run_the_weaker_way():
  results = [rcode.run_program(p["canonical_solution"], [rcode.humaneval_test(p)], timeout_s=10)
             for p in PROBLEMS]
  assert [r.weak for r in results] == [(False,), (False,), (False,), (True,)]


def test_plans_split_calls_from_expectations():
  plan = cv.plan_test("assert f(1, 2) == 3\nassert abs(g([1]) - 0.5) < 1e-6\nassert not h()")
  assert plan.holes == ("f(1, 2)", "g([1])", "h()")
  assert len(plan.assertions) == 3 and plan.residual is None
  # The expected values stay in the parent: no hole mentions them.
  assert not any("3" in h or "0.5" in h for h in plan.holes)
  plan = cv.plan_test("x = f(1)\nassert x == 2\nassert f(3) == 4")
  assert plan.holes == ("f(3)",)
  assert plan.residual == "x = f(1)\nassert x == 2"


def test_check_plans_keep_helpers_and_imports_for_the_child():
  plan = cv.plan_test("import math\nK = 2\ndef check(candidate):\n  from math import pi\n"
                      "  assert candidate(pi) == 3\n  assert candidate(1) == K\n", entry_point="f")
  assert plan.holes == ("candidate(pi)",)
  assert plan.setup == "import math\nK = 2"
  assert plan.local_setup == "from math import pi"
  assert plan.residual is not None  # `K` is a name the parent cannot read.
  # An expected value computed by another function would be computed in the child: residual.
  plan = cv.plan_test("def check(candidate):\n  assert candidate(1) == f(1)\n"
                      "  assert candidate(2) == 4\n", entry_point="f")
  assert plan.holes == ("candidate(2)",) and "candidate(1) == f(1)" in plan.residual
  with pytest.raises(ValueError, match="def check"):
    cv.plan_test("assert True", entry_point="f")


@pytest.mark.parametrize("text,value", [
    ('{"i": "12"}', 12), ('{"f": "nan"}', None), ('{"s": "a"}', "a"), ("true", True),
    ('{"t": [{"i": "1"}, {"l": []}]}', (1, [])), ('{"d": [[{"s": "k"}, null]]}', {"k": None}),
    ('{"S": [{"i": "1"}]}', {1}), ('{"b": "6162"}', b"ab"), ('{"c": ["1.0", "-2.0"]}', 1 - 2j),
])
def test_values_decode_to_exact_builtin_types(text, value):
  got = cv.decode_value(text)
  if value is None:
    assert got != got  # NaN.
  else:
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ['{"x": 1}', '{"i": 1}', '[1]', '"s"', '{"i": "1", "f": "2"}',
                                  '{"l": [{"o": "object"}]}'])
def test_malformed_values_are_refused(text):
  with pytest.raises(ValueError):
    cv.decode_value(text)


def test_parent_checks_follow_python_semantics():
  def holds(src, *values):
    plan = cv.plan_test(src)
    return cv.check_assertion(plan.assertions[0], dict(enumerate(values)))
  assert holds("assert f() == 1", 1.0) and holds("assert f() == 1", True)
  assert not holds("assert f() == (1, 2)", [1, 2])
  assert holds("assert f() or g()", 1)  # g() is never needed (and never arrived).
  assert not holds("assert f() and g()", 1)
  assert not holds("assert f() * 10**9 == 'x'", "xx")  # Too large to build: fails, no hang.
  assert holds("assert sorted(f()) == [1, 2]", {2, 1})


def test_a_test_that_does_not_parse_fails_only_itself():
  result = rcode.run_program("def f():\n  return 1\n", ["assert f() ==", "assert f() == 1"],
                             timeout_s=10)
  assert result.passed == (False, True)


def test_code_stats_count_weak_tests():
  rcode.code_stats(reset=True)
  fn = rcode.CodeTests(timeout_s=10)
  code = "```python\ndef f(x):\n  return x\n```"
  assert fn(code, {"tests": ["assert f(1) == 1", "y = f(2)\nassert y == 2"]}) == 1.0
  stats = rcode.code_stats(reset=True)
  assert stats == {"code/tests": 2.0, "code/weak_tests": 1.0, "code/weak_frac": 0.5}
