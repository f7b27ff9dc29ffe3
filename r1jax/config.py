"""Configs: nested frozen dataclasses, `--set a.b=v` overrides, and a JSON round trip.

Every part of r1jax takes its settings from a frozen dataclass. Experiment files build one
with `get_config()`; the CLI applies `--set` overrides on top; the trainer writes the resolved
config as JSON into its workdir so a run can be read back and rerun exactly.

Overrides are typed by the field's annotation (falling back to the default's type): tuples,
bools, None, ints and floats such as `3e-6` all parse from their command-line text. A dict
field takes one key at a time (`--set task_args.path=x`, nested as `task_args.fields.answer=y`)
and keeps its other keys; such values read as Python or JSON literals, else as text. The
configs' own checks (`__post_init__`) run once, on the config all the overrides make, so
values whose validity depends on each other may be given in any order.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import difflib
import json
import types
import typing
from typing import Any, Iterable, Mapping, TypeVar

C = TypeVar("C")

__all__ = [
    "ConfigError",
    "apply_overrides",
    "flat_keys",
    "from_dict",
    "from_json",
    "override",
    "parse_set_args",
    "to_dict",
    "to_json",
]


class ConfigError(ValueError):
  """A config key or value given by the user is not valid."""


class _UnknownKey(Exception):
  """Internal: `override` met a key that is not a field; the caller words the error."""


def _is_dataclass_instance(x: Any) -> bool:
  return dataclasses.is_dataclass(x) and not isinstance(x, type)


def flat_keys(cfg: Any, prefix: str = "") -> list[str]:
  """Every dotted leaf key of a nested dataclass config, e.g. `model.num_layers`."""
  keys = []
  for f in dataclasses.fields(cfg):
    value = getattr(cfg, f.name)
    name = prefix + f.name
    if _is_dataclass_instance(value):
      keys.extend(flat_keys(value, name + "."))
    else:
      keys.append(name)
  return keys


def _unknown_key_error(key: str, cfg: Any) -> ConfigError:
  keys = flat_keys(cfg)
  close = difflib.get_close_matches(key, keys, n=5, cutoff=0.4)
  if not close:  # Fall back to keys that share the last component.
    last = key.rsplit(".", 1)[-1]
    close = [k for k in keys if k.rsplit(".", 1)[-1] == last][:5]
  hint = f"; did you mean {', '.join(close)}?" if close else ""
  return ConfigError(f"unknown config key {key!r}{hint}")


def _field_types(cls: type) -> dict[str, Any]:
  try:
    return typing.get_type_hints(cls)
  except Exception:  # Unresolvable forward refs: use the raw annotations.
    return {f.name: f.type for f in dataclasses.fields(cls)}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
  """Returns (inner type, whether None is allowed) for `X | None` / Optional[X]."""
  origin = typing.get_origin(tp)
  if origin in (typing.Union, types.UnionType):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    allows_none = len(args) < len(typing.get_args(tp))
    if len(args) == 1:
      return args[0], allows_none
    return typing.Union[tuple(args)], allows_none
  return tp, False


def _parse_literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _coerce(value: Any, tp: Any, key: str) -> Any:
  """Converts `value` (a string from the command line or a JSON value) to type `tp`."""
  inner, allows_none = _strip_optional(tp)
  if typing.get_origin(inner) is typing.Literal and value in typing.get_args(inner):
    return value  # A literal choice such as "none" is a value, not None.
  if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
    if allows_none or tp is Any:
      return None
    raise ConfigError(f"config key {key!r} does not accept None (expected {_type_name(tp)})")
  origin = typing.get_origin(inner)
  if inner is Any:
    return _parse_literal(value) if isinstance(value, str) else value
  if origin is typing.Literal:
    choices = typing.get_args(inner)
    for c in choices:
      if value == c or (isinstance(value, str) and str(c) == value.strip()):
        return c
    raise ConfigError(f"config key {key!r} got {value!r}; accepted values: {', '.join(map(repr, choices))}")
  if origin in (typing.Union, types.UnionType):
    for arm in typing.get_args(inner):
      try:
        return _coerce(value, arm, key)
      except ConfigError:
        continue
    raise ConfigError(f"config key {key!r} got {value!r}; expected {_type_name(inner)}")
  if inner is bool:
    if isinstance(value, bool):
      return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
      return True
    if text in ("false", "0", "no", "off"):
      return False
    raise ConfigError(f"config key {key!r} got {value!r}; expected true or false")
  if inner is int:
    if isinstance(value, bool):
      raise ConfigError(f"config key {key!r} got {value!r}; expected an integer")
    if isinstance(value, int):
      return value
    try:
      f = float(str(value).strip())
    except ValueError:
      raise ConfigError(f"config key {key!r} got {value!r}; expected an integer") from None
    if not f.is_integer():
      raise ConfigError(f"config key {key!r} got {value!r}; expected an integer")
    return int(f)
  if inner is float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return float(value)
    try:
      return float(str(value).strip())
    except ValueError:
      raise ConfigError(f"config key {key!r} got {value!r}; expected a number such as 3e-6") from None
  if inner is str:
    return str(value)
  if origin is tuple or inner is tuple:
    args = typing.get_args(inner)
    if isinstance(value, str):
      text = value.strip()
      if text in ("", "()", "[]"):
        items: list[Any] = []
      elif text[0] in "([":
        parsed = _parse_literal(text)
        items = list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
      else:
        items = [s.strip() for s in text.split(",") if s.strip()]
    elif isinstance(value, (list, tuple)):
      items = list(value)
    else:
      items = [value]
    if len(args) == 2 and args[1] is Ellipsis:
      return tuple(_coerce(v, args[0], key) for v in items)
    if args:
      if len(items) != len(args):
        raise ConfigError(f"config key {key!r} got {len(items)} items; expected {len(args)}")
      return tuple(_coerce(v, a, key) for v, a in zip(items, args))
    return tuple(_parse_literal(v) if isinstance(v, str) else v for v in items)
  if dataclasses.is_dataclass(inner) and isinstance(value, Mapping):
    return from_dict(inner, value)
  if origin is dict or inner is dict:
    if isinstance(value, str):
      parsed = _parse_literal(value)
      if not isinstance(parsed, dict):
        try:
          parsed = json.loads(value)
        except json.JSONDecodeError:
          raise ConfigError(f"config key {key!r} got {value!r}; expected a dict") from None
      return parsed
    return dict(value)
  return value


def _type_name(tp: Any) -> str:
  return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _set_in_dict(current: Mapping[str, Any], key: str, value: Any, full_key: str
                 ) -> dict[str, Any]:
  """A copy of a dict field with the dotted `key` inside it set (nested dicts are made).

  The dict's other keys are kept, so `--set task_args.path=x` changes one task option. The
  value is read like a Python literal (numbers, lists, dicts, True/None), else kept as text.
  """
  head, _, rest = key.partition(".")
  if not head:
    raise ConfigError(f"config key {full_key!r} has an empty part; write e.g. task_args.path=x")
  out = dict(current)
  if rest:
    inner = out.get(head, {})
    if not isinstance(inner, Mapping):
      raise ConfigError(f"config key {full_key!r} sets a key inside {head!r}, which holds "
                        f"{inner!r}, not a dict")
    out[head] = _set_in_dict(inner, rest, value, full_key)
  else:
    out[head] = _parse_dict_value(value) if isinstance(value, str) else value
  return out


def _parse_dict_value(text: str) -> Any:
  """A Python literal, else JSON (true, null), else the text itself (a path, a name)."""
  parsed = _parse_literal(text)
  if parsed is not text:
    return parsed
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    return text


def _override(cfg: Any, key: str, value: Any, full_key: str) -> Any:
  """`cfg` with the dotted `key` set, each dataclass on the way copied unchecked
  (`_unchecked_replace`); `apply_overrides` checks the result."""
  head, _, rest = key.partition(".")
  if not _is_dataclass_instance(cfg) or head not in {f.name for f in dataclasses.fields(cfg)}:
    raise _UnknownKey()
  current = getattr(cfg, head)
  if rest and isinstance(current, Mapping):  # One key of a dict field (task_args.path).
    return _unchecked_replace(cfg, **{head: _set_in_dict(current, rest, value, full_key)})
  if rest:
    return _unchecked_replace(cfg, **{head: _override(current, rest, value, full_key)})
  if _is_dataclass_instance(current) and not isinstance(value, Mapping):
    example = flat_keys(current, full_key + ".")[0]
    raise ConfigError(f"config key {full_key!r} is a section; set one of its fields, e.g. {example}")
  tp = _field_types(type(cfg)).get(head, type(current))
  return _unchecked_replace(cfg, **{head: _coerce(value, tp, full_key)})


def override(cfg: C, key: str, value: Any) -> C:
  """Returns `cfg` with the dotted `key` set to `value`, parsed by the field's type.

  Raises:
    ConfigError: the key is unknown (the message lists the nearest valid keys) or the value
      does not parse as the field's type (the message names the accepted values).
    ValueError: the result breaks one of the config's own invariants (its `__post_init__`).
  """
  return apply_overrides(cfg, [(key, value)])


def _unchecked_replace(obj: Any, **changes: Any) -> Any:
  """A copy of the frozen dataclass `obj` with `changes`, its `__post_init__` not run."""
  new = copy.copy(obj)
  for name, value in changes.items():
    object.__setattr__(new, name, value)
  return new


def _checked(cfg: Any) -> Any:
  """`cfg` rebuilt through each dataclass's constructor, innermost first, so that every
  `__post_init__` checks (and normalizes) the values it now holds."""
  if not _is_dataclass_instance(cfg):
    return cfg
  inner = {f.name: _checked(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
           if f.init and _is_dataclass_instance(getattr(cfg, f.name))}
  return dataclasses.replace(cfg, **inner)


def apply_overrides(cfg: C, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> C:
  """Applies `{dotted_key: value}` overrides in order, then checks the result once.

  Each value is parsed by its field's type as it is set, so a bad key or value fails at
  once, named. The configs' own checks (`__post_init__`) run on the final config, not after
  each value: they may relate two fields (share_prompts needs micro-batches of whole groups),
  and `--set share_prompts=true --set minibatch_size=4` is then accepted in either order.

  Raises:
    ConfigError: an unknown key or a value that does not parse (see `override`).
    ValueError: the final config breaks one of its own invariants.
  """
  items = list(overrides.items() if isinstance(overrides, Mapping) else overrides)
  if not items:
    return cfg
  for key, value in items:
    try:
      cfg = _override(cfg, key, value, key)
    except _UnknownKey:
      raise _unknown_key_error(key, cfg) from None
  return _checked(cfg)


def parse_set_args(args: Iterable[str]) -> list[tuple[str, str]]:
  """Parses `["a.b=v", ...]` (the values of repeated `--set`) into (key, text) pairs."""
  pairs = []
  for arg in args:
    key, sep, value = arg.partition("=")
    if not sep or not key.strip():
      raise ConfigError(f"--set expects key=value, got {arg!r}")
    pairs.append((key.strip(), value))
  return pairs


def to_dict(cfg: Any) -> dict[str, Any]:
  """A JSON-ready nested dict (tuples become lists)."""
  def convert(x):
    if _is_dataclass_instance(x):
      return {f.name: convert(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, (list, tuple)):
      return [convert(v) for v in x]
    if isinstance(x, dict):
      return {str(k): convert(v) for k, v in x.items()}
    return x
  return convert(cfg)


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
  """Rebuilds a dataclass config of type `cls` from `to_dict` output."""
  if not isinstance(data, Mapping):
    raise ConfigError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(data) - set(fields))
  if unknown:
    raise ConfigError(f"unknown keys {unknown} for {cls.__name__}; valid keys: {sorted(fields)}")
  hints = _field_types(cls)
  kwargs = {}
  for name, value in data.items():
    tp = hints.get(name, Any)
    inner, _ = _strip_optional(tp)
    if dataclasses.is_dataclass(inner) and isinstance(value, Mapping):
      kwargs[name] = from_dict(inner, value)
    else:
      kwargs[name] = _coerce(value, tp, name)
  return cls(**kwargs)


def to_json(cfg: Any, indent: int = 2) -> str:
  return json.dumps(to_dict(cfg), indent=indent, sort_keys=False)


def from_json(cls: type[C], text: str) -> C:
  return from_dict(cls, json.loads(text))
