"""The decode cache's filled-part attention: which prefix a step reads, and that it is exact."""

import jax
import jax.numpy as jnp
import numpy as np

from r1jax.models import kv_cache
from r1jax.models.config import ModelConfig


def test_filled_lengths_cover_the_budget_in_equal_spans():
  assert kv_cache.filled_lengths(16, 64, 4) == (32, 48, 64, 80)
  assert kv_cache.filled_lengths(16, 10, 4) == (19, 22, 25, 26)  # Spans of 3; the last ends at C.
  assert kv_cache.filled_lengths(16, 3, 8) == (17, 18, 19)  # No more spans than positions.
  assert kv_cache.filled_lengths(8, 64, 1) == (72,)  # One block: the whole cache.


def test_filled_choice_is_the_shortest_prefix_holding_every_live_position():
  lengths = kv_cache.filled_lengths(16, 64, 4)  # Generated positions 16, 32, 48, 64.
  choose = lambda needed: int(kv_cache.filled_choice(lengths, 16, jnp.asarray(needed)))
  assert [choose(n) for n in (1, 16, 17, 32, 33, 64)] == [0, 0, 1, 1, 2, 3]


def test_block_spans_cut_the_budget_into_equal_blocks():
  assert kv_cache.block_spans(64, 4) == (16, 16, 16, 16)
  assert kv_cache.block_spans(10, 4) == (3, 3, 3, 1)
  assert kv_cache.block_spans(3, 8) == (1, 1, 1)
  assert kv_cache.block_spans(64, 1) == (64,)


def _parts(x, t_prompt, spans, keys=False):
  """[S, K, C, H] -> the prompt part and the generated blocks, as decode holds them."""
  cuts = np.cumsum((t_prompt,) + spans)[:-1]
  parts = jnp.split(x, cuts, axis=2)
  return tuple(jnp.swapaxes(p, 2, 3) for p in parts) if keys else tuple(parts)


def test_attention_over_the_filled_blocks_equals_attention_over_the_whole_cache():
  cfg = ModelConfig()
  s, k, h, n = 3, cfg.num_kv_heads, cfg.head_dim, cfg.num_heads
  t_prompt, t_new = 8, 32
  c = t_prompt + t_new
  keys = jax.random.split(jax.random.key(0), 5)
  cache_k = jax.random.normal(keys[0], (s, k, c, h))
  cache_v = jax.random.normal(keys[1], (s, k, c, h))
  q = jax.random.normal(keys[2], (s, 1, n, h))
  new_k, new_v = (jax.random.normal(kk, (s, 1, k, h)) for kk in keys[3:5])
  at = jnp.asarray([0, 3, 5])  # Generated positions 0, 3 and 5.
  write = np.asarray(at) + t_prompt
  allowed = jnp.arange(c)[None, :] <= write[:, None]
  lengths = kv_cache.filled_lengths(t_prompt, t_new, 8)  # Spans of 4 positions.
  choice = kv_cache.filled_choice(lengths, t_prompt, jnp.asarray(6))
  assert lengths[int(choice)] == 16  # Reads 16 of 40 positions: the prompt and two blocks.
  outs = {}
  for name, (spans, ch) in {"filled": (kv_cache.block_spans(t_new, 8), choice),
                            "whole": ((t_new,), 0)}.items():
    out, (ck, cv) = kv_cache.decode_attend(
        _parts(cache_k, t_prompt, spans, keys=True), _parts(cache_v, t_prompt, spans), at,
        allowed, jnp.asarray(ch))(q, new_k, new_v)
    outs[name] = out
    ck, cv = jnp.swapaxes(jnp.concatenate(ck, axis=3), 2, 3), jnp.concatenate(cv, axis=2)
    np.testing.assert_array_equal(ck[np.arange(s), :, write], new_k[:, 0])
    np.testing.assert_array_equal(cv[np.arange(s), :, write], new_v[:, 0])
    untouched = np.ones((s, c), bool)
    untouched[np.arange(s), write] = False
    np.testing.assert_array_equal(np.asarray(ck).transpose(0, 2, 1, 3)[untouched],
                                  np.asarray(cache_k).transpose(0, 2, 1, 3)[untouched])
  np.testing.assert_allclose(outs["filled"], outs["whole"], atol=1e-6, rtol=0)


def test_a_write_outside_the_generated_blocks_is_dropped_and_one_position_writes_every_row():
  s, k, h = 2, 1, 4
  spans = (4, 4)
  parts = lambda keys: tuple(jnp.zeros((s, k, h, n) if keys else (s, k, n, h))
                             for n in (3,) + spans)
  q = jnp.ones((s, 1, 1, h))
  new = jnp.ones((s, 1, k, h))
  allowed = jnp.ones((s, 11), bool)
  for at, expect in ((jnp.asarray(5), [5, 5]), (jnp.asarray([8, 2]), [None, 2]),
                     (jnp.asarray([-1, 9]), [None, None])):
    _, (ck, cv) = kv_cache.decode_attend(parts(True), parts(False), at, allowed,
                                         jnp.asarray(1))(q, new, new)
    gen = np.asarray(jnp.concatenate(cv[1:], axis=2))[:, 0, :, 0]  # [S, 8]
    np.testing.assert_array_equal(np.asarray(jnp.concatenate(ck[1:], axis=3))[:, 0, 0], gen)
    assert np.asarray(ck[0]).sum() == 0 and np.asarray(cv[0]).sum() == 0  # Prompt: never written.
    for row, pos in enumerate(expect):
      want = np.zeros(8)
      if pos is not None:
        want[pos] = 1
      np.testing.assert_array_equal(gen[row], want)
