"""Tests of r1jax.sampler and r1jax.sampling: the distribution, the logprobs, stopping, shapes.

Tiny random models (ModelConfig defaults) except the SmolLM2 greedy parity test, which needs
the GGUF file (`r1jax fetch smollm2-135m`) and compares with transformers live when torch is
installed, else with the golden ids in tests/fixtures/smollm2_greedy_golden.json.
"""

import dataclasses
import functools
import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import sampler, sampling
from r1jax.models import ModelConfig, forward, init
from r1jax.sampler import SamplingConfig

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "smollm2_greedy_golden.json"
LOGPROB_TOL = 1e-5  # float32 decode-with-cache vs one full forward.
Z_999 = 3.090  # Standard normal quantile at 0.999: chi-square tests fail 1 time in 1000.


def _chi2_critical(df: int, z: float = Z_999) -> float:
  """Upper chi-square quantile by the Wilson-Hilferty approximation (good for df >= 3)."""
  a = 2.0 / (9.0 * df)
  return df * (1.0 - a + z * math.sqrt(a)) ** 3


def _assert_frequencies(tokens: np.ndarray, probs: np.ndarray) -> None:
  """Chi-square goodness of fit of sampled `tokens` to `probs` [V]; zero-prob never drawn."""
  n = tokens.size
  counts = np.bincount(tokens.reshape(-1), minlength=probs.size)
  assert counts[probs == 0].sum() == 0, f"drew tokens of zero probability: {np.nonzero(counts * (probs == 0))}"
  keep = probs > 0
  # Merge cells with expected count < 5 into one, as the chi-square approximation requires.
  expected, observed = probs[keep] * n, counts[keep].astype(float)
  small = expected < 5
  if small.any():
    expected = np.append(expected[~small], expected[small].sum())
    observed = np.append(observed[~small], observed[small].sum())
  stat = float(((observed - expected) ** 2 / expected).sum())
  df = max(expected.size - 1, 1)
  assert stat < _chi2_critical(max(df, 3)), f"chi-square {stat:.1f} with {df} dof"


def _np_softmax(x):
  e = np.exp(x - x.max())
  return e / e.sum()


def _reference_probs(logits, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0):
  """The sampling distribution written out in numpy, independently of r1jax.sampling."""
  p = _np_softmax(np.asarray(logits, np.float64) / temperature)
  order = np.argsort(-p, kind="stable")
  keep = np.ones_like(p, bool)
  if top_k:
    keep[order[top_k:]] = False
  if top_p < 1:
    q = np.where(keep, p, 0) / np.where(keep, p, 0).sum()
    before = np.cumsum(q[order]) - q[order]
    keep[order[before >= top_p]] = False
  if min_p > 0:
    q = np.where(keep, p, 0)
    keep &= q >= min_p * q.max()
  out = np.where(keep, p, 0)
  return out / out.sum()


def _tempered_logprobs(logits, temperature=1.0, **_):
  """log softmax(logits / T) in numpy: the logprob the sampler reports, whatever it truncates."""
  return np.log(_np_softmax(np.asarray(logits, np.float64) / temperature))


LOGITS = np.log(np.array([0.30, 0.22, 0.15, 0.11, 0.08, 0.06, 0.04, 0.03, 0.01]))


@pytest.mark.parametrize("kw", [
    dict(temperature=1.0), dict(temperature=0.6), dict(temperature=1.7),
    dict(top_k=3), dict(top_p=0.7), dict(min_p=0.3),
    dict(temperature=0.8, top_k=5, top_p=0.8), dict(top_p=0.9, min_p=0.1)])
def test_sampled_frequencies_match_the_truncated_softmax(kw):
  n = 40_000
  logits = jnp.tile(jnp.asarray(LOGITS, jnp.float32), (n, 1))
  tokens, logprobs = jax.jit(lambda k, x: sampling.sample_token(k, x, **kw))(
      jax.random.key(0), logits)
  probs = _reference_probs(LOGITS, **kw)
  tokens = np.asarray(tokens)
  _assert_frequencies(tokens, probs)
  # The returned logprob is of the tempered distribution before truncation (as TRL / veRL's
  # trainers compute it), not of the truncated one the token was drawn from.
  np.testing.assert_allclose(np.asarray(logprobs), _tempered_logprobs(LOGITS, **kw)[tokens],
                             atol=1e-5)


