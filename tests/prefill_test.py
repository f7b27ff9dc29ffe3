"""Tests of r1jax.prefill: a prefix the prompts share, prefilled once, changes no result.

Tiny random models (ModelConfig, untied head); float32 on CPU.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import decode_layout, prefill, sampler
from r1jax.models import ModelConfig, forward, init
from r1jax.sampler import SamplingConfig

CFG = ModelConfig(tie_embeddings=False)  # A tied random model just predicts its input.
TOL = 1e-5  # float32: the sampler's logprobs against one full forward (tests/sampler_test.py).
PREFIX = [3, 9, 27, 81, 4, 16, 64, 5, 25, 125, 6, 36, 7, 49, 8, 10, 11, 12]  # 18 tokens.
PROMPTS = [PREFIX + [5, 17, 2, 99, 2], PREFIX + [7, 1, 2, 3, 200, 2, 41, 9], PREFIX + [44]]


@pytest.fixture(scope="module")
def params():
  p = init(CFG, jax.random.key(0))
  p["lm_head"]["kernel"] = p["lm_head"]["kernel"] * 20.0  # Peaked, varied next tokens.
  return p


@pytest.mark.parametrize("prompts, multiple, want", [
    (PROMPTS, 8, 16), (PROMPTS, 4, 16), (PROMPTS, 6, 18), (PROMPTS, 1, 18), (PROMPTS, 0, 0),
    (PROMPTS, 32, 0),
    ([[1, 2, 3, 4], [1, 2, 3, 4]], 1, 3),  # Identical prompts keep their last token.
    ([[1, 2, 3], [1, 2, 3, 4, 5]], 1, 2),  # The shorter prompt keeps one token.
    ([[1, 2, 3], [2, 2, 3]], 1, 0), ([[7, 8, 9]], 1, 2)])
def test_shared_prefix_length_rounds_down_and_leaves_every_prompt_a_token(prompts, multiple, want):
  assert prefill.shared_prefix_length(prompts, multiple) == want


def test_a_prefix_prefilled_once_gives_the_whole_prefills_keys_values_and_logits(params):
  # The same prompts prefilled whole ([pads | prefix | rest]) and with the prefix shared
  # ([prefix | pads | rest]): every real position has the same key and value, each prompt
  # the same length and next-token logits.
  t_s, t_p = 16, 32
  run = jax.jit(lambda pre, tok, m: prefill.prefill(
      decode_layout.layer_params(params, CFG), decode_layout.top_params(params, CFG), pre, tok,
      m, jnp.ones(tok.shape[0], jnp.int32), cfg=CFG))

  def rows(ids, width):
    tok, mask = np.zeros((len(ids), width), np.int32), np.zeros((len(ids), width), bool)
    for i, x in enumerate(ids):
      tok[i, width - len(x):], mask[i, width - len(x):] = x, True
    return jnp.asarray(tok), jnp.asarray(mask)

  whole = run(jnp.zeros((1, 0), jnp.int32), *rows(PROMPTS, t_p))
  shared = run(jnp.asarray([PREFIX[:t_s]]), *rows([p[t_s:] for p in PROMPTS], t_p - t_s))
  np.testing.assert_array_equal(shared.length, [len(p) for p in PROMPTS])
  np.testing.assert_array_equal(shared.mask.sum(axis=1), shared.length)
  np.testing.assert_allclose(shared.logits, whole.logits, atol=TOL, rtol=TOL)
  for layer in range(CFG.num_layers):
    for i in range(len(PROMPTS)):
      got_k = shared.k[layer][i][..., np.asarray(shared.mask[i])]  # [K, H, real positions]
      want_k = whole.k[layer][i][..., np.asarray(whole.mask[i])]
      np.testing.assert_allclose(got_k, want_k, atol=TOL, rtol=TOL)
      got_v = shared.v[layer][i][:, np.asarray(shared.mask[i])]  # [K, real positions, H]
      np.testing.assert_allclose(got_v, whole.v[layer][i][:, np.asarray(whole.mask[i])],
                                 atol=TOL, rtol=TOL)


def _teacher_forced(params, prompt, completion):
  seq = jnp.asarray([list(prompt) + list(completion)], jnp.int32)
  logits, _ = forward(params, seq, cfg=CFG)
  lp = jax.nn.log_softmax(logits[0, len(prompt) - 1:-1])
  return np.asarray(lp[np.arange(len(completion)), np.asarray(completion)])


@pytest.mark.parametrize("schedule", [dict(), dict(max_rows=2, cache_blocks=3)])
def test_rollout_with_the_prefix_shared_equals_the_rollout_without(params, schedule):
  # Static and continuous decode read a shared-prefix prompt as any other: the same tokens,
  # and every logprob is the trainer's (one full forward) within the float32 tolerance.
  base = SamplingConfig(temperature=1.0, max_new_tokens=10, prompt_multiple=8,
                        eos_ids=tuple(range(0, 256, 12)), **schedule)
  run = lambda multiple: sampler.generate(
      params, PROMPTS, cfg=CFG, key=jax.random.key(1), num_samples=2,
      sampling=dataclasses.replace(base, shared_prefix_multiple=multiple))
  plain, shared = run(0), run(8)
  np.testing.assert_array_equal(shared.tokens, plain.tokens)
  np.testing.assert_array_equal(shared.lengths, plain.lengths)
  np.testing.assert_allclose(shared.logprobs, plain.logprobs, atol=TOL)
  assert len(set(np.asarray(shared.lengths).tolist())) >= 2  # Rows end at several lengths.
  for row in range(6):
    n = int(shared.lengths[row])
    want = _teacher_forced(params, PROMPTS[row // 2], np.asarray(shared.tokens[row, :n]))
    np.testing.assert_allclose(shared.logprobs[row, :n], want, atol=TOL)


def test_batches_whose_prefixes_round_alike_share_one_compile(params):
  # The prefix length is a static shape: batches agreeing a few tokens beyond the 16 their
  # template shares round to the same T_s and reuse the compile; a longer one compiles anew.
  sc = SamplingConfig(temperature=1.0, max_new_tokens=3, prompt_multiple=8,
                      shared_prefix_multiple=8, top_k=7)  # A config no other test compiles.
  before = sampler.trace_count()
  for tail in ([[1, 2], [3, 4]], [[1, 2], [1, 4]], [[1, 2, 3], [1, 2, 4]]):
    sampler.generate(params, [PREFIX[:16] + t for t in tail], cfg=CFG, sampling=sc,
                     key=jax.random.key(0))
  assert sampler.trace_count() == before + 1
  sampler.generate(params, [PREFIX + [1], PREFIX + [2, 3]], cfg=CFG, sampling=sc,
                   key=jax.random.key(0))  # All 18 of PREFIX shared, rounded to 16: reused.
  assert sampler.trace_count() == before + 1
  sampler.generate(params, [PREFIX + [5] * 7 + [1], PREFIX + [5] * 7 + [2]], cfg=CFG,
                   sampling=sc, key=jax.random.key(0))  # 25 shared -> T_s = 24: a new shape.
  assert sampler.trace_count() == before + 2
