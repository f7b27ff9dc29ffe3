"""Tests for r1jax.grpo: every loss variant against an independent NumPy float64 reference.

The reference below is written token by token with the clipping cases spelled out and a
hand-derived gradient, so it shares no code path with the vectorised jnp implementation.
"""

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import config, grpo, grpo_config
from r1jax.grpo import GRPOConfig

RTOL = 1e-5  # float32 against float64.
ATOL_FRAC = 1e-6  # Absolute slack as a fraction of the largest expected |value| (cancellation).
BOUNDARY_MARGIN = 1e-5  # Inputs keep every ratio this far (relatively) from a clip boundary.


def assert_close(actual, expected, scale=None):
  """rtol RTOL, plus an absolute slack of ATOL_FRAC * scale for values near zero.

  scale defaults to the largest |expected|; for a sum whose terms cancel, pass the sum of the
  terms' magnitudes, which is what float32 rounding is relative to.
  """
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  if scale is None:
    scale = max(float(np.max(np.abs(expected))), 1e-30)
  np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL_FRAC * scale)


# ---------------------------------------------------------------------------------------------
# Independent NumPy reference.


def kl_and_grad(estimator, logp, ref):
  """Per-token KL estimate and its derivative with respect to logp."""
  x = ref - logp
  if estimator == "k1":
    return -x, 1.0
  if estimator == "k2":
    return 0.5 * x * x, -x
  return math.exp(x) - x - 1.0, 1.0 - math.exp(x)


def clipped_objective(ratio, adv, cfg):
  """PPO's clipped surrogate for one token: (value, d value / d ratio, which clip bound)."""
  low = -math.inf if cfg.clip_low is None else 1.0 - cfg.clip_low
  high = 1.0 + cfg.clip_high
  if adv > 0:
    if ratio > high:
      return high * adv, 0.0, "high"
    return ratio * adv, adv, None
  if adv < 0:
    if ratio < low:
      return low * adv, 0.0, "low"
    if cfg.dual_clip is not None and ratio * adv < cfg.dual_clip * adv:
      return cfg.dual_clip * adv, 0.0, "dual"
    return ratio * adv, adv, None
  return 0.0, 0.0, None


def reference(logp, old, ref, ent, adv, mask, cfg):
  """Loss, d loss / d logp and metrics, in float64, one token at a time.

  metrics["loss_scale"] is the sum of the loss terms' magnitudes (the scale of float32 error).
  """
  logp, old, ref, ent, adv = (np.asarray(a, np.float64) for a in (logp, old, ref, ent, adv))
  mask = np.asarray(mask, bool)
  num_rows, num_cols = logp.shape
  lengths = mask.sum(1)
  num_seqs = max(int((lengths > 0).sum()), 1)
  num_tok = max(int(mask.sum()), 1)
  loss = pg_loss = loss_scale = pg_scale = 0.0
  grad = np.zeros_like(logp)
  kls, ratios, bounds = [], [], {"low": 0, "high": 0, "dual": 0}
  for b in range(num_rows):
    toks = [t for t in range(num_cols) if mask[b, t]]
    if not toks:
      continue
    if cfg.loss_agg == "token_mean":
      weight = 1.0 / num_tok  # d loss / d (loss of one token)
    elif cfg.loss_agg == "seq_mean_token_mean":
      weight = 1.0 / (len(toks) * num_seqs)
    else:  # Dr. GRPO: a constant divisor, never the array width num_cols.
      weight = 1.0 / (cfg.token_sum_divisor * num_seqs)
    seq_ratio = math.exp(sum(logp[b, t] - old[b, t] for t in toks) / len(toks))
    seq_cotangent = 0.0
    for t in toks:
      ratio = seq_ratio if cfg.ratio_level == "sequence" else math.exp(logp[b, t] - old[b, t])
      obj, dobj, bound = clipped_objective(ratio, adv[b], cfg)
      kl, dkl = kl_and_grad(cfg.kl_estimator, logp[b, t], ref[b, t])
      terms = (-obj, cfg.kl_coef * kl, -cfg.entropy_coef * ent[b, t])
      loss += weight * sum(terms)
      loss_scale += weight * sum(abs(x) for x in terms)
      pg_loss += weight * -obj
      pg_scale += weight * abs(obj)
      grad[b, t] += weight * cfg.kl_coef * dkl
      if cfg.ratio_level == "sequence":
        seq_cotangent += weight * -dobj
      else:
        grad[b, t] += weight * -dobj * ratio  # d ratio / d logp = ratio
      kls.append(kl)
      ratios.append(ratio)
      if bound:
        bounds[bound] += 1
    if cfg.ratio_level == "sequence":  # d seq_ratio / d logp_t = seq_ratio / n
      for t in toks:
        grad[b, t] += seq_cotangent * seq_ratio / len(toks)
  metrics = {"pg_loss": pg_loss, "loss_scale": loss_scale, "pg_scale": pg_scale,
             "kl": np.mean(kls), "entropy": ent[mask].mean(), "ratio/mean": np.mean(ratios),
             "ratio/min": np.min(ratios), "ratio/max": np.max(ratios)}
  for name, count in bounds.items():
    metrics[f"clip/{name}_frac"] = count / len(ratios)
  return loss, grad, metrics


