"""The shared-prompt forward (each prompt run once for its R rows) equals the plain forward.

Logprobs, entropies and the GRPO gradient, on rows whose prompts are left-padded by different
amounts and whose completions end at different lengths, for the families' attention variants
(GQA, q/k norm, qkv bias) and with the vocabulary head in chunks or whole.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import train_step
from r1jax.grpo_config import GRPOConfig
from r1jax.models import shared_prompt
from r1jax.models import transformer
from r1jax.models.config import ModelConfig

T_PROMPT, T_NEW, GROUPS, R = 7, 9, 3, 4
TOL = 1e-5  # float32: the same rows through dots of other shapes (rounding only).


def _close(a, b, tol=TOL):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _rows(seed=0):
  """G groups of R rows: a shared left-padded prompt, then right-padded completions."""
  rng = np.random.default_rng(seed)
  prompt = rng.integers(0, 256, (GROUPS, T_PROMPT))
  prompt_mask = np.ones((GROUPS, T_PROMPT), bool)
  prompt_mask[0, :3] = False  # Groups padded by 3, 0 and 1 tokens.
  prompt_mask[2, :1] = False
  tokens = np.concatenate([np.repeat(prompt, R, axis=0),
                           rng.integers(0, 256, (GROUPS * R, T_NEW))], axis=1).astype(np.int32)
  lengths = rng.integers(1, T_NEW + 1, GROUPS * R)
  lengths[0] = T_NEW  # One row uses the whole budget.
  completion_mask = np.arange(T_NEW)[None] < lengths[:, None]
  mask = np.concatenate([np.repeat(prompt_mask, R, axis=0), completion_mask], axis=1)
  tokens = np.where(mask, tokens, 0)  # Pads hold the pad id, as in a rollout.
  return jnp.asarray(tokens), jnp.asarray(mask), jnp.asarray(completion_mask, jnp.float32)


CONFIGS = {
    "llama_gqa": ModelConfig(),
    "qwen3_qk_norm": ModelConfig(family="qwen3", qk_norm=True, tie_embeddings=False),
    "qwen2_bias_mha": ModelConfig(family="qwen2", qkv_bias=True, num_kv_heads=4),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("chunk", [0, 4])
def test_shared_prompt_logprobs_and_entropies_equal_the_plain_forward(name, chunk):
  cfg = dataclasses.replace(CONFIGS[name], logits_chunk=chunk)
  params = transformer.init(cfg, jax.random.key(1))
  tokens, mask, completion_mask = _rows()
  stats = lambda group: train_step.completion_token_stats(
      params, tokens, mask, cfg=cfg, t_new=T_NEW, temperature=0.7, with_entropy=True,
      group=group)
  (lp, ent), (lp0, ent0) = stats(R), stats(1)
  real = np.asarray(completion_mask, bool)  # Positions past a row's end are never used.
  _close(np.asarray(lp)[real], np.asarray(lp0)[real])
  _close(np.asarray(ent)[real], np.asarray(ent0)[real])


def test_completion_hidden_matches_forward_hidden_states_at_every_real_position():
  cfg = ModelConfig()
  params = transformer.init(cfg, jax.random.key(4))
  tokens, mask, completion_mask = _rows(5)
  shared = shared_prompt.completion_hidden(params, tokens, mask, cfg=cfg, t_new=T_NEW, group=R)
  plain, _ = transformer.forward(params, tokens, cfg=cfg, attention_mask=mask,
                                 logits_last=T_NEW + 1, hidden_only=True)
  real = np.asarray(completion_mask, bool)
  _close(np.asarray(shared)[real], np.asarray(plain[:, :-1])[real])


@pytest.mark.parametrize("entropy_coef", [0.0, 0.01])
def test_shared_prompt_grpo_gradient_equals_the_plain_forward(entropy_coef):
  cfg = ModelConfig(tie_embeddings=False, logits_chunk=4)
  grpo_cfg = GRPOConfig(num_samples=R, kl_coef=0.0, entropy_coef=entropy_coef)
  params = transformer.init(cfg, jax.random.key(2))
  tokens, mask, loss_mask = _rows(1)
  rng = np.random.default_rng(3)
  b = GROUPS * R
  old = jnp.asarray(rng.normal(-5.0, 0.1, (b, T_NEW)), jnp.float32)
  batch = train_step.Batch(tokens, mask, loss_mask,
                           jnp.asarray(rng.normal(0, 1, b), jnp.float32), old, old, old)
  run = lambda group, micro: train_step.make_grpo_grads(
      cfg, grpo_cfg, t_new=T_NEW, num_microbatches=micro, temperature=0.7,
      group=group)(params, batch, False)
  g0, m0, lp0 = run(1, 1)
  for micro in (1, GROUPS):  # All groups at once, and one group per micro-batch.
    g, m, lp = run(R, micro)
    real = np.asarray(loss_mask, bool)
    _close(np.asarray(lp)[real], np.asarray(lp0)[real])
    for a, b0 in zip(jax.tree.leaves(g), jax.tree.leaves(g0)):
      # Each prompt position's R shares are summed in another order: rounding at the scale
      # of the leaf's largest entry.
      b0 = np.asarray(b0)
      np.testing.assert_allclose(np.asarray(a), b0, rtol=TOL, atol=TOL * np.abs(b0).max())
    for k in ("loss", "pg_loss", "entropy", "tokens"):
      _close(m[k], m0[k])


def test_rows_that_are_not_whole_groups_are_an_error():
  cfg = ModelConfig()
  params = transformer.init(cfg, jax.random.key(0))
  tokens, mask, _ = _rows()
  with pytest.raises(ValueError, match="not whole groups of 5"):
    shared_prompt.completion_hidden(params, tokens, mask, cfg=cfg, t_new=T_NEW, group=5)
