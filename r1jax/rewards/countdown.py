"""The Countdown reward: does the answer's equation reach the target with the given numbers?

Place in the pipeline: the accuracy term of the `countdown` task (TinyZero's reproduction of
R1-Zero on the Countdown game). TinyZero's rules: the equation is the content of the last
`<answer>...</answer>`; it may hold only integers, `+ - * /`, parentheses and spaces; each
given number is used exactly once (as a multiset: the integers in the equation, sorted, equal
the given numbers, sorted); its value equals the target within 1e-5. A correct equation scores
1.0; an answer that is present but wrong or invalid scores `format_score` (TinyZero used 0.1;
the default here is 0.0 because r1jax rewards format as its own named term); no answer scores 0.

Parsed by our own recursive descent into exact fractions, never `eval`: no names, no calls, no
powers, so model text can neither run code nor build huge numbers. Division by zero is invalid.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from typing import Any, Mapping, Optional, Sequence

__all__ = ["CountdownAccuracy", "countdown_reward", "evaluate_equation", "extract_equation"]

_MAX_CHARS = 512
_MAX_DEPTH = 64
_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*/()]))")
_ALLOWED = re.compile(r"[\d+\-*/()\s]*")


def extract_equation(completion: str) -> Optional[str]:
  """The content of the last `<answer>...</answer>`, stripped, or None."""
  text = str(completion)
  i = text.rfind("<answer>")
  if i < 0:
    return None
  end = text.find("</answer>", i)
  if end < 0:
    return None
  return text[i + len("<answer>"):end].strip()


class _Invalid(ValueError):
  pass


def _tokens(equation: str) -> list[str]:
  tokens, pos = [], 0
  equation = equation.rstrip()
  while pos < len(equation):
    m = _TOKEN.match(equation, pos)
    if not m:
      raise _Invalid(f"unexpected character at {pos}")
    tokens.append(m.group(1) or m.group(2))
    pos = m.end()
  return tokens


def evaluate_equation(equation: str) -> tuple[Fraction, list[int]]:
  """The exact value of an arithmetic expression and the integers it uses.

  Raises:
    ValueError: the text is not an expression of integers, + - * / and parentheses, or it
      divides by zero.
  """
  if len(equation) > _MAX_CHARS or not _ALLOWED.fullmatch(equation):
    raise ValueError(f"not a Countdown equation: {equation[:80]!r}")
  toks = _tokens(equation)
  numbers: list[int] = []
  pos = 0

  def peek() -> Optional[str]:
    return toks[pos] if pos < len(toks) else None

  def expr(depth: int) -> Fraction:
    nonlocal pos
    if depth > _MAX_DEPTH:
      raise _Invalid("nested too deeply")
    value = term(depth)
    while peek() in ("+", "-"):
      op = toks[pos]
      pos += 1
      rhs = term(depth)
      value = value + rhs if op == "+" else value - rhs
    return value

  def term(depth: int) -> Fraction:
    nonlocal pos
    value = unary(depth)
    while peek() in ("*", "/"):
      op = toks[pos]
      pos += 1
      rhs = unary(depth)
      if op == "/" and rhs == 0:
        raise _Invalid("division by zero")
      value = value * rhs if op == "*" else value / rhs
    return value

  def unary(depth: int) -> Fraction:
    nonlocal pos
    if peek() == "-":  # TinyZero's eval accepted a unary minus; so do we.
      pos += 1
      return -unary(depth + 1)
    if peek() == "(":
      pos += 1
      value = expr(depth + 1)
      if peek() != ")":
        raise _Invalid("unclosed parenthesis")
      pos += 1
      return value
    tok = peek()
    if tok is None or not tok.isdigit():
      raise _Invalid(f"expected a number, found {tok!r}")
    pos += 1
    numbers.append(int(tok))
    return Fraction(int(tok))

  try:
    value = expr(0)
    if pos != len(toks):
      raise _Invalid(f"unexpected {toks[pos]!r}")
  except _Invalid as e:
    raise ValueError(f"not a valid Countdown equation ({e}): {equation[:80]!r}") from None
  return value, numbers


def countdown_reward(completion: str, numbers: Sequence[int], target: float, *,
                     format_score: float = 0.0) -> float:
  """1.0 when the answer's equation uses each number once and equals target (docstring)."""
  equation = extract_equation(completion)
  if equation is None:
    return 0.0
  try:
    value, used = evaluate_equation(equation)
  except ValueError:
    return format_score
  if sorted(used) != sorted(int(n) for n in numbers):
    return format_score
  if abs(float(value - Fraction(target))) >= 1e-5:
    return format_score
  return 1.0


@dataclasses.dataclass(frozen=True)
class CountdownAccuracy:
  """A RewardFn: `countdown_reward` with `example[numbers_key]` and `example[target_key]`."""
  numbers_key: str = "numbers"
  target_key: str = "target"
  format_score: float = 0.0

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    return countdown_reward(completion, example[self.numbers_key], example[self.target_key],
                            format_score=self.format_score)
