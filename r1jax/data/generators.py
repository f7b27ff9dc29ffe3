"""Generated tasks: Countdown (TinyZero-style) and multi-digit arithmetic, as sources.

Place in the pipeline: sources for the toy tasks on which R1-style RL is studied cheaply
(TinyZero's Countdown; "R1 in miniature" arithmetic). Example i is drawn from
`np.random.default_rng([seed, salt, i])`, so it depends only on (seed, i): generation is
random access, reproducible, and needs no state beyond the stream position. A generator without
`size` is unbounded; with `size` it is a finite data set (use another seed for a held-out set).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from r1jax.data.sources import Example, Source

__all__ = ["ArithmeticGenerator", "CountdownGenerator"]

# Salts keep the two generators' streams unrelated when given the same seed.
_COUNTDOWN_SALT = 0xC0DE
_ARITHMETIC_SALT = 0xA817


def _check_size(size: int | None) -> None:
  if size is not None and (not isinstance(size, int) or size < 1):
    raise ValueError(f"size must be a positive integer or None (unbounded), got {size!r}")


class _Generator(Source):
  """Shared random access: index -> rng -> example, with bounds checks for sized generators."""

  _salt = 0

  def __init__(self, seed: int, size: int | None):
    _check_size(size)
    self.seed = int(seed)
    self.size = size

  def __getitem__(self, index: int) -> Example:
    index = int(index)
    if index < 0 or (self.size is not None and index >= self.size):
      raise IndexError(f"index {index} out of range for {self.name!r} (size {self.size})")
    example = self._make(np.random.default_rng([self.seed, self._salt, index]))
    example["id"] = f"{self.name}:{self.seed}:{index}"
    return example

  def _make(self, rng: np.random.Generator) -> Example:
    raise NotImplementedError


class CountdownGenerator(_Generator):
  """Countdown: combine all given numbers with + - * / to reach a target.

  Each problem is built backwards so it is solvable: draw k numbers (k from `num_numbers`),
  then repeatedly replace two random pool entries by a random operation on them, keeping every
  intermediate a positive integer (division only when exact), until one value is left; it is the
  target if it lies in [min_target, max_target], else draw again. The example keeps `numbers`,
  `target`, and a reference `answer` expression that uses every number exactly once.
  """

  name = "countdown"
  _salt = _COUNTDOWN_SALT

  def __init__(self, *, seed: int = 0, size: int | None = None,
               num_numbers: Sequence[int] = (3, 4), min_number: int = 1, max_number: int = 99,
               min_target: int = 10, max_target: int = 100):
    super().__init__(seed, size)
    num_numbers = tuple(num_numbers)
    if not num_numbers or any(not isinstance(k, int) or k < 2 for k in num_numbers):
      raise ValueError(f"num_numbers must be counts of at least 2, got {num_numbers!r}")
    if not 1 <= min_number <= max_number:
      raise ValueError(f"need 1 <= min_number <= max_number, got {min_number}, {max_number}")
    if not 1 <= min_target <= max_target:
      raise ValueError(f"need 1 <= min_target <= max_target, got {min_target}, {max_target}")
    self.num_numbers = num_numbers
    self.min_number, self.max_number = min_number, max_number
    self.min_target, self.max_target = min_target, max_target

  def _combine(self, rng: np.random.Generator, numbers: list[int]) -> tuple[int, str]:
    """One random expression tree over all numbers: (value, fully parenthesized text)."""
    pool = [(n, str(n)) for n in numbers]
    u = iter(rng.random(3 * len(numbers)).tolist())  # One rng call per tree: generation is hot.
    while len(pool) > 1:
      i = int(next(u) * len(pool))
      j = int(next(u) * (len(pool) - 1))
      j += j >= i  # A second, distinct entry.
      (a, ta), (b, tb) = pool[i], pool[j]
      options = [(a + b, f"{ta} + {tb}"), (a * b, f"{ta} * {tb}")]
      if a > b:
        options.append((a - b, f"{ta} - {tb}"))
      if b > 1 and a % b == 0:
        options.append((a // b, f"{ta} / {tb}"))
      value, text = options[int(next(u) * len(options))]
      pool = [p for k, p in enumerate(pool) if k not in (i, j)]
      pool.append((value, f"({text})" if len(pool) else text))
    return pool[0]

  def _make(self, rng: np.random.Generator) -> Example:
    k = int(rng.choice(self.num_numbers))
    for _ in range(1000):  # Acceptance is frequent for sane ranges; the loop ends quickly.
      numbers = [int(x) for x in rng.integers(self.min_number, self.max_number + 1, size=k)]
      for _ in range(20):  # A few trees per number set before drawing new numbers.
        target, solution = self._combine(rng, numbers)
        if self.min_target <= target <= self.max_target:
          question = (f"Using the numbers {numbers}, create an equation that equals {target}. "
                      f"You may use +, -, * and / with parentheses, and each number must be "
                      f"used exactly once. Write the equation alone, for example (1 + 2) / 3.")
          return {"question": question, "answer": solution, "numbers": numbers,
                  "target": target}
    raise ValueError(f"no target in [{self.min_target}, {self.max_target}] was reached from "
                     f"{k} numbers in [{self.min_number}, {self.max_number}]; widen the ranges")


class ArithmeticGenerator(_Generator):
  """Multi-digit arithmetic, e.g. "What is 4821 + 9377?"; difficulty is the digit count.

  Operands have exactly `digits` digits (no leading zeros); `num_operands` operands are joined
  by operators drawn from `ops`, evaluated with the usual precedence (* before + and -).
  The example keeps `operands`, `ops` (the drawn operators) and `digits`.

  style "word" states a two-operand problem as a short story instead ("Maya has 23 shells
  and finds 14 more. How many shells does Maya have now?"); subtraction then takes the larger
  operand first, so every answer is a count.
  """

  name = "arithmetic"
  _salt = _ARITHMETIC_SALT
  _OPS = ("+", "-", "*")

  _NAMES = ("Maya", "Leo", "Ava", "Sam", "Nora", "Omar", "Iris", "Ben")
  _ITEMS = ("apples", "shells", "stamps", "marbles", "coins", "stickers", "books", "cards")
  _WORD = {
      "+": "{n} has {a} {i} and finds {b} more. How many {i} does {n} have now?",
      "-": "{n} had {a} {i} and gave {b} of them away. How many {i} does {n} have left?",
      "*": "{n} fills {a} boxes with {b} {i} each. How many {i} are in the boxes?",
  }

  def __init__(self, *, seed: int = 0, size: int | None = None, digits: int = 4,
               num_operands: int = 2, ops: Sequence[str] = ("+",), style: str = "plain"):
    super().__init__(seed, size)
    if style not in ("plain", "word"):
      raise ValueError(f"style must be 'plain' or 'word', got {style!r}")
    if style == "word" and num_operands != 2:
      raise ValueError(f"word problems have two operands, got num_operands={num_operands!r}")
    self.style = style
    if not isinstance(digits, int) or not 1 <= digits <= 18:
      raise ValueError(f"digits must be an integer in [1, 18], got {digits!r}")
    if not isinstance(num_operands, int) or num_operands < 2:
      raise ValueError(f"num_operands must be an integer >= 2, got {num_operands!r}")
    ops = tuple(ops)
    if not ops or any(op not in self._OPS for op in ops):
      raise ValueError(f"ops must be a non-empty subset of {self._OPS}, got {ops!r}")
    self.digits, self.num_operands, self.ops = digits, num_operands, ops

  @staticmethod
  def _evaluate(operands: list[int], ops: list[str]) -> int:
    """Exact integer value with * binding tighter than + and - (no eval of text)."""
    terms, signs = [operands[0]], []
    for op, x in zip(ops, operands[1:]):
      if op == "*":
        terms[-1] *= x
      else:
        terms.append(x)
        signs.append(op)
    total = terms[0]
    for sign, term in zip(signs, terms[1:]):
      total = total + term if sign == "+" else total - term
    return total

  def _make(self, rng: np.random.Generator) -> Example:
    low, high = 10 ** (self.digits - 1), 10 ** self.digits
    operands = [int(x) for x in rng.integers(low, high, size=self.num_operands)]
    ops = [self.ops[int(i)] for i in rng.integers(len(self.ops), size=self.num_operands - 1)]
    if self.style == "word":
      if ops[0] == "-":
        operands = sorted(operands, reverse=True)
      name, items = (str(rng.choice(x)) for x in (self._NAMES, self._ITEMS))
      question = self._WORD[ops[0]].format(n=name, i=items, a=operands[0], b=operands[1])
    else:
      text = str(operands[0]) + "".join(f" {op} {x}" for op, x in zip(ops, operands[1:]))
      question = f"What is {text}?"
    return {"question": question, "answer": str(self._evaluate(operands, ops)),
            "operands": operands, "ops": ops, "digits": self.digits}
