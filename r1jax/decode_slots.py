"""The decode batch's slots: which row each of S slots generates, and the two ways rows move.

Place in the pipeline: the state of the sampler's decode loop (r1jax/sampler.py, step 2 of a
GRPO step). A slot holds one (prompt, sample) row: its cache (the prompt's keys and values,
then its own generated ones), its position, budget, next-token logits and last tokens.
`start_rows` gives pending rows to free slots (continuous batching), copying their prompts'
prefilled keys and values; `narrow` moves the last live rows to a smaller batch once no rows
are pending, so the end of a heavy-tailed call does not decode every slot.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from r1jax import prefill

__all__ = ["Slots", "narrow", "start_rows"]


class Slots(NamedTuple):
  """The decode batch: S slots, each generating one (prompt, sample) row or idle."""
  # L x the layer's cache parts (r1jax/models/kv_cache.py): the prompt's, then the generated
  # blocks (their spans sum to T_new); keys [S, K, H, span], values [S, K, span, H].
  k: tuple[tuple[jax.Array, ...], ...]
  v: tuple[tuple[jax.Array, ...], ...]
  prompt_mask: jax.Array  # [S, T_p] bool: the slot's prompt tokens.
  row: jax.Array  # [S] int32: the output row the slot generates; B (= P * R) when idle.
  n: jax.Array  # [S] int32: tokens the slot's row has generated so far.
  pos: jax.Array  # [S] int32: RoPE position of the slot's next token.
  budget: jax.Array  # [S] int32: the row's token budget.
  logits: jax.Array  # [S, V] float32: logits for the slot's next token.
  window: jax.Array  # [S, M] the row's last M tokens (-1 before the first), M >= 1.


def start_rows(slots: Slots, free: jax.Array, next_row: jax.Array,
                prompts: prefill.Prompts, *, num_rows: int, num_samples: int,
                most: int) -> tuple[Slots, jax.Array]:
  """Gives the next pending rows to up to `most` free slots (free [S] bool), in slot order.

  A started slot gets its prompt's keys, values, mask, logits and position copied from the
  prefill; its generated blocks need no clearing (the mask hides them). Free slots left without
  a row go idle. Only `most` rows are copied, so the cost per step is bounded.
  """
  s = free.shape[0]
  rank = jnp.cumsum(free) - 1
  take = free & (rank < most) & (next_row + rank < num_rows)
  idx = jnp.nonzero(take, size=most, fill_value=s)[0]  # [most] slot ids; s = nothing.
  new_row = next_row + jnp.arange(most, dtype=jnp.int32)
  prompt = jnp.minimum(new_row, num_rows - 1) // num_samples
  set_rows = lambda a, x: a.at[idx].set(x.astype(a.dtype), mode="drop")
  k = tuple((set_rows(c[0], pk[prompt]),) + c[1:] for c, pk in zip(slots.k, prompts.k))
  v = tuple((set_rows(c[0], pv[prompt]),) + c[1:] for c, pv in zip(slots.v, prompts.v))
  row = jnp.where(free & ~take, num_rows, slots.row)
  out = Slots(
      k, v, set_rows(slots.prompt_mask, prompts.mask[prompt]), set_rows(row, new_row),
      set_rows(slots.n, jnp.zeros_like(new_row)), set_rows(slots.pos, prompts.length[prompt]),
      set_rows(slots.budget, prompts.budget[prompt]),
      set_rows(slots.logits, prompts.logits[prompt]),
      set_rows(slots.window, jnp.full((most, slots.window.shape[1]), -1, jnp.int32)))
  return out, next_row + jnp.sum(take, dtype=jnp.int32)


def narrow(slots: Slots, tail: int, b: int, pin_k: Callable[[jax.Array], jax.Array],
           pin_v: Callable[[jax.Array], jax.Array]) -> Slots:
  """The live slots (at most `tail`) moved, in slot order, to a batch of `tail` slots.

  b is the number of output rows (an idle slot's `row`); pin_k and pin_v place the copied
  cache parts (r1jax/decode_layout.py). The copy is one gather of each cache part.
  """
  live = slots.row < b
  idx = jnp.nonzero(live, size=tail, fill_value=0)[0]
  take = lambda a: a[idx]
  parts = lambda layers, pin: tuple(tuple(pin(take(c)) for c in parts) for parts in layers)
  row = jnp.where(jnp.arange(tail) < jnp.sum(live), slots.row[idx], b)  # Fillers: idle.
  return Slots(parts(slots.k, pin_k), parts(slots.v, pin_v), take(slots.prompt_mask), row,
                take(slots.n), take(slots.pos), take(slots.budget), take(slots.logits),
                take(slots.window))
