"""The decode batch's slots: which row each of S slots generates, and how rows move.

Place in the pipeline: the state of the sampler's decode loop (r1jax/sampler.py, step 2 of a
GRPO step). A slot holds one (prompt, sample) row: its cache (the prompt's keys and values,
then its own generated ones), its position, budget, next-token logits and last tokens.
`start_rows` gives pending rows to free slots (continuous batching), copying their prompts'
prefilled keys and values; `narrow` moves the last live rows to a smaller batch once no rows
are pending, so the end of a heavy-tailed call does not decode every slot; `write_rows`
writes a step's tokens into the output rows. Under a mesh the slots form G groups, one a
device, and each group starts, moves and writes only the rows of its own prompts, so none of
this crosses devices.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from r1jax import prefill

__all__ = ["Slots", "live_per_group", "narrow", "start_rows", "write_rows"]


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


def _by_group(tree, groups: int):
  """Each leaf [S, ...] (or [B, ...]) as [G, S / G, ...]: group g's slots (rows) in row g."""
  return jax.tree.map(lambda a: a.reshape(groups, a.shape[0] // groups, *a.shape[1:]), tree)


def _merged(tree):
  """The inverse of `_by_group`: each leaf [G, n, ...] as [G * n, ...]."""
  return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), tree)


def start_rows(slots: Slots, free: jax.Array, next_row: jax.Array,
               prompts: prefill.Prompts, *, num_rows: int, num_samples: int,
               most: int) -> tuple[Slots, jax.Array]:
  """Gives each slot group's next pending rows to up to `most` of its free slots, in order.

  The S slots, P prompts and B = num_rows rows are cut into G equal groups (G = next_row's
  length): group g's slots take only group g's rows, the rows of its P / G prompts. Under a
  mesh the sampler makes G the number of devices the slots are split over
  (`decode_layout.row_shards`), so a start copies prompts' keys and values that sit on the
  slot's own device: XLA builds a copy indexed by data across devices whole on every device,
  then sums it. One group (G = 1) is one queue.

  A started slot gets its prompt's keys, values, mask, logits and position copied from the
  prefill; its generated blocks need no clearing (the mask hides them). Free slots left without
  a row go idle. At most `most` rows start per group, so the cost per step is bounded.

  Args:
    slots: the decode batch.
    free: bool [S], slots that may take a row.
    next_row: int32 [G], each group's first pending row, counted within the group.
    prompts: the prefilled prompts.
    num_rows: B.
    num_samples: rows per prompt.
    most: rows a group may start in this call.

  Returns:
    The slots, and each group's next pending row.
  """
  g = next_row.shape[0]
  started, next_row = jax.vmap(
      functools.partial(_start_group, num_rows=num_rows, group_rows=num_rows // g,
                        num_samples=num_samples, most=most))(
          _by_group(slots, g), _by_group(free, g), next_row, _by_group(prompts, g),
          jnp.arange(g, dtype=jnp.int32))
  return _merged(started), next_row


def _start_group(slots: Slots, free: jax.Array, next_row: jax.Array,
                 prompts: prefill.Prompts, group: jax.Array, *, num_rows: int,
                 group_rows: int, num_samples: int, most: int) -> tuple[Slots, jax.Array]:
  """`start_rows` within one group: its slots, its prompts, its rows (numbered from 0)."""
  s = free.shape[0]
  rank = jnp.cumsum(free) - 1
  take = free & (rank < most) & (next_row + rank < group_rows)
  idx = jnp.nonzero(take, size=most, fill_value=s)[0]  # [most] slot ids; s = nothing.
  new_row = next_row + jnp.arange(most, dtype=jnp.int32)  # Within the group.
  prompt = jnp.minimum(new_row, group_rows - 1) // num_samples
  set_rows = lambda a, x: a.at[idx].set(x.astype(a.dtype), mode="drop")
  k = tuple((set_rows(c[0], pk[prompt]),) + c[1:] for c, pk in zip(slots.k, prompts.k))
  v = tuple((set_rows(c[0], pv[prompt]),) + c[1:] for c, pv in zip(slots.v, prompts.v))
  row = jnp.where(free & ~take, num_rows, slots.row)
  out = Slots(
      k, v, set_rows(slots.prompt_mask, prompts.mask[prompt]),
      set_rows(row, group * group_rows + new_row),
      set_rows(slots.n, jnp.zeros_like(new_row)), set_rows(slots.pos, prompts.length[prompt]),
      set_rows(slots.budget, prompts.budget[prompt]),
      set_rows(slots.logits, prompts.logits[prompt]),
      set_rows(slots.window, jnp.full((most, slots.window.shape[1]), -1, jnp.int32)))
  return out, next_row + jnp.sum(take, dtype=jnp.int32)


def write_rows(out: jax.Array, row: jax.Array, x: jax.Array, groups: int,
               column: jax.Array | None = None) -> jax.Array:
  """out[row[i]] (or out[row[i], column[i]]) = x[i] for each slot i; rows >= B are dropped.

  out is [B, ...] (B output rows), row, x and column are per slot [S]. Slot group g only
  writes group g's rows, so each group writes into its own B / G rows: under a mesh, on the
  device that holds both (no slot ids or tokens cross devices).
  """
  per = out.shape[0] // groups

  def one(o, r, v, c, g):
    local = r - g * per  # An idle slot's row (B) lands past the group's rows: dropped.
    idx = local if c is None else (local, c)
    return o.at[idx].set(v.astype(o.dtype), mode="drop")

  return _merged(jax.vmap(one)(*_by_group((out, row, x, column), groups), jnp.arange(groups)))


def live_per_group(slots: Slots, groups: int, b: int) -> jax.Array:
  """[G] int32: live slots in each of the G slot groups (b: an idle slot's `row`)."""
  return jnp.sum(_by_group(slots.row < b, groups), axis=1, dtype=jnp.int32)


def narrow(slots: Slots, groups: int, tail: int, b: int,
           pin_k: Callable[[jax.Array], jax.Array],
           pin_v: Callable[[jax.Array], jax.Array]) -> Slots:
  """Each group's live slots (at most `tail`) moved, in order, to `tail` slots of its own.

  The result has G * tail slots, group g's first. b is the number of output rows (an idle
  slot's `row`); pin_k and pin_v place the copied cache parts (r1jax/decode_layout.py). The
  copy is one gather of each cache part within each group: on the slots' own devices under
  a mesh (as `start_rows`).
  """
  def one(sl: Slots) -> Slots:
    live = sl.row < b
    idx = jnp.nonzero(live, size=tail, fill_value=0)[0]
    take = lambda a: a[idx]
    row = jnp.where(jnp.arange(tail) < jnp.sum(live), sl.row[idx], b)  # Fillers: idle.
    return jax.tree.map(take, sl)._replace(row=row)

  out = _merged(jax.vmap(one)(_by_group(slots, groups)))
  pin = lambda layers, f: tuple(tuple(f(c) for c in parts) for parts in layers)
  return out._replace(k=pin(out.k, pin_k), v=pin(out.v, pin_v))
