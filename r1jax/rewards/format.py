"""The R1-Zero format reward: reasoning in `<think>...</think>`, then `<answer>...</answer>`.

Place in the pipeline: one named term of a task's combined reward (`combine`), next to the
accuracy reward. DeepSeek-R1-Zero rewarded the model for putting its reasoning between
`<think>` and `</think>` and its final answer between `<answer>` and `</answer>`.

The rule, exactly: each of the four tags occurs once, in the order think, /think, answer,
/answer; only whitespace before `<think>`, between `</think>` and `<answer>`, and after
`</answer>`; the answer is not empty. With `think_in_prompt=True` (templates that end the prompt
with `<think>`, as TinyZero's do) the completion starts inside the reasoning and must not repeat
`<think>`. Decode completions without special tokens (EOS text after `</answer>` fails the rule).
The check is a handful of `str.find`/`count` calls: linear, no regex backtracking.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

__all__ = ["R1Format", "TagCount", "format_reward", "tag_count_reward"]

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def format_reward(completion: str, *, think_in_prompt: bool = False) -> float:
  """1.0 when the completion follows the R1-Zero format (module docstring), else 0.0."""
  text = str(completion)
  expected = {tag: 1 for tag in _TAGS}
  if think_in_prompt:
    expected["<think>"] = 0
  if any(text.count(tag) != n for tag, n in expected.items()):
    return 0.0
  start = 0 if think_in_prompt else text.find("<think>")
  if text[:start].strip():
    return 0.0
  think_end = text.find("</think>")
  answer_start = text.find("<answer>")
  answer_end = text.find("</answer>")
  if not start <= think_end < answer_start < answer_end:
    return 0.0
  if text[think_end + len("</think>"):answer_start].strip():
    return 0.0
  if text[answer_end + len("</answer>"):].strip():
    return 0.0
  if not text[answer_start + len("<answer>"):answer_end].strip():
    return 0.0
  return 1.0


@dataclasses.dataclass(frozen=True)
class R1Format:
  """A RewardFn: `format_reward` (the example is not used)."""
  think_in_prompt: bool = False

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    del example  # The format does not depend on the question.
    return format_reward(completion, think_in_prompt=self.think_in_prompt)


def tag_count_reward(completion: str, *, think_in_prompt: bool = False) -> float:
  """Partial credit toward the format: 0.25 for each of the four tags that occurs exactly once.

  A denser signal than `format_reward` for small models that never hit the whole format by
  chance (open-r1 ships the same shaping as its tag-count reward). With `think_in_prompt` the
  prompt holds `<think>`, so the completion earns its quarter by not repeating it.
  """
  text = str(completion)
  score = 0.0
  for tag in _TAGS:
    want = 0 if (think_in_prompt and tag == "<think>") else 1
    score += 0.25 * (text.count(tag) == want)
  return score


@dataclasses.dataclass(frozen=True)
class TagCount:
  """A RewardFn: `tag_count_reward` (the example is not used)."""
  think_in_prompt: bool = False

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    del example
    return tag_count_reward(completion, think_in_prompt=self.think_in_prompt)