def near_boundary(logp, old, mask, cfg):
  """Whether any token or sequence ratio sits within BOUNDARY_MARGIN of a clip boundary."""
  bounds = [1.0 + cfg.clip_high]
  if cfg.clip_low is not None:
    bounds.append(1.0 - cfg.clip_low)
  if cfg.dual_clip is not None:
    bounds.append(cfg.dual_clip)
  d = np.where(mask, np.asarray(logp, np.float64) - np.asarray(old, np.float64), 0.0)
  ratios = [np.exp(d[mask])]
  lengths = mask.sum(1)
  ratios.append(np.exp(d.sum(1)[lengths > 0] / lengths[lengths > 0]))
  r = np.concatenate(ratios)
  return any(np.any(np.abs(r / b - 1.0) < BOUNDARY_MARGIN) for b in bounds)


def binding_clips(logp, old, adv, mask, cfg):
  """Which clip bounds bind for at least one token of this draw (at cfg.ratio_level)."""
  d = np.where(mask, np.asarray(logp, np.float64) - np.asarray(old, np.float64), 0.0)
  if cfg.ratio_level == "sequence":
    d = np.broadcast_to(d.sum(1, keepdims=True) / np.maximum(mask.sum(1, keepdims=True), 1),
                        d.shape)
  r, a = np.exp(d)[mask], np.broadcast_to(adv[:, None], d.shape)[mask]
  bound = set()
  if np.any((a > 0) & (r > 1.0 + cfg.clip_high)):
    bound.add("high")
  if cfg.clip_low is not None and np.any((a < 0) & (r < 1.0 - cfg.clip_low)):
    bound.add("low")
  if cfg.dual_clip is not None and np.any((a < 0) & (r > cfg.dual_clip)):
    bound.add("dual")
  return bound


def make_inputs(cfg, seed, rows=16, cols=12, spread=1.3, cover=()):
  """Random float32 inputs with ragged masks, an empty row, and garbage at masked positions.

  Each row's log-ratio is a random offset in [-spread, spread] plus token noise, so both token
  and sequence ratios land inside and beyond every clip bound; draws are repeated until the
  bounds named in `cover` bind somewhere and no ratio sits on a boundary.
  """
  for attempt in range(100):
    rng = np.random.default_rng(1000 * seed + attempt)
    mask = np.zeros((rows, cols), bool)
    for b in range(1, rows):  # Row 0 stays empty.
      n = rng.integers(1, cols + 1)
      start = rng.integers(0, cols - n + 1)
      mask[b, start:start + n] = True
    old = rng.normal(-2.0, 1.0, (rows, cols))
    offset = rng.uniform(-spread, spread, (rows, 1))
    logp = old + offset + 0.3 * spread * rng.normal(size=(rows, cols))
    ref = old + 0.5 * rng.normal(size=(rows, cols))
    ent = rng.uniform(0.0, 3.0, (rows, cols))
    adv = rng.normal(size=rows)
    logp, old, ref, ent, adv = (a.astype(np.float32) for a in (logp, old, ref, ent, adv))
    if near_boundary(logp, old, mask, cfg) or not set(cover) <= binding_clips(
        logp, old, adv, mask, cfg):
      continue
    # Never read: the implementation must neither use these nor leak nan/inf gradients.
    logp[~mask], old[~mask], ref[~mask], ent[~mask] = np.nan, 1e4, -1e4, np.inf
    return logp, old, ref, ent, adv, mask.astype(np.float32)
  raise AssertionError("no random draw kept clear of the clip boundaries")


