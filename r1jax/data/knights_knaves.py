"""Knights and Knaves logic puzzles (Logic-RL, arXiv:2502.14768): generator, verifier, task.

Place in the pipeline: a generated source and its rewards, registered as the task
`knights_knaves`. On an island knights always tell the truth and knaves always lie; each of
n inhabitants (2-8) makes one statement about the others, and the answer is every person's
role. Logic-RL trained on such puzzles (from the K&K set of Xie et al. 2024) and asked for the
answer inside <answer> as one line per person: "(1) Zoey is a knave", "(2) Oliver is a knight".

Generation: draw the roles, then each person's statement, a random formula over the others
(leaves "X is a knight/knave", connectives not / and / or / if-then / if-and-only-if; `depth`
bounds the nesting and `width` the operands of and/or); a knight's statement must be true and a
knave's false, so it is redrawn until it is. The puzzle is kept only when brute force over all
2^n role assignments finds exactly one consistent with every statement, so the answer is
unique by construction. Difficulty: more people, deeper and wider statements.

Verification (`parse_answer`, `verify`) is exact: the answer region (last <answer> block) must
consist of one "(k) Name is a knight|knave" line per person (numbering optional, any order,
trailing period allowed, nothing else on a line) naming each person of the puzzle once; a line
for an unknown or repeated person, a line that names both roles, or any other text makes the
answer unparsable. `accuracy` is 1 for an exact match of every role. Logic-RL's own reward
(`LogicRLScore`) adds a format score (+1 when the <think>/<answer> structure is right, else -1)
to an answer score (2 right, -1.5 wrong, -2 unparsable or missing; 0 when the format failed).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any, Mapping, Sequence

import numpy as np

from r1jax import rewards as rewards_lib
from r1jax.data import tasks as tasks_lib
from r1jax.data import templates as templates_lib
from r1jax.data.generators import _Generator
from r1jax.data.sources import Example

__all__ = ["KnightsKnavesGenerator", "LogicRLScore", "KKAccuracy", "evaluate_statement",
           "parse_answer", "render_solution", "solutions", "verify", "knights_knaves"]

MIN_PEOPLE, MAX_PEOPLE = 2, 8
_NAMES = ("Zoey", "Oliver", "Ethan", "Ava", "Liam", "Mia", "Noah", "Emma", "Lucas", "Sofia",
          "Jack", "Isla", "Owen", "Chloe", "Leo", "Grace", "Henry", "Ruby", "Samuel", "Aria")
# Logic-RL's instruction for the answer, with its example lines.
ANSWER_INSTRUCTION = ("When you reach a conclusion, state the identity of every character "
                      "inside <answer> </answer>, one per line, e.g. <answer> (1) Zoey is a "
                      "knight\n(2) Oliver is a knave </answer>.")

# A statement is a JSON-able nested list:
#   ["is", person, knight]  person (an index) is a knight (True) or a knave (False)
#   ["not", s] | ["and", s1, s2, ...] | ["or", s1, s2, ...] | ["imp", a, b] | ["iff", a, b]
Statement = list


def evaluate_statement(s: Statement, roles: Sequence[bool]) -> bool:
  """The truth of statement `s` when person i is a knight iff roles[i]."""
  op = s[0]
  if op == "is":
    return bool(roles[s[1]]) == bool(s[2])
  if op == "not":
    return not evaluate_statement(s[1], roles)
  if op == "and":
    return all(evaluate_statement(t, roles) for t in s[1:])
  if op == "or":
    return any(evaluate_statement(t, roles) for t in s[1:])
  if op == "imp":
    return (not evaluate_statement(s[1], roles)) or evaluate_statement(s[2], roles)
  if op == "iff":
    return evaluate_statement(s[1], roles) == evaluate_statement(s[2], roles)
  raise ValueError(f"unknown statement operator {op!r}")


def solutions(statements: Sequence[Statement]) -> list[tuple[bool, ...]]:
  """Every role assignment (True = knight) in which each speaker's statement fits their role."""
  n = len(statements)
  return [roles for roles in itertools.product((True, False), repeat=n)
          if all(evaluate_statement(s, roles) == roles[i] for i, s in enumerate(statements))]


