"""Tests for r1jax.rewards.math: extraction, equivalence grading, timeouts, hostile input."""

import concurrent.futures
import time

import pytest

from r1jax.rewards import math as rmath
from r1jax.rewards import math_normalize as mn
from r1jax.rewards import math_parse
from r1jax.rewards import timeout as timeout_lib

# (prediction, gold): each pair must grade as equivalent.
EQUIVALENT = [
    # Thousands separators.
    ("1,000", "1000"),
    ("1000", "1,000"),
    ("1{,}000", "1000"),
    ("1\\,000", "1000"),
    ("1 000 000", "1000000"),
    ("12,345.5", "12345.5"),
    ("-1,234", "-1234"),
    # Decimals, fractions, integers.
    ("0.5", "\\frac{1}{2}"),
    ("\\frac{1}{2}", "0.5"),
    ("\\dfrac{1}{2}", "\\frac12"),
    ("\\tfrac{3}{4}", "0.75"),
    ("1/2", "\\frac{1}{2}"),
    (".5", "0.5"),
    ("3.0", "3"),
    ("3", "3.00"),
    ("3.", "3"),
    ("0.125", "1/8"),
    ("\\frac{6}{8}", "\\frac{3}{4}"),
    ("\\frac{-1}{2}", "-\\frac{1}{2}"),
    ("-0.5", "-\\frac12"),
    ("\\frac{10}{4}", "2.5"),
    ("2\\frac{1}{2}", "2.5"),  # A mixed number.
    ("-3\\frac12", "-3.5"),
    ("2 \\cdot \\frac{1}{2}", "1"),
    ("x\\frac{1}{2}", "\\frac{x}{2}"),
    ("007", "7"),
    # Negative numbers.
    ("-3", "-3"),
    ("\u22123", "-3"),
    ("- 3", "-3"),
    ("-\\frac{3}{2}", "-1.5"),
    ("(-3)", "-3"),
    # Percent and degrees (a percent sign is dropped: 10% == 10).
    ("10\\%", "10"),
    ("10", "10\\%"),
    ("10%", "10"),
    ("12.5\\%", "12.5"),
    ("30^\\circ", "30"),
    ("30^{\\circ}", "30"),
    ("30\u00b0", "30"),
    ("45", "45^\\circ"),
    # Money and units.
    ("\\$18", "18"),
    ("$18.00", "18"),
    ("18 dollars", "18"),
    ("5 \\text{ cm}", "5"),
    ("5\\text{cm}^2", "5"),
    ("5 cm^2", "5"),
    ("12 \\mbox{ inches}", "12"),
    ("7 \\text{ square feet}", "7"),
    ("3 m", "3"),
    ("40 mph", "40"),
    ("42 apples", "42"),
    ("1,000 dollars", "1000"),
    # Text and multiple choice.
    ("\\text{(A)}", "A"),
    ("\\boxed{\\text{(A)}}", "A"),
    ("(B)", "B"),
    ("B", "(B)"),
    ("\\textbf{(C)}", "C"),
    ("(D) 12", "D"),
    ("E) none of these", "E"),
    ("\\text{even}", "even"),
    ("Even", "\\text{even}"),
    ("\\text{no solution}", "No solution"),
    # Assignments.
    ("x=2", "2"),
    ("x = 2", "2"),
    ("2", "x=2"),
    ("y = -\\frac{1}{3}", "-1/3"),
    ("\\theta = 30^\\circ", "30"),
    ("f(x) = 2x+1", "2x+1"),
    ("x_1 = 5", "5"),
    ("k=7.", "7"),
    # LaTeX wrappers and spacing.
    ("$5$", "5"),
    ("\\(5\\)", "5"),
    ("\\[5\\]", "5"),
    ("\\boxed{5}", "5"),
    ("\\boxed{\\boxed{5}}", "5"),
    ("\\displaystyle\\frac{1}{2}", "0.5"),
    ("\\left(1, 2\\right)", "(1,2)"),
    ("The answer is 5", "5"),
    ("answer: 5.", "5"),
    ("5.", "5"),
    # Roots, pi, powers.
    ("\\sqrt{8}", "2\\sqrt{2}"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
    ("\\sqrt2/2", "\\frac{\\sqrt{2}}{2}"),
    ("\\sqrt{3}/3", "\\frac{1}{\\sqrt3}"),
    ("\\sqrt[3]{27}", "3"),
    ("27^{1/3}", "3"),
    ("2^{10}", "1024"),
    ("2^10", "1024"),
    ("10^{-2}", "0.01"),
    ("2**3", "8"),
    ("2\\pi", "\\pi \\cdot 2"),
    ("\\frac{\\pi}{2}", "\\pi/2"),
    ("\\frac{3\\pi}{4}", "\\frac34\\pi"),
    ("\u03c0", "\\pi"),
    ("3.14159265358979", "\\pi"),
    ("1.4142135623730951", "\\sqrt{2}"),
    ("e^{i\\pi}", "-1"),
    ("\\binom{5}{2}", "10"),
    ("5!", "120"),
    ("\\frac{5!}{3!}", "20"),
    ("|-3|", "3"),
    ("\\log_2 8", "3"),
    ("\\ln e^2", "2"),
    ("\\sin^2 x + \\cos^2 x", "1"),
    ("\\lfloor 3.7 \\rfloor", "3"),
    ("6 \\times 7", "42"),
    ("6 \\cdot 7", "42"),
    ("84 \\div 2", "42"),
    ("1+2i", "i \\cdot 2 + 1"),
    ("(1+i)^2", "2i"),
    # Symbolic expressions.
    ("x^2+2x+1", "(x+1)^2"),
    ("(x+1)(x-1)", "x^2-1"),
    ("2x", "x+x"),
    ("\\frac{x}{2}", "0.5x"),
    ("ab", "ba"),
    ("\\frac{1}{x}+\\frac{1}{y}", "\\frac{x+y}{xy}"),
    ("\\alpha+\\beta", "\\beta+\\alpha"),
    ("\\sqrt{x^2}", "|x|"),
    # Equations and inequalities.
    ("y=2x+3", "2x+3"),
    ("2x+2y=2", "x+y=1"),
    ("x+y=1", "y=1-x"),
    ("x^2+y^2=1", "y^2+x^2=1"),
    ("x \\le 3", "x\\leq 3"),
    ("x > 2", "2 < x"),
    ("x \\ge 2", "2 \\le x"),
    # Tuples, sets, lists, intervals, matrices.
    ("(1, 2)", "(1,2)"),
    ("(1,2)", "\\left( 1, 2 \\right)"),
    ("(\\frac{1}{2}, 3)", "(0.5, 3.0)"),
    ("\\{1, 2\\}", "\\{2, 1\\}"),
    ("1, 2", "2, 1"),
    ("2, 3", "(2, 3)"),
    ("x=1, y=2", "(1, 2)"),
    ("2 \\text{ or } 3", "3, 2"),
    ("x=2 or x=3", "2, 3"),
    ("\\pm 2", "2, -2"),
    ("1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2"),
    ("(1,2]", "(1,2]"),
    ("[0, \\infty)", "[0,\\infty)"),
    ("(-\\infty, 3)", "(-\\infty,3)"),
    ("(-\\infty, -1) \\cup (1, \\infty)", "(1,\\infty)\\cup(-\\infty,-1)"),
    ("[0.5, 1]", "[\\frac12, 1]"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}",
     "\\begin{pmatrix}1&0\\\\0&1.0\\end{pmatrix}"),
    ("\\langle 1, 2 \\rangle", "(1, 2)"),
    ("x \\in [-2,7]", "[-2, 7]"),
    ("4210_{5}", "4210_5"),
    # Unicode.
    ("\u221a2", "\\sqrt{2}"),
    ("3\u00d74", "12"),
    ("\u221e", "\\infty"),
]

