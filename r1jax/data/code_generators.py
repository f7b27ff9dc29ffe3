"""Procedural code problems: small functions to write, graded by hidden tests in the sandbox.

Place in the pipeline: a generated source and its task (`code_functions`), the code analogue of
`arithmetic`: code RL that runs and is tested on a laptop. Each problem asks for one Python
function described in a sentence with one worked example; its hidden tests are `num_tests`
asserts on fresh random inputs. Three levels of difficulty:

1. arithmetic on integers (a*x + b, clamping, digit sums, divisibility);
2. lists (keep the multiples of k, count above a threshold, prefix sums, drop duplicates);
3. strings (Caesar shift, run-length encoding, reversing words, the most frequent letter).

Constants, function names and inputs are drawn from `np.random.default_rng([seed, salt, i])`,
so problem i depends only on (seed, i). Expected outputs come from running each family's
reference solution (the Example's `answer`, trusted code written here) on the inputs, so a
problem's answer always passes its own tests.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import numpy as np

from r1jax.data import code_tasks
from r1jax.data import tasks as tasks_lib
from r1jax.data.code_templates import CODE_INSTRUCTION
from r1jax.data.generators import _Generator
from r1jax.data.sources import Example

__all__ = ["FAMILIES", "Family", "FunctionGenerator", "code_functions"]

_FUNCTION_NAMES = ("solve", "compute", "transform", "process", "calc", "apply_rule", "f", "g")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclasses.dataclass(frozen=True)
class Family:
  """One kind of problem: what to ask, a reference solution, and how to draw inputs.

  `describe`, `solution` are format strings over the drawn constants and the function name
  `fn`; `constants(rng)` draws the constants; `inputs(rng, c)` draws one argument tuple.
  """

  name: str
  level: int
  describe: str
  solution: str
  constants: Callable[[np.random.Generator], dict[str, Any]]
  inputs: Callable[[np.random.Generator, dict[str, Any]], tuple]


def _ints(rng: np.random.Generator, lo: int, hi: int, n: int) -> list[int]:
  return [int(v) for v in rng.integers(lo, hi + 1, size=n)]


def _word(rng: np.random.Generator, lo: int = 1, hi: int = 6, letters: str = _LETTERS) -> str:
  return "".join(rng.choice(list(letters), size=int(rng.integers(lo, hi + 1))))


FAMILIES: tuple[Family, ...] = (
    Family("affine", 1, "Write a function `{fn}(x)` that returns {a} times the integer x plus "
           "{b}.", "def {fn}(x):\n    return {a} * x + {b}\n",
           lambda r: {"a": int(r.integers(2, 10)), "b": int(r.integers(-20, 21))},
           lambda r, c: (int(r.integers(-50, 51)),)),
    Family("clamp", 1, "Write a function `{fn}(x)` that returns the integer x limited to the "
           "range [{lo}, {hi}]: {lo} if x is smaller, {hi} if x is larger, else x.",
           "def {fn}(x):\n    return min(max(x, {lo}), {hi})\n",
           lambda r: dict(zip(("lo", "hi"), sorted(_ints(r, -30, 30, 1) + _ints(r, 31, 90, 1)))),
           lambda r, c: (int(r.integers(-100, 121)),)),
    Family("digit_sum", 1, "Write a function `{fn}(n)` that returns the sum of the decimal "
           "digits of the non-negative integer n.",
           "def {fn}(n):\n    return sum(int(d) for d in str(n))\n",
           lambda r: {}, lambda r, c: (int(r.integers(0, 10 ** int(r.integers(1, 8)))),)),
    Family("is_multiple", 1, "Write a function `{fn}(n)` that returns True if the integer n "
           "is divisible by {k}, and False otherwise.",
           "def {fn}(n):\n    return n % {k} == 0\n",
           lambda r: {"k": int(r.integers(2, 13))},
           lambda r, c: (int(r.integers(-10, 11)) * c["k"] + int(r.integers(0, 2)),)),
    Family("keep_multiples", 2, "Write a function `{fn}(xs)` that returns a new list of the "
           "elements of the integer list xs that are divisible by {k}, in their original "
           "order.", "def {fn}(xs):\n    return [x for x in xs if x % {k} == 0]\n",
           lambda r: {"k": int(r.integers(2, 7))},
           lambda r, c: (_ints(r, -30, 30, int(r.integers(0, 9))),)),
    Family("count_above", 2, "Write a function `{fn}(xs)` that returns how many elements of "
           "the integer list xs are strictly greater than {t}.",
           "def {fn}(xs):\n    return sum(1 for x in xs if x > {t})\n",
           lambda r: {"t": int(r.integers(-10, 11))},
           lambda r, c: (_ints(r, -20, 20, int(r.integers(0, 9))),)),
    Family("prefix_sums", 2, "Write a function `{fn}(xs)` that returns the list of running "
           "sums of the integer list xs: element i is xs[0] + ... + xs[i].",
           "def {fn}(xs):\n    out, total = [], 0\n    for x in xs:\n        total += x\n"
           "        out.append(total)\n    return out\n",
           lambda r: {}, lambda r, c: (_ints(r, -9, 9, int(r.integers(0, 8))),)),
    Family("dedupe", 2, "Write a function `{fn}(xs)` that returns the list xs without repeated "
           "elements, keeping the first occurrence of each, in order.",
           "def {fn}(xs):\n    seen, out = set(), []\n    for x in xs:\n        if x not in seen:\n"
           "            seen.add(x)\n            out.append(x)\n    return out\n",
           lambda r: {}, lambda r, c: (_ints(r, 0, 5, int(r.integers(0, 10))),)),
    Family("caesar", 3, "Write a function `{fn}(s)` that shifts every lowercase letter of the "
           "string s forward by {k} places in the alphabet, wrapping from z to a, and leaves "
           "every other character unchanged.",
           "def {fn}(s):\n    return ''.join(chr((ord(ch) - 97 + {k}) % 26 + 97) if 'a' <= ch "
           "<= 'z' else ch for ch in s)\n",
           lambda r: {"k": int(r.integers(1, 26))},
           lambda r, c: (" ".join(_word(r) for _ in range(int(r.integers(1, 4)))),)),
    Family("run_length", 3, "Write a function `{fn}(s)` that run-length encodes the string s: "
           "each maximal run of a repeated character becomes the character followed by the "
           "run's length, e.g. 'aaab' becomes 'a3b1'.",
           "def {fn}(s):\n    out, i = [], 0\n    while i < len(s):\n        j = i\n"
           "        while j < len(s) and s[j] == s[i]:\n            j += 1\n"
           "        out.append(s[i] + str(j - i))\n        i = j\n    return ''.join(out)\n",
           lambda r: {}, lambda r, c: (_word(r, 0, 10, "abc"),)),
    Family("reverse_words", 3, "Write a function `{fn}(s)` that returns the words of the "
           "string s (separated by single spaces) in reverse order, joined by single spaces.",
           "def {fn}(s):\n    return ' '.join(reversed(s.split(' ')))\n",
           lambda r: {}, lambda r, c: (" ".join(_word(r) for _ in range(int(r.integers(1, 6)))),)),
    Family("most_frequent", 3, "Write a function `{fn}(s)` that returns the character that "
           "occurs most often in the non-empty string s; among equally frequent characters, "
           "the one that occurs first in s.",
           "def {fn}(s):\n    return max(s, key=lambda ch: (s.count(ch), -s.index(ch)))\n",
           lambda r: {}, lambda r, c: (_word(r, 1, 10, "abcd"),)),
)
LEVELS = (1, 2, 3)


@functools.lru_cache(maxsize=1024)
def _reference(source: str, fn: str) -> Callable[..., Any]:
  """The reference function of a solution source (trusted code of this module)."""
  namespace: dict[str, Any] = {}
  exec(source, namespace)  # pylint: disable=exec-used
  return namespace[fn]


def _call(fn: str, args: tuple) -> str:
  return f"{fn}({', '.join(repr(a) for a in args)})"


class FunctionGenerator(_Generator):
  """Function-writing problems of the given `levels`, each with `num_tests` hidden asserts."""

  name = "code_functions"
  _salt = 0xF00D

  def __init__(self, *, seed: int = 0, size: int | None = None,
               levels: Sequence[int] = LEVELS, num_tests: int = 5):
    super().__init__(seed, size)
    levels = tuple(levels) if isinstance(levels, Sequence) else (levels,)
    if not levels or any(lv not in LEVELS for lv in levels):
      raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {levels!r}")
    if isinstance(num_tests, bool) or not isinstance(num_tests, int) or not 1 <= num_tests <= 50:
      raise ValueError(f"num_tests must be an integer in [1, 50], got {num_tests!r}")
    self.families = [f for f in FAMILIES if f.level in levels]
    self.num_tests = num_tests

  def _make(self, rng: np.random.Generator) -> Example:
    family = self.families[int(rng.integers(len(self.families)))]
    constants = {"fn": str(rng.choice(_FUNCTION_NAMES)), **family.constants(rng)}
    solution = family.solution.format(**constants)
    reference = _reference(solution, constants["fn"])
    # One shown example, then hidden tests on fresh inputs (repeats allowed: they are cheap).
    cases = [family.inputs(rng, constants) for _ in range(self.num_tests + 1)]
    expected = [reference(*args) for args in cases]
    fn = constants["fn"]
    shown = f"For example, {_call(fn, cases[0])} returns {expected[0]!r}."
    question = f"{family.describe.format(**constants)} {shown}\n\n{CODE_INSTRUCTION}"
    tests = [f"assert {_call(fn, args)} == {want!r}"
             for args, want in zip(cases[1:], expected[1:])]
    return {"question": question, "answer": solution, "tests": tests, "header": "",
            "level": family.level, "family": family.name, "entry_point": fn}


@tasks_lib.register_task("code_functions")
def code_functions(*, seed: int = 0, size: int | None = None, levels: Sequence[int] = LEVELS,
                   num_tests: int = 5, template: Any = "r1_zero", format_weight: float = 0.1,
                   format_kind: str = "strict", timeout_s: float = 5.0) -> tasks_lib.Task:
  """Generated function-writing problems (levels 1-3); reward = all hidden tests pass."""
  source = FunctionGenerator(seed=seed, size=size, levels=levels, num_tests=num_tests)
  return code_tasks.code_task("code_functions", source, template=template,
                              format_weight=format_weight, format_kind=format_kind,
                              timeout_s=timeout_s)
