"""The "aha moment" in miniature: a task where checking your own work pays.

Place in the pipeline: the data, reward and metrics of `experiments/aha_miniature.py` (stage 1
text and stage 2 task). The problems are "R1 in miniature"'s 4-digit additions
(`r1jax.data.miniature`), the vocabulary is its 20 symbols plus two: `?` (let me check) and
`<wait>` (the reflective marker: the check disagrees). A completion takes one of three styles:

  direct   `A:06912`: a small decoder cannot add in one step, so these are mostly wrong;
  worked   `<think>` then the columns, units first (`4 8 0 12|...`: digit of a, digit of b,
           carry in, column sum) `</think>A:` and the sum the columns give;
  verify   the same first pass, then `?` and the sum worked a second way (b + a, columns
           `digit of b, digit of a, carry, sum`), each check column followed by its verdict:
           `|` when it agrees with the first pass's column, `<wait>` when it does not (the
           carries differ), then `</think>A:` and the checked sum.

The first pass is error-prone on purpose, in either of two ways (stage-1 options):
  blind_spot  it forgets the carry out of every column whose two digits are both 5 or more
              (a systematic mistake, the same every time: ~58% of first passes are wrong);
  slip_rate   each of its carries flips (is forgotten or invented) with this probability.
The check is never wrong in the text. Working the sum therefore beats answering directly, and
checking it beats stopping after one pass: a reward for the right answer alone should teach
first the one, then the other, with no reward for length or for checking. Random slips are
a token-level noise that RL can simply sharpen away (measured: see
`experiments/aha_miniature.py`), so checking stops paying; a systematic mistake is not
sampled away, since the policy gives the right carry almost no probability there.

Besides the reward, the task reports per response (held-out and in training rollouts):
`worked` (thinks), `verify` (thinks and works the sum a second time), `wait` (count of
`<wait>`: the reflective marker's rate per response), `false_wait` (count of `<wait>`s after a
check column that agrees with the first pass: a marker that flags nothing) and `slip` (thinks
and its first pass is wrong).
A `<wait>` is thus the model saying "this column of my first pass disagrees with my check";
a first pass with one slipped carry draws one or more of them.
"""

from __future__ import annotations

import re
import numpy as np

from r1jax.data import miniature
from r1jax.data import tasks as tasks_lib
from r1jax.data.generators import _Generator
from r1jax.data.miniature import EOS, END_THINK, THINK, AdditionSource, MiniatureTemplate
from r1jax.data.sources import Example

__all__ = ["VOCAB", "CHECK", "WAIT", "HELDOUT_ARGS", "first_pass", "direct_solution",
           "worked_solution", "verify_solution", "sft_example", "ColdStartSource",
           "answer_reward", "worked_metric", "verify_metric", "wait_count", "false_wait_count",
           "slip_metric",
           "write_tokenizer", "blind_spot", "aha_miniature"]

CHECK, WAIT = "?", "<wait>"
VOCAB = [*miniature.VOCAB, CHECK, WAIT]
# The stage-1 stopping criterion's rows (`r1jax.sft.heldout_rows`): verify rows whose prompt
# runs through the first pass, so the criterion asks whether the check and its correction are
# right given the first pass, errors included (random slips cannot be predicted).
HELDOUT_ARGS = {"worked_frac": 1.0, "verify_frac": 1.0, "check_in_prompt": 1.0}


def write_tokenizer(folder) -> str:
  """The miniature's word-level tokenizer with `?` and `<wait>` added; returns the folder."""
  return miniature.write_tokenizer(folder, VOCAB)