def run_loss(logp, old, ref, ent, adv, mask, cfg, normalizer=None):
  fn = lambda lp: grpo.policy_loss(lp, old, ref, adv, mask, cfg=cfg, entropies=ent,
                                   normalizer=normalizer)
  (loss, metrics), grad = jax.value_and_grad(fn, has_aux=True)(jnp.asarray(logp))
  return loss, grad, metrics


# ---------------------------------------------------------------------------------------------
# The full matrix of loss variants.

CLIPS = {"symmetric": (0.2, 0.2), "clip_higher": (0.2, 0.28)}
DIVISOR = 37  # Dr. GRPO's constant in these tests: not any array's width.
MATRIX = list(itertools.product(("token", "sequence"), grpo_config.LOSS_AGGS,
                                grpo_config.KL_ESTIMATORS, CLIPS, (None, 3.0)))


@pytest.mark.parametrize("ratio_level,loss_agg,kl_estimator,clip,dual_clip", MATRIX)
def test_loss_and_gradient_match_numpy_reference(ratio_level, loss_agg, kl_estimator, clip,
                                                 dual_clip):
  clip_low, clip_high = CLIPS[clip]
  cfg = GRPOConfig(ratio_level=ratio_level, loss_agg=loss_agg, kl_estimator=kl_estimator,
                   clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip, kl_coef=0.05,
                   entropy_coef=0.01, token_sum_divisor=DIVISOR)
  # Every branch of the surrogate is exercised.
  cover = ("low", "high") + (("dual",) if dual_clip else ())
  inputs = make_inputs(cfg, seed=MATRIX.index((ratio_level, loss_agg, kl_estimator, clip,
                                                dual_clip)), cover=cover)
  loss, grad, metrics = run_loss(*inputs, cfg)
  want_loss, want_grad, want_metrics = reference(*inputs, cfg)
  assert_close(loss, want_loss, scale=want_metrics.pop("loss_scale"))
  assert_close(grad, want_grad)
  assert_close(metrics["pg_loss"], want_metrics.pop("pg_loss"),
               scale=want_metrics.pop("pg_scale"))
  for name, want in want_metrics.items():
    assert_close(metrics[name], want)
  mask = inputs[-1].astype(bool)
  assert np.all(np.asarray(grad)[~mask] == 0.0)  # Exactly, despite nan/inf garbage there.
  for name in ("low", "high", "dual"):
    assert (want_metrics[f"clip/{name}_frac"] > 0) == (name in cover)


@pytest.mark.parametrize("name", sorted(grpo.PRESETS))
def test_presets_match_numpy_reference(name):
  cfg = dataclasses.replace(grpo.PRESETS[name](), entropy_coef=0.01, token_sum_divisor=DIVISOR)
  # Spread the log-ratios across the preset's clip range (GSPO clips at 3e-4).
  spread = 3.0 * max(cfg.clip_low or 0.0, min(cfg.clip_high, 0.5))
  inputs = make_inputs(cfg, seed=7, spread=spread)
  loss, grad, _ = run_loss(*inputs, cfg)
  want_loss, want_grad, want_metrics = reference(*inputs, cfg)
  assert_close(loss, want_loss, scale=want_metrics["loss_scale"])
  assert_close(grad, want_grad)


# ---------------------------------------------------------------------------------------------
# Invariants.


@pytest.mark.parametrize("ratio_level", ["token", "sequence"])
def test_on_policy_ratio_is_one_and_nothing_clips(ratio_level):
  cfg = GRPOConfig(ratio_level=ratio_level, dual_clip=2.0, clip_low=0.001, clip_high=0.001)
  logp, _, ref, _, adv, mask = make_inputs(cfg, seed=1)
  for old in (logp, None):  # Explicit old logprobs, or None meaning on-policy.
    _, metrics = grpo.policy_loss(jnp.asarray(logp), old, ref, adv, mask, cfg=cfg)
    assert float(metrics["ratio/min"]) == 1.0 and float(metrics["ratio/max"]) == 1.0
    for name in ("clip/low_frac", "clip/high_frac", "clip/dual_frac"):
      assert float(metrics[name]) == 0.0


