"""Parent-side verdicts for assert tests: split each test into calls for the child and checks.

Place in the pipeline: `rewards.code.run_program` plans every assert-style test with
`plan_test` before any candidate code runs. An assertion of a common form (`assert f(x) ==
y`, `assert candidate(x) == y`, `assert abs(f(x) - y) < tol`, `assert not f(x)`, `assert
f(x)`, `assert tuple(f(x)) == (...)`, HumanEval's `check(candidate)` bodies) becomes:
- holes: the source of each call of the code under test (`f(x)` in a plain assert string,
  only `candidate(x)` in a `check`), evaluated in the sandboxed child, which sends back only
  the value as tagged JSON data;
- a check: the rest of the assertion (literals, comparisons, arithmetic, `abs`, `len`,
  `tuple`, `sorted`, `math.isclose`, ...), evaluated here, in the parent, on the decoded
  values. The expected values never enter the child, and a returned object cannot override
  `==` (only exact built-in values come back), so the child cannot forge the verdict; it
  can only return values, as a solution would.
Statements that do not reduce (loops, assignments, assertions over names those bind) form
the test's residual, run in a fresh child of its own that reports pass/fail: that verdict is
forgeable by code walking the interpreter's frames, and the result marks such tests `weak`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import math
import operator
from typing import Any, Callable, Optional

__all__ = ["Assertion", "HoleError", "Plan", "check_assertion", "decode_value", "plan_test"]

# Pure functions the parent may apply to returned values (names as tests write them).
_SAFE_CALLS: dict[str, Callable[..., Any]] = {
    "abs": abs, "len": len, "tuple": tuple, "list": list, "set": set, "frozenset": frozenset,
    "sorted": sorted, "round": round, "int": int, "float": float, "str": str, "bool": bool,
    "min": min, "max": max, "sum": sum, "all": all, "any": any, "repr": repr,
    "math.fabs": math.fabs, "math.isclose": math.isclose, "math.sqrt": math.sqrt,
    "math.floor": math.floor, "math.ceil": math.ceil, "math.isnan": math.isnan,
    "math.isinf": math.isinf,
}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
           ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Is: operator.is_, ast.IsNot: operator.is_not,
           ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
          ast.Invert: operator.invert}
_MAX_SEQ = 1 << 20  # Elements a parent-side repetition may build.
_HOLE = "__r1jax_hole_"


class _Irreducible(Exception):
  pass


class HoleError(Exception):
  """A value the assertion needs is missing: the call raised, timed out or sent no data."""


@dataclasses.dataclass(frozen=True)
class Assertion:
  """One assertion judged in the parent: `expr` with holes `__r1jax_hole_<k>` (k indexes the
  test's hole list)."""
  expr: ast.expr
  source: str


@dataclasses.dataclass(frozen=True)
class Plan:
  """How one assert test is checked.

  Attributes:
    setup: statements the child runs (in the program's namespace) before the holes:
      the test's imports and top-level definitions (HumanEval's METADATA, helpers).
    local_setup: statements run into the holes' local scope (imports inside `check`).
    holes: expression sources evaluated in the child.
    assertions: checks of the holes' values, judged here.
    residual: source run in a fresh child, pass = nothing raised; None when all reduced.
  """
  setup: str
  local_setup: str
  holes: tuple[str, ...]
  assertions: tuple[Assertion, ...]
  residual: Optional[str]


def _call_name(func: ast.expr) -> Optional[str]:
  if isinstance(func, ast.Name):
    return func.id
  if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
      and func.value.id == "math"):
    return "math." + func.attr
  return None


