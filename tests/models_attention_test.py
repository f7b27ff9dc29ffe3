"""Attention implementations (`ModelConfig.attention`) equal the reference einsum path.

jax.nn.dot_product_attention's XLA implementation and the Pallas splash kernel (TPU; here in
Pallas interpret mode on CPU) against the einsum reference, in float32 on CPU: left padding,
GQA, q/k norms, gradients through splash, and the sampler's prefill (its decode then reads the
KV cache through r1jax/models/kv_cache.py). (cuDNN runs only on NVIDIA GPUs, in bf16 / f16.)
"""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax.models import attention_kernels, transformer
from r1jax.models.config import ModelConfig
from tests._subprocess import run_json_script

TOL = 1e-5  # float32: the same maths in another order.


def _pair(impl="xla", **kw):
  ref = ModelConfig(attention="einsum", **kw)
  return ref, dataclasses.replace(ref, attention=impl)


def _inputs():
  tokens = jax.random.randint(jax.random.key(1), (3, 12), 0, 256)
  mask = np.ones((3, 12), bool)
  mask[0, :5] = False  # Left padding.
  mask[1, :1] = False
  return tokens, jnp.asarray(mask)


@pytest.mark.parametrize("impl", ["xla", "splash"])
@pytest.mark.parametrize("kw", [{}, {"qk_norm": True, "num_heads": 8, "num_kv_heads": 2},
                                {"tie_embeddings": False, "qkv_bias": True}])
def test_attention_equals_einsum_with_left_padding(kw, impl):
  ref, xla = _pair(impl, **kw)
  params = transformer.init(ref, jax.random.key(0))
  tokens, mask = _inputs()
  want, _ = transformer.forward(params, tokens, cfg=ref, attention_mask=mask)
  got, _ = transformer.forward(params, tokens, cfg=xla, attention_mask=mask)
  real = np.asarray(mask)[..., None]  # Pad queries' outputs never reach a loss.
  np.testing.assert_allclose(np.where(real, got, 0), np.where(real, want, 0), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("impl", ["xla", "splash"])
def test_attention_equals_einsum_in_the_samplers_prefill(impl):
  # The sampler prefills with the model's attention (cfg.attention), then decodes over its KV
  # cache (r1jax/models/kv_cache.py): the rollouts agree token for token.
  from r1jax import sampler  # pylint: disable=g-import-not-at-top
  ref, other = _pair(impl)
  params = transformer.init(ref, jax.random.key(0))
  params["model"]["embed_tokens"]["embedding"] *= 30.0  # Peaked logits: no near-ties.
  prompts = [[5, 9, 2, 7, 1, 3, 8, 4, 6], [11, 2, 9], [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 7]]
  sc = sampler.SamplingConfig(temperature=0.0, max_new_tokens=6, prompt_multiple=8)
  outs = {cfg.attention: sampler.generate(params, prompts, cfg=cfg, sampling=sc,
                                          key=jax.random.key(0)) for cfg in (ref, other)}
  np.testing.assert_array_equal(outs[impl].tokens, outs["einsum"].tokens)
  np.testing.assert_allclose(outs[impl].logprobs, outs["einsum"].logprobs, rtol=TOL, atol=TOL)


def test_splash_gradients_equal_einsum_with_left_padding():
  """The kernel's backward (its dq and dkv kernels) gives the reference's parameter gradients."""
  ref, splash = _pair("splash", num_heads=8, num_kv_heads=2)
  params = transformer.init(ref, jax.random.key(0))
  tokens, mask = _inputs()
  weights = jax.random.normal(jax.random.key(2), (3, 12, 256)) * np.asarray(mask)[..., None]

  def loss(p, cfg):  # Real positions only, as every r1jax loss.
    return jnp.sum(transformer.forward(p, tokens, cfg=cfg, attention_mask=mask)[0] * weights)

  want, got = jax.grad(loss)(params, ref), jax.grad(loss)(params, splash)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL), got, want)


def test_splash_segment_ids_are_the_padding_mask_and_need_a_square_mask():
  mask = np.array([[False, False, True, True], [True, True, True, False]])
  causal = np.tril(np.ones((4, 4), bool))
  allowed = jnp.asarray(mask[:, None, :] & causal[None])
  np.testing.assert_array_equal(attention_kernels.segment_ids(allowed), mask.astype(np.int32))
  with pytest.raises(ValueError, match=r"square self-attention mask \[B, T, T\], got shape"):
    attention_kernels.segment_ids(jnp.ones((2, 1, 4), bool))


def test_auto_attention_is_splash_on_tpu(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
  assert transformer.attention_impl(ModelConfig(), jnp.bfloat16) == "splash"
  assert transformer.attention_impl(ModelConfig(attention="xla"), jnp.float32) == "xla"


def test_auto_attention_is_xla_on_cpu_and_unknown_names_are_rejected():
  assert transformer.attention_impl(ModelConfig(), jnp.bfloat16) == "xla"
  assert transformer.attention_impl(ModelConfig(attention="einsum"), jnp.float32) == "einsum"
  with pytest.raises(ValueError, match="ModelConfig.attention must be one of"):
    ModelConfig(attention="flash")


def test_splash_under_a_mesh_equals_einsum_on_8_devices():
  """Rows over (data, fsdp) = 4 and kv heads over tensor = 2, the kernel inside shard_map."""
  got = run_json_script(
      os.path.join(os.path.dirname(__file__), "_splash_sharded_checks.py"))
  assert got["logits_max_diff"] <= TOL, got
  assert got["grads_max_rel_diff"] <= TOL, got