# (prediction, gold): each pair must grade as NOT equivalent.
NOT_EQUIVALENT = [
    ("-3", "3"),
    ("3", "-3"),
    ("10\\%", "0.1"),
    ("0.1", "10\\%"),
    ("1,2", "12"),
    ("1, 000", "1000"),
    ("[1,2]", "(1,2)"),
    ("(1,2)", "(1,2]"),
    ("(1,2)", "(2,1)"),
    ("2, 1", "(1, 2)"),
    ("\\{1,2\\}", "\\{1,2,3\\}"),
    ("1, 2", "1, 2, 3"),
    ("0.33", "\\frac{1}{3}"),
    ("0.333", "1/3"),
    ("3.14", "\\pi"),
    ("1.414", "\\sqrt{2}"),
    ("\\frac{1}{2}", "\\frac{1}{3}"),
    ("2\\sqrt{2}", "\\sqrt{2}"),
    ("x^2+1", "(x+1)^2"),
    ("2x", "x^2"),
    ("x", "y"),
    ("\\text{(A)}", "B"),
    ("(B) 12", "A"),
    ("odd", "even"),
    ("5", "five"),
    ("x=3", "2"),
    ("x+y=1", "x-y=1"),
    ("x < 3", "x \\le 3"),
    ("x > 2", "x < 2"),
    ("e", "2.718"),
    ("1+2i", "1-2i"),
    ("(-\\infty, 3)", "(-\\infty, 3]"),
    ("(-\\infty, -1) \\cup (1, \\infty)", "(-\\infty, -1] \\cup (1, \\infty)"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}"),
    ("1000", "100"),
    ("2\\frac{1}{2}", "1"),
    ("18", "18.5"),
    ("1e3", "1000"),  # Scientific notation is not read (e is Euler's number).
    ("", "5"),
    ("\\infty", "-\\infty"),
    ("\\sin x", "\\cos x"),
    ("\\log_2 8", "2"),
    ("5 \\text{ cm}", "6"),
    ("y = 2x + 3", "2x - 3"),
    # Exactness: rationals never use a tolerance, and probes catch |x| != x.
    ("1000000000001", "1000000000000"),
    ("10^{12}+1", "10^{12}"),
    ("x + 10^{20} + 1", "x + 10^{20}"),
    ("0.30000000000000004", "0.3"),
    ("|x|", "x"),
    ("\\sqrt{x^2}", "x"),
    ("52_8", "52_9"),
    ("3 4", "12"),  # Two numbers in a row are not a product.
    ("2.5.3", "7.5"),
]

