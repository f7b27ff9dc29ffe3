"""Prompt templates: how an Example's question becomes the text the policy continues.

Place in the pipeline: between the source and the tokenizer. A task renders each Example with
its template; the sampler then tokenizes and left-pads the text. Three templates cover the
recipes r1jax reproduces:

- `r1_zero`: the R1-Zero base-model template (DeepSeek-R1 paper, Table 1): a plain-text
  "conversation" whose preamble asks for reasoning in <think> </think> and the answer in
  <answer> </answer>, ending in "Assistant:". Optionally prefilled with "<think>" (TinyZero).
- `chat`: the same instruction for instruct models, given as a system message and rendered by
  the tokenizer's own chat template (`apply_chat_template(..., add_generation_prompt=True)`).
- `qwen_math`: the Qwen2.5-Math chain-of-thought prompt (ChatML, system message "Please reason
  step by step, and put your final answer within \\boxed{}."), as used by Dr. GRPO.

Prefilled text belongs to the response: `response_prefix` is what a task puts before a
completion before its rewards read it (so a prompt ending in "<think>" keeps the format reward).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping

from r1jax.data.sources import Example

__all__ = [
    "ChatTemplate",
    "QWEN_MATH_SYSTEM",
    "QwenMathTemplate",
    "R1_ZERO_INSTRUCTION",
    "R1ZeroTemplate",
    "TEMPLATES",
    "Template",
    "apply_chat_template",
    "get_template",
    "question_text",
]

# The R1-Zero preamble (DeepSeek-R1, Table 1). Its wording is part of the recipe being
# reproduced, so it is kept as the paper gives it.
R1_ZERO_INSTRUCTION = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>.")
QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def question_text(example: Mapping[str, Any]) -> str:
  """The question of an Example: its "question", else the last user turn of its "messages"."""
  if isinstance(example.get("question"), str):
    return example["question"]
  for message in reversed(example.get("messages") or []):
    if message.get("role") == "user":
      return message["content"]
  raise ValueError(f"example {example.get('id', '')!r} has neither a 'question' nor a user "
                   f"message in 'messages'; its keys are {sorted(example)}")


def apply_chat_template(tokenizer: Any, messages: list[dict[str, str]]) -> str:
  """Renders chat turns with a tokenizer's template, ending with the assistant's cue."""
  fn = getattr(tokenizer, "apply_chat_template", None)
  if fn is None:
    raise ValueError(f"this template needs a tokenizer with apply_chat_template, got "
                     f"{type(tokenizer).__name__}")
  kwargs: dict[str, Any] = {"add_generation_prompt": True}
  try:
    if "tokenize" in inspect.signature(fn).parameters:
      kwargs["tokenize"] = False  # Hugging Face tokenizers return ids unless told not to.
  except (TypeError, ValueError):  # Builtins without a signature: call with the basics.
    pass
  text = fn(messages, **kwargs)
  if not isinstance(text, str):
    raise TypeError(f"apply_chat_template returned {type(text).__name__}, expected the prompt "
                    f"text (str)")
  return text


@dataclasses.dataclass(frozen=True)
class Template:
  """Renders an Example as prompt text. Subclasses define `render`."""

  name: str = "template"
  # Whether answers go in <think>/<answer> tags (so the R1 format reward applies).
  uses_tags: bool = False

  @property
  def response_prefix(self) -> str:
    """Text the prompt ends with that belongs to the response (rewards read it first)."""
    return ""

  def render(self, example: Example, tokenizer: Any = None) -> str:
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class R1ZeroTemplate(Template):
  """R1-Zero's plain-text template for base models: preamble, "User: q", "Assistant:"."""

  name: str = "r1_zero"
  uses_tags: bool = True
  think_prefill: bool = False  # End the prompt with "<think>" so a base model starts reasoning.

  @property
  def response_prefix(self) -> str:
    return "<think>" if self.think_prefill else ""

  def render(self, example: Example, tokenizer: Any = None) -> str:
    del tokenizer  # Plain text: the model sees exactly this string.
    text = f"{R1_ZERO_INSTRUCTION} User: {question_text(example)} Assistant:"
    return f"{text} <think>" if self.think_prefill else text