@pytest.mark.parametrize("estimator", grpo_config.KL_ESTIMATORS)
def test_kl_is_zero_when_policy_equals_reference(estimator):
  cfg = GRPOConfig(kl_estimator=estimator, kl_coef=0.5)
  logp, old, _, _, adv, mask = make_inputs(cfg, seed=2)
  loss, metrics = grpo.policy_loss(jnp.asarray(logp), old, logp, adv, mask, cfg=cfg)
  assert float(metrics["kl"]) == 0.0
  assert float(loss) == float(metrics["pg_loss"])
  if estimator != "k1":  # k2 and k3 are minimal at pi = ref; k1's token gradient is always 1.
    without_kl = dataclasses.replace(cfg, kl_coef=0.0)
    grad = lambda c: jax.grad(lambda lp: grpo.policy_loss(lp, old, logp, adv, mask, cfg=c)[0])(
        jnp.asarray(logp))
    np.testing.assert_array_equal(grad(cfg), grad(without_kl))


@pytest.mark.parametrize("baseline,scale", itertools.product(grpo_config.ADV_BASELINES,
                                                             grpo_config.ADV_SCALES))
def test_advantages_match_numpy_and_equal_rewards_give_zero_gradient(baseline, scale):
  cfg = GRPOConfig(num_samples=4, adv_baseline=baseline, adv_scale=scale, kl_coef=0.0)
  rng = np.random.default_rng(3)
  rewards = rng.uniform(0.0, 1.0, (4, 4)).astype(np.float32)
  rewards[1] = 0.1  # 0.1 is inexact in float32: the mean can round away from it.
  rewards[3] = [1.0, 0.0, 0.0, 1.0]
  adv = np.asarray(grpo.advantages(rewards, cfg=cfg))

  r = rewards.astype(np.float64)
  for p in range(4):
    for i in range(4):
      others = [r[p, j] for j in range(4) if j != i]
      base = r[p].mean() if baseline == "group_mean" else np.mean(others)
      denom = {"group_std": np.std(r[p], ddof=1) + cfg.adv_eps,
               "batch_std": np.std(r, ddof=1) + cfg.adv_eps, "none": 1.0}[scale]
      want = 0.0 if np.ptp(r[p]) == 0 else (r[p, i] - base) / denom
      assert_close(adv[p, i], want)
  assert np.all(adv[1] == 0.0)

  logp, old, _, _, _, mask = make_inputs(cfg, seed=4)
  grad = jax.grad(lambda lp: grpo.policy_loss(lp, old, None, adv.reshape(-1), mask, cfg=cfg)[0])(
      jnp.asarray(logp))
  grad = np.asarray(grad).reshape(4, 4, -1)
  assert np.all(grad[1] == 0.0)
  assert np.any(grad[3] != 0.0)


def test_zero_variance_groups_and_group_metrics():
  rewards = jnp.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.1, 0.1, 0.1], [0.0, 0.0, 1e-7]])
  np.testing.assert_array_equal(grpo.zero_variance_groups(rewards), [True, False, True, False])
  metrics = grpo.group_metrics(rewards)
  assert float(metrics["groups/zero_var_frac"]) == 0.5
  assert_close(metrics["reward/mean"], np.mean(np.asarray(rewards, np.float64)))


# ---------------------------------------------------------------------------------------------
# Gradient accumulation over minibatches.


def toy_policy(seed, rows=16, cols=10, width=6, vocab=11):
  """A linear 'language model' so gradients reach real parameters through token_logprobs."""
  rng = np.random.default_rng(seed)
  feats = jnp.asarray(rng.normal(size=(rows, cols, width)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, vocab, (rows, cols)))
  weights = jnp.asarray(rng.normal(size=(width, vocab)), jnp.float32)
  logprobs = lambda w, rows: grpo.token_logprobs(feats[rows] @ w, targets[rows])
  old = logprobs(weights + 0.3 * jnp.asarray(rng.normal(size=(width, vocab)), jnp.float32),
                 slice(None))
  mask = np.zeros((rows, cols), np.float32)
  for b in range(rows):  # Ragged, with whole rows empty in some minibatches only.
    mask[b, :rng.integers(0, cols + 1) if b % 5 else 0] = 1.0
  adv = jnp.asarray(rng.normal(size=rows), jnp.float32)
  return weights, logprobs, old, jnp.asarray(mask), adv


