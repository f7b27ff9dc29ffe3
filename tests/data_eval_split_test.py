"""Tests for r1jax.data.tasks.check_eval_split: in-training evaluation on held-out data only."""

import pytest

from r1jax.data import tasks


@pytest.mark.parametrize("task,args,eval_args", [
    ("arithmetic", {}, {}),
    ("arithmetic", {"seed": 3, "digits": 2}, {"seed": 3}),
    ("arithmetic", {"digits": 2}, {"template": "qwen_math", "format_weight": 0.0}),
    ("countdown", {"seed": 0}, {"seed": 0, "size": 50}),  # A prefix of the training data.
    ("gsm8k", {"path": "data/train.jsonl"}, {}),
    ("gsm8k", {"path": "data/train.jsonl"}, {"path": "data/../data/train.jsonl"}),
])
def test_evaluation_on_the_training_examples_is_refused(task, args, eval_args):
  with pytest.raises(ValueError, match="eval_task_args .* would run|eval_task_args"):
    tasks.check_eval_split(task, args, eval_args)


@pytest.mark.parametrize("task,args,eval_args", [
    ("arithmetic", {}, {"seed": 1}),
    ("arithmetic", {"seed": 1, "digits": 2}, {"digits": 3}),
    ("countdown", {}, {"seed": 7, "size": 64}),
    ("gsm8k", {"path": "data/train.jsonl"}, {"path": "data/test.jsonl"}),
    ("math", {"path": "math.jsonl", "levels": [1, 2]}, {"levels": [5]}),
])
def test_held_out_evaluation_is_accepted(task, args, eval_args):
  tasks.check_eval_split(task, args, eval_args)


def test_the_message_names_eval_task_args_and_unknown_tasks_are_refused():
  with pytest.raises(ValueError) as info:
    tasks.check_eval_split("arithmetic", {"seed": 0}, {})
  assert "eval_task_args" in str(info.value) and "{'seed': 1}" in str(info.value)
  with pytest.raises(ValueError, match="unknown task 'nope'"):
    tasks.check_eval_split("nope", {}, {})