def _wide(peaks: dict[int, float], v: int = 3000, rest: float = -30.0) -> np.ndarray:
  """Logits over a vocabulary wider than the top-p candidate set, with a few likely tokens."""
  logits = np.full((v,), rest, np.float32)
  for i, x in peaks.items():
    logits[i] = x
  return logits


def test_top_p_over_a_wide_vocabulary_draws_from_the_nucleus_among_candidates():
  # Likely tokens scattered past the first 1024 ids: the nucleus is found by lax.top_k.
  assert 3000 > sampling._TOP_P_CANDIDATES
  wide = _wide({2999: np.log(0.30), 1500: np.log(0.22), 7: np.log(0.15), 2048: np.log(0.11),
                1024: np.log(0.08), 3: np.log(0.06)})
  for kw in (dict(top_p=0.7), dict(temperature=0.6, top_p=0.95, min_p=0.2)):
    n = 40_000
    tokens, logprobs = jax.jit(lambda k, x: sampling.sample_token(k, x, **kw))(
        jax.random.key(2), jnp.tile(jnp.asarray(wide), (n, 1)))
    probs = _reference_probs(wide, **kw)
    _assert_frequencies(np.asarray(tokens), probs)
    np.testing.assert_allclose(np.asarray(logprobs),
                               _tempered_logprobs(wide, **kw)[np.asarray(tokens)], atol=1e-5)


def test_top_p_candidates_keep_the_tokens_the_full_sort_keeps():
  logits = jnp.asarray(np.random.default_rng(3).normal(size=(64, 5000)) * 4, jnp.float32)
  kw = dict(temperature=0.6, top_p=0.95)
  full = sampling.truncate_logits(logits, **kw)
  assert int(jnp.isfinite(full).sum(-1).max()) < sampling._TOP_P_CANDIDATES  # Candidate path.
  tokens, logprobs = jax.jit(lambda k, x: sampling.sample_token(k, x, **kw))(
      jax.random.key(7), logits)
  in_nucleus = jax.nn.log_softmax(full)[np.arange(64), tokens]
  assert bool(jnp.all(jnp.isfinite(in_nucleus)))  # Every drawn token is in the nucleus.
  want = jax.nn.log_softmax(logits / 0.6)[np.arange(64), tokens]
  np.testing.assert_allclose(logprobs, want, atol=1e-5)


def test_top_p_wider_than_the_candidates_falls_back_to_the_full_sort():
  logits = jnp.asarray(np.random.default_rng(4).normal(size=(8, 3000)) * 0.1, jnp.float32)
  kw = dict(temperature=1.0, top_p=0.9)
  full = sampling.truncate_logits(logits, **kw)
  assert int(jnp.isfinite(full).sum(-1).min()) > sampling._TOP_P_CANDIDATES
  got = sampling.sample_token(jax.random.key(8), logits, **kw)
  want = sampling._draw(jax.random.key(8), full)
  np.testing.assert_array_equal(got[0], want[0])
  np.testing.assert_allclose(got[1], jax.nn.log_softmax(logits)[np.arange(8), got[0]],
                             atol=1e-6)


def test_greedy_is_argmax_with_the_model_logprob():
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(5, 300)), jnp.float32)
  tokens, logprobs = sampling.sample_token(jax.random.key(0), logits, temperature=0.0)
  np.testing.assert_array_equal(tokens, np.argmax(logits, axis=-1))
  want = jax.nn.log_softmax(logits)[np.arange(5), tokens]
  np.testing.assert_allclose(logprobs, want, atol=1e-6)


def test_draw_over_many_blocks_never_picks_masked_tokens():
  # 1000 candidates span 4 blocks of the two-level draw; only 5 scattered ones are allowed.
  logits = np.full((1000,), -np.inf, np.float32)
  allowed = [3, 255, 256, 700, 999]
  logits[allowed] = [0.0, 1.0, -1.0, 0.5, 2.0]
  tokens, _ = sampling.sample_token(jax.random.key(1), jnp.tile(jnp.asarray(logits), (30_000, 1)))
  _assert_frequencies(np.asarray(tokens), _np_softmax(np.where(np.isinf(logits), -1e30, logits)))


