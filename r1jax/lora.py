"""LoRA: low-rank adapters on the attention and MLP projections, merged into the weights.

Place in the pipeline: when `Config.lora.rank` > 0 the trainer keeps the loaded (or stage-1)
weights as a frozen base and learns only a small adapter tree. Each targeted kernel
W [L, in, out] gets A [L, in, r] and B [L, r, out], and the model sees

  W' = W + (alpha / r) A B        (`merge`)

computed inside the jitted loss (so its gradient flows to A and B only, and the model code
has one path), once per rollout for the sampler, and once on export. B starts at zero, so a
fresh adapter leaves every logit exactly equal to the base model's, and the GRPO reference
model is the frozen base itself: no second copy of the weights exists when kl_coef > 0.
Only the adapters (and their optimizer state) enter the optimizer and the checkpoints.

Names follow PEFT: A is `lora_a` (PEFT's lora_A, [r, in] there), B is `lora_b`, init of A is
PEFT's kaiming-uniform (bound 1 / sqrt(in)), scale alpha / r. The adapter tree mirrors the
param tree's paths (model/layers/self_attn/q_proj/lora_a), so the optimizer state's
shardings follow it the way they follow the params'.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from r1jax.models import transformer
from r1jax.models.config import ModelConfig

__all__ = ["ALL_TARGETS", "LoRAConfig", "abstract_adapters", "adapter_logical_axes",
           "init_adapters", "merge", "num_adapter_params"]

# Projection name -> the block sub-module that holds it.
_MODULE_OF = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
              "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
ALL_TARGETS = tuple(_MODULE_OF)


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
  """Low-rank adapters: which projections, what rank and scale. rank 0 = full fine-tuning."""

  rank: int = 0  # r: inner width of each adapter; 0 trains every weight (no adapters).
  alpha: float = 16.0  # Scale numerator: the update is (alpha / r) A B (PEFT's lora_alpha).
  # Projections that get adapters, in every layer: any of q_proj, k_proj, v_proj, o_proj,
  # gate_proj, up_proj, down_proj (PEFT's target_modules="all-linear" is all seven).
  targets: tuple[str, ...] = ALL_TARGETS
  # Dropout on the adapters' input. Only 0 is accepted: the adapters are merged into the
  # weights (one model path), where a dropout of the low-rank branch alone has no place.
  dropout: float = 0.0

  def __post_init__(self):
    if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 0:
      raise ValueError(f"LoRAConfig.rank must be an integer >= 0 (0 = full fine-tuning), got "
                       f"{self.rank!r}")
    if not self.alpha > 0:
      raise ValueError(f"LoRAConfig.alpha must be > 0, got {self.alpha!r}")
    unknown = [t for t in self.targets if t not in _MODULE_OF]
    if unknown or not self.targets or len(set(self.targets)) != len(self.targets):
      raise ValueError(f"LoRAConfig.targets {self.targets!r} must be distinct names among "
                       f"{', '.join(ALL_TARGETS)} (at least one)")
    if self.dropout != 0:
      raise ValueError(f"LoRAConfig.dropout={self.dropout!r} is not supported; only 0: r1jax "
                       "merges the adapters into the weights inside the loss, so the low-rank "
                       "branch has no input of its own to drop")

  @property
  def enabled(self) -> bool:
    return self.rank > 0

  @property
  def scale(self) -> float:
    """alpha / r, the factor on A B."""
    return self.alpha / self.rank


def _kernels(cfg: ModelConfig, lora: LoRAConfig) -> dict[str, tuple[int, int]]:
  """{projection: (in, out)} of the targeted kernels."""
  layers = transformer.abstract_params(cfg)["model"]["layers"]
  return {name: tuple(layers[_MODULE_OF[name]][name]["kernel"].shape[1:])
          for name in lora.targets}


def _tree(leaves: Mapping[str, Any]) -> dict[str, Any]:
  """{projection: {lora_a, lora_b}} -> the nested tree model/layers/<module>/<projection>."""
  layers: dict[str, Any] = {}
  for name, leaf in leaves.items():
    layers.setdefault(_MODULE_OF[name], {})[name] = leaf
  return {"model": {"layers": layers}}


def abstract_adapters(cfg: ModelConfig, lora: LoRAConfig) -> dict[str, Any]:
  """ShapeDtypeStructs of the adapter tree (float32: a small tree whose updates are tiny)."""
  n, r = cfg.num_layers, lora.rank
  return _tree({name: {"lora_a": jax.ShapeDtypeStruct((n, d_in, r), jnp.float32),
                       "lora_b": jax.ShapeDtypeStruct((n, r, d_out), jnp.float32)}
                for name, (d_in, d_out) in _kernels(cfg, lora).items()})


def init_adapters(cfg: ModelConfig, lora: LoRAConfig, key: jax.Array) -> dict[str, Any]:
  """A uniform in +-1/sqrt(in) (PEFT's kaiming-uniform), B zero: the merged model is the base."""
  leaves = {}
  for i, (name, (d_in, d_out)) in enumerate(sorted(_kernels(cfg, lora).items())):
    bound = 1.0 / math.sqrt(d_in)
    a = jax.random.uniform(jax.random.fold_in(key, i), (cfg.num_layers, d_in, lora.rank),
                           jnp.float32, -bound, bound)
    leaves[name] = {"lora_a": a,
                    "lora_b": jnp.zeros((cfg.num_layers, lora.rank, d_out), jnp.float32)}
  return _tree(leaves)


def adapter_logical_axes(cfg: ModelConfig, lora: LoRAConfig) -> dict[str, Any]:
  """Logical PartitionSpecs: A keeps its kernel's input axis, B its output axis."""
  P = jax.sharding.PartitionSpec
  layers = transformer.param_logical_axes(cfg)["model"]["layers"]
  out = {}
  for name in lora.targets:
    lay, d_in, d_out = tuple(layers[_MODULE_OF[name]][name]["kernel"])
    out[name] = {"lora_a": P(lay, d_in, None), "lora_b": P(lay, None, d_out)}
  return _tree(out)


def merge(params: transformer.Params, adapters: Mapping[str, Any],
          lora: LoRAConfig) -> transformer.Params:
  """The effective params: each targeted kernel W [L, in, out] + (alpha / r) A B.

  The sum is taken in float32 and cast to the kernel's dtype, so with B = 0 every kernel
  comes back bit for bit. Untargeted leaves are the base's own arrays (no copy).
  """
  layers = dict(params["model"]["layers"])
  for module, projections in adapters["model"]["layers"].items():
    group = dict(layers[module])
    for name, ad in projections.items():
      w = group[name]["kernel"]
      delta = jnp.einsum("lir,lro->lio", ad["lora_a"].astype(jnp.float32),
                         ad["lora_b"].astype(jnp.float32))
      kernel = (w.astype(jnp.float32) + lora.scale * delta).astype(w.dtype)
      group[name] = {**group[name], "kernel": kernel}
    layers[module] = group
  return {**params, "model": {**params["model"], "layers": layers}}


def num_adapter_params(cfg: ModelConfig, lora: LoRAConfig) -> int:
  """Learned numbers of the adapters: L r (in + out) per targeted projection."""
  return sum(cfg.num_layers * lora.rank * (d_in + d_out)
             for d_in, d_out in _kernels(cfg, lora).values())


def adapter_shardings(cfg: ModelConfig, lora: LoRAConfig, mesh: jax.sharding.Mesh,
                      rules: Any) -> dict[str, Any]:
  """NamedSharding of every adapter leaf on `mesh` under the logical-axis `rules`."""
  from r1jax import sharding  # pylint: disable=g-import-not-at-top  (it imports the models)
  sizes = dict(mesh.shape)
  units = {"q_heads": cfg.head_dim, "kv_heads": cfg.head_dim}
  return jax.tree.map(
      lambda s, a: jax.sharding.NamedSharding(
          mesh, sharding.spec_for_shape(tuple(s), a.shape, rules, sizes, units)),
      adapter_logical_axes(cfg, lora), abstract_adapters(cfg, lora),
      is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
