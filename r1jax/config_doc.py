"""Config discovery: every config field with its value and the comment it carries in the source.

Place in the pipeline: what `r1jax train FILE --print-config` and `r1jax train --help` show
before a run. The comments are read from the dataclasses' own source (the `# ...` after a field,
or the comment lines right above it), so the source stays the one place a field is documented.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import json
import textwrap
import tokenize
from typing import Any, Iterator

__all__ = ["describe", "field_comments", "format_config", "format_keys"]


@functools.lru_cache(maxsize=None)
def _own_comments(cls: type) -> dict[str, str]:
  """Field name -> comment, for the fields that `cls` itself defines (not its bases)."""
  try:
    source = textwrap.dedent(inspect.getsource(cls))
  except (OSError, TypeError):  # Defined in a REPL or built dynamically: no source to read.
    return {}
  comments: dict[int, str] = {}  # Line number -> comment text.
  full_line: set[int] = set()  # Lines holding only a comment.
  for tok in tokenize.generate_tokens(io.StringIO(source).readline):
    if tok.type == tokenize.COMMENT:
      comments[tok.start[0]] = tok.string.lstrip("#").strip()
      if not tok.line[:tok.start[1]].strip():
        full_line.add(tok.start[0])
  node = ast.parse(source).body[0]
  out = {}
  for stmt in getattr(node, "body", []):
    if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
      continue
    above = []
    line = stmt.lineno - 1
    while line in full_line:  # The comment block right above the field.
      above.insert(0, comments[line])
      line -= 1
    after = [comments[n] for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
             if n in comments and n not in full_line]
    text = " ".join(above + after).strip()
    if text:
      out[stmt.target.id] = text
  return out


def field_comments(cls: type) -> dict[str, str]:
  """Field name -> the comment it carries in the source of `cls` (or of a dataclass base)."""
  out: dict[str, str] = {}
  for klass in reversed(cls.__mro__):
    if dataclasses.is_dataclass(klass):
      out.update(_own_comments(klass))
  return out


def _json_value(value: Any) -> Any:
  if isinstance(value, (list, tuple)):
    return [_json_value(v) for v in value]
  if isinstance(value, dict):
    return {str(k): _json_value(v) for k, v in value.items()}
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    return {f.name: _json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return repr(value)


def describe(cfg: Any, prefix: str = "") -> Iterator[tuple[str, Any, str, bool]]:
  """(dotted key, value, comment, is_section) for every field of a nested dataclass config,
  depth first; a section (a nested config) comes before its fields, with value None."""
  comments = field_comments(type(cfg))
  for f in dataclasses.fields(cfg):
    value = getattr(cfg, f.name)
    key = prefix + f.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
      yield key, None, comments.get(f.name, ""), True
      yield from describe(value, key + ".")
    else:
      yield key, value, comments.get(f.name, ""), False


def format_config(cfg: Any) -> str:
  """The resolved config, one `key = value  # comment` line per field (values as JSON),
  sections introduced by their own comment; what `--print-config` prints."""
  rows = []
  for key, value, comment, is_section in describe(cfg):
    if is_section:
      rows.append(("", f"# {key}: {comment}" if comment else f"# {key}"))
    else:
      rows.append((f"{key} = {json.dumps(_json_value(value))}", comment))
  width = min(56, max(len(left) for left, _ in rows if left))
  lines = []
  for left, comment in rows:
    if not left:
      lines.append(("\n" if lines else "") + comment)
    elif comment:
      lines.append(f"{left.ljust(width)}  # {comment}")
    else:
      lines.append(left)
  return "\n".join(lines)


def format_keys(cfg: Any, *, max_comment: int = 96) -> str:
  """Every override key of `cfg` with its comment, one per line (for `--help`)."""
  rows = [(key, comment) for key, _, comment, is_section in describe(cfg) if not is_section]
  width = max(len(key) for key, _ in rows)
  lines = []
  for key, comment in rows:
    if len(comment) > max_comment:
      comment = comment[:max_comment - 3].rstrip() + "..."
    lines.append(f"  {key.ljust(width)}  {comment}".rstrip())
  return "\n".join(lines)