def _digits(n: int, digits: int) -> list[int]:
  return [(n // 10 ** i) % 10 for i in range(digits)]


def _columns(a: int, b: int, digits: int, flips: tuple[bool, ...] = ()) -> tuple[str, int]:
  """Columns units first as `a_i b_i carry sum` joined by `|`, and the result they give.

  `flips[i]` flips column i's carry in (a slip); the column sum and every carry after it then
  follow from the written carry, as a person's working would.
  """
  steps, carry, result = [], 0, 0
  for i, (da, db) in enumerate(zip(_digits(a, digits), _digits(b, digits))):
    if i < len(flips) and flips[i]:
      carry = 1 - carry
    s = da + db + carry
    steps.append(f"{da}{db}{carry}{s:02d}")
    result += (s % 10) * 10 ** i
    carry = s // 10
  return "|".join(steps), result + carry * 10 ** digits


def _number(n: int, digits: int) -> str:
  return f"{n:0{digits + 1}d}"  # Zero-padded to digits + 1, as the miniature's answers.


def first_pass(a: int, b: int, digits: int = 4, flips: tuple[bool, ...] = ()) -> tuple[str, int]:
  """The first working (columns of a + b, with the given carry slips) and its result."""
  return _columns(a, b, digits, flips)


def blind_spot(a: int, b: int, digits: int = 4) -> tuple[bool, ...]:
  """The carry flips of the systematic mistake: no carry out of a column of two digits >= 5.

  Such a column always carries (its sum is 10 or more), so flipping the next column's carry
  in forgets it. The last column's carry is the answer's first digit and is kept.
  """
  big = [da >= 5 and db >= 5 for da, db in zip(_digits(a, digits), _digits(b, digits))]
  return (False, *big[:digits - 1])


def direct_solution(a: int, b: int, digits: int = 4) -> str:
  return f"A:{_number(a + b, digits)}"


def worked_solution(a: int, b: int, digits: int = 4, flips: tuple[bool, ...] = ()) -> str:
  """One pass, then the answer it gives (wrong when a carry slipped)."""
  work, result = first_pass(a, b, digits, flips)
  return f"{THINK}{work}{END_THINK}A:{_number(result, digits)}"


def verify_solution(a: int, b: int, digits: int = 4, flips: tuple[bool, ...] = ()) -> str:
  """One pass, then the check (b + a, no slips) with a verdict per column, then the answer.

  A check column's verdict is `<wait>` when its carry (so its sum) differs from the first
  pass's column, else `|`. Every column has one verdict token, so a check column sits at a
  fixed distance from the first-pass column it is compared with.
  """
  work, _ = first_pass(a, b, digits, flips)
  check, checked = _columns(b, a, digits)
  verdicts = "".join(
      f"{mine}{'|' if mine[2] == theirs[2] else WAIT}"
      for mine, theirs in zip(check.split("|"), work.split("|")))
  return f"{THINK}{work}{CHECK}{verdicts}{END_THINK}A:{_number(checked, digits)}"


def sft_example(example: Example, *, style: str, flips: tuple[bool, ...] = (),
                think_in_prompt: bool = False, check_in_prompt: bool = False
                ) -> dict[str, str]:
  """A cold-start text of `style` ("direct", "worked" or "verify") ending in EOS.

  `think_in_prompt` (worked or verify rows) ends the prompt with `<think>`; `check_in_prompt`
  (verify rows) ends it after the first pass and `?`. Either way the choice at that point is
  in the prompt, not learned: such rows teach a style without raising how often it is picked.
  """
  a, b, d = example["a"], example["b"], example["digits"]
  prompt = MiniatureTemplate().render(example)
  if style == "direct":
    if think_in_prompt or check_in_prompt:
      raise ValueError("think_in_prompt and check_in_prompt need a worked or verify row")
    solution = direct_solution(a, b, d)
  elif style == "worked":
    if check_in_prompt:
      raise ValueError("check_in_prompt needs a verify row (style='verify')")
    solution = worked_solution(a, b, d, flips)
  elif style == "verify":
    solution = verify_solution(a, b, d, flips)
  else:
    raise ValueError(f"style must be 'direct', 'worked' or 'verify', got {style!r}")
  if check_in_prompt:
    cut = solution.index(CHECK) + 1
  elif think_in_prompt:
    cut = len(THINK)
  else:
    cut = 0
  return {"prompt": prompt + solution[:cut], "completion": solution[cut:] + EOS,
          "style": style}


class ColdStartSource(_Generator):
  """Stage-1 text: direct, worked and (rarely chosen) verify completions with slipping carries.

  A share `worked_frac` of rows think (the rest answer directly); of those a share
  `verify_frac` check their work. Of the thinking rows a share `think_in_prompt` carry
  `<think>` in the prompt, and of the verify rows a share `check_in_prompt` carry the whole
  first pass and `?` in the prompt: the model learns each style from many rows but picks
  thinking on worked_frac (1 - think_in_prompt) / (1 - worked_frac think_in_prompt) of its
  answers and, having worked the sum, checks on
  verify_frac (1 - check_in_prompt) / (1 - verify_frac check_in_prompt) of them.
  Each first-pass carry is flipped with probability `slip_rate`; with `blind_spot` the first
  pass also forgets every carry out of a column of two digits >= 5 (`blind_spot()`).
  """

  name = "aha_miniature_sft"
  _salt = 13

  def __init__(self, *, seed: int = 0, size: int | None = None, digits: int = 4,
               worked_frac: float = 0.5, think_in_prompt: float = 0.0,
               verify_frac: float = 0.1, check_in_prompt: float = 0.0,
               slip_rate: float = 0.2, blind_spot: bool = False):
    super().__init__(seed, size)
    for name, value in (("worked_frac", worked_frac), ("verify_frac", verify_frac),
                        ("check_in_prompt", check_in_prompt), ("slip_rate", slip_rate)):
      if not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if not 0 <= think_in_prompt < 1:
      raise ValueError(f"think_in_prompt must be in [0, 1), got {think_in_prompt!r}")
    self.problems = AdditionSource(seed=seed + 2_000_003, digits=digits)
    self.digits = digits
    self.worked_frac, self.think_in_prompt = worked_frac, think_in_prompt
    self.verify_frac, self.check_in_prompt = verify_frac, check_in_prompt
    self.slip_rate = slip_rate
    if not isinstance(blind_spot, bool):
      raise ValueError(f"blind_spot must be True or False, got {blind_spot!r}")
    self.blind_spot = blind_spot

  def _make(self, rng: np.random.Generator) -> Example:
    example = self.problems._make(rng)
    u = rng.random(4)  # Drawn for every row, so one knob leaves the others' draws alone.
    flips = tuple(bool(x) for x in rng.random(self.digits) < self.slip_rate)
    if self.blind_spot:
      flips = tuple(f or g for f, g in zip(flips, blind_spot(example["a"], example["b"],
                                                             self.digits)))
    if u[0] >= self.worked_frac:
      return sft_example(example, style="direct")
    style = "verify" if u[1] < self.verify_frac else "worked"
    check = style == "verify" and u[2] < self.check_in_prompt
    think = not check and u[3] < self.think_in_prompt
    return sft_example(example, style=style, flips=flips, think_in_prompt=think,
                       check_in_prompt=check)


# The whole response: optional thinking (any symbols, `<wait>` included) then `A:` and digits.
_ANSWER = re.compile(r"(?:<think>(?:[^<]|<wait>)*</think>)?A:(\d+)")
_COLUMN_AND_MARK = re.compile(r"(\d{5})(\||\?|<wait>|)")


def _response(response: str) -> str:
  return response.replace(EOS, "").strip()


def answer_reward(response: str, example: Example) -> float:
  """1 if the whole response is (optional thinking then) `A:` and the right sum, else 0."""
  match = _ANSWER.fullmatch(_response(response))
  return float(match is not None and int(match.group(1)) == int(example["answer"]))


def _thinking(response: str) -> str | None:
  """The text between `<think>` and `</think>`, or None when the response does not think."""
  r = _response(response)
  if not r.startswith(THINK) or END_THINK not in r:
    return None
  return r[len(THINK):r.index(END_THINK)]


def worked_metric(response: str, example: Example) -> float:
  """1 if the response thinks (`<think>...</think>` before the answer); reported."""
  del example
  return float(_thinking(response) is not None)


def _columns_written(thinking: str) -> list[tuple[str, str]]:
  """The thinking's columns (5 digits each) with the symbol after each, read structurally.

  By structure, not by the `?` symbol: nothing rewards that symbol, and RL was seen to turn
  it into `|` while the response went on checking (seed 1 of the README's run).
  """
  return _COLUMN_AND_MARK.findall(thinking)


def verify_metric(response: str, example: Example) -> float:
  """1 if the response thinks and works the sum twice (a second pass of columns); reported."""
  thinking = _thinking(response)
  return float(thinking is not None and
               len(_columns_written(thinking)) >= 2 * example["digits"])


def wait_count(response: str, example: Example) -> float:
  """How many times the response says `<wait>`: its mean is the marker's rate per response."""
  del example
  return float(_response(response).count(WAIT))


def false_wait_count(response: str, example: Example) -> float:
  """How many of its `<wait>`s follow a check column whose carry agrees with the first pass's.

  Stage 1's text never does this; a `<wait>` counted here flags no disagreement.
  """
  thinking = _thinking(response)
  if thinking is None:
    return 0.0
  cols = _columns_written(thinking)
  d = example["digits"]
  return float(sum(mark == WAIT and col[2] == first[2]
                   for (first, _), (col, mark) in zip(cols[:d], cols[d:2 * d])))


def slip_metric(response: str, example: Example) -> float:
  """1 if the response thinks and its first pass is not the right working of a + b."""
  thinking = _thinking(response)
  if thinking is None:
    return 0.0
  d = example["digits"]
  first = [col for col, _ in _columns_written(thinking)[:d]]
  right, _ = first_pass(example["a"], example["b"], d)
  return float("|".join(first) != right)


@tasks_lib.register_task("aha_miniature")
def aha_miniature(*, seed: int = 0, size: int | None = None, digits: int = 4
                  ) -> tasks_lib.Task:
  """Addition with the right-answer reward only; thinking, checking, `<wait>` are reported."""
  return tasks_lib.Task(
      "aha_miniature", AdditionSource(seed=seed, size=size, digits=digits),
      MiniatureTemplate(), {"accuracy": (answer_reward, 1.0)},
      {"strict": answer_reward, "worked": worked_metric, "verify": verify_metric,
       "wait": wait_count, "false_wait": false_wait_count, "slip": slip_metric})

