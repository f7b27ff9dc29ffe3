"""Sharding: the device mesh, logical-axis rules and the sharding trees built from them.

Place in the pipeline: the trainer builds one mesh from `MeshConfig` at start-up, creates the
params already sharded (`init_params_sharded`), shards the optimizer state, the rollout batch
and the sampler's KV cache with the trees built here, and runs the model under
`axis_rules_context` so the model's only sharding hook (a logical constraint on activations at
block boundaries, a no-op without a mesh) takes effect. The maths never names a mesh axis.

Mesh axes (outermost first): `data` (pure data parallel: params replicated), `fsdp` (data
parallel whose params and optimizer state are sharded, ZeRO-3 style) and `tensor` (heads, MLP
width and vocab split, Megatron style). The batch is split over ('data', 'fsdp').

Logical names and the default rules (`DEFAULT_RULES`):
  params:      vocab -> tensor, embed -> fsdp, q_heads / kv_heads / mlp -> tensor,
               layers and norm replicated.
  activations: act_batch -> (data, fsdp); act_length and act_embed replicated.
  rollout:     batch -> (data, fsdp) for the [B, T] arrays of a rollout.
  KV cache:    cache_batch -> (data, fsdp), cache_kv_heads -> tensor ([L, S, K, C, H]).
Rules are (logical name, mesh axes) pairs tried in order, like flax's `logical_axis_rules`: a
name may appear several times (a later pair is a fallback) and a mesh axis is used at most once
per array. Divisibility fallback: a pair whose mesh axes do not evenly divide that dimension is
skipped, so a dimension no rule can split is replicated (e.g. K = 2 kv heads on tensor = 4).
Only whole arrays need this (device_put and jit out_shardings reject uneven splits); activation
constraints inside jit may split unevenly and follow the rules as given.

The sampler may use another layout than training (`MeshConfig.sample_rules`, e.g.
`SAMPLE_RULES`: params split only over `tensor`, so decode steps gather nothing over `fsdp`);
`reshard` switches layouts with one device_put per rollout phase.

Multi-host plumbing (jax.distributed, per-process rows) lives in `r1jax.multihost`; its
names are re-exported here for the callers that reach them as `sharding.X`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Any, Iterator, Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.multihost import (allgather_rows, any_process, detect_cluster, global_batch,  # pylint: disable=unused-import
                             host_local_to_global, initialize_distributed, process_rows,
                             to_host)

__all__ = [
    "AXES", "DEFAULT_RULES", "SAMPLE_RULES", "MeshConfig", "Rules", "allgather_rows",
    "any_process", "axis_rules_context", "batch_shardings", "batch_spec", "cache_specs",
    "decode_rules", "detect_cluster", "global_batch", "host_local_to_global",
    "init_params_sharded", "initialize_distributed", "logical_to_mesh",
    "make_mesh", "mirror_params", "opt_state_shardings", "param_logical_and_abstract",
    "param_shardings", "param_specs", "process_rows", "replicated",
    "reshard", "sharded_abstract", "spec_for_shape", "to_host",
]

AXES = ("data", "fsdp", "tensor")
# The tuple arm comes first so a JSON list (a config read back) parses as a tuple, not a str.
MeshAxes = tuple[str, ...] | str | None
Rules = tuple[tuple[str, MeshAxes], ...]

_BATCH = ("data", "fsdp")
DEFAULT_RULES: Rules = (
    ("act_batch", _BATCH), ("act_length", None), ("act_embed", None),
    ("batch", _BATCH), ("length", None),
    ("cache_batch", _BATCH), ("cache_kv_heads", "tensor"),
    ("cache_layers", None), ("cache_length", None),
    ("vocab", "tensor"), ("embed", "fsdp"), ("q_heads", "tensor"), ("kv_heads", "tensor"),
    ("mlp", "tensor"), ("layers", None), ("norm", None),
)
# A sampling layout: no param is split over fsdp (decode steps then gather no weights),
# at the cost of one full param copy per (data x fsdp) group.
SAMPLE_RULES: Rules = tuple((n, None) if n == "embed" else (n, a) for n, a in DEFAULT_RULES)

# Logical names of batch rows: the decode layout keeps their split over (data, fsdp).
_ROW_NAMES = ("act_batch", "batch", "cache_batch")


def decode_rules(rules: Rules) -> Rules:
  """The sampler's layout from a training layout: rows split as before, no param over rows' axes.

  A decode step reads every weight once per token, so a weight split over `data` or `fsdp`
  would be all-gathered inside the decode loop on every token; here params keep only their
  `tensor` split (each (data x fsdp) group holds a whole copy, gathered once per rollout).
  """
  drop = lambda axes: tuple(a for a in _axes_tuple(axes) if a not in _BATCH) or None
  return _normalize_rules(tuple((n, a if n in _ROW_NAMES else drop(a)) for n, a in rules))


# Logical names of the arrays r1jax shards besides params.
_CACHE_AXES = {name: ("cache_layers", "cache_batch", "cache_kv_heads", "cache_length", None)
               for name in ("k", "v", "prompt_k", "prompt_v")}


def _axes_tuple(axes: MeshAxes) -> tuple[str, ...]:
  if axes is None:
    return ()
  return (axes,) if isinstance(axes, str) else tuple(axes)


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """The device mesh (data x fsdp x tensor) and the logical-axis rules."""

  data: int = 1  # Pure data-parallel replicas; -1 = all devices left over.
  fsdp: int = -1  # Data parallel with params/optimizer sharded (ZeRO-3); -1 = the rest.
  tensor: int = 1  # Tensor parallel over heads, MLP width and vocab; -1 = the rest.
  rules: Rules = DEFAULT_RULES  # (logical name, mesh axes) pairs, tried in order.
  # The sampler's param layout; None = `decode_rules(rules)` (no param split over the batch
  # axes, cast to the compute dtype), which the sampler applies inside its jit.
  sample_rules: Rules | None = None

  def __post_init__(self):
    sizes = {a: getattr(self, a) for a in AXES}
    for name, size in sizes.items():
      if isinstance(size, bool) or not isinstance(size, int) or (size < 1 and size != -1):
        raise ValueError(f"MeshConfig.{name} must be a positive integer or -1 (fill), got "
                         f"{size!r}")
    if sum(s == -1 for s in sizes.values()) > 1:
      raise ValueError(f"at most one of MeshConfig.data/fsdp/tensor may be -1, got {sizes}")
    for field in ("rules", "sample_rules"):
      rules = getattr(self, field)
      if rules is not None:
        _check_rules(rules, f"MeshConfig.{field}")
        object.__setattr__(self, field, _normalize_rules(rules))

  def shape(self, num_devices: int) -> tuple[int, int, int]:
    """(data, fsdp, tensor) for `num_devices`, with a -1 filled by the remaining devices."""
    sizes = [self.data, self.fsdp, self.tensor]
    fixed = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
      if num_devices % fixed:
        raise ValueError(f"mesh {self._text()} cannot fill {num_devices} devices: "
                         f"{num_devices} is not a multiple of {fixed}")
      sizes[sizes.index(-1)] = num_devices // fixed
    if math.prod(sizes) != num_devices:
      raise ValueError(f"mesh {self._text()} needs {math.prod(sizes)} devices but "
                       f"{num_devices} are available; make data*fsdp*tensor equal the device "
                       f"count or set one of them to -1")
    return tuple(sizes)

  def _text(self) -> str:
    return f"(data={self.data}, fsdp={self.fsdp}, tensor={self.tensor})"

  @property
  def sampler_rules(self) -> Rules:
    return decode_rules(self.rules) if self.sample_rules is None else self.sample_rules


def _normalize_rules(rules: Any) -> Rules:
  """Tuples throughout, one mesh axis as a plain name: equal rules compare (and hash) equal."""
  out = []
  for name, axes in rules:
    axes_t = _axes_tuple(axes)
    out.append((name, None if not axes_t else axes_t[0] if len(axes_t) == 1 else axes_t))
  return tuple(out)


def _check_rules(rules: Any, where: str) -> None:
  if not isinstance(rules, (tuple, list)):
    raise ValueError(f"{where} must be a tuple of (logical name, mesh axes) pairs, got "
                     f"{rules!r}")
  for rule in rules:
    if not (isinstance(rule, (tuple, list)) and len(rule) == 2 and isinstance(rule[0], str)):
      raise ValueError(f"{where} has the entry {rule!r}; expected (logical name, mesh axes)")
    axes = rule[1]
    ok = axes is None or isinstance(axes, str) or (
        isinstance(axes, (tuple, list)) and all(isinstance(a, str) for a in axes))
    bad = [a for a in _axes_tuple(axes) if a not in AXES] if ok else [axes]
    if bad:
      raise ValueError(f"{where} maps {rule[0]!r} to {axes!r}; mesh axes must be None, one of "
                       f"{AXES} or a tuple of them")


def make_mesh(cfg: MeshConfig, devices: Sequence[Any] | None = None) -> jax.sharding.Mesh:
  """A (data, fsdp, tensor) mesh with Auto axes (shardings propagate through jit)."""
  devices = list(jax.devices() if devices is None else devices)
  shape = cfg.shape(len(devices))
  return jax.make_mesh(shape, AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(AXES),
                       devices=devices)


def _mesh_sizes(mesh: jax.sharding.Mesh | Mapping[str, int]) -> Mapping[str, int]:
  return dict(mesh.shape) if isinstance(mesh, jax.sharding.Mesh) else dict(mesh)


def spec_for_shape(logical: Sequence[str | None], shape: Sequence[int] | None,
                   rules: Rules, mesh_sizes: Mapping[str, int] | None = None,
                   units: Mapping[str, int] | None = None) -> P:
  """Mesh PartitionSpec for an array with logical dim names; see the module docstring.

  Rules are applied in order (rule-major, as flax does); a rule is skipped when its logical
  name is absent or already placed, a mesh axis it names is taken by another dim, or (when a
  shape and mesh sizes are given) the dim's size / units[name] is not divisible by the product
  of its mesh axes. `units` keeps heads whole: a [D, K*H] kernel splits by kv heads, not
  inside one head.
  """
  logical = tuple(logical)
  result: list[MeshAxes] = [None] * len(logical)
  placed = [False] * len(logical)
  used: set[str] = set()
  for name, axes in rules:
    if name not in logical:
      continue
    i = logical.index(name)
    axes_t = _axes_tuple(axes)
    if placed[i] or used & set(axes_t):
      continue
    if shape is not None and mesh_sizes is not None and axes_t:
      unit = (units or {}).get(name, 1)
      if shape[i] % unit or (shape[i] // unit) % math.prod(mesh_sizes[a] for a in axes_t):
        continue  # Uneven split: try the next rule for this name, else replicate.
    placed[i] = True
    used |= set(axes_t)
    result[i] = axes if axes_t else None
  return P(*result)


def logical_to_mesh(spec: Sequence[str | None], rules: Rules) -> P:
  """A logical PartitionSpec (e.g. P('layers', 'embed', 'mlp')) -> a mesh PartitionSpec."""
  return spec_for_shape(spec, None, rules)


def _is_spec(x: Any) -> bool:
  return isinstance(x, P)


@functools.lru_cache(maxsize=8)
def param_logical_and_abstract(model_cfg: ModelConfig) -> tuple[Any, Any]:
  """(logical PartitionSpecs, ShapeDtypeStructs) of the params; traced once per config.

  The trees are shared between callers: read them, do not mutate them.
  """
  return transformer.param_logical_axes(model_cfg), transformer.abstract_params(model_cfg)


def param_specs(model_cfg: ModelConfig, mesh: jax.sharding.Mesh | Mapping[str, int],
                rules: Rules = DEFAULT_RULES) -> transformer.Params:
  """Mesh PartitionSpecs of every param (divisibility-checked against the mesh sizes)."""
  sizes = _mesh_sizes(mesh)
  logical, abstract = param_logical_and_abstract(model_cfg)
  units = {"q_heads": model_cfg.head_dim, "kv_heads": model_cfg.head_dim}
  return jax.tree.map(lambda s, a: spec_for_shape(tuple(s), a.shape, rules, sizes, units),
                      logical, abstract, is_leaf=_is_spec)


def param_shardings(model_cfg: ModelConfig, mesh: jax.sharding.Mesh,
                    rules: Rules = DEFAULT_RULES) -> transformer.Params:
  """NamedSharding of every param, a tree shaped like the params."""
  return jax.tree.map(lambda s: NamedSharding(mesh, s), param_specs(model_cfg, mesh, rules),
                      is_leaf=_is_spec)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def mirror_params(tree: Any, abstract_params: Any, param_leaves: Any, default: Any) -> Any:
  """Maps each leaf of `tree` to the `param_leaves` entry of the param it mirrors.

  Optimizer states (optax's mu, nu, ...) hold copies of the param tree inside their own
  containers, so a state leaf mirrors the param whose key path is a suffix of the leaf's path
  and whose shape equals the leaf's. Other leaves (step counts, factored statistics) get
  `default`.
  """
  params_by_path = {}
  for (path, a), v in zip(jax.tree_util.tree_flatten_with_path(abstract_params)[0],
                          jax.tree.leaves(param_leaves, is_leaf=_is_spec)):
    params_by_path[tuple(path)] = (tuple(a.shape), v)

  def pick(path, leaf):
    shape = tuple(np.shape(leaf))
    for k in range(len(path)):
      hit = params_by_path.get(tuple(path[k:]))
      if hit is not None and hit[0] == shape:
        return hit[1]
    return default

  return jax.tree_util.tree_map_with_path(pick, tree)


def opt_state_shardings(optimizer: Any, params_shardings: Any, abstract_params: Any) -> Any:
  """NamedShardings for `optimizer.init(params)`: param-shaped states mirror their param."""
  state = jax.eval_shape(optimizer.init, abstract_params)
  mesh = jax.tree.leaves(params_shardings)[0].mesh
  return mirror_params(state, abstract_params, params_shardings, replicated(mesh))


def init_params_sharded(model_cfg: ModelConfig, key: jax.Array, mesh: jax.sharding.Mesh,
                        rules: Rules = DEFAULT_RULES) -> transformer.Params:
  """Random params born in their shardings: no device ever holds the whole model.

  With jax's partitionable threefry (the default), the values equal `transformer.init`'s.
  """
  shardings = param_shardings(model_cfg, mesh, rules)
  key = jax.device_put(key, replicated(mesh))
  return jax.jit(lambda k: transformer.init(model_cfg, k), out_shardings=shardings)(key)


def sharded_abstract(abstract_tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs carrying shardings: a restore target that loads straight into place."""
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract_tree, shardings)