class _Reducer:
  """Rewrites an assertion's expression, cutting candidate calls out as holes."""

  def __init__(self, bound: set[str], holes: list[str], candidate_ok: bool):
    self.bound = bound  # Names the test binds at run time: a hole using them cannot move.
    self.holes = holes
    self.candidate_ok = candidate_ok  # `candidate` is bound in the holes' scope.

  def hole(self, node: ast.expr) -> ast.expr:
    for sub in ast.walk(node):
      if isinstance(sub, ast.Name) and sub.id in self.bound:
        raise _Irreducible(sub.id)
      if isinstance(sub, (ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await)):
        raise _Irreducible(type(sub).__name__)
    self.holes.append(ast.unparse(node))
    return ast.Name(id=f"{_HOLE}{len(self.holes) - 1}", ctx=ast.Load())

  def __call__(self, node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Constant):
      return node
    if isinstance(node, ast.Name):
      if node.id in ("True", "False", "None"):
        return node
      raise _Irreducible(node.id)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
      return type(node)(elts=[self(e) for e in node.elts], **(
          {"ctx": ast.Load()} if not isinstance(node, ast.Set) else {}))
    if isinstance(node, ast.Dict):
      if any(k is None for k in node.keys):
        raise _Irreducible("**")
      return ast.Dict(keys=[self(k) for k in node.keys], values=[self(v) for v in node.values])
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
      return ast.UnaryOp(op=node.op, operand=self(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
      return ast.BinOp(left=self(node.left), op=node.op, right=self(node.right))
    if isinstance(node, ast.BoolOp):
      return ast.BoolOp(op=node.op, values=[self(v) for v in node.values])
    if isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
      return ast.Compare(left=self(node.left), ops=node.ops,
                         comparators=[self(c) for c in node.comparators])
    if isinstance(node, ast.IfExp):
      return ast.IfExp(test=self(node.test), body=self(node.body), orelse=self(node.orelse))
    if isinstance(node, ast.Subscript):
      return ast.Subscript(value=self(node.value), slice=self(node.slice), ctx=ast.Load())
    if isinstance(node, ast.Slice):
      return ast.Slice(*(self(p) if p is not None else None
                         for p in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Call):
      name = _call_name(node.func)
      if name in _SAFE_CALLS and name not in self.bound:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords):
          raise _Irreducible("*args")
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[self(a) for a in node.args],
                        keywords=[ast.keyword(arg=k.arg, value=self(k.value))
                                  for k in node.keywords])
      if isinstance(node.func, ast.Name):
        if self.candidate_ok and node.func.id != "candidate":
          # In a check, a call of anything else (a helper, the entry point by name) computes
          # an expected value in the child, where the candidate could change it.
          raise _Irreducible(node.func.id)
        return self.hole(node)  # A call of the code under test.
    raise _Irreducible(type(node).__name__)


def _bound_names(stmts: list[ast.stmt]) -> set[str]:
  """Names bound by running `stmts` (assignments, loops, defs), except by imports."""
  names = set()
  for stmt in stmts:
    for node in ast.walk(stmt):
      if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        names.add(node.id)
      elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(node.name)
      elif isinstance(node, ast.arg):
        names.add(node.arg)
      elif isinstance(node, ast.ExceptHandler) and node.name:
        names.add(node.name)
  return names


def _is_trivial(stmt: ast.stmt) -> bool:
  return isinstance(stmt, ast.Pass) or (
      isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))


def _split(body: list[ast.stmt], bound: set[str], candidate_ok: bool
           ) -> tuple[list[ast.stmt], list[str], list[Assertion], list[ast.stmt]]:
  """(imports, holes, assertions, residual statements) of a statement list."""
  imports, holes, assertions, residual = [], [], [], []
  for stmt in body:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
      imports.append(stmt)
      continue
    if _is_trivial(stmt):
      continue
    if isinstance(stmt, ast.Assert):
      mark = len(holes)
      try:
        expr = _Reducer(bound, holes, candidate_ok)(stmt.test)
        assertions.append(Assertion(expr=ast.fix_missing_locations(expr),
                                    source=ast.unparse(stmt)))
        continue
      except _Irreducible:
        del holes[mark:]
    residual.append(stmt)
  return imports, holes, assertions, residual


@functools.lru_cache(maxsize=4096)  # A task scores the same tests for R samples a prompt.
def plan_test(test: str, *, entry_point: Optional[str] = None) -> Plan:
  """Plans an assert test: statements (`entry_point` None) or a module defining `check`.

  With `entry_point`, `test` is HumanEval's test module: top-level definitions and a
  `def check(candidate)` whose body's assertions are reduced, `candidate` bound to the
  program's `entry_point`. Raises SyntaxError when `test` does not parse.
  """
  module = ast.parse(test)
  if entry_point is None:
    bound = _bound_names(module.body)
    imports, holes, assertions, residual = _split(module.body, bound, candidate_ok=False)
    rest = imports + residual
    return Plan(setup=ast.unparse(ast.Module(body=imports, type_ignores=[])), local_setup="",
                holes=tuple(holes), assertions=tuple(assertions),
                residual=ast.unparse(ast.Module(body=rest, type_ignores=[])) if residual
                else None)
  checks = [s for s in module.body if isinstance(s, ast.FunctionDef) and s.name == "check"]
  if len(checks) != 1 or [a.arg for a in checks[0].args.args] != ["candidate"]:
    raise ValueError("a check test must define exactly one `def check(candidate)`.")
  check = checks[0]
  top = [s for s in module.body if s is not check]
  # Top-level names are set up in the program's namespace, so holes may use them; names bound
  # inside `check` exist only while it runs.
  bound = _bound_names(check.body) - {"candidate"}
  imports, holes, assertions, residual = _split(check.body, bound, candidate_ok=True)
  res_src = None
  if residual:
    res_check = ast.FunctionDef(name="check", args=check.args, body=imports + residual,
                                decorator_list=[], returns=None, type_comment=None)
    call = ast.Expr(ast.Call(func=ast.Name("check", ast.Load()),
                             args=[ast.Name(entry_point, ast.Load())], keywords=[]))
    res_src = ast.unparse(ast.fix_missing_locations(
        ast.Module(body=top + [res_check, call], type_ignores=[])))
  return Plan(setup=ast.unparse(ast.Module(body=top, type_ignores=[])),
              local_setup=ast.unparse(ast.Module(body=imports, type_ignores=[])),
              holes=tuple(holes), assertions=tuple(assertions), residual=res_src)


