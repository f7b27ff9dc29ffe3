"""A small LaTeX / plain-text maths parser into sympy, written so model text is never eval'ed.

Place in the pipeline: `rewards.math_symbolic` (in a grading worker process) parses answers that
the in-process checks could not decide. This is our own recursive descent over a token list:
model text is never passed to `eval` or to sympy's `parse_expr` (which evaluates Python code).

What it reads: numbers (exact rationals; two numbers in a row are an error, not a product),
letters as symbols with implicit multiplication (`2x`, `xy`, `2\\sqrt{3}`, `x(x+1)`), `e` and
`i` as Euler's number and the imaginary unit, `\\pi`, `\\infty`, Greek letters, subscripts
(`x_1`), `+ - * / ^ **`, `\\cdot \\times \\div`, `!`, `\\frac \\sqrt[n]{} \\binom`, `|x|`,
floor/ceiling, trig/log/exp functions in LaTeX or plain text (`\\sin^2 x`, `\\log_2 8`,
`sqrt(2)`), and one relation (`= < > \\le \\ge \\ne`), returned as ("rel", op, lhs, rhs).

Guards that fail fast instead of using up the grading timeout: nesting depth 100, integer powers
whose result would exceed 10^5 bits (`9^{9^{9^9}}`), factorials of more than 1000.
"""

from __future__ import annotations

import math
import re

import sympy

from r1jax.rewards import math_normalize as mn

__all__ = ["ParseError", "parse"]

_MAX_DEPTH = 100
_MAX_POWER_BITS = 100_000
_MAX_FACTORIAL = 1000


class ParseError(ValueError):
  """The text is not an expression this parser reads (or trips a size guard)."""


_PLAIN_FUNCS = ("arcsin", "arccos", "arctan", "sqrt", "sinh", "cosh", "tanh", "sin", "cos",
                "tan", "cot", "sec", "csc", "log", "exp", "ln", "infty", "inf", "pi")
_FUNCS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "cot": sympy.cot,
    "sec": sympy.sec, "csc": sympy.csc, "arcsin": sympy.asin, "arccos": sympy.acos,
    "arctan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh,
    "ln": sympy.log, "log": sympy.log, "exp": sympy.exp,
}
_INVERSE = {"sin": sympy.asin, "cos": sympy.acos, "tan": sympy.atan}
_RELOPS = {"=": "=", "<": "<", ">": ">", "le": "<=", "ge": ">=", "lt": "<", "gt": ">",
           "ne": "!=", "<=": "<=", ">=": ">=", "!=": "!="}
_MUL_CMDS = ("cdot", "times", "ast")
_NUM = re.compile(r"\d*\.\d+|\d+\.?")
_CMD = re.compile(r"\\([A-Za-z]+)")
_WORD = re.compile(r"[^\W\d_]+")


def _tokenize(s: str) -> list[tuple[str, str]]:
  tokens = []
  i, n = 0, len(s)
  while i < n:
    c = s[i]
    if c.isspace():
      i += 1
    elif c.isdigit() or (c == "." and i + 1 < n and s[i + 1].isdigit()):
      m = _NUM.match(s, i)
      tokens.append(("num", m.group()))
      i = m.end()
    elif c == "\\":
      m = _CMD.match(s, i)
      if m:
        tokens.append(("cmd", m.group(1)))
        i = m.end()
      elif i + 1 < n and s[i + 1] in "{}|":
        tokens.append(("op", {"{": "(", "}": ")", "|": "|"}[s[i + 1]]))
        i += 2
      else:
        raise ParseError(f"unexpected {s[i:i + 2]!r}")
    elif c.isalpha():
      word = _WORD.match(s, i).group()
      j = 0
      while j < len(word):
        for f in _PLAIN_FUNCS:
          if word.startswith(f, j):
            tokens.append(("func", f))
            j += len(f)
            break
        else:
          tokens.append(("id", word[j]))
          j += 1
      i += len(word)
    elif s.startswith(("**", "<=", ">=", "!="), i):
      two = s[i:i + 2]
      tokens.append(("op", "^" if two == "**" else two))
      i += 2
    elif c in "+-*/^()[]{}!,|_=<>'":
      tokens.append(("op", c))
      i += 1
    else:
      raise ParseError(f"unexpected character {c!r}")
  return tokens