EXTRACTION = [
    # (text, strict answer, lenient answer)
    ("<think>so 2+2</think><answer>4</answer>", "4", "4"),
    ("<answer> 4 </answer> and later <answer>5</answer>", "5", "5"),
    ("<answer>The answer is \\boxed{7}.</answer>", "7", "7"),
    ("Thus \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}", "\\frac{1}{2}"),
    ("first \\boxed{1} then \\boxed{2}", "2", "2"),
    ("\\boxed{\\boxed{3}}", "3", "3"),
    ("\\boxed{\\{1, \\{2\\}\\}}", "\\{1, \\{2\\}\\}", "\\{1, \\{2\\}\\}"),
    ("\\boxed{x^{2^{3}}}", "x^{2^{3}}", "x^{2^{3}}"),
    ("\\fbox{9}", "9", "9"),
    ("\\boxed 5 is it", "5", "5"),
    ("She pays 3 + 4 = 7 dollars.\n#### 7", None, "7"),
    ("#### 1,000\nextra", None, "1,000"),
    ("I think it is 12, or maybe 13.5", None, "13.5"),
    ("no numbers here", None, None),
    ("<answer>", None, None),
    ("\\boxed{unclosed", None, None),
    ("<answer>42", "42", "42"),
    ("total: -1,234 apples", None, "-1,234"),
    ("ratio 3/4", None, "3/4"),
    # Template echoes are not answers; the lenient rule then falls back to the last number.
    ("<think> reasoning process here </think> <answer> answer here </answer> So 7.", None, "7"),
    ("<answer>4</answer> oops <answer> answer here </answer>", "4", "4"),
    ("<answer>...</answer> it is 12", None, "12"),
    # Ranges, dates and list items are not negative numbers.
    ("It takes 10-15 minutes", None, "15"),
    ("on 2024-05-12", None, "12"),
    ("- 5 apples\n- 3 pears", None, "3"),
    ("x = -5", None, "-5"),
    ("so e^{-2}", None, "-2"),
]


@pytest.mark.parametrize("pred,gold", EQUIVALENT)
def test_equivalent_pairs_grade_as_equivalent(pred, gold):
  assert rmath.is_equivalent(pred, gold), (pred, gold, mn.normalize(pred), mn.normalize(gold))