def _say(s: Statement, names: Sequence[str], top: bool = True) -> str:
  op = s[0]
  if op == "is":
    return f"{names[s[1]]} is a {'knight' if s[2] else 'knave'}"
  if op == "not":
    text = f"it is not the case that {_say(s[1], names, False)}"
  elif op in ("and", "or"):
    text = f" {op} ".join(_say(t, names, False) for t in s[1:])
  elif op == "imp":
    text = f"if {_say(s[1], names, False)} then {_say(s[2], names, False)}"
  else:
    text = f"{_say(s[1], names, False)} if and only if {_say(s[2], names, False)}"
  return text if top else f"({text})"


def render_solution(names: Sequence[str], roles: Sequence[bool]) -> str:
  """The answer in Logic-RL's format: "(1) Zoey is a knave\\n(2) Oliver is a knight"."""
  return "\n".join(f"({i + 1}) {n} is a {'knight' if r else 'knave'}"
                   for i, (n, r) in enumerate(zip(names, roles)))


class KnightsKnavesGenerator(_Generator):
  """Puzzles with a unique solution; `num_people` sizes drawn uniformly, 2 to 8 each.

  `depth` is the deepest nesting of connectives in a statement (1: "X is a knight" or one
  connective over such leaves) and `width` the most operands of an and/or.
  """

  name = "knights_knaves"
  _salt = 0x4B4B

  def __init__(self, *, seed: int = 0, size: int | None = None,
               num_people: Sequence[int] = (3, 4, 5, 6, 7), depth: int = 2, width: int = 2):
    super().__init__(seed, size)
    num_people = tuple(num_people) if isinstance(num_people, Sequence) else (num_people,)
    if not num_people or any(isinstance(n, bool) or not isinstance(n, int)
                             or not MIN_PEOPLE <= n <= MAX_PEOPLE for n in num_people):
      raise ValueError(f"num_people must be sizes in [{MIN_PEOPLE}, {MAX_PEOPLE}], got "
                       f"{num_people!r}")
    if not isinstance(depth, int) or not 1 <= depth <= 3:
      raise ValueError(f"depth must be an integer in [1, 3], got {depth!r}")
    if not isinstance(width, int) or not 2 <= width <= 4:
      raise ValueError(f"width must be an integer in [2, 4], got {width!r}")
    self.num_people, self.depth, self.width = num_people, depth, width

  def _leaf(self, rng: np.random.Generator, others: Sequence[int]) -> Statement:
    return ["is", int(rng.choice(others)), bool(rng.random() < 0.5)]

  def _formula(self, rng: np.random.Generator, others: Sequence[int], depth: int) -> Statement:
    # Leaves are as likely as compounds below the top, so statements vary in size.
    if depth == 0 or (depth < self.depth and rng.random() < 0.5):
      return self._leaf(rng, others)
    op = ("not", "and", "or", "imp", "iff")[int(rng.integers(5))]
    if op == "not":
      inner = self._formula(rng, others, depth - 1)
      # "not (X is a knight)" reads as "X is a knave" would; keep it, but never "not not".
      return inner[1] if inner[0] == "not" else ["not", inner]
    k = int(rng.integers(2, self.width + 1)) if op in ("and", "or") else 2
    for _ in range(20):  # Distinct operands: "A is a knight and A is a knight" says it twice.
      parts = [self._formula(rng, others, depth - 1) for _ in range(k)]
      if len({repr(p) for p in parts}) == k:
        return [op, *parts]
    return self._leaf(rng, others)  # Too few people to say k different things (2 people).

  def _make(self, rng: np.random.Generator) -> Example:
    n = int(rng.choice(self.num_people))
    for _ in range(1000):  # A few dozen tries at most for 8 people in practice.
      roles = [bool(r) for r in rng.random(n) < 0.5]
      statements = []
      for i in range(n):
        others = [j for j in range(n) if j != i]
        while True:  # Half of random statements have the right truth value.
          s = self._formula(rng, others, self.depth)
          if evaluate_statement(s, roles) == roles[i]:
            break
        statements.append(s)
      if len(solutions(statements)) == 1:
        names = [str(x) for x in rng.choice(_NAMES, size=n, replace=False)]
        return {"question": _question(names, statements), "answer": render_solution(names, roles),
                "names": names, "roles": roles, "statements": statements, "num_people": n}
    raise RuntimeError(f"no unique {n}-person puzzle in 1000 tries (depth {self.depth})")


