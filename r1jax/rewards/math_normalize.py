"""Maths answers as canonical strings and structures, and the in-process number checks.

Place in the pipeline: `rewards.math.is_equivalent` runs these in the calling thread. They are
pure string work, linear (or, on the capped answer length, at worst quadratic) in the input,
with no backtracking-prone regexes, so they need no timeout. Only what they cannot decide goes
to sympy in a worker (`rewards.math_symbolic`), which reuses `split_structure` and
`compare_nodes`.

Decisions (each has a test in tests/rewards_math_test.py):
- Thousands separators: `1,000`, `1{,}000`, `1\\,000` and `1 000` are 1000, but only when the
  whole answer (or element) has that shape; `1,2` stays a list of two numbers.
- Percent and degree signs, `\\$` and dollar signs are dropped: `10\\%` equals 10, not 0.1
  (gold answers write `10\\%` for "what percent" questions; accepting 0.1 as well would make
  10 == 10% == 0.1 and break transitivity).
- Units: `\\text{...}` holding only words, and trailing unit words (`18 dollars`, `5 cm^2`,
  `3 m`) are dropped when the rest holds a number. A whole-word answer (`\\text{even}`) is kept
  and compared case-insensitively.
- `x = 2`, `\\theta = 2`, `f(x) = 2` compare with 2 as 2 (a single-symbol left side is
  dropped when the other answer is not a relation, or assigns the same symbol); two different
  relations compare as relations (`x+y=1` == `y=1-x`).
- A whole number right before a numeric `\\frac` is a mixed number: `2\\frac{1}{2}` == 2.5.
- Decimals and fractions are exact rationals and compare exactly (3.0 == 3, 0.5 == 1/2,
  0.333 != 1/3, 10^12 + 1 != 10^12); only a decimal against an irrational value uses a
  tolerance (relative 1e-9, in `rewards.math_symbolic`).
- Bracketed sequences are ordered and keep their bracket kind, so the tuple or open interval
  (1,2) differs from [1,2] and (1,2]; `\\{...\\}` sets and bare comma lists (`1, 2`, `2 or 3`)
  are unordered; a bare list matches a bracketed tuple in order; unions of intervals are
  unordered; matrices compare cell by cell.
- `x \\in S` is S; braced one-token subscripts lose their braces (`4210_{5}` == `4210_5`).
- Multiple choice: a gold `A`, `(A)` or `\\text{(A)}` matches a prediction that is that letter
  or starts with `(A)` / `A)`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Callable, Optional, Union

from r1jax.rewards.math_boxed import find_group_end, unbox

__all__ = [
    "GREEK_LETTERS",
    "MAX_ANSWER_CHARS",
    "REL_TOL",
    "TEXT_COMMANDS",
    "choice_letter",
    "compare_nodes",
    "fast_equal",
    "find_group_end",
    "normalize",
    "numbers_equal",
    "parse_number",
    "split_structure",
    "strip_assignments",
]

MAX_ANSWER_CHARS = 1000  # Longer extracted answers are not graded (score 0), by design.
REL_TOL = 1e-9  # A decimal against an irrational value (used in rewards.math_symbolic).
MAX_ELEMENTS = 64

Number = Union[Fraction, float]  # float only for +-inf.

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": r"\times ", "\u00f7": r"\div ",
    "\u00b7": r"\cdot ", "\u22c5": r"\cdot ", "\u221a": r"\sqrt", "\u03c0": r"\pi ",
    "\u221e": r"\infty ", "\u00b0": r"^\circ", "\u2264": r"\le ", "\u2265": r"\ge ",
    "\u2260": r"\ne ", "\u222a": r"\cup ", "\u00b2": "^2", "\u00b3": "^3", "\u00a0": " ",
    "\u2009": "", "\u202f": "",
}
TEXT_COMMANDS = ("text", "textbf", "textit", "textrm", "textnormal", "texttt", "textsf",
                  "mathrm", "mathbf", "mathit", "mathsf", "mathtt", "mbox", "operatorname",
                  "boldsymbol", "bm")
_MATH_WORDS = frozenset(("sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt",
                         "pi", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "inf",
                         "infty", "infinity", "e", "i"))
# Units that may be a single letter or clash with variables: stripped only after a number.
_UNIT_WORDS = frozenset((
    "m", "cm", "mm", "km", "g", "kg", "mg", "s", "sec", "min", "h", "hr", "hrs", "l", "ml",
    "in", "ft", "yd", "mi", "lb", "lbs", "oz", "mph", "units", "unit", "degrees", "degree"))
GREEK_LETTERS = ("alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
          "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau",
          "upsilon", "phi", "varphi", "chi", "psi", "omega")

_SIZING = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)"
                     r"(?![A-Za-z])")
_SPACING = re.compile(r"(?<!\\)\\[!,;:> ]|"
                      r"\\(?:quad|qquad|displaystyle|textstyle|limits)(?![A-Za-z])")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|\\degree(?![A-Za-z])")
_MIXED = re.compile(r"(?<![\d.}^_a-zA-Z\\])(\d+)\s*\\frac(?:\{(\d+)\}|(\d))(?:\{(\d+)\}|(\d))")
_UNIT_MARK = "\x00"
_UNIT_LEFTOVER = re.compile(_UNIT_MARK + r"\s*(?:\^\s*\{?\s*[23]\s*\}?)?")
_OR_AND_TEXT = re.compile(r"\\(?:text|mbox|textrm)\s*\{\s*(?:or|and|,)\s*\}")
_OR_AND = re.compile(r"\s+(?:or|and)\s+")
_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)
_MEMBERSHIP = re.compile(r"^[A-Za-z]\s*\\in\s*")  # x \in [-2, 7] is the interval.
_BRACED_SUB = re.compile(r"_\{([A-Za-z0-9]+)\}")  # 4210_{5} == 4210_5, x_{1} == x_1.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_THOUSANDS_SPACE = re.compile(r"[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
_WORDS = re.compile(r"[A-Za-z][A-Za-z .'-]*")
_UNIT_TOKEN = re.compile(r"([A-Za-z]+)(?:\^\{?[23]\}?)?\.?")
_TEXT_ANSWER = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_DEC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SLASH = re.compile(r"([+-]?\d+)/(\d+)")
_FRAC = re.compile(r"([+-]?)\\frac(?:\{([+-]?\d+)\}|(\d))(?:\{(\d+)\}|(\d))")
_INF = re.compile(r"([+-]?)(?:\\infty|infty|inf|infinity|oo)")
_ASSIGN = re.compile(
    r"\s*(?:[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?'*|\\(?:" + "|".join(GREEK_LETTERS) +
    r")(?:_\{?[A-Za-z0-9]+\}?)?|[A-Za-z]\s*\(\s*[A-Za-z]\s*\))\s*=(?![=<>])\s*(.+)", re.DOTALL)
_MATRIX = re.compile(r"\\begin\{([pbBvV]?matrix|array)\}(.*)\\end\{\1\}", re.DOTALL)
_CHOICE_GOLD = re.compile(r"\(?([A-E])\)?")
_CHOICE_PRED = re.compile(r"\(([A-E])\)|([A-E])\)|([A-E])(?:$|[\s.:])")


def _command_pattern(names) -> re.Pattern:
  return re.compile(r"\\(?:" + "|".join(names) + r")(?![A-Za-z])\s*\{")


_TEXT_PATTERN = _command_pattern(TEXT_COMMANDS)


def _replace_command(s: str, pattern: re.Pattern, fn: Callable[[str, str, str], str]) -> str:
  """Replaces every `\\name{arg}` matched by `pattern` by fn(before, arg, after)."""
  if "\\" not in s:
    return s
  for _ in range(MAX_ANSWER_CHARS):  # Each round removes one occurrence: bounded.
    m = pattern.search(s)
    if not m:
      return s
    end = find_group_end(s, m.end() - 1)
    if end < 0:
      return s[:m.start()] + s[m.end():]  # Unclosed: drop the command, keep the rest.
    before, arg, after = s[:m.start()], s[m.end():end], s[end + 1:]
    s = before + fn(before, arg, after) + after
  return s


def _text_or_unit(before: str, arg: str, after: str) -> str:
  words = arg.strip()
  is_words = (_WORDS.fullmatch(words) is not None and
              sum(c.isalpha() for c in words) >= 2)
  rest_has_number = any(c.isdigit() for c in before + after)
  if is_words and rest_has_number:
    return _UNIT_MARK  # A unit such as \text{ cm}: dropped, with a following ^2 or ^3.
  return " " + arg + " " if is_words else arg


def _strip_units(s: str) -> str:
  tokens = s.split(" ")
  while len(tokens) > 1:
    m = _UNIT_TOKEN.fullmatch(tokens[-1])
    rest = " ".join(tokens[:-1])
    if not m or not any(c.isdigit() for c in rest):
      break
    word = m.group(1)
    if word.lower() in _MATH_WORDS:
      break
    if len(word) < 2 and word not in _UNIT_WORDS:
      break
    tokens.pop()
  return " ".join(tokens)


def normalize(s: str) -> str:
  """A canonical string for a final answer (see the module docstring for the rules)."""
  s = str(s).strip()
  if _DEC.fullmatch(s):
    return s  # The common case, a plain number, has nothing to normalize.
  if not s.isascii():
    for k, v in _UNICODE.items():
      if k in s:
        s = s.replace(k, v)
  s = unbox(s)
  s = s.replace("\\$", " ").replace("$", " ")
  for delim in ("\\(", "\\)", "\\[", "\\]"):
    s = s.replace(delim, " ")
  s = s.replace("\\left.", "").replace("\\right.", "")
  s = _SIZING.sub("", s)
  s = s.replace("{,}", "")
  s = re.sub(r"(?<=\d)\\,(?=\d{3})", "", s)
  s = _SPACING.sub(" ", s)
  s = s.replace("~", " ")
  for a, b in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"),
               ("\\dbinom", "\\binom"), ("\\tbinom", "\\binom"), ("\\langle", "("),
               ("\\rangle", ")"), ("\\leqslant", "\\le"), ("\\geqslant", "\\ge"),
               ("\\leq", "\\le"), ("\\geq", "\\ge"), ("\\neq", "\\ne")):
    s = s.replace(a, b)
  s = _DEGREE.sub(" ", s)
  s = s.replace("\\%", " ").replace("%", " ")
  s = _OR_AND_TEXT.sub(",", s)
  s = _replace_command(s, _TEXT_PATTERN, _text_or_unit)
  s = _UNIT_LEFTOVER.sub(" ", s)
  # A whole number right before a numeric fraction is a mixed number: 2\frac{1}{2} = 5/2.
  s = _MIXED.sub(lambda m: "({}+\\frac{{{}}}{{{}}})".format(
      m.group(1), m.group(2) or m.group(3), m.group(4) or m.group(5)), s)
  s = " ".join(s.split())
  s = _PREFIX.sub("", s)
  s = _MEMBERSHIP.sub("", s)
  s = _BRACED_SUB.sub(r"_\1", s)
  s = _OR_AND.sub(", ", s)
  s = s.rstrip(" .")
  s = _strip_units(s)
  if _THOUSANDS.fullmatch(s) or _THOUSANDS_SPACE.fullmatch(s):
    s = s.replace(",", "").replace(" ", "")
  return s.strip()


def _split_top(s: str, sep: str) -> Optional[list[str]]:
  """Splits on `sep` outside brackets; None when brackets do not balance."""
  parts, depth, start, i, n = [], 0, 0, 0, len(s)
  while i < n:
    c = s[i]
    if c in "([{":
      depth += 1
    elif c in ")]}":
      depth -= 1
      if depth < 0:
        return None
    elif depth == 0 and s.startswith(sep, i):
      parts.append(s[start:i])
      i += len(sep)
      start = i
      continue
    i += 1
  if depth != 0:
    return None
  parts.append(s[start:])
  return [p.strip() for p in parts]


def _encloses(s: str) -> bool:
  """True when s[0] opens a bracket closed exactly by s[-1] (any kind: intervals mix them)."""
  if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
    return False
  depth = 0
  for i, c in enumerate(s):
    if c in "([{":
      depth += 1
    elif c in ")]}":
      depth -= 1
      if depth == 0 and i != len(s) - 1:
        return False
  return depth == 0


def _assignment(s: str) -> Optional[tuple[str, str]]:
  """(lhs, rhs) when s is `symbol = value` (x = 2, \\theta=1, f(x) = ...), else None."""
  m = _ASSIGN.fullmatch(s)
  rhs = m.group(1) if m else ""
  if m and "=" not in rhs and "\\le" not in rhs and "\\ge" not in rhs:
    return s[:s.index("=")].replace(" ", ""), rhs.strip()
  return None


def _is_relation(s: str) -> bool:
  return any(op in s for op in ("=", "<", ">", "\\le", "\\ge", "\\ne", "\\lt", "\\gt"))


def strip_assignments(a: str, b: str) -> tuple[str, str]:
  """Drops `x =` from an answer compared with a value (x = 2 vs 2), or from both sides when
  they assign the same symbol; two different relations stay relations (x+y=1 vs y=1-x)."""
  sa, sb = _assignment(a), _assignment(b)
  if sa and sb and sa[0] == sb[0]:
    return sa[1], sb[1]
  if sa and not _is_relation(b):
    return sa[1], b
  if sb and not _is_relation(a):
    return a, sb[1]
  return a, b


Node = tuple  # ("expr", s) | ("seq", open, close, items) | ("set"|"list"|"union", items)
#              | ("matrix", rows)


def split_structure(s: str) -> Node:
  """Parses a normalized answer into nested tuples/sets/intervals/lists of expressions."""
  s = s.strip()
  m = _MATRIX.fullmatch(s)
  if m:
    body = m.group(2)
    if m.group(1) == "array":
      body = re.sub(r"^\s*\{[lcr|\s]*\}", "", body)
    rows = [r for r in (r.strip() for r in body.split("\\\\")) if r]
    return ("matrix", tuple(tuple(split_structure(c) for c in r.split("&")) for r in rows))
  parts = _split_top(s, "\\cup")
  if parts is not None and len(parts) > 1:
    return ("union", tuple(split_structure(p) for p in parts[:MAX_ELEMENTS]))
  parts = _split_top(s, ",")
  if parts is not None and len(parts) > 1:
    return ("list", tuple(split_structure(p) for p in parts[:MAX_ELEMENTS]))
  if s.startswith("\\{") and s.endswith("\\}"):
    inner = s[2:-2].strip()
    parts = _split_top(inner, ",")
    if parts is not None:
      return ("set", tuple(split_structure(p) for p in parts[:MAX_ELEMENTS] if p))
  if _encloses(s):
    parts = _split_top(s[1:-1], ",")
    if parts is not None and len(parts) > 1:
      return ("seq", s[0], s[-1], tuple(split_structure(p) for p in parts[:MAX_ELEMENTS]))
  if s.count("\\pm") == 1:
    return ("list", (("expr", s.replace("\\pm", "+")), ("expr", s.replace("\\pm", "-"))))
  return ("expr", s)


Tri = Optional[bool]  # True, False, or None for "cannot decide here".


def _all(results) -> Tri:
  undecided = False
  for r in results:
    if r is False:
      return False
    if r is None:
      undecided = True
  return None if undecided else True


def _unordered(a: tuple, b: tuple, eq: Callable[[Node, Node], Tri]) -> Tri:
  if len(a) != len(b):
    return False
  used = [False] * len(b)
  undecided = False
  for x in a:
    for j, y in enumerate(b):
      if used[j]:
        continue
      r = eq(x, y)
      if r:
        used[j] = True
        break
      if r is None:
        undecided = True
    else:
      return None if undecided else False
  return True


def compare_nodes(a: Node, b: Node, elem_equal: Callable[[str, str], Tri]) -> Tri:
  """Structural equality of two `split_structure` trees; leaves compared by `elem_equal`."""
  eq = lambda x, y: compare_nodes(x, y, elem_equal)
  ka, kb = a[0], b[0]
  if ka == "expr" and kb == "expr":
    return elem_equal(a[1], b[1])
  if ka == "seq" and kb == "seq":
    if a[1] != b[1] or a[2] != b[2] or len(a[3]) != len(b[3]):
      return False
    return _all(eq(x, y) for x, y in zip(a[3], b[3]))
  if {ka, kb} == {"list", "seq"}:
    la = a[1] if ka == "list" else a[3]
    lb = b[1] if kb == "list" else b[3]
    seq = a if ka == "seq" else b
    if seq[1] != "(" or len(la) != len(lb):  # A bare list reads as a point, not an interval.
      return False
    return _all(eq(x, y) for x, y in zip(la, lb))
  if ka in ("set", "list") and kb in ("set", "list"):
    return _unordered(a[1], b[1], eq)
  if ka == "union" and kb == "union":
    return _unordered(a[1], b[1], eq)
  if ka == "matrix" and kb == "matrix":
    if len(a[1]) != len(b[1]) or any(len(x) != len(y) for x, y in zip(a[1], b[1])):
      return False
    return _all(eq(x, y) for ra, rb in zip(a[1], b[1]) for x, y in zip(ra, rb))
  return False


def parse_number(s: str) -> Optional[Number]:
  """A plain decimal, a/b, \\frac{a}{b} or +-infinity as an exact number; None otherwise."""
  t = s.replace(" ", "")
  if len(t) > 400:  # Python's int parsing is quadratic in the digits; keep it trivial.
    return None
  if _DEC.fullmatch(t):
    return Fraction(t)
  m = _SLASH.fullmatch(t)
  if m and int(m.group(2)) != 0:
    return Fraction(int(m.group(1)), int(m.group(2)))
  m = _FRAC.fullmatch(t)
  if m:
    num = int(m.group(2) or m.group(3))
    den = int(m.group(4) or m.group(5))
    if den != 0:
      return Fraction(-num if m.group(1) == "-" else num, den)
  m = _INF.fullmatch(t)
  if m:
    return float("-inf") if m.group(1) == "-" else float("inf")
  return None


def numbers_equal(a: Number, b: Number) -> bool:
  """Exact: every number `parse_number` reads is rational (or an infinity)."""
  return a == b


def _is_text(s: str) -> bool:
  return (_TEXT_ANSWER.fullmatch(s) is not None and
          any(len(w) >= 3 and w.lower() not in _MATH_WORDS for w in s.split(" ")))


def fast_equal(a: str, b: str) -> Tri:
  """Leaf equality decided without sympy: same string, same words, or plain numbers."""
  if a == b:
    return True
  a, b = strip_assignments(a, b)
  if a == b:
    return True
  ta, tb = _is_text(a), _is_text(b)
  if ta and tb:
    return a.casefold() == b.casefold()
  na, nb = parse_number(a), parse_number(b)
  if na is not None and nb is not None:
    return numbers_equal(na, nb)
  if (ta and nb is not None) or (tb and na is not None):
    return False
  return None


def choice_letter(s: str, *, gold: bool) -> Optional[str]:
  """The multiple-choice letter of a normalized answer: `A`, `(A)`; a prediction may go on."""
  if gold:
    m = _CHOICE_GOLD.fullmatch(s)
    return m.group(1) if m else None
  m = _CHOICE_PRED.match(s)
  if not m:
    return None
  return m.group(1) or m.group(2) or m.group(3)