@pytest.mark.parametrize("pred,gold", NOT_EQUIVALENT)
def test_different_answers_grade_as_not_equivalent(pred, gold):
  assert not rmath.is_equivalent(pred, gold), (pred, gold, mn.normalize(pred),
                                                mn.normalize(gold))


def test_at_least_150_grading_cases():
  assert len(EQUIVALENT) + len(NOT_EQUIVALENT) >= 150


@pytest.mark.parametrize("text,strict,lenient", EXTRACTION)
def test_extract_answer_strict_and_lenient(text, strict, lenient):
  assert rmath.extract_answer(text, strict=True) == strict
  assert rmath.extract_answer(text, strict=False) == lenient


def test_math_reward_strict_ignores_gsm8k_marker_and_last_number():
  completion = "Natalia sold 48/2 = 24 clips in May, 48 + 24 = 72 in all.\n#### 72"
  assert rmath.math_reward(completion, "72", strict=True) == 0.0
  assert rmath.math_reward(completion, "72", strict=False) == 1.0
  assert rmath.math_reward("The total is 72.", "72", strict=False) == 1.0


def test_math_reward_reads_gold_from_solutions():
  assert rmath.gold_answer("She has 3+4 = 7.\n#### 7") == "7"
  assert rmath.gold_answer("So the area is $\\boxed{\\frac{3}{4}}$.") == "\\frac{3}{4}"
  assert rmath.gold_answer(27.0) == "27.0"
  assert rmath.math_reward("<answer>0.75</answer>", "hence $\\boxed{\\frac34}$") == 1.0
  assert rmath.math_reward("<answer>27</answer>", 27.0) == 1.0
  assert rmath.math_reward("<think>hm</think><answer>26</answer>", 27.0) == 0.0


def test_math_reward_without_answer_scores_zero():
  assert rmath.math_reward("I do not know", "5") == 0.0
  assert rmath.math_reward("", "5", strict=False) == 0.0


def test_math_accuracy_reward_fn_reads_the_gold_field():
  fn = rmath.MathAccuracy(gold_key="answer")
  assert fn("<answer>\\frac{1}{2}</answer>", {"answer": "0.5"}) == 1.0
  with pytest.raises(KeyError, match="solution"):
    rmath.MathAccuracy(gold_key="solution")("<answer>1</answer>", {"answer": "1"})


def test_bad_timeout_is_rejected():
  with pytest.raises(ValueError, match="timeout_s"):
    rmath.is_equivalent("1", "1", timeout_s=0)


def test_plain_numbers_are_graded_in_process_quickly():
  before = rmath.grading_stats()["symbolic_calls"]
  start = time.perf_counter()
  for k in range(2000):
    assert rmath.is_equivalent(f"{k * 1000:,}", str(k * 1000))
    assert not rmath.is_equivalent(str(k + 1), str(k))
  per_call = (time.perf_counter() - start) / 4000
  assert rmath.grading_stats()["symbolic_calls"] == before
  assert per_call < 1e-3, per_call


# Hostile input: each must score 0 quickly, bounded by the timeout.
HOSTILE_TIMEOUT_S = 2.0


HOSTILE_ANSWERS = {
    "power_tower_boxed": "\\boxed{9^{9^{9^{9}}}}",
    "power_tower": "9^{9^{9^{9}}}",
    "100kb_nested_parens": "(" * 50_000 + "1" + ")" * 50_000,
    "300_nested_parens": "(" * 300 + "1" + ")" * 300,
    "400_nested_braces": "{" * 400 + "1" + "}" * 400,
    "10^10^10": "10^{10^{10}}",
    "huge_power_of_power": "(2^{10000})^{10000}",
    "huge_factorial": "99999!",
    "200_nested_fracs": "\\frac{" * 200 + "1" + "}{2}" * 200,
    "999_letters": "x" * 999,
    "1001_digits": "1" * 1001,
    "120_nested_sqrts": "\\sqrt{" * 120 + "2" + "}" * 120,
    "huge_binomial": "\\binom{10^{30000}}{10000}",
}