@pytest.mark.parametrize("loss_agg", grpo_config.LOSS_AGGS)
def test_minibatch_gradients_sum_to_full_batch_gradient(loss_agg):
  cfg = GRPOConfig(loss_agg=loss_agg, kl_coef=0.0, token_sum_divisor=DIVISOR)
  weights, logprobs, old, mask, adv = toy_policy(seed=5)
  minibatches = jnp.arange(16).reshape(4, 4)  # Row indices of 4 minibatches.

  @jax.jit  # One compile per case; vmap runs the 4 minibatches as one traced computation.
  def gradients(w):
    def value_and_grad(rows, normalizer):
      fn = lambda w: grpo.policy_loss(logprobs(w, rows), old[rows], None, adv[rows], mask[rows],
                                      cfg=cfg, normalizer=normalizer)[0]
      return jax.value_and_grad(fn)(w)
    full = value_and_grad(jnp.arange(16), None)
    norm = grpo.loss_normalizer(mask, cfg=cfg)
    accumulated = jax.vmap(lambda rows: value_and_grad(rows, norm))(minibatches)
    local = jax.vmap(lambda rows: value_and_grad(rows, None))(minibatches)  # Own counts only.
    return full, accumulated, local[1]

  (full_loss, full_grad), accumulated, local = gradients(weights)
  scale = float(jnp.max(jnp.abs(full_grad)))
  losses, grads = accumulated
  np.testing.assert_allclose(grads.sum(0), full_grad, rtol=0, atol=1e-6 * scale)
  np.testing.assert_allclose(losses.sum(), full_loss, rtol=1e-6)
  # Control: averaging minibatches that each normalise by their own counts is not the same.
  assert float(jnp.max(jnp.abs(local.mean(0) - full_grad))) > 1e-3 * scale


# ---------------------------------------------------------------------------------------------
# Logprobs, entropy, overlong handling, metrics, config.


def test_token_logprobs_and_entropy_match_numpy():
  rng = np.random.default_rng(6)
  logits = (30.0 * rng.normal(size=(3, 5, 17))).astype(np.float32)  # Large: tests stability.
  targets = rng.integers(0, 17, (3, 5))
  mask = rng.uniform(size=(3, 5)) < 0.6
  x = logits.astype(np.float64)
  logsm = x - x.max(-1, keepdims=True)
  logsm -= np.log(np.exp(logsm).sum(-1, keepdims=True))
  want_lp = np.take_along_axis(logsm, targets[..., None], -1)[..., 0]
  want_ent = -(np.exp(logsm) * logsm).sum(-1)
  assert_close(grpo.token_logprobs(logits, targets), want_lp)
  assert_close(grpo.token_entropy(logits), want_ent)
  assert_close(grpo.entropy(logits, mask), want_ent[mask].mean())
  assert grpo.token_logprobs(jnp.asarray(logits, jnp.bfloat16), targets).dtype == jnp.float32


def test_overlong_penalty_is_dapo_linear_ramp():
  lengths = jnp.array([100, 16384, 16385, 18432, 20480, 20481])
  got = grpo.overlong_penalty(lengths, max_len=20480, buffer=4096, penalty=1.0)
  np.testing.assert_allclose(got, [0.0, 0.0, -1 / 4096, -0.5, -1.0, -1.0], rtol=1e-6)
  with pytest.raises(ValueError, match="buffer"):
    grpo.overlong_penalty(lengths, max_len=100, buffer=0)


def test_mask_truncated_zeroes_truncated_rows_only_when_enabled():
  mask = jnp.ones((3, 4))
  truncated = jnp.array([False, True, False])
  np.testing.assert_array_equal(grpo.filter_truncated(mask, truncated, cfg=GRPOConfig()), mask)
  filtered = grpo.filter_truncated(mask, truncated, cfg=grpo.dapo())
  np.testing.assert_array_equal(filtered, [[1] * 4, [0] * 4, [1] * 4])