# --- the sampler on a tiny random model ------------------------------------------------------

CFG = ModelConfig(tie_embeddings=False)  # A tied random model just predicts its input.


@pytest.fixture(scope="module")
def params():
  p = init(CFG, jax.random.key(0))
  # Sharper logits than the 0.02-std init gives (entropy ~3.5 nats of 5.5), so the tests see
  # a peaked, varied distribution.
  p["lm_head"]["kernel"] = p["lm_head"]["kernel"] * 20.0
  return p


def _teacher_forced(params, cfg, prompt, completion):
  """log pi(completion[t] | prompt, completion[:t]) from one full forward, no cache."""
  seq = jnp.asarray([list(prompt) + list(completion)], jnp.int32)
  logits, _ = jax.jit(lambda p, s: forward(p, s, cfg=cfg))(params, seq)
  lp = jax.nn.log_softmax(logits[0, len(prompt) - 1:-1])
  return np.asarray(lp[np.arange(len(completion)), np.asarray(completion)])


PROMPTS = [[5, 17, 2, 99, 2], [7, 1, 2, 3, 200, 2, 41, 9, 13, 2, 77]]  # 2 appears as a real token.


@pytest.mark.parametrize("kw", [dict(temperature=0.6), dict(temperature=1.0),
                                dict(temperature=1.3), dict(temperature=0.6, top_p=0.9),
                                dict(temperature=1.3, top_k=20, min_p=0.05)])
