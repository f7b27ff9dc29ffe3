"""Code tasks (r1jax.data.code_tasks, code_grading): layouts, extraction, verdicts, attacks.

Every grade here goes through the real sandbox (r1jax.rewards.code): nothing is mocked. The
HumanEval-layout fixture is three problems written in the original file's form (one needs a
helper function from its prompt, one imports from typing).
"""

import json
import time

import jax
import pytest

from r1jax import eval_run
from r1jax.data import code_grading
from r1jax.data import tasks as tasks_lib
from r1jax.data import templates
from r1jax.data.code_tasks import stdio_tests
from r1jax.models import ModelConfig, transformer
from r1jax.tokenizer import load_tokenizer

_HUMANEVAL = [
    {"task_id": "HumanEval/0", "entry_point": "add",
     "prompt": "def add(a: int, b: int) -> int:\n    \"\"\"Sum of a and b.\n    >>> add(2, 3)\n"
               "    5\n    \"\"\"\n",
     "canonical_solution": "    return a + b\n",
     "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n"
             "    assert candidate(-1, 1) == 0\n"},
    {"task_id": "HumanEval/1", "entry_point": "decode",
     "prompt": "def encode(s: str) -> str:\n    return ''.join(chr(ord(c) + 1) for c in s)\n\n\n"
               "def decode(s: str) -> str:\n    \"\"\"Inverse of encode.\"\"\"\n",
     "canonical_solution": "    return ''.join(chr(ord(c) - 1) for c in s)\n",
     "test": "\n\ndef check(candidate):\n    for w in ['abc', 'xyz', '']:\n"
             "        assert candidate(encode(w)) == w\n"},
    {"task_id": "HumanEval/2", "entry_point": "evens",
     "prompt": "from typing import List\n\n\ndef evens(xs: List[int]) -> List[int]:\n"
               "    \"\"\"The even elements of xs.\"\"\"\n",
     "canonical_solution": "    return [x for x in xs if x % 2 == 0]\n",
     "test": "\n\ndef check(candidate):\n    assert candidate([1, 2, 3, 4]) == [2, 4]\n"
             "    assert candidate([]) == []\n"},
]


