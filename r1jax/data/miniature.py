""""R1 in miniature": a synthetic addition task where working the problem pays.

Place in the pipeline: the data and rewards of `experiments/miniature.py` (and the ablation
notebooks). Problems are 4-digit + 4-digit additions written in a 20-symbol vocabulary. A
completion either answers directly (`A:06912` then end of sequence, 8 tokens) or first works the
sum digit by digit, units first, inside `<think>...</think>`: for each column the digit of a,
the digit of b, the carry in, and the two-digit column sum (`4 8 0 12`), then the answer. A
small decoder learns both styles from a cold-start text where a minority of completions are
worked; the direct style is far less accurate, so a rule reward on the answer alone teaches the
policy to think — R1-Zero's story on a laptop CPU.

The tokenizer is a real `tokenizer.json` (a word-level `tokenizers` model, one token per
symbol) written into the run's workdir, so a checkpoint there loads like any other model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Sequence

import numpy as np

from r1jax.data import tasks as tasks_lib
from r1jax.data import templates as templates_lib
from r1jax.data.generators import _Generator
from r1jax.data.sources import Example

__all__ = ["VOCAB", "AdditionSource", "MiniatureTemplate", "answer_reward", "direct_solution",
           "worked_solution", "sft_example", "write_tokenizer", "miniature"]

PAD, EOS, THINK, END_THINK = "<pad>", "<eos>", "<think>", "</think>"
VOCAB = [PAD, EOS, THINK, END_THINK, *"0123456789", "+", "=", "Q", "A", ":", "|"]


def write_tokenizer(folder: str | os.PathLike, vocab: Sequence[str] = tuple(VOCAB)) -> str:
  """Writes tokenizer.json + tokenizer_config.json for `vocab` into `folder`; returns the folder.

  `vocab` (default VOCAB) starts with PAD and EOS; its multi-character words (`<think>`) are
  single tokens, as is any other non-space character (`experiments/aha_miniature.py` adds two).
  """
  from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # Local: optional.
  if list(vocab[:2]) != [PAD, EOS] or len(set(vocab)) != len(vocab):
    raise ValueError(f"vocab must start with {PAD!r}, {EOS!r} and repeat no symbol, got "
                     f"{list(vocab)!r}")
  split = "|".join([re.escape(w) for w in vocab if len(w) > 1] + [r"\S"])
  tok = Tokenizer(models.WordLevel({s: i for i, s in enumerate(vocab)}, unk_token=PAD))
  tok.pre_tokenizer = pre_tokenizers.Split(Regex(split), behavior="isolated")
  tok.decoder = decoders.Fuse()
  tok.add_special_tokens([PAD, EOS])
  os.makedirs(folder, exist_ok=True)
  tok.save(os.path.join(folder, "tokenizer.json"))
  with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
    json.dump({"eos_token": EOS, "pad_token": PAD, "bos_token": None}, f)
  return os.fspath(folder)


def _answer(a: int, b: int, digits: int) -> str:
  # Zero-padded to digits + 1 so every answer digit sits at a fixed distance from the column
  # sum it comes from (a 4- or 5-digit answer would shift them).
  return f"A:{a + b:0{digits + 1}d}"


def direct_solution(a: int, b: int, digits: int = 4) -> str:
  return _answer(a, b, digits)


def worked_solution(a: int, b: int, digits: int = 4) -> str:
  """Column by column, units first: digit of a, digit of b, carry in, two-digit column sum."""
  steps, carry = [], 0
  for i in range(digits):
    da, db = (a // 10 ** i) % 10, (b // 10 ** i) % 10
    s = da + db + carry
    steps.append(f"{da}{db}{carry}{s:02d}")
    carry = s // 10
  return f"{THINK}{'|'.join(steps)}{END_THINK}{_answer(a, b, digits)}"


class AdditionSource(_Generator):
  """Addition problems a + b with `digits`-digit operands; deterministic by (seed, index)."""

  name = "addition"
  _salt = 7

  def __init__(self, *, seed: int = 0, size: int | None = None, digits: int = 4):
    super().__init__(seed, size)
    if not isinstance(digits, int) or not 1 <= digits <= 9:
      raise ValueError(f"digits must be an integer in [1, 9], got {digits!r}")
    self.digits = digits

  def _make(self, rng: np.random.Generator) -> Example:
    lo, hi = 10 ** (self.digits - 1), 10 ** self.digits
    a, b = (int(x) for x in rng.integers(lo, hi, size=2))
    return {"question": f"{a}+{b}", "answer": str(a + b), "a": a, "b": b,
            "digits": self.digits}


@dataclasses.dataclass(frozen=True)
class MiniatureTemplate(templates_lib.Template):
  """`Q:a+b=`: the prompt; the completion starts with `<think>` or `A:`."""

  name: str = "miniature"

  def render(self, example: Example, tokenizer: Any = None) -> str:
    del tokenizer
    return f"Q:{example['question']}="


_ANSWER = re.compile(r"(?:<think>[^<]*</think>)?A:(\d+)")


def answer_reward(response: str, example: Example) -> float:
  """1 if the whole response is (optional worked steps then) `A:` and the right sum, else 0."""
  match = _ANSWER.fullmatch(response.replace(EOS, "").strip())
  return float(match is not None and int(match.group(1)) == int(example["answer"]))


def worked_reward(response: str, example: Example) -> float:
  """1 if the response works the steps (`<think>...</think>` then `A:`); reported, not trained."""
  del example
  return float(response.startswith(THINK) and END_THINK in response)


def sft_example(example: Example, *, worked: bool, think_in_prompt: bool = False
                ) -> dict[str, str]:
  """A cold-start text: the prompt, and a worked or direct completion ending in EOS.

  With `think_in_prompt` (worked rows only) `<think>` ends the prompt instead of starting the
  completion: the model learns to work the sum but not to choose to.
  """
  a, b = example["a"], example["b"]
  d = example["digits"]
  prompt = MiniatureTemplate().render(example)
  solution = worked_solution(a, b, d) if worked else direct_solution(a, b, d)
  if think_in_prompt:
    if not worked:
      raise ValueError("think_in_prompt needs a worked example (worked=True)")
    prompt, solution = prompt + THINK, solution[len(THINK):]
  return {"prompt": prompt, "completion": solution + EOS,
          "style": "worked" if worked else "direct"}


class ColdStartSource(_Generator):
  """Stage-1 text: a share `worked_frac` of completions work the steps, the rest answer directly.

  Of the worked rows, a share `think_in_prompt` carries `<think>` at the end of the prompt (so
  it is not learned): those rows teach the worked style without raising how often the model
  picks it. The model then starts RL thinking on a share
  worked_frac * (1 - think_in_prompt) / (1 - worked_frac * think_in_prompt) of its answers.
  """

  name = "miniature_sft"
  _salt = 11

  def __init__(self, *, seed: int = 0, size: int | None = None, digits: int = 4,
               worked_frac: float = 0.3, think_in_prompt: float = 0.0):
    super().__init__(seed, size)
    if not 0 <= worked_frac <= 1:
      raise ValueError(f"worked_frac must be in [0, 1], got {worked_frac!r}")
    if not 0 <= think_in_prompt < 1:
      raise ValueError(f"think_in_prompt must be in [0, 1), got {think_in_prompt!r}")
    self.problems = AdditionSource(seed=seed + 1_000_003, digits=digits)
    self.worked_frac = worked_frac
    self.think_in_prompt = think_in_prompt

  def _make(self, rng: np.random.Generator) -> Example:
    example = self.problems._make(rng)
    worked = bool(rng.random() < self.worked_frac)
    # Drawn only when needed, so think_in_prompt=0 leaves every row as it was.
    forced = worked and self.think_in_prompt > 0 and bool(rng.random() < self.think_in_prompt)
    return sft_example(example, worked=worked, think_in_prompt=forced)


@tasks_lib.register_task("miniature")
def miniature(*, seed: int = 0, size: int | None = None, digits: int = 4) -> tasks_lib.Task:
  """Addition with answer reward only; `worked` (the share that thinks) is reported."""
  return tasks_lib.Task("miniature", AdditionSource(seed=seed, size=size, digits=digits),
                        MiniatureTemplate(), {"accuracy": (answer_reward, 1.0)},
                        {"strict": answer_reward, "worked": worked_reward})
