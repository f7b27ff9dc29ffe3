"""The one `\\boxed{...}` extractor: completions, gold solutions and answer normalization use it.

Place in the pipeline: `rewards.math.extract_answer` (a completion's final answer),
`rewards.math.gold_answer` and `data.tasks` (a MATH solution's answer) call `last_boxed`;
`rewards.math_normalize` calls `unbox` to unwrap boxes left inside an answer. Rules, each
decided once here:
- a box is `\\boxed` or `\\fbox` not followed by a letter (`\\boxedx` is another command);
- `\\boxed{...}`: the braces' content, nested braces kept, escaped braces `\\{` `\\}` skipped
  when matching (so `\\boxed{\\{1, 2\\}}` is the set `\\{1, 2\\}`);
- `\\boxed 5` / `\\boxed5`: no brace, so the argument is the next run of characters up to white
  space, `$` or a brace (`\\boxed 42.` gives "42."; models mean the whole number, unlike TeX);
- the last box decides: when it is unclosed (`... \\boxed{2`, a completion cut off) or empty,
  there is no boxed answer, and an earlier box is not used in its place (that would grade an
  answer the text went on to replace).
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["find_group_end", "last_boxed", "unbox"]

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BARE = re.compile(r"[^\s${}]+")


def find_group_end(s: str, i: int) -> int:
  """Index of the `}` matching the `{` at s[i] (escaped braces skipped), or -1."""
  depth = 0
  j = i
  n = len(s)
  while j < n:
    c = s[j]
    if c == "\\" and j + 1 < n and s[j + 1] in "{}":
      j += 2
      continue
    if c == "{":
      depth += 1
    elif c == "}":
      depth -= 1
      if depth == 0:
        return j
    j += 1
  return -1


def _argument(text: str, j: int) -> Optional[tuple[int, int, int]]:
  """(start, end, resume) of the box argument that begins at or after text[j], or None."""
  k = j
  while k < len(text) and text[k] in " \t":
    k += 1
  if k < len(text) and text[k] == "{":
    end = find_group_end(text, k)
    return (k + 1, end, end + 1) if end >= 0 else None
  m = _BARE.match(text, k)
  return (m.start(), m.end(), m.end()) if m else None


def last_boxed(text: str) -> Optional[str]:
  """The stripped argument of the last box in `text`, or None (none, unclosed or empty)."""
  text = str(text)
  last = None
  for last in _BOX.finditer(text):
    pass
  if last is None:
    return None
  arg = _argument(text, last.end())
  if arg is None:
    return None
  return text[arg[0]:arg[1]].strip() or None


def unbox(s: str) -> str:
  """`s` with every box replaced by its argument (an unclosed box's command is dropped)."""
  if "\\" not in s:
    return s
  out, pos = [], 0
  for m in _BOX.finditer(s):
    if m.start() < pos:
      continue  # Inside an argument already copied (nested boxes are unboxed below).
    out.append(s[pos:m.start()])
    arg = _argument(s, m.end())
    if arg is None:
      pos = m.end()
      continue
    out.append(unbox(s[arg[0]:arg[1]]))
    pos = arg[2]
  out.append(s[pos:])
  return "".join(out)
