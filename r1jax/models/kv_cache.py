"""The decode KV cache and the attention that writes it and reads only its filled part.

Place in the pipeline: the sampler (r1jax/sampler.py, step 2 of a GRPO step) runs the model's
own `transformer.block` for prefill and decode; the `attend` functions here are what it hands
the block. Prefill's attention is the model's masked attention over the prompt alone, keeping
the keys and values; decode's writes each row's new key and value at that row's own position
and attends over the cache up to the longest live row, not the whole budget.

Layout: a layer's keys and values are tuples of parts for S decode slots (rows being
generated), K kv heads, H head dim: first the prompt part (span T_p, the bucket, left-padded),
then the generated positions cut into equal blocks (`block_spans`). Values are [S, K, span, H]
and keys [S, K, H, span], transposed: the score dot q [G, H] x k [H, span] then writes rows
along the positions, which XLA:CPU ran 1.3-1.4x faster than with keys as [S, K, span, H]
(64 rows, 512 positions, 30 layers: 105 vs 145 ms; 16 rows, 192 positions: 12.4 vs 17.0 ms).
Putting (S, K) first lets the per-head dots run as batched matmuls without a transpose.

Filled-part attention without dynamic shapes: each decode step picks (lax.switch) the branch
that attends over the prompt and the blocks up to the longest live row. The blocks are
separate arrays so that a branch hands whole arrays to its dots: a prefix slice of one
[S, K, C, H] array is not contiguous, and XLA:CPU copied it on every step and layer, which
cost more than reading the whole cache (64 rows, 448 positions: 209 ms a step for 30 layers
over 224 positions as a slice, against 65 ms as blocks). A step early in a long generation
reads T_p + one block, not T_p + T_new; one compile covers every length.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from r1jax.models import transformer
from r1jax.models.config import ModelConfig

__all__ = ["abstract_cache", "block_spans", "decode_attend", "filled_lengths", "filled_choice",
           "prefill_attend"]


def abstract_cache(cfg: ModelConfig, slots: int, length: int, prompts: int = 0,
                   prompt_len: int = 0) -> dict[str, jax.ShapeDtypeStruct]:
  """The sampler's caches as shapes (allocates nothing), stacked over layers for planning.

  k, v [L, S, K, C, H] for S decode slots of C = T_p + T_new positions; with `prompts` P > 0
  also prompt_k, prompt_v [L, P, K, T_p, H], the prefilled prompts slots copy from. The
  sampler holds each layer's as parts (the module docstring's layout): the same bytes, and
  the same split over the batch, kv-head and length axes.
  """
  dt = jnp.dtype(cfg.dtype)
  shape = lambda b, t: jax.ShapeDtypeStruct(
      (cfg.num_layers, b, cfg.num_kv_heads, t, cfg.head_dim), dt)
  out = {"k": shape(slots, length), "v": shape(slots, length)}
  if prompts:
    out.update(prompt_k=shape(prompts, prompt_len), prompt_v=shape(prompts, prompt_len))
  return out


def prefill_attend(allowed: jax.Array, *, cfg: ModelConfig,
                   before: tuple[jax.Array, jax.Array] | None = None) -> transformer.AttendFn:
  """Masked attention over the prompt (allowed [P, T, T_s + T]).

  `before` is an optional shared prefix's keys and values [1, T_s, K, H] at the same layer
  (r1jax/prefill.py): every row attends over them first. Also returns the rows' own keys and
  values [P, T, K, H] (not the prefix's), which the prefill places in the cache's layout.
  """

  def attend(q, k, v):  # k, v [P, T, K, H]
    keys, values = k, v
    if before is not None:  # The prefix's one row, read by each of the P rows.
      fan = lambda y, like: jnp.broadcast_to(y, (like.shape[0],) + y.shape[1:]).astype(like.dtype)
      keys = jnp.concatenate([fan(before[0], k), k], axis=1)
      values = jnp.concatenate([fan(before[1], v), v], axis=1)
    return transformer.masked_attention(q, keys, values, allowed, cfg=cfg), (k, v)

  return attend


def block_spans(t_new: int, blocks: int) -> tuple[int, ...]:
  """Lengths of the generated blocks: `blocks` equal spans of T_new (the last may be shorter)."""
  blocks = max(1, min(blocks, t_new))
  span = -(-t_new // blocks)
  return tuple(min(span, t_new - start) for start in range(0, t_new, span))


def filled_lengths(t_prompt: int, t_new: int, blocks: int) -> tuple[int, ...]:
  """The cache prefix lengths decode may attend over: T_p + each block's end, to C."""
  return tuple(t_prompt + end for end in np.cumsum(block_spans(t_new, blocks)).tolist())


def filled_choice(lengths: Sequence[int], t_prompt: int, needed: jax.Array) -> jax.Array:
  """Index of the shortest of `lengths` covering `needed` generated positions (a () int32)."""
  ends = jnp.asarray(lengths, jnp.int32) - t_prompt
  return jnp.minimum(jnp.sum(ends < needed), len(lengths) - 1).astype(jnp.int32)


def _attend_parts(q, ks, vs, allowed):
  """q [S, K, G, H] over cache parts ks [S, K, H, span], vs [S, K, span, H] -> [S, K, G, H].

  allowed [S, sum of spans] bool.
  """
  h = q.shape[-1]
  scores = jnp.concatenate(
      [jnp.einsum("bkgh,bkhs->bkgs", q, k.astype(q.dtype), preferred_element_type=jnp.float32)
       for k in ks], axis=3) * (h ** -0.5)
  scores = jnp.where(allowed[:, None, None, :], scores, jnp.finfo(jnp.float32).min)
  probs = jax.nn.softmax(scores, axis=3).astype(q.dtype)
  out, start = None, 0
  for v in vs:  # Part by part in order: parts past the live rows add exact zeros.
    span = v.shape[2]
    part = jnp.einsum("bkgs,bksh->bkgh", probs[..., start:start + span], v.astype(q.dtype))
    out, start = part if out is None else out + part, start + span
  return out


def decode_attend(cache_k: Sequence[jax.Array], cache_v: Sequence[jax.Array], at: jax.Array,
                  allowed: jax.Array, choice: jax.Array) -> transformer.AttendFn:
  """Attention for one new token per slot, with the layer's cache parts in and out.

  Args:
    cache_k, cache_v: the layer's cache parts: the prompt's, then the generated blocks
      (`block_spans`); keys [S, K, H, span], values [S, K, span, H].
    at: int32 [S], the generated position (0-based, after the prompt) each slot's new key and
      value go to, or a () int32 when every slot writes the same one. Positions outside the
      generated blocks are not written (an idle slot's).
    allowed: bool [S, C], the positions each slot's query sees (its new one included), C the
      sum of the parts' spans.
    choice: () int32: attend over the prompt and blocks 0..choice (`filled_choice`); it must
      cover every live slot's allowed positions.

  Returns:
    attend(q [S, 1, N, H], k, v [S, 1, K, H]) -> (out [S, 1, N H], (new parts k, new parts v)).
  """

  def attend(q, k, v):
    s, _, n, h = q.shape
    kv = k.shape[2]

    def put(parts, x, axis):  # x [S, 1, K, H] into the block holding `at`; the rest untouched.
      out, start = [parts[0]], 0
      for c in parts[1:]:
        span = c.shape[axis]
        pos = at - start
        pos = jnp.where((pos >= 0) & (pos < span), pos, span)  # span: out of range, dropped.
        new = x[:, 0].astype(c.dtype)
        if at.ndim == 0:  # One shared `at`: a column.
          out.append(c.at[(slice(None),) * axis + (pos,)].set(new, mode="drop"))
        else:  # Each row its own position: a scatter batched over the rows (vmap), which a
          # mesh splits with the rows; indexing the rows by arange made it gather the cache.
          row = lambda c_, x_, p_: c_.at[(slice(None),) * (axis - 1) + (p_,)].set(x_, mode="drop")
          out.append(jax.vmap(row)(c, new, pos))
        start += span
      return tuple(out)

    new_k, new_v = put(cache_k, k, 3), put(cache_v, v, 2)
    qg = q.reshape(s, kv, n // kv, h)
    ends = np.cumsum([c.shape[2] for c in new_v]).tolist()
    branches = [functools.partial(lambda j, q_, ks, vs, a: _attend_parts(
        q_, ks[:j + 2], vs[:j + 2], a[:, :ends[j + 1]]), j) for j in range(len(new_v) - 1)]
    if len(branches) == 1:
      out = branches[0](qg, new_k, new_v, allowed)
    else:
      out = jax.lax.switch(choice, branches, qg, new_k, new_v, allowed)
    return out.reshape(s, 1, n * h), (new_k, new_v)

  return attend
