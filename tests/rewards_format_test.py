"""Tests for r1jax.rewards.format: the R1-Zero <think>/<answer> format reward."""

import time

import pytest

from r1jax.rewards.format import R1Format, TagCount, format_reward, tag_count_reward

WELL_FORMED = [
    "<think>2 + 2 is 4</think><answer>4</answer>",
    "<think>\nreasoning\n</think>\n<answer>\n4\n</answer>\n",
    "  <think>a</think>  <answer>b</answer>  ",
    "<think></think><answer>x</answer>",  # Empty reasoning is allowed; an empty answer is not.
]

MALFORMED = [
    "",
    "4",
    "<answer>4</answer>",  # No reasoning block.
    "<think>a</think>",  # No answer block.
    "<answer>4</answer><think>a</think>",  # Wrong order.
    "<think>a</think>text between<answer>4</answer>",
    "preamble <think>a</think><answer>4</answer>",
    "<think>a</think><answer>4</answer> trailing text",
    "<think>a</think><answer>4</answer><|im_end|>",
    "<think>a</think><answer>  </answer>",  # Empty answer.
    "<think>a<think>b</think><answer>4</answer>",  # Repeated tag.
    "<think>a</think><answer>4</answer><answer>5</answer>",
    "<think>a</think></think><answer>4</answer>",
    "<think>a<answer>4</answer></think>",  # Answer nested inside reasoning.
    "<think>a</think><answer>4",  # Unclosed answer.
    "<Think>a</Think><answer>4</answer>",  # Tags are case-sensitive.
]


@pytest.mark.parametrize("text", WELL_FORMED)
def test_well_formed_completions_score_one(text):
  assert format_reward(text) == 1.0


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_completions_score_zero(text):
  assert format_reward(text) == 0.0


def test_think_in_prompt_expects_no_opening_tag():
  text = "Let me add.</think><answer>4</answer>"
  assert format_reward(text, think_in_prompt=True) == 1.0
  assert format_reward(text) == 0.0
  assert format_reward("<think>a</think><answer>4</answer>", think_in_prompt=True) == 0.0


def test_reward_fn_ignores_the_example():
  fn = R1Format()
  assert fn("<think>a</think><answer>4</answer>", {"answer": "5"}) == 1.0
  assert fn("<answer>4</answer>", {}) == 0.0


def test_huge_inputs_are_linear_time():
  texts = ["<think>" * 100_000, "<think>" + "a" * 1_000_000 + "</think><answer>1</answer>",
           "</think><answer>" * 50_000]
  start = time.monotonic()
  scores = [format_reward(t) for t in texts]
  assert scores == [0.0, 1.0, 0.0]
  assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("text,want", [
    ("<think>a</think><answer>1</answer>", 1.0),
    ("<think>a</think> the answer is 1", 0.5),
    ("<think><think>a</think><answer>1</answer>", 0.75),
    ("no tags at all", 0.0),
    ("</answer><answer></think><think>", 1.0),  # Counts only: the order is format_reward's job.
])
def test_tag_count_gives_a_quarter_per_tag_seen_once(text, want):
  assert tag_count_reward(text) == want
  assert TagCount()(text, {"answer": "1"}) == want


def test_tag_count_with_think_in_prompt_wants_no_opening_tag():
  assert tag_count_reward("a</think><answer>1</answer>", think_in_prompt=True) == 1.0
  assert tag_count_reward("<think>a</think><answer>1</answer>", think_in_prompt=True) == 0.75


def test_arithmetic_task_takes_the_tag_count_format_and_rejects_unknown_kinds():
  from r1jax.data import tasks  # pylint: disable=g-import-not-at-top
  task = tasks.get_task("arithmetic", digits=2, format_kind="tags")
  ex = task.source[0]
  scores = task.rewards(f"<think>x</think> {ex['answer']}", ex)
  assert scores["format"] == 0.5
  with pytest.raises(ValueError, match="format_kind must be one of \\['strict', 'tags'\\], got 'x'"):
    tasks.get_task("arithmetic", format_kind="x")
