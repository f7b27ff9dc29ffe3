"""Prompt text for code tasks: the R1-style instruction and the bare completion template.

Place in the pipeline: between a code source and the tokenizer. In R1 style a code question
ends with `CODE_INSTRUCTION` and is rendered by the usual templates (`r1_zero` for base models,
`chat` for instruct models), whose preamble asks for <think> and <answer>; the instruction adds
where the code goes. In completion style (`CompletionTemplate`) the model sees only the code
prompt (a HumanEval signature and docstring) and continues it, as Codex was evaluated.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from r1jax.data import templates as templates_lib
from r1jax.data.sources import Example

__all__ = ["CODE_INSTRUCTION", "CompletionTemplate"]

# What the grader reads (code_grading.extract_program): the last ```python block of the answer.
CODE_INSTRUCTION = ("Think it through in <think> </think>, then give your complete solution "
                    "as one ```python code block inside <answer> </answer>.")


@dataclasses.dataclass(frozen=True)
class CompletionTemplate(templates_lib.Template):
  """The example's code prompt as is: the completion continues the function body."""

  name: str = "completion"
  uses_tags: bool = False

  def render(self, example: Example, tokenizer: Any = None) -> str:
    del tokenizer  # The model continues exactly this code, even a chat model.
    if not isinstance(example.get("prompt"), str):
      raise ValueError(f"the completion template needs an example with a code 'prompt'; "
                       f"example {example.get('id')!r} has the keys {sorted(example)}")
    return example["prompt"]
