"""The sampler's prefill: P prompts -> their keys, values and next-token logits, packed into
rows and run in chunks, a shared prefix run once.

Place in the pipeline: the first part of `sampler.generate` (step 2 of a GRPO step), inside
its jit. The decode loop (r1jax/sampler.py) copies a prompt's keys and values into each slot
that generates one of its samples.

Prompts usually begin alike: a chat template's system turn, R1's "A conversation between User
and Assistant..." preamble. When they share their first T_s tokens (`shared_prefix_length`),
that prefix runs once, [1, T_s], attending to itself (causal), as the update's shared-prompt
forward does (r1jax/models/shared_prompt.py). The rest of each prompt (its suffix) attends to
the prefix's keys and values of the same layer, then to its own earlier positions.

Suffixes differ in length (GSM8K's, after R1's chat preamble: 73 tokens on average, up to
199), and a batch padded to the longest spends most of its matmuls on padding. So `pack`
(on the host) places them end to end in rows of the bucket's width W = T_x, first fit by
decreasing length, each token tagged with its prompt (`segment`) and its position in it; a
token attends only within its own segment. The prefill runs the packed rows C at a time
(`chunk_rows`: at most `CHUNK_POSITIONS` positions; a small batch in one chunk) in a loop
whose trip count is the number of chunks holding tokens, so its work follows the prompts'
real tokens while every shape depends only on P and the bucket (one compile per bucket).
Each chunk scatters its keys and values to their prompts' cache columns and its prompts'
last hidden states to their rows. Under a mesh the prompts are cut into G groups, one per
device their rows are split over (the `batch` axis); each group packs its own prompts, so a
chunk's scatter stays on its device.

The result is laid out as if the prompts had been prefilled whole: each prompt's part is
[prefix | padding | suffix], T_p = T_s + T_x positions, with a mask and RoPE positions that
count only real tokens, so decode reads it as any other left-padded prompt. Keys, values and
logits equal a whole prefill's up to float rounding.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from r1jax import decode_layout
from r1jax.models import kv_cache
from r1jax.models import transformer
from r1jax.models.config import ModelConfig

__all__ = ["CHUNK_POSITIONS", "Packed", "Prompts", "chunk_rows", "pack", "prefill",
           "shared_prefix_length", "top_logits", "unpacked"]

# Packed positions a prefill chunk runs at most. The first 256 GSM8K test prompts prefilled in
# 31.7, 33.0 and 33.1 s at 1,024, 2,048 and 4,096 (2-core AMD EPYC, SmolLM2 float32): near
# XLA:CPU's best dot rate already, and smaller chunks end closer to the last packed row.
CHUNK_POSITIONS = 1024


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


class Packed(NamedTuple):
  """Prompt suffixes packed end to end into rows of width W, in G groups of N rows.

  Group g holds the suffixes of prompts [g P/G, (g + 1) P/G) (P_g of them); empty positions
  have segment P_g. Built on the host by `pack`, or as one suffix a row by `unpacked`.
  """
  tokens: jax.Array  # [G, N, W] int32
  segment: jax.Array  # [G, N, W] int32: the token's prompt within its group; P_g when empty.
  position: jax.Array  # [G, N, W] int32: its position within its prompt's suffix (0 if empty).
  column: jax.Array  # [G, N, W] int32: its prompt's cache column, T_s + T_x - n + position.
  last: jax.Array  # [G, N, W] bool: its prompt's last token.
  chunks: jax.Array  # () int32: chunks of `chunk_rows` rows holding tokens (the loop's trips).


def chunk_rows(p_g: int, width: int) -> int:
  """C, the packed rows a prefill chunk runs: P_g rows cut into as few equal chunks as keep
  each within CHUNK_POSITIONS positions (a small batch runs as one chunk)."""
  chunks = max(1, -(-p_g * width // CHUNK_POSITIONS))
  return -(-p_g // chunks)


def _rows(p_g: int, width: int) -> int:
  """N, the packed rows a group holds: P_g (one suffix a row at worst) rounded up to chunks."""
  c = chunk_rows(p_g, width)
  return -(-p_g // c) * c


def pack(mask: np.ndarray, tokens: np.ndarray, t_s: int, groups: int = 1) -> Packed:
  """Packs left-padded suffixes (host numpy) into rows of width T_x, first fit decreasing.

  Args:
    mask: bool [P, T_x], True on real tokens; every row has at least one.
    tokens: int32 [P, T_x], each prompt's tokens after the prefix, left-padded.
    t_s: the shared prefix's length (the cache columns start after it).
    groups: G, prompt groups packed apart (the devices the prompts are split over).

  Returns:
    Packed numpy arrays [G, N, T_x] and the chunk count.
  """
  p, w = mask.shape
  if groups < 1 or p % groups:
    raise ValueError(f"groups must be a positive divisor of the {p} prompts, got {groups}")
  p_g, lengths = p // groups, mask.sum(axis=1)
  if lengths.min() < 1:  # Its last token would mark the previous prompt's.
    raise ValueError(f"every prompt needs a token after the prefix; prompt "
                     f"{int(lengths.argmin())} has none")
  n = _rows(p_g, w)
  out = {name: np.zeros((groups, n, w), dtype) for name, dtype in (
      ("tokens", np.int32), ("segment", np.int32), ("position", np.int32),
      ("column", np.int32), ("last", bool))}
  out["segment"][:] = p_g
  used = 0
  for g in range(groups):
    free: list[int] = []  # Free width left in each row opened so far.
    for i in sorted(range(p_g), key=lambda i: -lengths[g * p_g + i]):  # Stable: ties in order.
      prompt, length = g * p_g + i, int(lengths[g * p_g + i])
      row = next((r for r, room in enumerate(free) if room >= length), len(free))
      if row == len(free):
        free.append(w)
      at = slice(w - free[row], w - free[row] + length)
      free[row] -= length
      out["tokens"][g, row, at] = tokens[prompt, w - length:]
      out["segment"][g, row, at] = i
      out["position"][g, row, at] = np.arange(length)
      out["column"][g, row, at] = t_s + w - length + np.arange(length)
      out["last"][g, row, at.stop - 1] = True
    used = max(used, len(free))
  return Packed(**out, chunks=np.int32(-(-used // chunk_rows(p_g, w))))


def unpacked(tokens: jax.Array, mask: jax.Array, t_s: int, groups: int = 1) -> Packed:
  """The same arrays with each suffix alone in its row, as it sits (traceable, no packing)."""
  p, w = mask.shape
  p_g = p // groups
  n = _rows(p_g, w)
  grid = lambda a, fill: jnp.pad(a.reshape(groups, p_g, w), ((0, 0), (0, n - p_g), (0, 0)),
                                 constant_values=fill)
  segment = jnp.where(mask, jnp.arange(p, dtype=jnp.int32)[:, None] % p_g, p_g)
  column = jnp.broadcast_to(t_s + jnp.arange(w, dtype=jnp.int32), (p, w))
  last = jnp.broadcast_to(jnp.arange(w) == w - 1, (p, w))
  return Packed(grid(tokens.astype(jnp.int32), 0), grid(segment, p_g),
                grid(transformer.positions_from_mask(mask), 0), grid(column, 0),
                grid(last, False), jnp.asarray(n // chunk_rows(p_g, w), jnp.int32))


def top_logits(top: transformer.Params, x: jax.Array, cfg: ModelConfig) -> jax.Array:
  """Last hidden states x [B, D] -> float32 next-token logits [B, V] (final norm, head)."""
  return transformer.head_logits(top, transformer.rms_norm(top["model"]["norm"], x, cfg),
                                 cfg=cfg)


def prefill(layers: Sequence[transformer.Params], top: transformer.Params, prefix: jax.Array,
            packed: Packed, mask: jax.Array, budget: jax.Array, *,
            cfg: ModelConfig) -> Prompts:
  """Prompts -> their keys, values and next-token logits (attending over the prompts alone).

  Args:
    layers: the decode layout's per-layer weights (r1jax/decode_layout.py).
    top: embedding, final norm and head.
    prefix: int32 [1, T_s], the tokens every prompt starts with (T_s may be 0).
    packed: the prompts' suffixes in G groups of packed rows (`pack` or `unpacked`).
    mask: bool [P, T_x], True on each prompt's real suffix tokens, left-padded.
    budget: int32 [P], new tokens each prompt's rows may generate.
    cfg: the model's architecture.

  Returns:
    Prompts over T_p = T_s + T_x positions: the prefix, then the left-padded rest.
  """
  (p, t_x), t_s = mask.shape, prefix.shape[1]
  g, n, w = packed.tokens.shape
  p_g, c = p // g, chunk_rows(p // g, w)
  dt = jnp.dtype(cfg.dtype)
  before: list = [None] * len(layers)
  if t_s:  # The prefix once: its keys and values at each layer, for every suffix.
    x = transformer.embed(top, prefix, cfg)
    attend = kv_cache.prefill_attend(
        transformer.causal_allowed(jnp.ones((1, t_s), bool)), cfg=cfg)
    prefix_pos = jnp.arange(t_s, dtype=jnp.int32)[None]
    for i, layer in enumerate(layers):
      x, before[i] = transformer.block(layer, x, prefix_pos, attend, cfg=cfg)
  # The splash kernel (TPU) reads a square `allowed` as causal + padding, which packed rows
  # are not (they attend by segment): XLA's attention runs them.
  attn_cfg = (dataclasses.replace(cfg, attention="xla")
              if transformer.attention_impl(cfg, dt) == "splash" else cfg)
  kv = cfg.num_kv_heads, cfg.head_dim
  pin = lambda a: decode_layout.rows(a, "batch", *([None] * (a.ndim - 1)))

  def prompt_part(kv_prefix, keys: bool):  # [P, K, H, T_p] keys, [P, K, T_p, H] values.
    zeros = jnp.zeros((p, t_x) + kv, dt)
    part = zeros if kv_prefix is None else jnp.concatenate(
        [jnp.broadcast_to(kv_prefix.astype(dt), (p, t_s) + kv), zeros], axis=1)
    return pin(jnp.transpose(part, (0, 2, 3, 1)) if keys else jnp.swapaxes(part, 1, 2))

  ks = tuple(prompt_part(None if b is None else b[0], True) for b in before)
  vs = tuple(prompt_part(None if b is None else b[1], False) for b in before)
  hidden = pin(jnp.zeros((p, cfg.hidden_size), dt))
  by_group = lambda a: a.reshape((g, a.shape[0] // g) + a.shape[1:])
  merged = lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])

  def scatter(cache, upd, seg, col, keys: bool):
    """Writes a chunk's keys or values [G C, W, K, H] at their prompts' columns."""
    def one(cache_g, upd_g, seg_g, col_g):  # Group g's [P_g, ...] cache, its chunk's tokens.
      upd_g, seg_g, col_g = upd_g.reshape((-1,) + kv), seg_g.reshape(-1), col_g.reshape(-1)
      at = cache_g.at[seg_g, :, :, col_g] if keys else cache_g.at[seg_g, :, col_g]
      return at.set(upd_g.astype(cache_g.dtype), mode="drop")  # Segment P_g: empty, dropped.
    return pin(merged(jax.vmap(one)(by_group(cache), by_group(upd), seg, col)))

  def chunk(i, carry):
    ks, vs, hidden = carry
    take = lambda a: jax.lax.dynamic_slice_in_dim(a, i * c, c, axis=1)  # [G, C, W]
    tokens, seg, pos, col, last = (take(a) for a in packed[:5])
    flat = lambda a: pin(merged(a))
    # A token sees the whole prefix, then the earlier tokens of its own prompt (empty
    # positions, all segment P_g at position 0, see each other: no row without a key).
    own = ((seg[..., :, None] == seg[..., None, :])
           & (pos[..., None, :] <= pos[..., :, None]))
    allowed = jnp.concatenate([jnp.ones((g * c, w, t_s), bool), merged(own)], axis=2)
    x = transformer.embed(top, flat(tokens), cfg)
    positions = t_s + flat(pos)
    ks, vs = list(ks), list(vs)
    for l, layer in enumerate(layers):
      x, (k, v) = transformer.block(
          layer, x, positions,
          kv_cache.prefill_attend(allowed, cfg=attn_cfg, before=before[l]), cfg=cfg)
      ks[l], vs[l] = scatter(ks[l], k, seg, col, True), scatter(vs[l], v, seg, col, False)
    end = jnp.where(last, seg, p_g)  # Each prompt's last token writes its hidden state.
    hidden = pin(merged(jax.vmap(
        lambda h, x_g, e: h.at[e.reshape(-1)].set(x_g.reshape(-1, x_g.shape[-1]), mode="drop"))(
            by_group(hidden), by_group(x.astype(dt)), end)))
    return tuple(ks), tuple(vs), hidden

  ks, vs, hidden = jax.lax.fori_loop(0, packed.chunks, chunk, (ks, vs, hidden))
  whole_mask = jnp.concatenate([jnp.ones((p, t_s), bool), mask], axis=1)
  length = mask.sum(axis=1, dtype=jnp.int32) + t_s
  return Prompts(ks, vs, whole_mask, top_logits(top, hidden, cfg), length, budget)