def decode_value(text: str) -> Any:
  """The value the child sent (tagged JSON of built-in types), rebuilt here; ValueError if
  malformed."""
  return _decode(json.loads(text), 0)


def _decode(d: Any, depth: int) -> Any:
  if depth > 64:
    raise ValueError("value nested too deeply")
  if d is None or isinstance(d, bool):
    return d
  if not isinstance(d, dict) or len(d) != 1:
    raise ValueError("malformed value")
  (tag, x), = d.items()
  if tag == "i" and isinstance(x, str):
    return int(x)
  if tag == "f" and isinstance(x, str):
    return float(x)
  if tag == "c" and isinstance(x, list) and len(x) == 2:
    return complex(float(x[0]), float(x[1]))
  if tag == "s" and isinstance(x, str):
    return x
  if tag == "b" and isinstance(x, str):
    return bytes.fromhex(x)
  if tag in ("l", "t", "S", "F") and isinstance(x, list):
    items = [_decode(e, depth + 1) for e in x]
    return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
  if tag == "d" and isinstance(x, list):
    return {_decode(k, depth + 1): _decode(v, depth + 1) for k, v in x}
  raise ValueError("malformed value")


def _size(v: Any) -> int:
  return len(v) if isinstance(v, (str, bytes, list, tuple)) else 1


def _eval(node: ast.expr, values: dict[int, Any]) -> Any:
  """Evaluates a reduced assertion on plain values (no name lookup, no attribute access)."""
  if isinstance(node, ast.Constant):
    return node.value
  if isinstance(node, ast.Name):
    if node.id.startswith(_HOLE):
      k = int(node.id[len(_HOLE):])
      if k not in values:
        raise HoleError(k)
      return values[k]
    return {"True": True, "False": False, "None": None}[node.id]
  if isinstance(node, ast.Tuple):
    return tuple(_eval(e, values) for e in node.elts)
  if isinstance(node, ast.List):
    return [_eval(e, values) for e in node.elts]
  if isinstance(node, ast.Set):
    return {_eval(e, values) for e in node.elts}
  if isinstance(node, ast.Dict):
    return {_eval(k, values): _eval(v, values) for k, v in zip(node.keys, node.values)}
  if isinstance(node, ast.UnaryOp):
    return _UNARY[type(node.op)](_eval(node.operand, values))
  if isinstance(node, ast.BinOp):
    a, b = _eval(node.left, values), _eval(node.right, values)
    # Guards: a returned value must not make the parent build something huge.
    if isinstance(node.op, ast.Pow) and isinstance(a, int) and isinstance(b, int) and (
        abs(b) > 4096 and abs(a) > 1):
      raise ValueError("power too large to check")
    if isinstance(node.op, ast.Mult) and (
        (isinstance(b, int) and _size(a) * abs(b) > _MAX_SEQ)
        or (isinstance(a, int) and _size(b) * abs(a) > _MAX_SEQ)):
      raise ValueError("repetition too large to check")
    return _BINOPS[type(node.op)](a, b)
  if isinstance(node, ast.BoolOp):
    result = None
    for v in node.values:  # Short-circuits like Python: later holes may stay unneeded.
      result = _eval(v, values)
      if isinstance(node.op, ast.And) and not result:
        return result
      if isinstance(node.op, ast.Or) and result:
        return result
    return result
  if isinstance(node, ast.Compare):
    left = _eval(node.left, values)
    for op, comp in zip(node.ops, node.comparators):
      right = _eval(comp, values)
      if not _CMPOPS[type(op)](left, right):
        return False
      left = right
    return True
  if isinstance(node, ast.IfExp):
    return _eval(node.body if _eval(node.test, values) else node.orelse, values)
  if isinstance(node, ast.Subscript):
    return _eval(node.value, values)[_eval(node.slice, values)]
  if isinstance(node, ast.Slice):
    return slice(*(_eval(p, values) if p is not None else None
                   for p in (node.lower, node.upper, node.step)))
  if isinstance(node, ast.Call):
    fn = _SAFE_CALLS[node.func.id]
    return fn(*(_eval(a, values) for a in node.args),
              **{k.arg: _eval(k.value, values) for k in node.keywords})
  raise ValueError(f"cannot evaluate {type(node).__name__}")


def check_assertion(assertion: Assertion, values: dict[int, Any]) -> bool:
  """Whether the assertion holds for the holes' decoded values (False if it raises, as an
  assert statement that raises fails its test)."""
  try:
    return bool(_eval(assertion.expr, values))
  except Exception:  # pylint: disable=broad-except
    return False
