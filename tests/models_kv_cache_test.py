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


def test_attention_over_the_filled_prefix_equals_attention_over_the_whole_cache():
  cfg = ModelConfig()
  s, k, c, h, n = 3, cfg.num_kv_heads, 40, cfg.head_dim, cfg.num_heads
  keys = jax.random.split(jax.random.key(0), 5)
  cache_k = jax.random.normal(keys[0], (s, k, c, h))
  cache_v = jax.random.normal(keys[1], (s, k, c, h))
  q = jax.random.normal(keys[2], (s, 1, n, h))
  new_k, new_v = (jax.random.normal(kk, (s, 1, k, h)) for kk in keys[3:5])
  t_prompt, t_new = 8, 32
  write = jnp.asarray([8, 11, 13])  # Rows at generated positions 0, 3 and 5.
  allowed = jnp.arange(c)[None, :] <= write[:, None]
  lengths = kv_cache.filled_lengths(t_prompt, t_new, 8)  # Spans of 4 positions.
  choice = kv_cache.filled_choice(lengths, t_prompt, jnp.asarray(6))
  assert lengths[int(choice)] == 16  # Reads 16 of 40 positions.
  outs = {}
  for name, (ls, ch) in {"filled": (lengths, choice), "whole": ((c,), 0)}.items():
    out, (ck, cv) = kv_cache.decode_attend(cache_k, cache_v, write, allowed, jnp.asarray(ch),
                                           ls)(q, new_k, new_v)
    outs[name] = out
    np.testing.assert_array_equal(ck[np.arange(s), :, np.asarray(write)], new_k[:, 0])
    np.testing.assert_array_equal(cv[np.arange(s), :, np.asarray(write)], new_v[:, 0])
  np.testing.assert_allclose(outs["filled"], outs["whole"], atol=1e-6, rtol=0)
