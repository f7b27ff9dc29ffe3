"""The decoder's invariants: padding is exact, remat and unrolling keep gradients, shardable params.

Decoding through a KV cache runs the same block: tests/sampler_test.py pins it to `forward`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax.models import ModelConfig, forward, init, param_logical_axes
from r1jax.models.transformer import rope_inv_freq

FAMILIES = {
    "llama": ModelConfig(),
    "qwen2": ModelConfig(family="qwen2", qkv_bias=True, tie_embeddings=False),
    "qwen3": ModelConfig(family="qwen3", qk_norm=True),
    "gemma": ModelConfig(family="gemma", num_kv_heads=1, mlp_activation="gelu_tanh",
                         embed_scale=True, norm_plus_one=True),
    "llama3_rope": ModelConfig(rope_scaling="llama3", rope_factor=8.0,
                               rope_original_max_position=64, rope_theta=500000.0),
}


def _random_params(cfg, seed=0):
  params = init(cfg, jax.random.key(seed))
  # Norm weights start at 1 (or 0 for Gemma) and biases at 0; perturb them so every param
  # affects the output and a wrong wiring cannot hide.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
  leaves = [x + 0.1 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
  return jax.tree.unflatten(tree, leaves)


def _left_pad(rows, pad_id=0):
  t = max(len(r) for r in rows)
  tokens = np.full((len(rows), t), pad_id, np.int32)
  mask = np.zeros((len(rows), t), bool)
  for i, r in enumerate(rows):
    tokens[i, t - len(r):] = r
    mask[i, t - len(r):] = True
  return jnp.asarray(tokens), jnp.asarray(mask)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_left_padded_row_equals_the_row_alone(family):
  cfg = FAMILIES[family]
  params = _random_params(cfg)
  rows = [[5, 9, 2, 2, 7, 1, 3, 8], [2, 6, 2]]  # Token 2 (an eos-like id) inside a prompt.
  tokens, mask = _left_pad(rows, pad_id=2)
  batched, _ = forward(params, tokens, cfg=cfg, attention_mask=mask)
  alone, _ = forward(params, jnp.asarray([rows[1]]), cfg=cfg)
  np.testing.assert_allclose(batched[1, -3:], alone[0], atol=1e-5, rtol=0)


def test_logits_are_float32_with_bfloat16_compute():
  cfg = dataclasses.replace(FAMILIES["qwen2"], dtype="bfloat16", param_dtype="bfloat16")
  params = init(cfg, jax.random.key(0))
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(params))
  logits, _ = forward(params, jnp.ones((2, 5), jnp.int32), cfg=cfg)
  assert logits.dtype == jnp.float32 and logits.shape == (2, 5, cfg.vocab_size)
  ref, _ = forward(jax.tree.map(lambda x: x.astype(jnp.float32), params),
                   jnp.ones((2, 5), jnp.int32), cfg=dataclasses.replace(cfg, dtype="float32",
                                                                       param_dtype="float32"))
  assert float(jnp.max(jnp.abs(logits - ref))) < 0.05  # bf16 rounding, not a wiring change.


@pytest.mark.parametrize("remat", ["full", "dots", "dots_no_batch"])
def test_remat_policy_keeps_loss_and_gradients(remat):
  cfg = FAMILIES["llama"]
  params = _random_params(cfg)
  tokens = jnp.asarray(np.random.default_rng(1).integers(0, cfg.vocab_size, (2, 7)), jnp.int32)

  def loss(p, c):
    logits, _ = forward(p, tokens, cfg=c)
    return jnp.mean(jax.nn.logsumexp(logits, -1))

  l0, g0 = jax.value_and_grad(loss)(params, cfg)
  l1, g1 = jax.jit(jax.value_and_grad(loss), static_argnums=1)(
      params, dataclasses.replace(cfg, remat=remat))
  np.testing.assert_allclose(l0, l1, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g0, g1)



@pytest.mark.parametrize("unroll", [2, 99])
def test_unrolled_layer_scan_keeps_loss_and_gradients(unroll):
  cfg = dataclasses.replace(FAMILIES["llama"], num_layers=3)
  params = _random_params(cfg)
  tokens = jnp.asarray(np.random.default_rng(2).integers(0, cfg.vocab_size, (2, 7)), jnp.int32)

  def loss(p, c):
    logits, _ = forward(p, tokens, cfg=c)
    return jnp.mean(jax.nn.logsumexp(logits, -1))

  grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
  l0, g0 = grad(params, cfg)
  l1, g1 = grad(params, dataclasses.replace(cfg, scan_unroll=unroll))  # 99: clipped to L.
  np.testing.assert_allclose(l0, l1, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g0, g1)


def test_logits_last_equals_the_tail_of_the_full_logits():
  cfg = FAMILIES["llama"]
  params = _random_params(cfg)
  tokens = jnp.asarray(np.random.default_rng(3).integers(0, cfg.vocab_size, (2, 9)), jnp.int32)
  full, _ = forward(params, tokens, cfg=cfg)
  tail, _ = forward(params, tokens, cfg=cfg, logits_last=4)
  assert tail.shape == (2, 4, cfg.vocab_size)
  np.testing.assert_allclose(tail, full[:, -4:], atol=1e-6)
  with pytest.raises(ValueError, match=r"logits_last must be an int in \[1, 9\] \(T\), got 10"):
    forward(params, tokens, cfg=cfg, logits_last=10)

def test_every_param_has_logical_axes_of_its_rank():
  for cfg in FAMILIES.values():
    params = init(cfg, jax.random.key(0))
    axes = param_logical_axes(cfg)
    flat_p = jax.tree_util.tree_leaves_with_path(params)
    flat_a = dict(jax.tree_util.tree_leaves_with_path(
        axes, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec)))
    for path, x in flat_p:
      spec = flat_a[path]
      assert len(spec) == x.ndim and all(isinstance(n, str) for n in spec), (path, spec)


def test_param_names_mirror_hugging_face():
  params = init(FAMILIES["qwen3"], jax.random.key(0))
  layer = params["model"]["layers"]
  assert set(layer) == {"input_layernorm", "post_attention_layernorm", "self_attn", "mlp"}
  assert set(layer["self_attn"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"}
  assert layer["mlp"]["gate_proj"]["kernel"].shape == (2, 32, 64)  # [L, D, F]
  untied = init(FAMILIES["qwen2"], jax.random.key(0))
  assert untied["lm_head"]["kernel"].shape == (32, 256)
  assert untied["model"]["layers"]["self_attn"]["q_proj"]["bias"].shape == (2, 32)


def test_llama3_rope_scaling_keeps_high_and_scales_low_frequencies():
  cfg = FAMILIES["llama3_rope"]
  base = rope_inv_freq(dataclasses.replace(cfg, rope_scaling="none"))
  scaled = rope_inv_freq(cfg)
  assert float(scaled[0]) == pytest.approx(float(base[0]))  # Short wavelength: untouched.
  assert float(scaled[-1]) == pytest.approx(float(base[-1]) / 8.0)  # Long: divided by factor.


def test_rope_theta_changes_logits():
  # A peer ignored rope_theta; make sure ours does not.
  cfg = FAMILIES["llama"]
  params = _random_params(cfg)
  tokens = jnp.arange(1, 9)[None]
  a, _ = forward(params, tokens, cfg=cfg)
  b, _ = forward(params, tokens, cfg=dataclasses.replace(cfg, rope_theta=100000.0))
  assert float(jnp.max(jnp.abs(a - b))) > 1e-3


def test_bad_model_config_names_the_field():
  with pytest.raises(ValueError, match="num_heads \\(6\\) must be a multiple of num_kv_heads \\(4\\)"):
    ModelConfig(num_heads=6, num_kv_heads=4)
  with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
    ModelConfig(hidden_size=0)


@pytest.mark.parametrize("kernel_shape", [(6, 5), (6, 2, 3)])
def test_dense_gradient_equals_autodiff_of_the_plain_product(kernel_shape):
  # `dense` writes its backward pass on 2-D views for XLA:CPU's sake: the same products.
  from r1jax.models.transformer import dense  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 4, 6)), jnp.float32)
  p = {"kernel": jnp.asarray(rng.normal(size=kernel_shape), jnp.float32),
       "bias": jnp.asarray(rng.normal(size=kernel_shape[1:]), jnp.float32)}
  probe = jnp.asarray(rng.normal(size=(2, 4) + kernel_shape[1:]), jnp.float32)
  ours = lambda p, x: jnp.sum(jnp.sin(dense(p, x, ModelConfig())) * probe)
  plain = lambda p, x: jnp.sum(jnp.sin(jnp.tensordot(x, p["kernel"], axes=1) + p["bias"]) * probe)
  got = jax.grad(ours, argnums=(0, 1))(p, x)
  want = jax.grad(plain, argnums=(0, 1))(p, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), got, want)
  # And the forward is the plain product, bit for bit.
  np.testing.assert_array_equal(dense(p, x, ModelConfig()),
                                jnp.tensordot(x, p["kernel"], axes=1) + p["bias"])
