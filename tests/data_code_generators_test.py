"""Procedural code problems (r1jax.data.code_generators): every family's reference passes its
hidden tests in the real sandbox, wrong and hard-coded answers do not, generation is seeded."""

import re

import pytest

from r1jax.data import code_generators as cg
from r1jax.data import tasks as tasks_lib


def _r1(code: str) -> str:
  return f"<think>ok</think>\n<answer>\n```python\n{code}```\n</answer>"


def _one_per_family(seed=0):
  gen = cg.FunctionGenerator(seed=seed, num_tests=6)
  found = {}
  i = 0
  while len(found) < len(cg.FAMILIES):
    ex = gen[i]
    found.setdefault(ex["family"], ex)
    i += 1
  return [found[f.name] for f in cg.FAMILIES]


def test_every_reference_solution_passes_and_an_empty_one_fails():
  task = tasks_lib.get_task("code_functions", num_tests=6)
  examples = _one_per_family()
  right = task.score([_r1(ex["answer"]) for ex in examples], examples)
  assert right.per_term["accuracy"].tolist() == [1.0] * len(examples)
  assert right.per_term["format"].tolist() == [1.0] * len(examples)
  empty = [_r1(f"def {ex['entry_point']}(*args):\n    pass\n") for ex in examples]
  scores = task.score(empty, examples)
  assert scores.per_term["accuracy"].tolist() == [0.0] * len(examples)


def test_hard_coding_the_shown_example_does_not_pass_the_hidden_tests():
  task = tasks_lib.get_task("code_functions", num_tests=6)
  examples = _one_per_family()
  responses = []
  for ex in examples:
    result = re.search(r"For example, \w+\(.*\) returns (.*)\.\n", ex["question"]).group(1)
    responses.append(_r1(f"def {ex['entry_point']}(*args):\n    return {result}\n"))
  scores = task.score(responses, examples)
  assert scores.per_term["accuracy"].sum() == 0
  assert scores.per_term["pass_fraction"].mean() < 0.5


def test_generation_is_seeded_random_access_and_levelled():
  gen = cg.FunctionGenerator(seed=3, size=50, levels=(2,))
  assert gen[17] == cg.FunctionGenerator(seed=3, size=50, levels=(2,))[17]
  assert gen[17] != cg.FunctionGenerator(seed=4, size=50, levels=(2,))[17]
  assert {gen[i]["level"] for i in range(50)} == {2}
  ex = gen[0]
  assert ex["entry_point"] in ex["question"] and "```python" in ex["question"]
  assert len(ex["tests"]) == 5 and all(t.startswith(f"assert {ex['entry_point']}(")
                                       for t in ex["tests"])
  levels = {cg.FunctionGenerator(seed=0)[i]["level"] for i in range(60)}
  assert levels == {1, 2, 3}


@pytest.mark.parametrize("kwargs,match", [
    ({"levels": (0,)}, "levels must be a non-empty subset"),
    ({"levels": ()}, "levels must be a non-empty subset"),
    ({"num_tests": 0}, "num_tests must be an integer"),
    ({"size": 0}, "size must be a positive integer"),
])
def test_bad_options_name_the_value(kwargs, match):
  with pytest.raises(ValueError, match=match):
    cg.FunctionGenerator(**kwargs)