def _write(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


@pytest.fixture
def humaneval_file(tmp_path):
  return _write(tmp_path / "humaneval.jsonl", _HUMANEVAL)


def _r1(code: str) -> str:
  return f"<think>Let me write it.</think>\n<answer>\n```python\n{code}```\n</answer>"


def _examples(task):
  return [task.source[i] for i in range(task.source.size)]


def test_humaneval_canonical_solutions_score_one_in_both_styles(humaneval_file):
  task = tasks_lib.get_task("humaneval", path=humaneval_file)
  examples = _examples(task)
  full = [_r1(r["prompt"] + r["canonical_solution"]) for r in _HUMANEVAL]
  scores = task.score(full, examples)
  assert scores.per_term["accuracy"].tolist() == [1.0] * 3
  assert scores.per_term["format"].tolist() == [1.0] * 3
  assert task.accuracy(full, examples)["strict"].tolist() == [1.0] * 3
  # R1 style also runs the prompt's header (imports, helpers) before the answer's code, so a
  # bare function that needs `encode` or `List` passes.
  bare = [_r1(r["prompt"][r["prompt"].index(f"def {r['entry_point']}"):]
              + r["canonical_solution"]) for r in _HUMANEVAL]
  assert task.score(bare, examples).per_term["accuracy"].tolist() == [1.0] * 3
  completion = tasks_lib.get_task("humaneval", path=humaneval_file, style="completion")
  assert completion.render(examples[0]) == _HUMANEVAL[0]["prompt"]
  body = [r["canonical_solution"] for r in _HUMANEVAL]
  assert completion.score(body, examples).per_term["accuracy"].tolist() == [1.0] * 3
  assert "format" not in completion.reward_fns


def test_humaneval_empty_body_scores_zero(humaneval_file):
  task = tasks_lib.get_task("humaneval", path=humaneval_file)
  examples = _examples(task)
  empty = [_r1(r["prompt"] + "    pass\n") for r in _HUMANEVAL]
  scores = task.score(empty, examples)
  assert scores.per_term["accuracy"].tolist() == [0.0] * 3
  assert scores.per_term["syntax_error"].tolist() == [0.0] * 3  # It ran, and failed.
  completion = tasks_lib.get_task("humaneval", path=humaneval_file, style="completion")
  assert completion.score(["    pass\n"] * 3, examples).per_term["accuracy"].sum() == 0


def test_missing_and_unparsable_code_score_zero_with_the_reason_counted(humaneval_file):
  task = tasks_lib.get_task("humaneval", path=humaneval_file)
  ex = _examples(task)[0]
  cases = {
      "<think>hmm</think><answer>5</answer>": "no_code",
      "The answer is to add them.": "no_code",
      "<think>x</think><answer>\n```python\n```\n</answer>": "no_code",
      _r1("def add(a, b):\nreturn a + b\n"): "syntax_error",
      _r1("def add(a, b) return a + b\n"): "syntax_error",
      _r1("def add(a, b):\n    return a +\n"): "syntax_error",
  }
  responses = list(cases)
  scores = task.score(responses, [ex] * len(responses))
  assert scores.per_term["accuracy"].tolist() == [0.0] * len(responses)
  for name in ("no_code", "syntax_error"):
    assert scores.per_term[name].tolist() == [float(r == name) for r in cases.values()]
  accuracies = task.accuracy(responses, [ex] * len(responses))
  assert accuracies["no_code"].sum() == 3 and accuracies["syntax_error"].sum() == 3
  assert sum(scores.errors.values()) == 0  # A reason, not a crash.


def test_the_last_python_block_of_the_answer_is_graded():
  right, wrong = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"
  ex = {"tests": ["assert add(2, 3) == 5"]}
  fn = code_grading.CodeAccuracy()
  assert fn(f"<answer>```python\n{wrong}```\n```python\n{right}```</answer>", ex) == 1.0
  # Hedging with several blocks gains nothing: only the last one runs.
  assert fn(f"<answer>```python\n{right}```\n```python\n{wrong}```</answer>", ex) == 0.0
  # A trailing block in another language is skipped; an untagged one counts as Python.
  assert fn(f"<answer>```python\n{right}```\n```text\nadd(2, 3) = 5\n```</answer>", ex) == 1.0
  assert fn(f"<answer>```\n{right}```</answer>", ex) == 1.0
  # Code in the reasoning does not count when the answer holds other code.
  assert fn(f"<think>```python\n{right}```</think><answer>```python\n{wrong}```</answer>",
            ex) == 0.0
  # Without tags the text after </think> is the answer region; without either, all of it.
  assert fn(f"<think>```python\n{wrong}```</think>```python\n{right}```", ex) == 1.0
  assert fn(f"Here you go:\n```python\n{right}```\nDone.", ex) == 1.0
  # The unfenced fallback: a tagged answer that parses as Python; prose never runs.
  assert fn(f"<think>ok</think><answer>\n{right}</answer>", ex) == 1.0
  assert fn(f"<think>ok</think><answer>use a + b</answer>", ex) == 0.0
  # An unclosed last block (a truncated answer) is not code; an earlier closed one is.
  assert code_grading.last_python_block(f"```python\n{right}```\n```python\n{wrong}") == right


def test_completion_style_stops_at_the_next_top_level_statement():
  body = "    return a + b\n"
  assert code_grading.truncate_completion(body + "\n\ndef other():\n    pass\n") == body + "\n"
  assert code_grading.truncate_completion(body + "\nprint(add(1, 2))\n") == body
  assert code_grading.truncate_completion(body + "```\nSome text") == body.rstrip("\n")


def test_mbpp_layout_shows_the_tests_and_runs_setup_code(tmp_path):
  rows = [{"task_id": 11, "text": "Write a function to square a number.",
           "code": "def square(x):\n    return x * x", "test_setup_code": "import math",
           "test_list": ["assert square(3) == 9", "assert square(-2) == 4",
                         "assert math.isclose(square(0.5), 0.25)"]}]
  task = tasks_lib.get_task("mbpp", path=_write(tmp_path / "mbpp.jsonl", rows), show_tests=1)
  ex = task.source[0]
  assert "assert square(3) == 9" in ex["question"] and "square(-2)" not in ex["question"]
  assert ex["id"] == 11
  good = _r1(rows[0]["code"] + "\n")
  partly = _r1("def square(x):\n    return x * x if x > 1 else 0\n")
  scores = task.score([good, partly], [ex, ex])
  assert scores.per_term["accuracy"].tolist() == [1.0, 0.0]
  assert scores.per_term["pass_fraction"].tolist() == pytest.approx([1.0, 1 / 3])
  accuracy = task.accuracy([good, partly], [ex, ex])
  assert accuracy["strict"].tolist() == [1.0, 0.0]
  assert accuracy["pass_fraction"].tolist() == pytest.approx([1.0, 1 / 3])


def test_stdio_layouts_and_field_names(tmp_path):
  program = "a, b = map(int, input().split())\nprint(a + b)\n"
  apps = {"problem_id": 1, "question": "Add two numbers.",
          "input_output": json.dumps({"inputs": ["1 2\n", "5 5\n"], "outputs": ["3\n", "10\n"]}),
          "solutions": json.dumps([program])}
  contests = {"name": "sum", "description": "Add two numbers.",
              "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
              "private_tests": {"input": ["2 2\n", "0 0\n"], "output": ["4\n", "0\n"]}}
  task = tasks_lib.get_task("code", path=_write(tmp_path / "apps.jsonl", [apps]),
                            layout="stdio", fields={"id": "problem_id"})
  ex = task.source[0]
  assert ex["answer"] == program.strip() and ex["id"] == 1 and len(ex["tests"]) == 2
  cc = tasks_lib.get_task(
      "code", path=_write(tmp_path / "cc.jsonl", [contests]), layout="stdio",
      fields={"question": "description", "tests": ["public_tests", "private_tests"],
              "id": "name"}, max_tests=2)
  cc_ex = cc.source[0]
  assert [t["output"] for t in cc_ex["tests"]] == ["3\n", "4\n"]
  off_by_one = "a, b = map(int, input().split())\nprint(a + b + (a == 2))\n"
  scores = cc.score([_r1(program), _r1(off_by_one)], [cc_ex, cc_ex])
  assert scores.per_term["accuracy"].tolist() == [1.0, 0.0]
  assert scores.per_term["pass_fraction"].tolist() == pytest.approx([1.0, 0.5])
  assert task.score([_r1(program)], [ex]).per_term["accuracy"].tolist() == [1.0]


def test_stdio_tests_accepts_the_common_forms_and_refuses_call_based_ones():
  want = [{"input": "1\n", "output": "2\n"}]
  assert stdio_tests([{"input": "1\n", "output": "2\n", "testtype": "stdin"}]) == want
  assert stdio_tests(json.dumps({"inputs": ["1\n"], "outputs": ["2\n"]})) == want
  assert stdio_tests({"input": [["1"]], "output": [["2"]]}) == [{"input": "1", "output": "2"}]
  with pytest.raises(ValueError, match="fn_name"):
    stdio_tests({"inputs": [[1]], "outputs": [2], "fn_name": "f"})
  with pytest.raises(ValueError, match="'functional'"):
    stdio_tests([{"input": "1", "output": "2", "testtype": "functional"}])
  with pytest.raises(ValueError, match="equally long"):
    stdio_tests({"inputs": ["1"], "outputs": []})


def test_bad_options_name_the_value(tmp_path, humaneval_file):
  with pytest.raises(ValueError, match="layout must be one of"):
    tasks_lib.get_task("code", path=humaneval_file, layout="leetcode")
  with pytest.raises(ValueError, match="no field role 'question'"):
    tasks_lib.get_task("humaneval", path=humaneval_file, fields={"question": "q"})
  with pytest.raises(ValueError, match="only the humaneval layout"):
    tasks_lib.get_task("code", path=humaneval_file, layout="mbpp", style="completion")
  with pytest.raises(ValueError, match="pass path="):
    tasks_lib.get_task("humaneval")
  renamed = [{"id": "x", "prompt": _HUMANEVAL[0]["prompt"], "fn": "add",
              "test": _HUMANEVAL[0]["test"]}]
  with pytest.raises(ValueError, match="no field 'entry_point'"):
    tasks_lib.get_task("humaneval", path=_write(tmp_path / "r.jsonl", renamed))
  task = tasks_lib.get_task("humaneval", path=_write(tmp_path / "r.jsonl", renamed),
                            fields={"entry_point": "fn", "id": "id"})
  assert task.source[0]["entry_point"] == "add" and task.source[0]["id"] == "x"


def test_a_batch_is_graded_in_parallel():
  """B slow programs take about B / workers runs of wall time, not B."""
  b, sleep_s = 8, 1.0
  ex = {"tests": ["assert f() == 1"]}
  responses = [f"```python\nimport time\ntime.sleep({sleep_s})\ndef f():\n    return {i}\n```"
               for i in range(b)]  # Distinct programs: nothing comes from the verdict cache.
  task = tasks_lib.Task("t", None, templates.R1ZeroTemplate(),
                        {"accuracy": (code_grading.CodeAccuracy(), 1.0)})
  start = time.perf_counter()
  scores = task.score(responses, [ex] * b, max_workers=b)
  wall = time.perf_counter() - start
  assert scores.per_term["accuracy"].tolist() == [0.0, 1.0] + [0.0] * (b - 2)
  assert wall < b * sleep_s / 2, f"{b} programs of {sleep_s} s took {wall:.1f} s"


def test_a_program_that_outlives_its_time_limit_is_a_timeout():
  fn = code_grading.CodeFailure(reason="timeout", timeout_s=1.0)
  ex = {"tests": ["assert f() == 1"]}
  assert fn("```python\ndef f():\n    while True:\n        pass\n```", ex) == 1.0
  assert fn("```python\ndef f():\n    return 1\n```", ex) == 0.0


def test_attacks_on_the_code_reward_gain_nothing(humaneval_file):
  task = tasks_lib.get_task("humaneval", path=humaneval_file)
  ex = _examples(task)[0]
  attacks = [
      # Redefining check: the test's own check is defined after the code and wins.
      _r1("def check(candidate):\n    pass\n\ndef add(a, b):\n    return 0\n"),
      # Exiting before the tests run.
      _r1("import sys\nsys.exit(0)\n"),
      # Printing what a passing harness might print.
      _r1("print('{\"i\": 0, \"ok\": true}')\ndef add(a, b):\n    return 0\n"),
      # Swallowing the assertion inside the function under test.
      _r1("def add(a, b):\n    raise SystemExit(0)\n"),
  ]
  scores = task.score(attacks, [ex] * len(attacks))
  assert scores.per_term["accuracy"].tolist() == [0.0] * len(attacks)


def test_humaneval_through_r1jax_eval_reports_reasons_and_pass_fraction(humaneval_file, tmp_path):
  """`r1jax eval --task humaneval` end to end on a tiny random model: what a random policy
  writes holds no code, so every sample is counted under no_code and none passes."""
  cfg = ModelConfig(vocab_size=264)
  loaded = eval_run.LoadedModel(cfg, transformer.init(cfg, jax.random.key(0)),
                                load_tokenizer("bytes"))
  report = eval_run.run("tiny", task="humaneval", data=humaneval_file, loaded=loaded, k=2,
                        temperature=1.0, top_p=1.0, max_new_tokens=8, batch_size=3,
                        out=tmp_path / "out", progress=False, num_resamples=50)
  assert report.num_questions == 3 and report.k == 2
  assert report.metrics["strict"]["pass@1"] == 0.0
  assert report.metrics["strict"]["pass@2"] == 0.0
  assert report.metrics["pass_fraction"]["mean_score"] == 0.0
  assert report.metrics["no_code"]["pass@1"] == 1.0
  assert report.metrics["syntax_error"]["pass@1"] == 0.0
  assert (tmp_path / "out" / "report.json").is_file()
