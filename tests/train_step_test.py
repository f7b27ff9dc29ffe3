"""The update's vocabulary in chunks (`ModelConfig.logits_chunk`) equals the unchunked path.

Logprobs, entropies, the GRPO gradient and its metrics, at a sampling temperature, with left
padding and a chunk that does not divide the completion (the last chunk is padded).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import train_step
from r1jax.grpo_config import GRPOConfig
from r1jax.models import transformer
from r1jax.models.config import ModelConfig

T_PROMPT, T_NEW, ROWS = 5, 11, 4
TOL = 1e-6  # float32, relative: the chunked head runs the same ops on the same rows.


def _close(a, b):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=TOL, atol=TOL)


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, 256, (ROWS, T_PROMPT + T_NEW)).astype(np.int32)
  mask = np.ones_like(tokens, bool)
  mask[0, :3] = False  # Left padding in two rows.
  mask[2, :1] = False
  return jnp.asarray(tokens), jnp.asarray(mask)


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("chunk", [4, 64])
def test_chunked_logprobs_and_entropies_equal_the_whole_vocabulary_pass(tie, chunk):
  cfg = ModelConfig(tie_embeddings=tie, logits_chunk=chunk)
  whole = dataclasses.replace(cfg, logits_chunk=0)
  params = transformer.init(cfg, jax.random.key(1))
  tokens, mask = _inputs()
  stats = lambda c: train_step.completion_token_stats(
      params, tokens, mask, cfg=c, t_new=T_NEW, temperature=0.7, with_entropy=True)
  (lp, ent), (lp0, ent0) = stats(cfg), stats(whole)
  assert lp.shape == ent.shape == (ROWS, T_NEW)
  _close(lp, lp0)
  _close(ent, ent0)
  # The unchunked path is itself the plain logits path (what the sampler test compares with).
  logits = train_step.completion_logits(params, tokens, mask, cfg=whole, t_new=T_NEW)
  lp_ref = jax.nn.log_softmax(logits / 0.7, axis=-1)
  _close(lp0, jnp.take_along_axis(lp_ref, tokens[:, -T_NEW:, None], axis=-1)[..., 0])


@pytest.mark.parametrize("entropy_coef", [0.0, 0.01])
def test_chunked_grpo_gradient_and_metrics_equal_the_whole_vocabulary_pass(entropy_coef):
  cfg = ModelConfig(tie_embeddings=False, logits_chunk=4)
  whole = dataclasses.replace(cfg, logits_chunk=0)
  grpo_cfg = GRPOConfig(num_samples=2, kl_coef=0.0, entropy_coef=entropy_coef)
  params = transformer.init(cfg, jax.random.key(2))
  tokens, mask = _inputs(1)
  rng = np.random.default_rng(3)
  loss_mask = jnp.asarray(rng.random((ROWS, T_NEW)) < 0.8, jnp.float32)
  old = jnp.asarray(rng.normal(-5.0, 0.1, (ROWS, T_NEW)), jnp.float32)
  batch = train_step.Batch(tokens, mask, loss_mask, jnp.asarray([1.0, -1.0, 0.5, -0.5]),
                           old, old, old)
  run = lambda c: train_step.make_grpo_grads(c, grpo_cfg, t_new=T_NEW, num_microbatches=2,
                                             temperature=0.7)(params, batch, False)
  (g, m, lp), (g0, m0, lp0) = run(cfg), run(whole)
  _close(lp, lp0)
  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g0)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=TOL)
  assert m.keys() == m0.keys() and "entropy" in m
  for k in m:
    _close(m[k], m0[k])


def test_logits_chunk_must_be_a_nonnegative_integer():
  with pytest.raises(ValueError, match="logits_chunk"):
    ModelConfig(logits_chunk=-1)
