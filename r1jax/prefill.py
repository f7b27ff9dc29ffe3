"""The sampler's prefill: P prompts -> their keys, values and next-token logits, a shared
prefix run once.

Place in the pipeline: the first part of `sampler.generate` (step 2 of a GRPO step), inside
its jit. The decode loop (r1jax/sampler.py) copies a prompt's keys and values into each slot
that generates one of its samples.

Prompts usually begin alike: a chat template's system turn, R1's "A conversation between User
and Assistant..." preamble. When they share their first T_s tokens (`shared_prefix_length`),
the prefill runs two streams through each layer, as the update's shared-prompt forward does
(r1jax/models/shared_prompt.py):

  prefix    [1, T_s]   the shared tokens, once, attending to themselves (causal);
  suffixes  [P, T_x]   each prompt's rest, left-padded, attending to the prefix's keys and
                       values of the same layer, then to its own earlier positions;

so the prefill's matmuls run on T_s + P T_x positions instead of P (T_s + T_x). The result
is laid out as if the prompts had been prefilled whole: each prompt's part is
[prefix | padding | suffix], T_p = T_s + T_x positions, with a mask and RoPE positions that
count only real tokens, so decode reads it as any other left-padded prompt. The logits equal a
whole prefill's up to float rounding.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from r1jax.models import kv_cache
from r1jax.models import transformer
from r1jax.models.config import ModelConfig

__all__ = ["Prompts", "prefill", "shared_prefix_length", "top_logits"]


class Prompts(NamedTuple):
  """The P distinct prompts, prefilled once; decode slots copy a prompt's part when they start."""
  k: tuple[jax.Array, ...]  # L x [P, K, H, T_p] keys of the prompt positions (after RoPE).
  v: tuple[jax.Array, ...]  # L x [P, K, T_p, H]
  mask: jax.Array  # [P, T_p] bool: real prompt tokens.
  logits: jax.Array  # [P, V] float32: next-token logits after each prompt.
  length: jax.Array  # [P] int32: real tokens of each prompt (the first new token's position).
  budget: jax.Array  # [P] int32: new tokens each prompt's rows may generate (<= T_new).


def shared_prefix_length(prompts: Sequence[Sequence[int]], multiple: int) -> int:
  """T_s: the prompts' common first tokens, rounded down to a multiple of `multiple`.

  Every prompt keeps at least one token after the prefix (its last position's logits start
  the decode). Rounding keeps the prefix length, a static shape, the same across batches
  whose prompts agree a little beyond their template, so they share one compile. 0 = none
  (also when `multiple` is 0: sharing off).
  """
  if multiple <= 0 or not prompts:
    return 0
  first, common = prompts[0], min(len(p) for p in prompts) - 1
  for p in prompts[1:]:
    n = 0
    while n < common and p[n] == first[n]:
      n += 1
    common = n
  return common // multiple * multiple


def top_logits(top: transformer.Params, x: jax.Array, cfg: ModelConfig) -> jax.Array:
  """Last hidden states x [B, D] -> float32 next-token logits [B, V] (final norm, head)."""
  return transformer.head_logits(top, transformer.rms_norm(top["model"]["norm"], x, cfg),
                                 cfg=cfg)


def prefill(layers: Sequence[transformer.Params], top: transformer.Params, prefix: jax.Array,
            tokens: jax.Array, mask: jax.Array, budget: jax.Array, *,
            cfg: ModelConfig) -> Prompts:
  """Prompts -> their keys, values and next-token logits (attending over the prompts alone).

  Args:
    layers: the decode layout's per-layer weights (r1jax/decode_layout.py).
    top: embedding, final norm and head.
    prefix: int32 [1, T_s], the tokens every prompt starts with (T_s may be 0).
    tokens: int32 [P, T_x], each prompt's tokens after the prefix, left-padded; every row has
      at least one real token, so the last column is each prompt's last token.
    mask: bool [P, T_x], True on real tokens.
    budget: int32 [P], new tokens each prompt's rows may generate.
    cfg: the model's architecture.

  Returns:
    Prompts over T_p = T_s + T_x positions: the prefix, then the left-padded rest.
  """
  p, t_s = tokens.shape[0], prefix.shape[1]
  length = mask.sum(axis=1, dtype=jnp.int32) + t_s
  if t_s == 0:
    x, kv = transformer.run_layers(
        layers, transformer.embed(top, tokens, cfg), transformer.positions_from_mask(mask),
        kv_cache.prefill_attend(transformer.causal_allowed(mask), cfg=cfg), cfg=cfg)
    ks, vs = zip(*kv)
    return Prompts(tuple(ks), tuple(vs), mask, top_logits(top, x[:, -1], cfg), length, budget)

  t_x = tokens.shape[1]
  prefix_pos = jnp.arange(t_s, dtype=jnp.int32)[None]
  # Pads sit at position t_s, like `positions_from_mask`'s pads at 0: never attended to.
  suffix_pos = t_s + transformer.positions_from_mask(mask)
  prefix_allowed = transformer.causal_allowed(jnp.ones((1, t_s), bool))
  # A suffix query sees the whole prefix, then its prompt's real tokens up to itself.
  suffix_allowed = jnp.concatenate(
      [jnp.ones((p, t_x, t_s), bool), transformer.causal_allowed(mask)], axis=2)
  x_pre, x_suf = transformer.embed(top, prefix, cfg), transformer.embed(top, tokens, cfg)

  def prefix_attend(q, k, v):  # The prefix's own keys and values, for the suffixes.
    return transformer.masked_attention(q, k, v, prefix_allowed, cfg=cfg), (k, v)

  ks, vs = [], []
  for layer in layers:
    x_pre, before = transformer.block(layer, x_pre, prefix_pos, prefix_attend, cfg=cfg)
    x_suf, (k, v) = transformer.block(
        layer, x_suf, suffix_pos,
        kv_cache.prefill_attend(suffix_allowed, cfg=cfg, before=before), cfg=cfg)
    ks.append(k)
    vs.append(v)
  whole_mask = jnp.concatenate([jnp.ones((p, t_s), bool), mask], axis=1)
  return Prompts(tuple(ks), tuple(vs), whole_mask, top_logits(top, x_suf[:, -1], cfg), length,
                 budget)
