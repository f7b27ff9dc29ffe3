"""The sampler's own weights and layout: compute dtype, fused per layer, no split over rows' axes.

Place in the pipeline: inside the sampler's jit (step 2 of a GRPO step), before the decode
loop. `cast` gives the params in the compute dtype (every sampler matmul casts to it anyway,
so bf16 recipes decode from a half-size copy with the same numbers); `layer_params` slices the
stacked layers into per-layer decode weights with q/k/v and gate/up fused; `top_params` is the
embedding, final norm and head. Under a mesh each of these is pinned to
`sharding.decode_rules` of the active rules, so no weight stays split over `data`/`fsdp`: the
gathers run once here, layer by layer, instead of on every generated token. `rows` pins a
per-row array (prompts, cache, activations) to the batch axes where the mesh divides it.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from r1jax import sharding
from r1jax.models import transformer
from r1jax.models.config import ModelConfig

__all__ = ["cast", "layer_params", "row_shards", "rows", "top_params"]


def layer_params(params: transformer.Params, cfg: ModelConfig) -> tuple:
  """Per-layer decode weights, sliced from the stacked [L, ...] params once per call.

  q/k/v kernels (and biases) are fused into one [D, K, (G + 2) H] matmul grouped by kv head
  (each kv head's G query heads, then its key and value), and gate/up into one [D, 2, F]:
  fewer, larger matmuls per layer, which run closer to memory bandwidth. On CPU each kernel
  is held transposed (`_kernel`). The fused axis is
  never the tensor-sharded one (K and F are), so tensor parallelism never cuts a fused weight
  and the splits after the matmul stay on one device.
  """
  stack = params["model"]["layers"]
  attn, mlp = stack["self_attn"], stack["mlp"]
  k, g, h = cfg.num_kv_heads, cfg.num_groups, cfg.head_dim

  def qkv(i, leaf):  # [..., N H], [..., K H], [..., K H] -> [..., K, (G + 2) H]
    q, kk, v = (attn[name][leaf][i] for name in ("q_proj", "k_proj", "v_proj"))
    lead = q.shape[:-1]
    return jnp.concatenate([q.reshape(*lead, k, g * h), kk.reshape(*lead, k, h),
                            v.reshape(*lead, k, h)], axis=-1)

  h_unit = {"q_heads": h}
  layers = []
  for i in range(cfg.num_layers):
    gate_up = jnp.stack([mlp["gate_proj"]["kernel"][i], mlp["up_proj"]["kernel"][i]], axis=-2)
    self_attn = {"qkv": _kernel(qkv(i, "kernel"), ("embed", "kv_heads", None)),
                 "o_proj": _kernel(attn["o_proj"]["kernel"][i], ("q_heads", "embed"), h_unit)}
    if cfg.qkv_bias:
      self_attn["qkv"]["bias"] = _pin(qkv(i, "bias"), ("kv_heads", None))
    if cfg.qk_norm:
      self_attn["q_norm"] = {"weight": attn["q_norm"]["weight"][i]}
      self_attn["k_norm"] = {"weight": attn["k_norm"]["weight"][i]}
    layer = {"input_layernorm": {"weight": stack["input_layernorm"]["weight"][i]},
             "post_attention_layernorm": {"weight": stack["post_attention_layernorm"]["weight"][i]},
             "self_attn": self_attn,
             "mlp": {"gate_up": _kernel(gate_up, ("embed", None, "mlp")),
                     "down_proj": _kernel(mlp["down_proj"]["kernel"][i], ("mlp", "embed"))}}
    # Norm weights are small: replicated. (The projections keep the pins above: a map that
    # re-pinned every leaf would replicate the tensor-parallel weights too.)
    layers.append(jax.tree_util.tree_map_with_path(
        lambda path, x: _pin(x, (None,) * x.ndim)
        if any("norm" in str(getattr(k, "key", "")) for k in path) else x, layer))
  return tuple(layers)


def _kernel(w: jax.Array, names: tuple[str | None, ...],
            units: dict[str, int] | None = None) -> dict[str, jax.Array]:
  """One decode kernel [D_in, out...], pinned; on CPU transposed to 'kernel_t' [O, D_in].

  On CPU the out axes are flattened (O their product): prefill and the decode loop then read
  one array, where with gate_up held [2, F, D_in] XLA built its transpose twice, once for
  each (SmolLM2, 1 x 16 rows, one new token: 496-514 ms a call against 605-626 ms).

  XLA:CPU's dot at 16 rows reads a weight faster as the left operand contracting its
  contiguous axis: 30 SmolLM2 MLPs ran in 27.3 ms against 37.7 ms as stored (11.7 vs 8.4 GB/s),
  and the whole decode 201.6 vs 184.6 tokens/s (before `transformer.dense` flattened its
  operands to 2-D for batch-invariant rows, ~6% of that). The transpose runs once per call.
  Accelerators and meshes keep the stored layout (`_transposed`).
  """
  if _transposed():
    perm = tuple(range(1, w.ndim)) + (0,)
    t = _pin(jnp.transpose(w, perm), tuple(names[j] for j in perm), units)
    return {"kernel_t": t.reshape(-1, t.shape[-1])}
  return {"kernel": _pin(w, names, units)}


def top_params(params: transformer.Params, cfg: ModelConfig) -> transformer.Params:
  """The embedding, final norm and head as the decode loop reads them (decode layout)."""
  top = {"model": {"embed_tokens": params["model"]["embed_tokens"],
                   "norm": params["model"]["norm"]}}
  if "lm_head" in params:
    top["lm_head"] = params["lm_head"]
  layout = _layout()
  if layout is not None:
    sizes, rules = layout
    specs = sharding.param_specs(cfg, sizes, rules)
    top = jax.tree.map(lambda x, s: jax.lax.with_sharding_constraint(x, s), top,
                       {k: ({"embed_tokens": specs["model"]["embed_tokens"],
                             "norm": specs["model"]["norm"]} if k == "model" else specs[k])
                        for k in top})
  if _transposed():
    # The head as [V, D], the dot's left operand (as `_kernel`): 16 rows' logits are then
    # the same numbers whatever else shares the batch (YNNPACK's x @ W at 16 and 64 rows
    # rounds differently, which changed sampled tokens between schedules), and faster.
    top["lm_head"] = {"kernel_t": top["model"]["embed_tokens"]["embedding"]
                      if cfg.tie_embeddings else top["lm_head"]["kernel"].T}
  return top


def cast(params: transformer.Params, cfg: ModelConfig) -> transformer.Params:
  """The params in the compute dtype, in their own layout (an elementwise, per-shard cast).

  Every sampler matmul casts its weights to the compute dtype anyway, so a copy in that dtype
  (bf16 for the accelerator recipes) gives the same numbers at half the bytes. Norm weights
  stay as they are (Gemma adds 1 to them in float32).
  """
  dt = jnp.dtype(cfg.dtype)

  def cast(path, x):
    is_norm = any("norm" in str(getattr(k, "key", "")) for k in path)
    return x if is_norm or not jnp.issubdtype(x.dtype, jnp.floating) else x.astype(dt)

  return jax.tree_util.tree_map_with_path(cast, params)


def _layout() -> tuple[dict[str, int], sharding.Rules] | None:
  """(mesh sizes, `sharding.decode_rules` of the active rules) under a mesh, else None.

  The decode loop reads every weight once per token: its weights are pinned to this layout
  (no weight split over the batch axes) so that they are gathered once, before the loop,
  fused layer by layer (no whole stacked copy), instead of on every token.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return None
  rules = tuple(nn.get_logical_axis_rules()) or sharding.DEFAULT_RULES
  return dict(mesh.shape), sharding.decode_rules(rules)


def _transposed() -> bool:
  """Whether decode kernels are held transposed: on one CPU device only.

  A measured XLA:CPU gain; accelerators' dot libraries take either layout (not measured
  there), and under a mesh (on accelerators, or the dry run's fake CPU devices, which stand
  for them) the stored layout keeps the sharding plan the compiler checks.
  """
  return jax.default_backend() == "cpu" and _layout() is None


def _pin(x: jax.Array, names: tuple[str | None, ...],
         units: dict[str, int] | None = None) -> jax.Array:
  """A decode weight constrained to the decode layout (a no-op without a mesh)."""
  layout = _layout()
  if layout is None:
    return x
  sizes, rules = layout
  return jax.lax.with_sharding_constraint(
      x, sharding.spec_for_shape(names, x.shape, rules, sizes, units))


def rows(x: jax.Array, *names: str | None) -> jax.Array:
  """Pins a per-row array to its logical layout (rows over the batch axes; no-op without rules).

  Dims the rules' mesh axes do not divide stay whole (a debug run's 2 prompts on 8 devices),
  as for params: an uneven constraint would make jit infer an input sharding it rejects.
  """
  mesh = jax.sharding.get_abstract_mesh()
  rules = tuple(nn.get_logical_axis_rules())
  if mesh.empty or not rules:
    return x
  spec = sharding.spec_for_shape(names, x.shape, rules, dict(mesh.shape))
  return jax.lax.with_sharding_constraint(x, spec)


def row_shards(size: int, name: str) -> int:
  """How many pieces `rows` cuts a per-row axis of `size` named `name` into (1: whole)."""
  mesh = jax.sharding.get_abstract_mesh()
  rules = tuple(nn.get_logical_axis_rules())
  if mesh.empty or not rules:
    return 1
  axes = sharding.spec_for_shape((name,), (size,), rules, dict(mesh.shape))[0]
  if axes is None:
    return 1
  return math.prod(mesh.shape[a] for a in ((axes,) if isinstance(axes, str) else axes))
