"""The Pallas splash-attention kernel (TPU) behind `transformer.Attention`'s mask interface.

Place in the pipeline: `ModelConfig.attention` = "splash" (the "auto" choice on TPU, see
`transformer.attention_impl`) sends the training forward (the GRPO update, the pi_old and
reference passes) here; calls that write a KV cache (the sampler's prefill, cached decoding)
take XLA's `jax.nn.dot_product_attention` instead, since the kernel's mask is static.

The kernel (jax.experimental.pallas.ops.tpu.splash_attention) streams keys in blocks and never
holds the [T, S] scores; its mask is a static causal mask plus per-token segment ids (a query
attends to earlier keys of its own segment). The model's mask is `allowed` [B, T, T] = causal
& key is a real token, so each row's padding becomes segment ids: real tokens 1, pads 0. A real
query then sees exactly its allowed keys; a pad query sees earlier pads (itself at least, so no
softmax row is empty) where the reference path sees real keys, a difference only in pad
positions' outputs, which never reach a real token or a loss. T is padded up to a multiple of
the kernel's 128-wide blocks with pad tokens at the end (causal: no real query sees them).

Grouped-query attention runs the kernel's multi-query form once per kv head (its G query
heads over one key / value head). Under a mesh the kernel runs inside `shard_map`: rows split
as the logical rules split `act_batch` and kv heads as they split `kv_heads` (where the mesh
divides them), since XLA cannot partition a Pallas call itself. Off TPU it runs in Pallas
interpret mode (slow; for tests on CPU).
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention as splash
from jax.sharding import PartitionSpec as P

__all__ = ["BLOCK", "segment_ids", "splash_attention"]

BLOCK = 128  # The kernel's tile width: T is padded to a multiple of it.


def segment_ids(allowed: jax.Array) -> jax.Array:
  """Causal self-attention mask allowed [B, T, T] -> int32 segment ids [B, T] (real 1, pad 0).

  The last query of a causal mask is allowed every real key, so its row is the padding mask.
  """
  if allowed.ndim != 3 or allowed.shape[1] != allowed.shape[2]:
    raise ValueError(f"splash attention needs a square self-attention mask [B, T, T], got "
                     f"shape {allowed.shape}")
  return allowed[:, -1, :].astype(jnp.int32)


def _kernel(t: int, groups: int, interpret: bool):
  """The multi-query kernel for G query heads over T (a multiple of BLOCK) causal positions.

  Built per trace, not cached: it holds its mask's block tables as arrays, which a cache would
  carry from one trace into another.
  """
  block = max(b for b in (512, 256, BLOCK) if t % b == 0)
  sizes = splash.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                            block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
                            block_q_dq=block, block_kv_dq=block)
  mask = splash.MultiHeadMask([splash.CausalMask((t, t)) for _ in range(groups)])
  return splash.make_splash_mqa_single_device(mask, block_sizes=sizes, interpret=interpret)


def _local(q: jax.Array, k: jax.Array, v: jax.Array, seg: jax.Array, *,
           interpret: bool) -> jax.Array:
  """q [B, T, K, G, H], k / v [B, T, K, H], seg [B, T] -> out [B, T, K, G, H] on one device."""
  b, t, kv, g, h = q.shape
  tp = -(-t // BLOCK) * BLOCK
  pad = lambda x: jnp.pad(x, [(0, 0), (0, tp - t)] + [(0, 0)] * (x.ndim - 2))
  q, k, v, seg = pad(q * jnp.asarray(h ** -0.5, q.dtype)), pad(k), pad(v), pad(seg)
  kernel = _kernel(tp, g, interpret)
  one = lambda q, k, v, s: kernel(q, k, v, segment_ids=splash.SegmentIds(s, s))
  per_head = jax.vmap(one, in_axes=(0, 0, 0, None))  # Over kv heads: [K, G, T, H].
  out = jax.vmap(per_head)(q.transpose(0, 2, 3, 1, 4), k.transpose(0, 2, 1, 3),
                           v.transpose(0, 2, 1, 3), seg)  # [B, K, G, Tp, H]
  return out.transpose(0, 3, 1, 2, 4)[:, :t]


def _spec_axis(name: str, size: int, mesh_shape: dict[str, int]):
  """The mesh axes the active rules give logical axis `name`, if they divide `size`."""
  axes = nn.logical_to_mesh_axes((name,))[0]
  if axes is None:
    return None
  names = (axes,) if isinstance(axes, str) else tuple(axes)
  return axes if size % math.prod(mesh_shape[a] for a in names) == 0 else None


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, allowed: jax.Array, *,
                     interpret: bool | None = None) -> jax.Array:
  """Causal GQA self-attention through the splash kernel; scale 1 / sqrt(H).

  Args:
    q: [B, T, N, H] queries (RoPE applied).
    k, v: [B, T, K, H] keys and values of the same T positions (no cache).
    allowed: bool [B, T, T], causal & key is real (as `transformer.forward` builds it).
    interpret: run the kernel in Pallas interpret mode; default: unless the backend is TPU.

  Returns:
    [B, T, N, H] in q's dtype; equal to the reference path at real query positions.
  """
  b, t, n, h = q.shape
  kv = k.shape[2]
  if interpret is None:
    interpret = jax.default_backend() != "tpu"
  q = q.reshape(b, t, kv, n // kv, h)
  seg = segment_ids(allowed)
  run = functools.partial(_local, interpret=interpret)
  mesh = jax.sharding.get_abstract_mesh()
  if not mesh.empty and nn.get_logical_axis_rules():
    shape = dict(mesh.shape)
    rows, heads = _spec_axis("act_batch", b, shape), _spec_axis("kv_heads", kv, shape)
    run = jax.shard_map(run, mesh=mesh, in_specs=(
        P(rows, None, heads, None, None), P(rows, None, heads, None),
        P(rows, None, heads, None), P(rows, None)),
                        out_specs=P(rows, None, heads, None, None), check_vma=False)
  out = run(q, k.astype(q.dtype), v.astype(q.dtype), seg)
  return out.reshape(b, t, n, h)

