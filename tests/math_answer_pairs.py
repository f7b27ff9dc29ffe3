"""Answer pairs built from the MATH-500 gold answers (tests/fixtures/math500_answers.json).

Used by tests/rewards_math_backends_test.py to compare r1jax's grader with math-verify. Each
pair is (kind, prediction, gold); the kinds are forms a model may write: the same answer
(identity), a fraction written plainly or as a decimal, \\left/\\right dropped, thousands
separators, units, percent, a set in another order, and different answers (integer + 1,
another problem's answer, an open interval closed).
"""

import json
import os
import re
from fractions import Fraction

_FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "math500_answers.json")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_INT = re.compile(r"^-?\d+$")
_INTERVAL = re.compile(r"^\((-?[\w\\]+),\s*(-?[\w\\]+)\)$")
_SET = re.compile(r"^\\\{(.+)\\\}$")


def gold_answers() -> list[str]:
  with open(_FIXTURE, encoding="utf-8") as f:
    return [a["answer"] for a in json.load(f)["answers"]]


def _terminating(q: Fraction) -> bool:
  d = q.denominator
  for p in (2, 5):
    while d % p == 0:
      d //= p
  return d == 1


def pairs() -> list[tuple[str, str, str]]:
  golds = gold_answers()
  out = []
  for k, g in enumerate(golds):
    out.append(("identity", g, g))
    other = golds[(k + 1) % len(golds)]
    if other != g:
      out.append(("other_answer", other, g))
    m = _FRAC.match(g)
    if m:
      sign, a, b = m.groups()
      out.append(("frac_plain", f"{sign}{a}/{b}", g))
      q = Fraction(int(a), int(b)) * (-1 if sign else 1)
      if _terminating(q):
        out.append(("frac_decimal", str(float(q)), g))
    if "\\left" in g or "\\right" in g:
      out.append(("no_left_right", g.replace("\\left", "").replace("\\right", ""), g))
    if _INT.match(g):
      n = int(g)
      out.append(("plus_one", str(n + 1), g))
      out.append(("units", g + " \\text{ cm}", g))
      out.append(("percent", g + "\\%", g))
      if abs(n) >= 1000:
        out.append(("thousands", f"{n:,}", g))
    m = _INTERVAL.match(g)
    if m:
      out.append(("closed_interval", f"[{m.group(1)}, {m.group(2)}]", g))
    m = _SET.match(g)
    if m and "," in m.group(1):
      items = [s.strip() for s in m.group(1).split(",")]
      out.append(("set_reordered", "\\{" + ", ".join(reversed(items)) + "\\}", g))
  return out
