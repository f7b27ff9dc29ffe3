"""`r1jax.decode_slots`: rows start, move and are written within their slot group.

Under a mesh the sampler cuts its slots into one group per device (the 8-device check in
`sharding_multidevice_test.py` compiles that); here the groups are exercised directly on one
device, with tiny arrays standing for the caches.
"""

import jax.numpy as jnp
import numpy as np

from r1jax import decode_slots
from r1jax import prefill

S, P, R, T_P, V = 4, 4, 2, 3, 5  # Slots, prompts, samples a prompt, prompt length, vocab.
B = P * R


def _prompts() -> prefill.Prompts:
  """Prompt p's keys, values and logits are all p + 1, so a copy shows whose prompt it is."""
  fill = lambda *shape: jnp.broadcast_to(
      (jnp.arange(P, dtype=jnp.float32) + 1).reshape(P, *([1] * len(shape))), (P, *shape))
  return prefill.Prompts(k=(fill(1, 2, T_P),), v=(fill(1, T_P, 2),),
                         mask=jnp.ones((P, T_P), bool), logits=fill(V),
                         length=jnp.arange(P, dtype=jnp.int32) + 10,
                         budget=jnp.full((P,), 7, jnp.int32))


def _idle() -> decode_slots.Slots:
  z = jnp.zeros((S,), jnp.int32)
  return decode_slots.Slots(
      k=((jnp.zeros((S, 1, 2, T_P)),),), v=((jnp.zeros((S, 1, T_P, 2)),),),
      prompt_mask=jnp.zeros((S, T_P), bool), row=jnp.full((S,), B, jnp.int32), n=z, pos=z,
      budget=z, logits=jnp.zeros((S, V)), window=jnp.full((S, 1), -1, jnp.int32))


def test_a_group_starts_only_the_rows_of_its_own_prompts():
  # Two groups: slots 0-1 take rows 0-3 (prompts 0 and 1), slots 2-3 rows 4-7 (prompts 2, 3).
  slots, next_row = decode_slots.start_rows(
      _idle(), jnp.ones((S,), bool), jnp.zeros((2,), jnp.int32), _prompts(), num_rows=B,
      num_samples=R, most=2)
  assert slots.row.tolist() == [0, 1, 4, 5]
  assert next_row.tolist() == [2, 2]  # Counted within each group.
  # Rows 0, 1 are prompt 0's samples and rows 4, 5 prompt 2's: their keys, logits, positions.
  assert slots.k[0][0][:, 0, 0, 0].tolist() == [1, 1, 3, 3]
  assert slots.logits[:, 0].tolist() == [1, 1, 3, 3]
  assert slots.pos.tolist() == [10, 10, 12, 12]

  # Slot 1's row and slot 3's row end; group 0 starts row 2 (prompt 1), group 1 row 6
  # (prompt 3), each in its own freed slot.
  free = jnp.asarray([False, True, False, True])
  slots = slots._replace(row=jnp.where(free, B, slots.row))
  slots, next_row = decode_slots.start_rows(slots, free, next_row, _prompts(), num_rows=B,
                                            num_samples=R, most=1)
  assert slots.row.tolist() == [0, 2, 4, 6]
  assert slots.v[0][0][:, 0, 0, 0].tolist() == [1, 2, 3, 4]
  assert next_row.tolist() == [3, 3]


def test_a_group_whose_rows_ran_out_leaves_its_free_slots_idle():
  slots, next_row = decode_slots.start_rows(
      _idle(), jnp.ones((S,), bool), jnp.asarray([4, 3], jnp.int32), _prompts(), num_rows=B,
      num_samples=R, most=2)
  # Group 0 has no pending row; group 1 has one (row 4 + 3 = 7).
  assert slots.row.tolist() == [B, B, 7, B]
  assert next_row.tolist() == [4, 4]


def test_outputs_are_written_into_the_groups_own_rows_and_idle_slots_write_nothing():
  out = jnp.full((B, 3), -1, jnp.int32)
  row = jnp.asarray([1, B, 6, 5])  # Slot 1 is idle.
  col = jnp.asarray([0, 2, 1, 2])
  got = decode_slots.write_rows(out, row, jnp.asarray([10, 11, 12, 13]), 2, col)
  want = np.full((B, 3), -1)
  want[1, 0], want[6, 1], want[5, 2] = 10, 12, 13
  np.testing.assert_array_equal(got, want)
  lengths = decode_slots.write_rows(jnp.zeros((B,), jnp.int32), row, jnp.asarray([3, 4, 5, 6]),
                                    2)
  assert lengths.tolist() == [0, 3, 0, 0, 0, 6, 5, 0]


def test_each_group_narrows_to_its_own_slots_in_order():
  slots = _idle()._replace(row=jnp.asarray([B, 3, 6, B]), n=jnp.asarray([0, 5, 9, 0]),
                           k=((jnp.arange(S, dtype=jnp.float32).reshape(S, 1, 1, 1)
                               * jnp.ones((1, 1, 2, T_P)),),))
  live = decode_slots.live_per_group(slots, 2, B)
  assert live.tolist() == [1, 1]
  pin = lambda x: x
  out = decode_slots.narrow(slots, 2, 1, B, pin, pin)
  assert out.row.tolist() == [3, 6] and out.n.tolist() == [5, 9]
  assert out.k[0][0][:, 0, 0, 0].tolist() == [1, 2]  # Slot 1's cache, then slot 2's.
