"""Attention implementations (`ModelConfig.attention`) equal the reference einsum path.

jax.nn.dot_product_attention's XLA implementation against the einsum reference, in float32 on
CPU: left padding, GQA, q/k norms, and a prompt prefilled into a KV cache then decoded token by
token. (cuDNN runs only on NVIDIA GPUs, in bf16 / f16.)
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax.models import transformer
from r1jax.models.config import ModelConfig

TOL = 1e-5  # float32: the same maths in another order.


def _pair(**kw):
  ref = ModelConfig(attention="einsum", **kw)
  return ref, dataclasses.replace(ref, attention="xla")


def _inputs():
  tokens = jax.random.randint(jax.random.key(1), (3, 12), 0, 256)
  mask = np.ones((3, 12), bool)
  mask[0, :5] = False  # Left padding.
  mask[1, :1] = False
  return tokens, jnp.asarray(mask)


@pytest.mark.parametrize("kw", [{}, {"qk_norm": True, "num_heads": 8, "num_kv_heads": 2},
                                {"tie_embeddings": False, "qkv_bias": True}])
def test_xla_attention_equals_einsum_with_left_padding(kw):
  ref, xla = _pair(**kw)
  params = transformer.init(ref, jax.random.key(0))
  tokens, mask = _inputs()
  want, _ = transformer.forward(params, tokens, cfg=ref, attention_mask=mask)
  got, _ = transformer.forward(params, tokens, cfg=xla, attention_mask=mask)
  real = np.asarray(mask)[..., None]  # Pad queries' outputs never reach a loss.
  np.testing.assert_allclose(np.where(real, got, 0), np.where(real, want, 0), rtol=TOL, atol=TOL)


def test_xla_attention_equals_einsum_through_the_kv_cache():
  ref, xla = _pair()
  params = transformer.init(ref, jax.random.key(0))
  tokens, mask = _inputs()
  outs = {}
  for cfg in (ref, xla):
    cache = transformer.init_cache(cfg, 3, 16)
    logits, cache = transformer.forward(params, tokens[:, :9], cfg=cfg, cache=cache,
                                        attention_mask=mask[:, :9])
    steps = [logits[:, -1]]
    for i in range(9, 12):  # One token at a time into the cache.
      logits, cache = transformer.forward(params, tokens[:, i:i + 1], cfg=cfg, cache=cache)
      steps.append(logits[:, -1])
    outs[cfg.attention] = np.stack(steps)
  np.testing.assert_allclose(outs["xla"], outs["einsum"], rtol=TOL, atol=TOL)


def test_auto_attention_is_xla_on_cpu_and_unknown_names_are_rejected():
  assert transformer.attention_impl(ModelConfig(), jnp.bfloat16) == "xla"
  assert transformer.attention_impl(ModelConfig(attention="einsum"), jnp.float32) == "einsum"
  with pytest.raises(ValueError, match="ModelConfig.attention must be one of"):
    ModelConfig(attention="flash")