def test_metrics_are_float32_scalars_without_gradient_and_jit():
  cfg = GRPOConfig(kl_coef=0.1, dual_clip=3.0)
  logp, old, ref, ent, adv, mask = make_inputs(cfg, seed=8)
  fn = jax.jit(lambda lp: grpo.policy_loss(lp, old, ref, adv, mask, cfg=cfg, entropies=ent))
  loss, metrics = fn(jnp.asarray(logp))
  eager_loss, _ = grpo.policy_loss(jnp.asarray(logp), old, ref, adv, mask, cfg=cfg)
  assert_close(loss, eager_loss)
  want = {"loss", "pg_loss", "kl", "entropy", "ratio/mean", "ratio/min", "ratio/max",
          "clip/low_frac", "clip/high_frac", "adv/mean", "adv/std"}
  assert want <= set(metrics)
  for value in metrics.values():
    assert value.shape == () and value.dtype == jnp.float32 and np.isfinite(value)
  for name in ("loss", "pg_loss", "kl"):
    g = jax.grad(lambda lp: grpo.policy_loss(lp, old, ref, adv, mask, cfg=cfg)[1][name])(
        jnp.asarray(logp))
    assert np.all(np.asarray(g) == 0.0)


def test_missing_reference_or_entropies_is_a_clear_error():
  cfg = GRPOConfig(kl_coef=0.0)
  logp, old, ref, ent, adv, mask = make_inputs(cfg, seed=9)
  grpo.policy_loss(jnp.asarray(logp), old, None, adv, mask, cfg=cfg)  # kl_coef 0: no reference.
  with pytest.raises(ValueError, match="kl_coef = 0.04 needs ref_logprobs"):
    grpo.policy_loss(jnp.asarray(logp), old, None, adv, mask, cfg=GRPOConfig())
  with pytest.raises(ValueError, match="entropy_coef = 0.1 needs entropies"):
    grpo.policy_loss(jnp.asarray(logp), old, None, adv, mask,
                     cfg=GRPOConfig(kl_coef=0.0, entropy_coef=0.1))
  with pytest.raises(ValueError, match=r"shape \[P, R=8\]"):
    grpo.advantages(jnp.zeros((2, 4)), cfg=cfg)


@pytest.mark.parametrize("field,value,message", [
    ("loss_agg", "seq_mean", "'seq_mean_token_mean', 'token_mean', 'seq_mean_token_sum_norm'"),
    ("kl_estimator", "k4", "accepted values: 'k1', 'k2', 'k3'"),
    ("ratio_level", "tokens", "accepted values: 'token', 'sequence'"),
    ("adv_scale", "std", "accepted values"),
    ("adv_baseline", "mean", "accepted values"),
    ("clip_low", -0.1, r"clip_low must be in \[0, 1\)"),
    ("clip_low", 1.0, r"clip_low must be in \[0, 1\)"),
    ("num_samples", 1, "num_samples must be an integer >= 2, got 1"),
    ("dual_clip", 0.5, "dual_clip must be a number > 1"),
    ("kl_coef", -1.0, "kl_coef must be a finite number >= 0"),
    ("num_iterations", 0, "num_iterations must be an integer >= 1"),
    ("tis_cap", 0.5, "tis_cap must be a number >= 1"),
    ("old_logprobs", "policy", "accepted values: 'trainer', 'sampler'"),
    ("token_sum_divisor", -1, "token_sum_divisor must be an integer >= 0"),
])
def test_bad_config_is_a_clear_error(field, value, message):
  with pytest.raises(ValueError, match=message) as info:
    GRPOConfig(**{field: value})
  assert repr(value) in str(info.value)


