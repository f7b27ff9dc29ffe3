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


def _left_padded(ids, width):
  tok, mask = np.zeros((len(ids), width), np.int32), np.zeros((len(ids), width), bool)
  for i, x in enumerate(ids):
    tok[i, width - len(x):], mask[i, width - len(x):] = x, True
  return tok, mask


def _prefill(params, prefix, tok, mask, packing):
  t_s = prefix.shape[1]
  packed = (prefill.pack(mask, tok, t_s) if packing == "packed"
            else prefill.unpacked(jnp.asarray(tok), jnp.asarray(mask), t_s))
  run = jax.jit(lambda pre, pk, m: prefill.prefill(
      decode_layout.layer_params(params, CFG), decode_layout.top_params(params, CFG), pre, pk,
      m, jnp.ones(m.shape[0], jnp.int32), cfg=CFG))
  return run(jnp.asarray(prefix), packed, jnp.asarray(mask))


def _assert_same_prompts(got, want):
  """Every real position's key and value, each prompt's length and next-token logits."""
  np.testing.assert_array_equal(got.length, want.length)
  np.testing.assert_array_equal(got.mask.sum(axis=1), got.length)
  np.testing.assert_allclose(got.logits, want.logits, atol=TOL, rtol=TOL)
  for layer in range(CFG.num_layers):
    for i in range(got.logits.shape[0]):
      got_k = got.k[layer][i][..., np.asarray(got.mask[i])]  # [K, H, real positions]
      want_k = want.k[layer][i][..., np.asarray(want.mask[i])]
      np.testing.assert_allclose(got_k, want_k, atol=TOL, rtol=TOL)
      got_v = got.v[layer][i][:, np.asarray(got.mask[i])]  # [K, real positions, H]
      np.testing.assert_allclose(got_v, want.v[layer][i][:, np.asarray(want.mask[i])],
                                 atol=TOL, rtol=TOL)


@pytest.mark.parametrize("packing", ["packed", "unpacked"])
def test_a_prefix_prefilled_once_gives_the_whole_prefills_keys_values_and_logits(params, packing):
  # The same prompts prefilled whole ([pads | prefix | rest], one prompt a row) and with the
  # prefix shared ([prefix | pads | rest], the rests packed or not): every real position has
  # the same key and value, each prompt the same length and next-token logits.
  t_s, t_p = 16, 32
  whole = _prefill(params, np.zeros((1, 0), np.int32), *_left_padded(PROMPTS, t_p), "unpacked")
  shared = _prefill(params, np.asarray([PREFIX[:t_s]]),
                    *_left_padded([p[t_s:] for p in PROMPTS], t_p - t_s), packing)
  np.testing.assert_array_equal(shared.length, [len(p) for p in PROMPTS])
  _assert_same_prompts(shared, whole)


# Eight prompts of 1 to 12 tokens in rows of 12: first fit by decreasing length puts several
# in a row; a prompt of the row's full width fills one alone.
LENGTHS = [12, 3, 7, 1, 5, 9, 2, 4]
SUFFIXES = [[(7 * i + j) % 250 + 1 for j in range(n)] for i, n in enumerate(LENGTHS)]


@pytest.mark.parametrize("groups", [1, 2])
def test_packing_places_every_token_once_at_its_prompts_cache_columns(groups, monkeypatch):
  monkeypatch.setattr(prefill, "CHUNK_POSITIONS", 24)  # Chunks of 2 rows.
  tok, mask = _left_padded(SUFFIXES, 12)
  pk = prefill.pack(mask, tok, t_s=5, groups=groups)
  p_g = len(SUFFIXES) // groups
  seen = set()
  for g in range(groups):
    for row, col in zip(*np.nonzero(pk.segment[g] < p_g)):
      prompt = g * p_g + int(pk.segment[g, row, col])  # A group packs only its own prompts.
      n, j = LENGTHS[prompt], int(pk.position[g, row, col])
      assert pk.tokens[g, row, col] == SUFFIXES[prompt][j]
      assert pk.column[g, row, col] == 5 + 12 - n + j  # Where the left-padded prompt has it.
      assert bool(pk.last[g, row, col]) == (j == n - 1)
      seen.add((prompt, j))
    rows_used = np.nonzero((pk.segment[g] < p_g).any(axis=1))[0]
    assert len(rows_used) < p_g  # Packing saved rows.
  assert seen == {(p, j) for p, n in enumerate(LENGTHS) for j in range(n)}
  assert not pk.last[pk.segment == p_g].any() and not pk.tokens[pk.segment == p_g].any()
  c = prefill.chunk_rows(p_g, 12)
  assert pk.tokens.shape == (groups, -(-p_g // c) * c, 12)
  used = max(len(np.nonzero((pk.segment[g] < p_g).any(axis=1))[0]) for g in range(groups))
  assert int(pk.chunks) == -(-used // c)  # The loop runs only chunks that hold tokens.


def test_packed_rows_give_each_prompt_the_keys_values_and_logits_it_has_alone(params,
                                                                            monkeypatch):
  # Prompts sharing a packed row attend only within their own segment: each gets what it
  # gets prefilled in a row of its own, with and without a shared prefix. Chunks of 2 rows
  # (24 positions), so that the loop runs several and packing skips some.
  monkeypatch.setattr(prefill, "CHUNK_POSITIONS", 24)
  tok, mask = _left_padded(SUFFIXES, 12)
  for prefix in (np.zeros((1, 0), np.int32), np.asarray([PREFIX[:8]])):
    packed = _prefill(params, prefix, tok, mask, "packed")
    alone = _prefill(params, prefix, tok, mask, "unpacked")
    _assert_same_prompts(packed, alone)
    assert int(prefill.pack(mask, tok, prefix.shape[1]).chunks) < prefill.unpacked(
        jnp.asarray(tok), jnp.asarray(mask), prefix.shape[1]).chunks  # Fewer chunks ran.


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


def test_packing_refuses_groups_that_do_not_divide_and_an_empty_suffix():
  tok, mask = _left_padded(SUFFIXES, 12)
  with pytest.raises(ValueError, match="positive divisor of the 8 prompts, got 3"):
    prefill.pack(mask, tok, t_s=0, groups=3)
  mask[2] = False
  with pytest.raises(ValueError, match="prompt 2 has none"):
    prefill.pack(mask, tok, t_s=0)