@dataclasses.dataclass(frozen=True)
class ChatTemplate(Template):
  """R1's instruction for instruct models, through the tokenizer's chat template.

  An example's own "messages" are used as given; otherwise the turns are a system message
  (`system`, default the R1-Zero instruction) and the question as the user turn. Set
  `system_in_user` for chat templates without a system role (the instruction then opens the
  user turn).
  """

  name: str = "chat"
  uses_tags: bool = True
  system: str = R1_ZERO_INSTRUCTION
  system_in_user: bool = False
  # Open the assistant turn with "<think>": small instruct models rarely write R1's tags
  # unprompted (SmolLM2-135M: none of 32 samples), which leaves a format reward no variance.
  think_prefill: bool = False

  @property
  def response_prefix(self) -> str:
    return "<think>" if self.think_prefill else ""

  def messages(self, example: Example) -> list[dict[str, str]]:
    if example.get("messages"):
      return [dict(m) for m in example["messages"]]
    question = question_text(example)
    if self.system_in_user:
      return [{"role": "user", "content": f"{self.system}\n\n{question}"}]
    return [{"role": "system", "content": self.system}, {"role": "user", "content": question}]

  def render(self, example: Example, tokenizer: Any = None) -> str:
    if tokenizer is None:
      raise ValueError("the 'chat' template renders through a tokenizer's chat template; pass "
                       "tokenizer= (or use the 'r1_zero' template for base models)")
    text = apply_chat_template(tokenizer, self.messages(example))
    return text + self.response_prefix


@dataclasses.dataclass(frozen=True)
class QwenMathTemplate(Template):
  """Qwen2.5-Math's prompt: answer in \\boxed{}; ChatML text, or the tokenizer's template."""

  name: str = "qwen_math"
  uses_tags: bool = False
  system: str = QWEN_MATH_SYSTEM

  def render(self, example: Example, tokenizer: Any = None) -> str:
    question = question_text(example)
    if tokenizer is not None:
      return apply_chat_template(tokenizer, [{"role": "system", "content": self.system},
                                             {"role": "user", "content": question}])
    # Without a tokenizer, the ChatML text Qwen-Math models are trained on (what Dr. GRPO
    # feeds even to base models).
    return (f"<|im_start|>system\n{self.system}<|im_end|>\n<|im_start|>user\n{question}"
            f"<|im_end|>\n<|im_start|>assistant\n")


TEMPLATES: dict[str, type[Template]] = {
    "r1_zero": R1ZeroTemplate,
    "chat": ChatTemplate,
    "qwen_math": QwenMathTemplate,
}


def get_template(template: str | Mapping[str, Any] | Template, **kwargs: Any) -> Template:
  """A template by name ("r1_zero", "chat", "qwen_math") with field overrides, or as given.

  A mapping names the template and its fields, e.g. {"name": "r1_zero", "think_prefill": True}:
  the JSON-safe form a config's `task_args` can hold (a dumped Template reads back the same way).
  """
  if isinstance(template, Template):
    if kwargs:
      return dataclasses.replace(template, **kwargs)
    return template
  if isinstance(template, Mapping):
    fields = dict(template)
    if "name" not in fields:
      raise ValueError(f"a template given as a mapping needs a 'name' (one of "
                       f"{sorted(TEMPLATES)}), got the keys {sorted(fields)}")
    return get_template(fields.pop("name"), **{**fields, **kwargs})
  if template not in TEMPLATES:
    raise ValueError(f"unknown template {template!r}; known templates are {sorted(TEMPLATES)}")
  cls = TEMPLATES[template]
  names = {f.name for f in dataclasses.fields(cls)} - {"name"}
  unknown = sorted(set(kwargs) - names)
  if unknown:
    raise ValueError(f"template {template!r} has no option {unknown[0]!r}; its options are "
                     f"{sorted(names)}")
  return cls(**kwargs)
