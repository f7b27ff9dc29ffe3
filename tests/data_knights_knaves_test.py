"""Knights and Knaves (r1jax.data.knights_knaves): unique puzzles, an exact verifier, attacks.

Uniqueness is checked by a brute force written here from the statement trees (not the module's
own solver), for every size the generator offers.
"""

import itertools
import time

import pytest

from r1jax.data import knights_knaves as kk
from r1jax.data import tasks as tasks_lib


def _truth(s, roles):
  """The statement's truth, independently of kk.evaluate_statement."""
  kind, *args = s
  if kind == "is":
    return roles[args[0]] is args[1]
  values = [_truth(a, roles) for a in args]
  return {"not": lambda v: not v[0], "and": all, "or": any,
          "imp": lambda v: (not v[0]) or v[1], "iff": lambda v: v[0] == v[1]}[kind](values)


def _consistent(statements):
  n = len(statements)
  return [r for r in itertools.product((True, False), repeat=n)
          if all(_truth(s, r) == r[i] for i, s in enumerate(statements))]


@pytest.mark.parametrize("n", range(kk.MIN_PEOPLE, kk.MAX_PEOPLE + 1))
@pytest.mark.parametrize("depth,width", [(1, 2), (2, 2), (3, 3)])
def test_every_size_has_exactly_one_solution(n, depth, width):
  gen = kk.KnightsKnavesGenerator(seed=3, num_people=(n,), depth=depth, width=width)
  for i in range(8):
    ex = gen[i]
    assert ex["num_people"] == n and len(ex["names"]) == len(set(ex["names"])) == n
    assert _consistent(ex["statements"]) == [tuple(ex["roles"])]
    assert ex["answer"] == kk.render_solution(ex["names"], ex["roles"])
    for name in ex["names"]:
      assert name in ex["question"]


def test_generation_is_random_access_and_seeded():
  gen = kk.KnightsKnavesGenerator(seed=5, size=10)
  assert gen[7] == kk.KnightsKnavesGenerator(seed=5, size=10)[7]
  assert gen[7]["question"] != kk.KnightsKnavesGenerator(seed=6, size=10)[7]["question"]
  sizes = {kk.KnightsKnavesGenerator(seed=0, num_people=(2, 8))[i]["num_people"]
           for i in range(20)}
  assert sizes == {2, 8}
  with pytest.raises(IndexError):
    gen[10]


@pytest.mark.parametrize("kwargs,match", [
    ({"num_people": (1,)}, "num_people must be sizes in"),
    ({"num_people": (9,)}, "num_people must be sizes in"),
    ({"depth": 0}, "depth must be"),
    ({"width": 5}, "width must be"),
])
def test_bad_difficulty_names_the_value(kwargs, match):
  with pytest.raises(ValueError, match=match):
    kk.KnightsKnavesGenerator(**kwargs)


@pytest.fixture(scope="module")
def puzzle():
  return kk.KnightsKnavesGenerator(seed=1, num_people=(3,))[0]


def _response(lines):
  return "<think>Suppose the first is a knight...</think>\n<answer>\n" + "\n".join(lines) + (
      "\n</answer>")


def _lines(ex, roles=None, numbered=True):
  roles = ex["roles"] if roles is None else roles
  return [f"({i + 1}) " * numbered + f"{n} is a {'knight' if r else 'knave'}"
          for i, (n, r) in enumerate(zip(ex["names"], roles))]


def test_the_right_answer_in_the_papers_format_is_accepted(puzzle):
  assert kk.verify(_response(_lines(puzzle)), puzzle)
  assert kk.verify(f"<think>x</think><answer>{puzzle['answer']}</answer>", puzzle)
  # Unnumbered, reordered, lower case, trailing periods: the same statements.
  lines = [line.lower() + "." for line in _lines(puzzle, numbered=False)][::-1]
  assert kk.verify(_response(lines), puzzle)


def test_every_other_assignment_is_rejected(puzzle):
  for roles in itertools.product((True, False), repeat=3):
    accepted = kk.verify(_response(_lines(puzzle, roles)), puzzle)
    assert accepted == (list(roles) == puzzle["roles"])


def test_attacks_on_the_verifier_are_rejected(puzzle):
  names, right = puzzle["names"], _lines(puzzle)
  first = names[0]
  other_role = "knave" if puzzle["roles"][0] else "knight"
  attacks = {
      "both roles on one line": [f"(1) {first} is a knight or a knave", *right[1:]],
      "both roles on two lines": [*right, f"(4) {first} is a {other_role}"],
      "a repeated line": [*right, right[0]],
      "an extra person": [*right, "(4) Zed is a knight"],
      "a missing person": right[:-1],
      "a repeated name for a missing one": [right[0], right[1], right[0]],
      "prose around the lines": ["The answer is:", *right],
      "a hedge after the lines": [*right, "or maybe the opposite"],
      "an empty answer": [],
  }
  for what, lines in attacks.items():
    assert not kk.verify(_response(lines), puzzle), what
    assert kk.parse_answer(_response(lines), names) is None, what
  # The answer is read from the last <answer> only, never from the reasoning.
  assert not kk.verify(f"<think><answer>{puzzle['answer']}</answer></think>"
                       f"<answer>(1) {first} is a {other_role}</answer>", puzzle)
  assert not kk.verify(f"<think>{puzzle['answer']}</think>", puzzle)
  assert not kk.verify(puzzle["answer"], puzzle)  # No tags at all.


def test_logic_rl_scores(puzzle):
  score = kk.LogicRLScore()
  wrong = _lines(puzzle, [not r for r in puzzle["roles"]])
  assert score(_response(_lines(puzzle)), puzzle) == 3.0  # Format 1 + answer 2.
  assert score(_response(wrong), puzzle) == -0.5  # 1 - 1.5.
  assert score(_response(["I do not know"]), puzzle) == -1.0  # 1 - 2.
  assert score(f"<answer>{puzzle['answer']}</answer>", puzzle) == -1.0  # No <think>: format -1.


def test_the_task_grades_200_puzzles_in_under_a_second():
  task = tasks_lib.get_task("knights_knaves", num_people=range(2, 9))
  examples = task.stream(shuffle=False).next_batch(200)
  responses = [_response(_lines(ex)) for ex in examples]
  responses[::2] = [_response(_lines(ex, [not r for r in ex["roles"]]))
                    for ex in examples[::2]]
  start = time.perf_counter()
  scores = task.score(responses, examples)
  accuracy = task.accuracy(responses, examples)["strict"]
  wall = time.perf_counter() - start
  assert wall < 1.0, f"200 puzzles took {wall:.2f} s"
  assert scores.per_term["accuracy"].tolist() == [0.0, 1.0] * 100
  assert accuracy.tolist() == [0.0, 1.0] * 100
  assert scores.per_term["format"].tolist() == [1.0] * 200
  paper = tasks_lib.get_task("knights_knaves", reward="logic_rl")
  assert paper.score(responses[:2], examples[:2]).total.tolist() == [-0.5, 3.0]
  with pytest.raises(ValueError, match="reward must be"):
    tasks_lib.get_task("knights_knaves", reward="partial")
