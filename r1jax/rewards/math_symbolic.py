"""Symbolic equality of maths answers with sympy: the grading worker's entry point.

Place in the pipeline: `rewards.math.is_equivalent` sends here (through `rewards.timeout`, under
a hard timeout, in a worker process) only the answers its in-process checks could not decide.
`equal_strings` splits both answers into structures (`rewards.math_normalize`), parses leaves
with `rewards.math_parse`, and compares them.

Equality: identical after sympy's automatic evaluation; else constants compare exactly when
both are rational (decimals are parsed as exact rationals: 0.333 != 1/3, 10^{12}+1 != 10^{12}),
a rational against an irrational within a relative 1e-9 (0.70710678118 == `\\frac{\\sqrt2}{2}`),
two irrationals numerically at 50 digits (`\\frac{\\sqrt2}{2}` == `\\frac{1}{\\sqrt2}`);
expressions with symbols compare at five fixed rational probe points of both signs (so
`\\sqrt{x^2}` == |x| but |x| != x), with `simplify` as a last resort when fewer than three
points are defined. Equations are equal when their sides' differences are proportional
(`2x+2y=2` == `x+y=1`); inequalities when proportional by a positive factor after flipping `>`
to `<`; relations without unknowns only when they relate the same values ("1=2" != "3=4"). An unparsable leaf compares as text, case-insensitively and ignoring spaces.
"""

from __future__ import annotations

from typing import Optional

import sympy

from r1jax.rewards import math_normalize as mn
from r1jax.rewards.math_parse import ParseError, parse

__all__ = ["equal_strings", "expr_equal"]

_PROBES = tuple(sympy.Rational(v) for v in ("0.7236", "-1.3114", "0.4127", "-1.8391",
                                              "2.9562"))


def _numbers_equal(x, y) -> Optional[bool]:
  """Equality of two constant expressions; None when either is not a finite number.

  Rationals (every integer, fraction and decimal we parse) compare exactly. A rational against
  an irrational matches within a relative REL_TOL (a decimal approximation such as 1.41421356237
  for sqrt 2); two irrationals within a relative 1e-30 at 50 digits (equal up to rounding).
  """
  if x.is_Rational and y.is_Rational:
    return bool(x == y)
  vx, vy = sympy.N(x, 50), sympy.N(y, 50)
  bad = (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)
  if not (vx.is_number and vy.is_number) or vx.has(*bad) or vy.has(*bad):
    return bool(x == y) if x.has(sympy.oo, -sympy.oo) else None
  tol = mn.REL_TOL if (x.is_Rational or y.is_Rational) else 1e-30
  scale = max(abs(vx), abs(vy))
  return bool(abs(vx - vy) <= tol * scale) if scale != 0 else True


def _probe_points(symbols) -> list[dict]:
  """Five fixed points with exact rational coordinates of both signs (|x| != x shows up)."""
  syms = sorted(symbols, key=lambda s: s.name)
  return [{s: _PROBES[(k + 2 * j) % len(_PROBES)] + sympy.Rational(173 * j, 1000)
           for j, s in enumerate(syms)} for k in range(len(_PROBES))]


def expr_equal(a, b) -> bool:
  """Equality of two sympy expressions (see the module docstring)."""
  if a == b:
    return True
  diff = a - b
  if diff == 0:
    return True
  symbols = a.free_symbols | b.free_symbols
  if not symbols:
    return bool(_numbers_equal(a, b))
  agreed = 0
  for point in _probe_points(symbols):
    va, vb = a.subs(point), b.subs(point)
    result = _numbers_equal(va, vb)
    if result is False:
      return False
    agreed += result is True
  if agreed >= 3:
    return True
  return sympy.simplify(diff) == 0


def _proportional(da, db, *, positive: bool) -> bool:
  """Whether da = c * db for one constant c != 0 (c > 0 when `positive`), at the probes."""
  if expr_equal(da, db):
    return True
  if not positive and expr_equal(da, -db):
    return True
  ratios = []
  for point in _probe_points(da.free_symbols | db.free_symbols):
    va, vb = da.subs(point), db.subs(point)
    if vb == 0 or not (va.is_number and vb.is_number):
      continue
    ratios.append(va / vb)
  if len(ratios) < 3:
    return False
  first = ratios[0]
  if not (first.is_real and first != 0) or (positive and first < 0):
    return False
  return all(_numbers_equal(r, first) for r in ratios[1:])


def _relation_equal(a: tuple, b: tuple) -> bool:
  def canonical(rel):
    _, op, lhs, rhs = rel
    if op in (">", ">="):
      return {">": "<", ">=": "<="}[op], rhs - lhs
    return op, lhs - rhs
  opa, da = canonical(a)
  opb, db = canonical(b)
  if opa != opb:
    return False
  if not (getattr(da, "free_symbols", None) or getattr(db, "free_symbols", None)):
    # Statements without unknowns: proportional differences would make "1=2" equal "3=4";
    # they are the same answer only when they relate the same two values.
    def sides(rel):
      _, op, lhs, rhs = rel
      return (rhs, lhs) if op in (">", ">=") else (lhs, rhs)
    (la, ra), (lb, rb) = sides(a), sides(b)
    return expr_equal(la, lb) and expr_equal(ra, rb)
  return _proportional(da, db, positive=opa not in ("=", "!="))


def _leaf_equal(x: str, y: str) -> bool:
  fast = mn.fast_equal(x, y)
  if fast is not None:
    return fast
  x, y = mn.strip_assignments(x, y)
  try:
    ex, ey = parse(x), parse(y)
  except (ParseError, TypeError, ValueError, ZeroDivisionError):
    return x.replace(" ", "").casefold() == y.replace(" ", "").casefold()
  if isinstance(ex, tuple) or isinstance(ey, tuple):
    return isinstance(ex, tuple) and isinstance(ey, tuple) and _relation_equal(ex, ey)
  return expr_equal(ex, ey)


def equal_strings(pred: str, gold: str) -> bool:
  """Worker entry point: are two normalized answers equal (structures, then sympy leaves)?"""
  result = mn.compare_nodes(mn.split_structure(pred), mn.split_structure(gold), _leaf_equal)
  return bool(result)