def _pow(base, exp):
  if exp.is_Integer and base.is_Rational and abs(base) not in (0, 1):
    size = max(abs(base.p), abs(base.q))
    if abs(int(exp)) * math.log2(size) > _MAX_POWER_BITS:
      raise ParseError("integer power too large")
  if exp.is_Integer and base.is_Float and abs(int(exp)) > 10_000:
    raise ParseError("power too large")
  return sympy.Pow(base, exp)


class _Parser:
  """Recursive descent: relation > sum > product (explicit or implicit) > unary > power."""

  def __init__(self, tokens: list[tuple[str, str]]):
    self.toks = tokens
    self.pos = 0
    self.depth = 0

  def peek(self) -> tuple[str, str]:
    return self.toks[self.pos] if self.pos < len(self.toks) else ("end", "")

  def next(self) -> tuple[str, str]:
    t = self.peek()
    if t[0] == "end":
      raise ParseError("unexpected end of expression")
    self.pos += 1
    return t

  def is_op(self, *values: str) -> bool:
    t = self.peek()
    return t[0] == "op" and t[1] in values

  def expect(self, value: str) -> None:
    t = self.next()
    if t != ("op", value):
      raise ParseError(f"expected {value!r}, found {t[1]!r}")

  def parse(self):
    node = self.relation()
    if self.peek()[0] != "end":
      raise ParseError(f"unexpected {self.peek()[1]!r}")
    return node

  def relation(self):
    left = self.expr()
    t = self.peek()
    if t[1] in _RELOPS and t[0] in ("op", "cmd"):
      self.next()
      right = self.expr()
      if self.peek()[1] in _RELOPS:
        raise ParseError("chained relations are not supported")
      return ("rel", _RELOPS[t[1]], left, right)
    return left

  def expr(self):
    self.depth += 1
    if self.depth > _MAX_DEPTH:
      raise ParseError("expression nested too deeply")
    node = self.term()
    while self.is_op("+", "-"):
      op = self.next()[1]
      rhs = self.term()
      node = node + rhs if op == "+" else node - rhs
    self.depth -= 1
    return node

  def starts_factor(self) -> bool:
    kind, v = self.peek()
    if kind == "num":
      # "2 3" is not 6: two numbers in a row are not a product (nor is "2.5.3").
      return self.pos == 0 or self.toks[self.pos - 1][0] != "num"
    if kind in ("id", "func"):
      return True
    if kind == "op":
      return v in ("(", "[", "{")
    if kind == "cmd":
      return (v in mn.GREEK_LETTERS or v in _FUNCS or
              v in ("pi", "infty", "frac", "sqrt", "binom", "lfloor", "lceil"))
    return False

  def term(self):
    node = self.unary()
    while True:
      kind, v = self.peek()
      if (kind == "op" and v == "*") or (kind == "cmd" and v in _MUL_CMDS):
        self.next()
        node = node * self.unary()
      elif (kind == "op" and v == "/") or (kind == "cmd" and v == "div"):
        self.next()
        node = node / self.unary()
      elif self.starts_factor():
        node = node * self.power()
      else:
        return node

  def unary(self):
    if self.is_op("-"):
      self.next()
      return -self.unary()
    if self.is_op("+"):
      self.next()
      return self.unary()
    return self.power()

  def power(self):
    base = self.postfix()
    if self.is_op("^"):
      self.next()
      return _pow(base, self.exponent())
    return base

  def exponent(self):
    if self.is_op("{"):
      return self.group()
    return self.unary()

  def postfix(self):
    node = self.primary()
    while self.is_op("!"):
      self.next()
      if node.is_Integer and int(node) > _MAX_FACTORIAL:
        raise ParseError("factorial too large")
      node = sympy.factorial(node)
    return node

  def group(self):
    """`{ expr }`."""
    self.expect("{")
    node = self.expr()
    self.expect("}")
    return node

  def arg(self):
    """A LaTeX macro argument: a brace group or one token (`\\frac12` reads 1 and 2)."""
    if self.is_op("{"):
      return self.group()
    kind, v = self.peek()
    if kind == "num" and len(v) > 1 and v[0].isdigit():
      self.toks[self.pos] = ("num", v[1:])
      return sympy.Integer(int(v[0]))
    return self.primary()

  def func_arg(self):
    """The argument of `\\sin`, `\\log`, ...: parenthesized, a group, or an implicit product."""
    if self.is_op("(", "{"):
      return self.primary()
    node = self.power()
    while self.peek()[0] in ("num", "id") or (self.peek()[0] == "cmd" and
                                              self.peek()[1] in mn.GREEK_LETTERS):
      node = node * self.power()
    return node

  def symbol(self, name: str):
    if self.is_op("_"):
      self.next()
      if self.is_op("{"):
        start = self.pos
        self.group()
        sub = "".join(v for _, v in self.toks[start + 1:self.pos - 1])
      else:
        sub = self.next()[1]
      name = f"{name}_{sub}"
    while self.is_op("'"):
      self.next()
      name += "'"
    if name == "e":
      return sympy.E
    if name == "i":
      return sympy.I
    return sympy.Symbol(name)

  def function(self, name: str):
    power = None
    base = None
    if name == "log" and self.is_op("_"):
      self.next()
      base = self.arg()
    if self.is_op("^"):
      self.next()
      power = self.exponent()
    arg = self.func_arg()
    if power == -1 and name in _INVERSE:
      return _INVERSE[name](arg)
    value = sympy.log(arg, base) if base is not None else _FUNCS[name](arg)
    return value if power is None else _pow(value, power)

  def primary(self):
    self.depth += 1
    if self.depth > _MAX_DEPTH:
      raise ParseError("expression nested too deeply")
    kind, v = self.next()
    node = self._primary(kind, v)
    self.depth -= 1
    return node

  def _primary(self, kind: str, v: str):
    if kind == "num":
      return sympy.Rational(v)
    if kind == "id":
      return self.symbol(v)
    if kind == "func":
      if v == "pi":
        return sympy.pi
      if v in ("inf", "infty"):
        return sympy.oo
      if v == "sqrt":
        return sympy.sqrt(self.func_arg())
      return self.function(v)
    if kind == "op":
      closing = {"(": ")", "[": "]", "{": "}"}
      if v in closing:
        node = self.expr()
        self.expect(closing[v])
        return node
      if v == "|":
        node = self.expr()
        self.expect("|")
        return sympy.Abs(node)
      raise ParseError(f"unexpected {v!r}")
    # Commands.
    if v == "pi":
      return sympy.pi
    if v == "infty":
      return sympy.oo
    if v in mn.GREEK_LETTERS:
      return self.symbol(v)
    if v == "frac":
      num = self.arg()
      return num / self.arg()
    if v == "binom":
      n = self.arg()
      return sympy.binomial(n, self.arg())
    if v == "sqrt":
      if self.is_op("["):
        self.next()
        index = self.expr()
        self.expect("]")
        return sympy.root(self.arg(), index)
      return sympy.sqrt(self.arg())
    if v in ("lfloor", "lceil"):
      node = self.expr()
      close = self.next()
      if close != ("cmd", "r" + v[1:]):
        raise ParseError(f"unclosed \\{v}")
      return sympy.floor(node) if v == "lfloor" else sympy.ceiling(node)
    if v in _FUNCS:
      return self.function(v)
    if v in mn.TEXT_COMMANDS:
      return self.group()
    raise ParseError(f"unsupported command \\{v}")


def parse(s: str):
  """Parses one expression or relation; relations come back as ("rel", op, lhs, rhs)."""
  if len(s) > mn.MAX_ANSWER_CHARS:
    raise ParseError("answer too long")
  node = _Parser(_tokenize(s)).parse()
  if isinstance(node, tuple):
    return node
  if not isinstance(node, sympy.Basic):
    raise ParseError("not an expression")
  return node