def batch_spec(shape: Sequence[int], mesh: jax.sharding.Mesh | Mapping[str, int],
               rules: Rules = DEFAULT_RULES) -> P:
  """A rollout array ([B], [B, T], ...): rows over the batch axes when divisible."""
  logical = ("batch", "length") + (None,) * max(len(shape) - 2, 0)
  return spec_for_shape(logical[:len(shape)], shape, rules, _mesh_sizes(mesh))


def batch_shardings(batch: Any, mesh: jax.sharding.Mesh, rules: Rules = DEFAULT_RULES) -> Any:
  """NamedShardings for a tree of rollout arrays (tokens [B, T], lengths [B], ...)."""
  return jax.tree.map(lambda x: NamedSharding(mesh, batch_spec(np.shape(x), mesh, rules)),
                      batch)


def cache_specs(cache: Mapping[str, Any], mesh: jax.sharding.Mesh | Mapping[str, int],
                rules: Rules = DEFAULT_RULES) -> dict[str, P]:
  """PartitionSpecs of the sampler's caches (`kv_cache.abstract_cache`: [L, S, K, C, H] each)."""
  sizes = _mesh_sizes(mesh)
  unknown = set(cache) - set(_CACHE_AXES)
  if unknown:
    raise ValueError(f"unknown KV cache fields {sorted(unknown)}; expected {sorted(_CACHE_AXES)}")
  return {k: spec_for_shape(_CACHE_AXES[k], np.shape(v), rules, sizes) for k, v in cache.items()}


@contextlib.contextmanager
def axis_rules_context(mesh: jax.sharding.Mesh, rules: Rules = DEFAULT_RULES) -> Iterator[None]:
  """Sets the mesh and flax's logical-axis rules: the model's activation constraints apply.

  Enter it outside jit, around the calls that trace the model (train step, sampler).
  """
  with jax.set_mesh(mesh), nn.logical_axis_rules(tuple((n, a) for n, a in rules)):
    yield


def reshard(tree: Any, shardings: Any, *, donate: bool = False) -> Any:
  """Moves a tree into new shardings in one device_put (e.g. train -> sample layout).

  `donate=True` frees the source buffers (only when the old layout is not needed again).
  """
  return jax.device_put(tree, shardings, donate=donate)