def _question(names: Sequence[str], statements: Sequence[Statement]) -> str:
  people = ", ".join(names[:-1]) + f" and {names[-1]}"
  lines = [f"A very special island is inhabited only by knights and knaves. Knights always tell "
           f"the truth, and knaves always lie. You meet {len(names)} inhabitants: {people}."]
  for i, s in enumerate(statements):
    text = _say(s, names)
    lines.append(f'{names[i]} says: "{text[0].upper()}{text[1:]}."')
  lines.append(f"So who is a knight and who is a knave? {ANSWER_INSTRUCTION}")
  return " ".join(lines)


# --- verification --------------------------------------------------------------------------

_LINE = re.compile(r"(?:\(\d+\)\s*)?([A-Za-z][A-Za-z'-]*) is an? (knight|knave)\.?", re.I)


def _answer_text(response: str) -> str | None:
  start = response.rfind("<answer>")
  if start < 0:
    return None
  end = response.find("</answer>", start)
  return response[start + len("<answer>"):end if end >= 0 else len(response)]


def parse_answer(response: str, names: Sequence[str]) -> dict[str, bool] | None:
  """Name -> knight (True) / knave (False) from the last <answer>, or None if unparsable.

  Every non-empty line must be one statement of a role; each person of `names` exactly once.
  """
  text = _answer_text(response)
  if text is None:
    return None
  known = {n.lower(): n for n in names}
  out: dict[str, bool] = {}
  for line in text.strip().splitlines():
    line = line.strip()
    if not line:
      continue
    m = _LINE.fullmatch(line)
    if m is None:
      return None
    name = known.get(m.group(1).lower())
    if name is None or name in out:  # A stranger, or a person stated twice.
      return None
    out[name] = m.group(2).lower() == "knight"
  return out if len(out) == len(names) else None


def verify(response: str, example: Mapping[str, Any]) -> bool:
  """Whether the last <answer> gives every person's role right, in the exact format."""
  parsed = parse_answer(response, example["names"])
  return parsed is not None and all(
      parsed[n] == bool(r) for n, r in zip(example["names"], example["roles"]))


@dataclasses.dataclass(frozen=True)
class KKAccuracy:
  """A RewardFn: 1 when `verify` accepts the response, else 0."""

  def __call__(self, response: str, example: Mapping[str, Any]) -> float:
    return float(verify(response, example))


@dataclasses.dataclass(frozen=True)
class LogicRLScore:
  """Logic-RL's reward: format (+1 / -1) plus answer (2 / -1.5 / -2, 0 if the format failed).

  The format check is the R1 one (`rewards.format_reward`: think then answer, each tag once).
  """

  think_in_prompt: bool = False

  def __call__(self, response: str, example: Mapping[str, Any]) -> float:
    if not rewards_lib.format_reward(response, think_in_prompt=self.think_in_prompt):
      return -1.0
    parsed = parse_answer(response, example["names"])
    if parsed is None:
      return 1.0 - 2.0
    right = all(parsed[n] == bool(r) for n, r in zip(example["names"], example["roles"]))
    return 1.0 + (2.0 if right else -1.5)


@tasks_lib.register_task("knights_knaves")
def knights_knaves(*, seed: int = 0, size: int | None = None,
                   num_people: Sequence[int] = (3, 4, 5, 6, 7), depth: int = 2, width: int = 2,
                   reward: str = "binary", template: Any = "r1_zero",
                   format_weight: float = 0.1) -> tasks_lib.Task:
  """Generated K&K puzzles; reward "binary" (accuracy + format_weight * R1 format) or "logic_rl".

  Accuracies: "strict" (every role right, exact format).
  """
  source = KnightsKnavesGenerator(seed=seed, size=size, num_people=num_people, depth=depth,
                                  width=width)
  template_obj = templates_lib.get_template(template)
  accuracy = KKAccuracy()
  if reward == "logic_rl":
    # Rewards read responses, which start with any prefilled "<think>": the full format applies.
    reward_fns = {"logic_rl": (LogicRLScore(), 1.0),
                  "accuracy": (accuracy, 0.0)}
  elif reward == "binary":
    reward_fns = {"accuracy": (accuracy, 1.0)}
    if template_obj.uses_tags and format_weight:
      reward_fns["format"] = (rewards_lib.R1Format(), float(format_weight))
  else:
    raise ValueError(f"reward must be 'binary' or 'logic_rl', got {reward!r}")
  return tasks_lib.Task("knights_knaves", source, template_obj, reward_fns,
                        {"strict": accuracy})
