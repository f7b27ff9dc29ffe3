"""r1jax/decode_layout.py: the sampler's fused, transposed weights compute what the stored ones do."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import decode_layout
from r1jax.models import ModelConfig, transformer
from tests import models_transformer_test

ATOL = 1e-5  # float32: the same products, summed in another order.

# The model families of the transformer tests, with every leaf perturbed off its init.
FAMILIES = models_transformer_test.FAMILIES


def _attend(cfg, t):
  allowed = jnp.broadcast_to(jnp.tril(jnp.ones((t, t), bool)), (2, t, t))
  return lambda q, k, v: (transformer.masked_attention(q, k, v, allowed, cfg=cfg), None)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_decode_layers_and_head_equal_the_stored_ones(family):
  cfg = FAMILIES[family]
  params = models_transformer_test._random_params(cfg)  # pylint: disable=protected-access
  layers = decode_layout.layer_params(params, cfg)
  top = decode_layout.top_params(params, cfg)
  # On one CPU device every projection and the head are held transposed ([out..., D_in]).
  assert jax.default_backend() == "cpu"
  assert all("kernel_t" in p and "kernel" not in p
             for p in (layers[0]["self_attn"]["qkv"], layers[0]["self_attn"]["o_proj"],
                       layers[0]["mlp"]["gate_up"], layers[0]["mlp"]["down_proj"]))
  assert "kernel_t" in top["lm_head"]
  x = jax.random.normal(jax.random.key(2), (2, 5, cfg.hidden_size), jnp.float32)
  positions = jnp.broadcast_to(jnp.arange(5), (2, 5))
  stored = jax.tree.map(lambda a: a[0], params["model"]["layers"])
  want, _ = transformer.block(stored, x, positions, _attend(cfg, 5), cfg=cfg)
  got, _ = transformer.block(layers[0], x, positions, _attend(cfg, 5), cfg=cfg)
  np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
  np.testing.assert_allclose(transformer.head_logits(top, x, cfg=cfg),
                             transformer.head_logits(params, x, cfg=cfg), atol=ATOL, rtol=0)


@pytest.mark.parametrize("out", [(1536,), (2, 1536), (3, 320)], ids=["down", "gate_up", "qkv"])
def test_a_transposed_projection_gives_a_row_the_same_bits_whatever_shares_its_batch(out):
  # Decode schedules differ in who shares a step (16 slots, all 64 rows, the 4 slots that
  # finish a continuous batch); a row's tokens
  # stay the same only if its projections do, bit for bit (SmolLM2-sized shapes: XLA:CPU's
  # dot took x [B, 1, D] unflattened differently at 16 and 64 rows).
  cfg = ModelConfig()
  d = 576
  p = {"kernel_t": jax.random.normal(jax.random.key(0), (*out, d), jnp.float32)}
  x = jax.random.normal(jax.random.key(1), (64, 1, d), jnp.float32)
  dense = jax.jit(lambda p, x: transformer.dense(p, x, cfg))
  whole = np.asarray(dense(p, x))
  for rows in (slice(0, 16), slice(16, 32), slice(0, 5), slice(8, 12)):
    np.testing.assert_array_equal(np.asarray(dense(p, x[rows])), whole[rows])
  np.testing.assert_allclose(whole, np.einsum("btd,...d->bt...", x, p["kernel_t"]),
                             atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("out", [(3072,), (960,), (49152,), (100,), (49155,)],
                         ids=["gate_up", "qkv", "head", "odd_out", "odd_vocab"])
def test_a_row_keeps_its_bits_on_either_side_of_the_out_major_row_range(out):
  # `transposed_product` has the dot write [O, N] for OUT_MAJOR_ROWS rows (padded to 16) and
  # lets XLA fold it into x @ W.T outside them: a decode schedule whose batch crosses either
  # bound (a continuous batch draining, 64 rows at once) must not change a row's bits.
  lo, hi = transformer.OUT_MAJOR_ROWS
  d = 576
  w = jax.random.normal(jax.random.key(0), (*out, d), jnp.float32)
  x = jax.random.normal(jax.random.key(1), (96, d), jnp.float32)
  product = jax.jit(transformer.transposed_product)
  whole = np.asarray(product(w, x))  # 96 rows: the folded dot.
  for rows in (2, lo, 16, 17, hi, hi + 1):
    assert (rows < lo or rows > hi) == (rows in (2, hi + 1))
    np.testing.assert_array_equal(np.asarray(product(w, x[:rows])), whole[:rows],
                                  err_msg=f"{rows} rows")
  np.testing.assert_allclose(whole, np.asarray(x) @ np.asarray(w).T, atol=1e-3, rtol=1e-5)


def test_a_bf16_head_row_keeps_its_bits_whatever_shares_its_batch():
  # bf16 operands summed in float32 (the head on a bf16 CPU run) round differently in the
  # [O, N] form: they keep the folded dot, which gives a row the same bits at any batch.
  w = jax.random.normal(jax.random.key(0), (49152, 576), jnp.float32).astype(jnp.bfloat16)
  x = jax.random.normal(jax.random.key(1), (96, 576), jnp.float32).astype(jnp.bfloat16)
  product = jax.jit(lambda w, x: transformer.transposed_product(w, x, jnp.float32))
  whole = np.asarray(product(w, x))
  for rows in (3, 16, 17, 48):
    np.testing.assert_array_equal(np.asarray(product(w, x[:rows])), whole[:rows],
                                  err_msg=f"{rows} rows")