@pytest.mark.parametrize("pred", list(HOSTILE_ANSWERS.values()), ids=list(HOSTILE_ANSWERS))
def test_hostile_answers_score_zero_within_the_timeout(pred):
  start = time.monotonic()
  assert rmath.math_reward(f"<answer>{pred}</answer>", "1",
                           timeout_s=HOSTILE_TIMEOUT_S) == 0.0
  assert time.monotonic() - start < HOSTILE_TIMEOUT_S + 1.0


HOSTILE_COMPLETIONS = {
    "nested_parens": "(" * 50_000 + "1" + ")" * 50_000,
    "unclosed_boxes": "\\boxed{" * 20_000 + "1",
    "nested_answer_tags": "<answer>" * 10_000 + "1" + "</answer>" * 10_000,
    "long_think_unclosed_answer": "<think>" + "1+" * 50_000 + "</think><answer>" + "(" * 20_000,
    "100k_digit_gsm8k": "#### " + "9" * 100_000,
    "comma_run": "1," * 50_000,
}


@pytest.mark.parametrize("text", list(HOSTILE_COMPLETIONS.values()), ids=list(HOSTILE_COMPLETIONS))
def test_hostile_completions_of_100kb_are_graded_fast(text):
  start = time.monotonic()
  for strict in (True, False):
    assert rmath.math_reward(text, "2", strict=strict, timeout_s=HOSTILE_TIMEOUT_S) == 0.0
  assert time.monotonic() - start < 1.0


def test_timeout_kills_a_slow_symbolic_check_and_the_pool_recovers():
  # A legal expression that sympy evaluates exactly, for minutes, when it is built.
  timeout_lib.warm_up()
  slow = "\\binom{10^{30000}}{10001}"
  timeouts = rmath.grading_stats()["timeouts"]
  start = time.monotonic()
  assert not rmath.is_equivalent(slow, "1", timeout_s=0.5)
  assert time.monotonic() - start < 0.5 + 1.0
  assert rmath.grading_stats()["timeouts"] == timeouts + 1
  # The replacement worker grades normally afterwards.
  assert rmath.is_equivalent("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", timeout_s=60)


def test_hard_timeout_works_from_threads():
  # Its own pool, so both calls run at once on warm workers and the bound is tight.
  pool = timeout_lib.WorkerPool(num_workers=2)
  try:
    pool.warm_up()
    slow = ["\\binom{10^{30000}}{%d}" % (10002 + k) for k in range(2)]

    def grade(s):
      start = time.monotonic()
      with pytest.raises(timeout_lib.GradingTimeout):
        pool.call("r1jax.rewards.math_symbolic:equal_strings", [s, "1"], 0.5)
      return time.monotonic() - start

    with concurrent.futures.ThreadPoolExecutor(2) as threads:
      elapsed = list(threads.map(grade, slow))
    assert all(t < 0.5 + 0.5 for t in elapsed), elapsed
    assert pool.timeouts == 2
  finally:
    pool.shutdown()


def test_symbolic_stage_from_many_threads_gives_the_same_answers():
  pairs = [("\\frac{\\sqrt{%d}}{%d}" % (k * k * 2, k), "\\sqrt{2}", True) for k in range(1, 9)]
  pairs += [("\\sqrt{%d}" % (k + 3), "\\sqrt{2}", False) for k in range(8)]
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    got = list(pool.map(lambda p: rmath.is_equivalent(p[0], p[1], timeout_s=60), pairs))
  assert got == [p[2] for p in pairs]


def test_worker_round_trip_overhead_is_small():
  timeout_lib.warm_up()  # Worker start-up (the sympy import) is not the round trip.
  start = time.perf_counter()
  for k in range(50):
    assert timeout_lib.call("r1jax.rewards.math_symbolic:equal_strings",
                            [str(k), str(k)], 60) is True
  per_call = (time.perf_counter() - start) / 50
  assert per_call < 0.01, per_call


def test_worker_pool_refuses_targets_outside_rewards():
  with pytest.raises(ValueError, match="not under"):
    timeout_lib.call("os:system", ["true"], 1.0)


def test_parser_never_evaluates_python():
  # parse_expr would run this; our parser rejects it as text.
  with pytest.raises(math_parse.ParseError):
    math_parse.parse("__import__('os').system('true')")
  assert not rmath.is_equivalent("__import__('os').getcwd()", "1")