def test_dr_grpo_loss_does_not_depend_on_the_completion_axis_width():
  # Trimming the completion axis to the longest completion (or padding it) must not change
  # the objective: Dr. GRPO divides by a constant, not by the array width.
  cfg = GRPOConfig(loss_agg="seq_mean_token_sum_norm", kl_coef=0.0, adv_scale="none",
                   token_sum_divisor=40)
  logp, old, _, _, adv, mask = make_inputs(cfg, seed=11)
  trimmed, _ = grpo.policy_loss(jnp.asarray(logp), old, None, adv, mask, cfg=cfg)
  for extra in (5, 30):  # The same completions in wider arrays (padding columns, mask 0).
    pad = lambda x: np.concatenate([x, np.zeros((x.shape[0], extra), x.dtype)], axis=1)
    wide, _ = grpo.policy_loss(jnp.asarray(pad(logp)), pad(old), None, adv, pad(mask), cfg=cfg)
    assert float(wide) == pytest.approx(float(trimmed), rel=1e-6)
  with pytest.raises(ValueError, match="token_sum_divisor, which is 0"):
    grpo.policy_loss(jnp.asarray(logp), old, None, adv, mask,
                     cfg=dataclasses.replace(cfg, token_sum_divisor=0))


def test_truncated_importance_sampling_weights_each_token_by_capped_ratio():
  cfg = GRPOConfig(kl_coef=0.0, loss_agg="token_mean", clip_low=None, clip_high=100.0,
                   tis_cap=1.5)
  logp, old, _, _, adv, mask = make_inputs(dataclasses.replace(cfg, tis_cap=None), seed=12)
  rng = np.random.default_rng(0)
  sampler_lp = (old - rng.normal(scale=0.5, size=old.shape)).astype(np.float32)
  m = mask.astype(bool)
  w = np.minimum(np.exp(old.astype(np.float64) - sampler_lp), 1.5)
  ratio = np.exp(logp.astype(np.float64) - old)
  terms = np.where(m, -w * ratio * adv[:, None], 0.0) / m.sum()
  want = terms.sum()
  fn = lambda lp: grpo.policy_loss(lp, old, None, adv, mask, cfg=cfg,
                                   sampler_logprobs=sampler_lp)
  (loss, metrics), grad = jax.value_and_grad(fn, has_aux=True)(jnp.asarray(logp))
  assert_close(loss, want, scale=np.abs(terms).sum())
  # The weight is a constant: the gradient is w * d(ratio * A), never through w.
  assert_close(grad, terms)
  raw = np.exp(old.astype(np.float64) - sampler_lp)[m]
  assert float(metrics["tis/mean"]) == pytest.approx(w[m].mean(), rel=1e-5)
  assert float(metrics["tis/max"]) == pytest.approx(raw.max(), rel=1e-5)
  assert float(metrics["tis/capped_frac"]) == pytest.approx((raw > 1.5).mean(), abs=1e-7)
  assert 0 < float(metrics["tis/capped_frac"]) < 1  # Both sides of the cap are exercised.
  with pytest.raises(ValueError, match="tis_cap = 1.5 needs sampler_logprobs"):
    grpo.policy_loss(jnp.asarray(logp), old, None, adv, mask, cfg=cfg)
  with pytest.raises(ValueError, match="needs old_logprobs='trainer'"):
    GRPOConfig(tis_cap=2.0, old_logprobs="sampler")


def test_presets_carry_the_papers_values():
  assert (grpo.grpo_deepseekmath().kl_coef, grpo.grpo_deepseekmath().num_samples) == (0.04, 64)
  r1 = grpo.r1_zero()
  assert (r1.kl_coef, r1.num_samples, r1.clip_low, r1.clip_high) == (0.001, 16, None, 10.0)
  assert grpo.dr_grpo().adv_scale == "none"
  assert grpo.dr_grpo().loss_agg == "seq_mean_token_sum_norm"
  d = grpo.dapo()
  assert (d.clip_low, d.clip_high, d.loss_agg, d.kl_coef) == (0.2, 0.28, "token_mean", 0.0)
  assert d.dynamic_sampling and d.mask_truncated and d.overlong_buffer == 4096
  g = grpo.gspo()
  assert (g.ratio_level, g.clip_low, g.clip_high) == ("sequence", 3e-4, 4e-4)
  for make in grpo.PRESETS.values():
    assert "arXiv:" in make.__doc__


def test_config_round_trips_through_json_and_overrides():
  for make in grpo.PRESETS.values():
    assert config.from_json(GRPOConfig, config.to_json(make())) == make()
  assert config.override(grpo.dapo(), "clip_low", "None").clip_low is None
  with pytest.raises(ValueError, match="accepted values: 'k1', 'k2', 'k3'"):
    config.override(grpo.dapo(), "kl_estimator", "k4")