def test_sampler_logprobs_equal_the_trainers_at_the_sampling_temperature(params, kw):
  # The trainer scores a rollout at its sampling temperature (train_step.completion_logprobs,
  # the function the GRPO update, reference and pi_old use); top-k / top-p / min-p truncate
  # what is drawn but not the distribution the logprob is of.
  from r1jax import train_step
  sc = SamplingConfig(max_new_tokens=10, prompt_multiple=8, **kw)
  out = sampler.generate(params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(5),
                         num_samples=2)
  t_prompt = 16
  tokens = np.zeros((4, t_prompt + 10), np.int32)
  mask = np.zeros((4, t_prompt + 10), bool)
  for row in range(4):
    prompt = PROMPTS[row // 2]
    tokens[row, t_prompt - len(prompt):t_prompt] = prompt
    mask[row, t_prompt - len(prompt):] = True
  tokens[:, t_prompt:] = np.asarray(out.tokens)
  got = train_step.completion_logprobs(params, jnp.asarray(tokens), jnp.asarray(mask), cfg=CFG,
                                       t_new=10, temperature=kw["temperature"])
  np.testing.assert_allclose(out.logprobs, got, atol=LOGPROB_TOL)
  # Not vacuous: the untempered logprobs differ (the temperature is not 1).
  if kw["temperature"] != 1.0:
    plain = train_step.completion_logprobs(params, jnp.asarray(tokens), jnp.asarray(mask),
                                           cfg=CFG, t_new=10)
    assert float(jnp.max(jnp.abs(plain - got))) > 100 * LOGPROB_TOL


def test_logprobs_equal_teacher_forced_logprobs(params):
  sc = SamplingConfig(temperature=1.0, max_new_tokens=12, prompt_multiple=8)
  out = sampler.generate(params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(3),
                         num_samples=3)
  assert out.tokens.shape == (6, 12) and out.logprobs.shape == (6, 12)
  assert out.tokens.dtype == jnp.int32 and out.logprobs.dtype == jnp.float32
  np.testing.assert_array_equal(out.lengths, 12)
  assert not np.asarray(out.finished).any()
  for row in range(6):
    want = _teacher_forced(params, CFG, PROMPTS[row // 3], np.asarray(out.tokens[row]))
    np.testing.assert_allclose(out.logprobs[row], want, atol=LOGPROB_TOL)
  # The three samples of a prompt are different draws.
  assert len({tuple(np.asarray(out.tokens[r])) for r in range(3)}) == 3


@pytest.mark.parametrize("flags", [
    dict(qkv_bias=True, rope_scaling="llama3", rope_factor=8.0, rope_original_max_position=64),
    dict(qk_norm=True, tie_embeddings=False, mlp_activation="gelu_tanh", embed_scale=True,
         norm_plus_one=True),
    dict(num_kv_heads=1, num_heads=4)])
@pytest.mark.parametrize("schedule", [dict(), dict(max_rows=2, cache_blocks=3)])
def test_decode_path_matches_forward_for_model_family_flags(flags, schedule):
  # The sampler's prefill and decode (KV cache, filled-part attention, continuous batching)
  # run the model's block; every sampled token's logprob equals a full forward's.
  cfg = dataclasses.replace(ModelConfig(), **flags)  # Tied embeddings unless flags untie.
  p = init(cfg, jax.random.key(1))
  # Random biases and norm scales (init leaves them at 0 / 1, which would hide mistakes).
  leaves, tree = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  p = jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
  sc = SamplingConfig(temperature=1.0, max_new_tokens=7, prompt_multiple=8, **schedule)
  out = sampler.generate(p, PROMPTS, cfg=cfg, sampling=sc, key=jax.random.key(4), num_samples=2)
  for row in range(4):
    want = _teacher_forced(p, cfg, PROMPTS[row // 2], np.asarray(out.tokens[row]))
    np.testing.assert_allclose(out.logprobs[row], want, atol=LOGPROB_TOL)


def _lengthy(params, **kw):
  """Sampling with common eos tokens and per-prompt budgets: rows end at many lengths."""
  sc = SamplingConfig(temperature=1.0, max_new_tokens=20, prompt_multiple=8,
                      eos_ids=tuple(range(0, 256, 10)), **kw)  # ~10% a step.
  return sampler.generate(params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(11),
                          num_samples=5, budgets=[20, 14])


@pytest.mark.parametrize("kw", [dict(max_rows=3), dict(max_rows=1), dict(max_rows=4, refill_rows=1),
                                dict(cache_blocks=1), dict(cache_blocks=20),
                                dict(max_rows=2, cache_blocks=4), dict(max_rows=8),
                                dict(max_rows=6, tail_slots=3, cache_blocks=3),
                                dict(tail_slots=4), dict(max_rows=8, tail_slots=8)])
def test_rollout_is_the_same_whatever_the_schedule(params, kw):
  # Each (prompt, sample) row draws from its own key: static or continuous batching, any number
  # of slots, any refill rate and cache blocking, and the last rows finishing in a narrower
  # batch (8 slots of 10 rows: 2 by default) or not give the same rows.
  want, got = _lengthy(params), _lengthy(params, **kw)
  lengths = np.asarray(want.lengths)
  assert len(set(lengths.tolist())) >= 4 and bool(np.asarray(want.finished).any())  # Varied.
  np.testing.assert_array_equal(got.tokens, want.tokens)
  np.testing.assert_array_equal(got.lengths, want.lengths)
  np.testing.assert_array_equal(got.finished, want.finished)
  np.testing.assert_allclose(got.logprobs, want.logprobs, atol=LOGPROB_TOL)


def _decode_loops(params, **kw) -> int:
  """How many decode `while` loops one sampler call of 2 prompts x 5 samples traces."""
  sc = SamplingConfig(temperature=1.0, max_new_tokens=6, **kw)
  fn = functools.partial(sampler._generate, cfg=CFG, sampling=sc, num_samples=5,  # pylint: disable=protected-access
                         progress=False)
  jaxpr = jax.make_jaxpr(fn)(params, jnp.zeros((1, 0), jnp.int32), jnp.ones((2, 8), jnp.int32),
                             jnp.ones((2, 8), bool), jax.random.key(0))
  loops = [eqn for eqn in jaxpr.jaxpr.eqns if eqn.primitive.name == "while"]
  # The first loop is the prefill's, over chunks of packed prompts (r1jax/prefill.py).
  assert "scatter" in str(loops[0].params["body_jaxpr"])
  return len(loops) - 1


def test_the_last_rows_of_a_continuous_batch_finish_in_a_narrower_one(params):
  # Continuous batching decodes S slots while rows are pending, then the last S / 4 (or
  # tail_slots) live rows in a batch of that many: two loops. The static schedule keeps one
  # unless asked; tail_slots >= S keeps every step at S. The rows are the same either way
  # (test_rollout_is_the_same_whatever_the_schedule).
  assert _decode_loops(params, max_rows=8) == 2
  assert _decode_loops(params, max_rows=4, tail_slots=2) == 2
  assert _decode_loops(params) == 1 and _decode_loops(params, max_rows=8, tail_slots=8) == 1
  assert _decode_loops(params, tail_slots=3) == 2
  assert _decode_loops(params, max_rows=4) == 2  # 4 // 4 = 1 slot.
  assert _decode_loops(params, max_rows=3) == 1  # 3 // 4 = 0: no narrow batch.


def test_per_prompt_budgets_end_rows_unfinished_and_keep_the_tokens(params):
  sc = SamplingConfig(temperature=1.0, max_new_tokens=12, prompt_multiple=8)
  full = sampler.generate(params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(2),
                          num_samples=2)
  cut = sampler.generate(params, PROMPTS, cfg=CFG, sampling=dataclasses.replace(sc, max_rows=1),
                         key=jax.random.key(2), num_samples=2, budgets=[3, 9])
  np.testing.assert_array_equal(cut.lengths, [3, 3, 9, 9])
  assert not np.asarray(cut.finished).any()
  for row, n in enumerate([3, 3, 9, 9]):
    np.testing.assert_array_equal(cut.tokens[row, :n], full.tokens[row, :n])
    np.testing.assert_array_equal(cut.tokens[row, n:], sc.pad_id)
  with pytest.raises(ValueError, match="budgets must be 2 integers"):
    sampler.generate(params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(2), budgets=[3])
  with pytest.raises(ValueError, match=r"in \[1, max_new_tokens=12\]"):
    sampler.generate(params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(2),
                     budgets=[3, 13])


def test_continuous_batching_keeps_logprobs_equal_to_the_trainers(params):
  out = _lengthy(params, max_rows=3, cache_blocks=4)
  for row in range(10):
    n = int(out.lengths[row])
    want = _teacher_forced(params, CFG, PROMPTS[row // 5], np.asarray(out.tokens[row, :n]))
    np.testing.assert_allclose(out.logprobs[row, :n], want, atol=LOGPROB_TOL)
    np.testing.assert_array_equal(out.logprobs[row, n:], 0.0)


def test_first_tokens_follow_the_model_distribution(params):
  # Through the whole pipeline (prefill, fan-out, draw): 4096 rows sample the first token.
  prompt = [9, 8, 7, 6]
  for kw in (dict(temperature=1.0), dict(temperature=1.0, top_p=0.6)):
    sc = SamplingConfig(max_new_tokens=1, **kw)
    out = sampler.generate(params, [prompt], cfg=CFG, sampling=sc, key=jax.random.key(5),
                           num_samples=4096)
    logits, _ = forward(params, jnp.asarray([prompt]), cfg=CFG)
    _assert_frequencies(np.asarray(out.tokens[:, 0]), _reference_probs(logits[0, -1], **kw))


EOS = tuple(range(8))  # At this seed 4 of 8 rows stop (one on id 2, found in the prompts).


def test_rows_stop_at_eos_and_are_padded_after(params):
  base = SamplingConfig(temperature=1.0, max_new_tokens=24, prompt_multiple=8, pad_id=0)
  stopping = dataclasses.replace(base, eos_ids=EOS)
  free = sampler.generate(params, PROMPTS, cfg=CFG, sampling=base, key=jax.random.key(6),
                          num_samples=4)
  out = sampler.generate(params, PROMPTS, cfg=CFG, sampling=stopping, key=jax.random.key(6),
                         num_samples=4)
  tokens, logprobs = np.asarray(out.tokens), np.asarray(out.logprobs)
  lengths, finished = np.asarray(out.lengths), np.asarray(out.finished)
  assert finished.any() and not finished.all(), (lengths, finished)
  for row in range(8):
    n = lengths[row]
    eos_at = np.nonzero(np.isin(np.asarray(free.tokens[row]), EOS))[0]
    if finished[row]:
      assert tokens[row, n - 1] in EOS and n == eos_at[0] + 1
    else:
      assert n == 24 and eos_at.size == 0
    # Stopping leaves the tokens before it as they were, and pads after it.
    np.testing.assert_array_equal(tokens[row, :n], np.asarray(free.tokens[row, :n]))
    np.testing.assert_array_equal(tokens[row, n:], 0)
    np.testing.assert_array_equal(logprobs[row, n:], 0.0)


def test_stop_sequences(params):
  base = SamplingConfig(temperature=1.0, max_new_tokens=24, prompt_multiple=8)
  free = np.asarray(sampler.generate(params, PROMPTS, cfg=CFG, sampling=base,
                                     key=jax.random.key(7), num_samples=4).tokens)
  a, b = free[0, 5], free[0, 6]
  # The pair (last prompt token, first new token) spans the prompt: it must not stop a row.
  boundary = (PROMPTS[0][-1], int(free[0, 0]))
  sc = dataclasses.replace(base, stop_sequences=((int(a), int(b)), boundary))
  out = sampler.generate(params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(7),
                         num_samples=4)
  for row in range(8):
    hits = [i + 2 for i in range(23) if (free[row, i], free[row, i + 1]) in
            ((a, b), boundary)]
    want = hits[0] if hits else 24
    assert int(out.lengths[row]) == want
    assert bool(out.finished[row]) == bool(hits)
    np.testing.assert_array_equal(np.asarray(out.tokens[row, :want]), free[row, :want])
  assert int(out.lengths[0]) <= 7


def test_a_prompt_alone_and_batched_with_a_longer_one_gives_the_same_greedy_tokens(params):
  sc = SamplingConfig(temperature=0.0, max_new_tokens=16, prompt_multiple=8)
  short, long = PROMPTS[0], PROMPTS[1] + [3, 4, 5, 6]  # Buckets of 8 alone, 16 together.
  alone = sampler.generate(params, [short], cfg=CFG, sampling=sc, key=jax.random.key(0))
  both = sampler.generate(params, [long, short], cfg=CFG, sampling=sc, key=jax.random.key(0))
  np.testing.assert_array_equal(alone.tokens[0], both.tokens[1])
  np.testing.assert_allclose(alone.logprobs[0], both.logprobs[1], atol=LOGPROB_TOL)
  assert len(set(np.asarray(alone.tokens[0]).tolist())) > 1  # Not a degenerate repeat.


def test_compiles_once_per_prompt_bucket(params):
  sc = SamplingConfig(temperature=1.0, max_new_tokens=5, prompt_multiple=8)  # Unused above.
  before = sampler.trace_count()
  for n, seed in ((2, 0), (5, 1), (8, 2), (7, 3)):
    sampler.generate(params, [list(range(1, n + 1)), [4, 2]], cfg=CFG, sampling=sc,
                     key=jax.random.key(seed), num_samples=2)
  assert sampler.trace_count() == before + 1
  sampler.generate(params, [list(range(1, 10)), [4, 2]], cfg=CFG, sampling=sc,
                   key=jax.random.key(0), num_samples=2)  # 9 tokens: the 16 bucket.
  assert sampler.trace_count() == before + 2
  assert sampler.bucket_length(9, dataclasses.replace(sc, prompt_buckets=(12, 32))) == 12
  assert sampler.bucket_length(40, dataclasses.replace(sc, prompt_buckets=(12, 32))) == 40


def test_same_key_same_rollout_and_another_key_another(params):
  sc = SamplingConfig(temperature=1.0, max_new_tokens=12, prompt_multiple=8)
  run = lambda seed: np.asarray(sampler.generate(
      params, PROMPTS, cfg=CFG, sampling=sc, key=jax.random.key(seed), num_samples=3).tokens)
  np.testing.assert_array_equal(run(3), run(3))
  assert (run(3) != run(4)).any()


@pytest.mark.parametrize("kw, match", [
    (dict(top_p=0.0), "top_p must be in \\(0, 1\\]"), (dict(top_p=1.5), "top_p"),
    (dict(max_new_tokens=0), "max_new_tokens"), (dict(max_new_tokens=-2), "max_new_tokens"),
    (dict(temperature=-1.0), "temperature"), (dict(top_k=-1), "top_k"),
    (dict(min_p=1.5), "min_p"), (dict(stop_sequences=((),)), "stop_sequences"),
    (dict(prompt_multiple=0), "prompt_multiple"), (dict(max_rows=-1), "max_rows"),
    (dict(refill_rows=1.5), "refill_rows"), (dict(cache_blocks=0), "cache_blocks"),
    (dict(shared_prefix_multiple=-8), "shared_prefix_multiple must be an integer >= 0")])
def test_bad_sampling_config_is_a_clear_error(kw, match):
  with pytest.raises(ValueError, match=match):
    SamplingConfig(**kw)


@pytest.mark.parametrize("prompts, kw, match", [
    ([], {}, "non-empty list"), ([[1, 2], []], {}, "prompt 1 is empty"),
    ([[1] * 60], dict(max_new_tokens=8), "exceeds the model's context of 64"),
    ([[1, 256]], {}, "outside the vocabulary"), ([[1]], dict(num_samples=0), "num_samples")])
def test_bad_prompts_are_a_clear_error(params, prompts, kw, match):
  cfg = dataclasses.replace(CFG, max_position_embeddings=64)
  sc = SamplingConfig(max_new_tokens=kw.pop("max_new_tokens", 4))
  with pytest.raises(ValueError, match=match):
    sampler.generate(params, prompts, cfg=cfg, sampling=sc, key=jax.random.key(0), **kw)


# --- SmolLM2: greedy tokens equal transformers' ----------------------------------------------


def _smollm2_path():
  from r1jax import fetch  # pylint: disable=g-import-not-at-top
  try:
    path = pathlib.Path(fetch.resolve_model_path("smollm2-135m"))
  except (ValueError, FileNotFoundError):
    return None
  return path if path.is_file() else None


def test_smollm2_greedy_tokens_equal_transformers():
  path = _smollm2_path()
  if path is None:
    pytest.skip("SmolLM2 GGUF not in the cache (r1jax fetch smollm2-135m)")
  from r1jax import models  # pylint: disable=g-import-not-at-top
  from r1jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top
  golden = json.loads(FIXTURE.read_text())
  tok = load_tokenizer(path)
  prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=True)
             for q in golden["questions"]]
  assert prompts == golden["prompt_ids"]
  cfg, params = models.load(path)
  sc = SamplingConfig(temperature=0.0, max_new_tokens=golden["max_new_tokens"],
                      eos_ids=tuple(golden["eos_ids"]), pad_id=tok.pad_id)
  out = sampler.generate(params, prompts, cfg=cfg, sampling=sc, key=jax.random.key(0))
  ours = [np.asarray(out.tokens[i, :int(out.lengths[i])]).tolist() for i in range(len(prompts))]
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    import transformers  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    want = golden["hf_tokens"]
  else:
    from tests.make_sampler_golden import hf_greedy  # pylint: disable=g-import-not-at-top
    want = hf_greedy(path, prompts, golden["max_new_tokens"], golden["eos_ids"])
    assert want == golden["hf_tokens"]  # The fixture is what transformers does today.
  assert all(len(w) >= 48 for w in want)
  assert ours == want


def test_cli_sample_rejects_bad_flags_before_loading(capsys):
  from r1jax import cli  # pylint: disable=g-import-not-at-top
  assert cli.main(["sample", "--model", "no-such-model", "--prompt", "hi", "--top-p", "1.5"]) == 2
  assert "top_p must be in (0, 1]" in capsys.readouterr().err


def test_cli_sample_prints_the_greedy_completion(capsys):
  path = _smollm2_path()
  if path is None:
    pytest.skip("SmolLM2 GGUF not in the cache (r1jax fetch smollm2-135m)")
  from r1jax import cli  # pylint: disable=g-import-not-at-top
  from r1jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top
  golden = json.loads(FIXTURE.read_text())
  assert cli.main(["sample", "--model", str(path), "--prompt", golden["questions"][0], "--chat",
                   "--temperature", "0", "--max-new-tokens", "12", "--no-progress"]) == 0
  text = load_tokenizer(path).decode(golden["hf_tokens"][0][:12])
  assert capsys.readouterr().out == text + "\n"
