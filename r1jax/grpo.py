"""The GRPO objective: token logprobs, group advantages, every published loss variant, metrics.

Place in the pipeline: the sampler yields completions and their logprobs, the rewards score
them on the host, then `advantages` turns a [P, R] reward matrix into per-completion
advantages and `policy_loss` (under `jax.value_and_grad`, inside the trainer's jitted step)
gives the loss whose gradient updates the policy. Everything is a pure float32 jnp function of
arrays plus a static `GRPOConfig` (see grpo_config.py for the fields and the papers' presets).

For completion i with advantage A_i and token t (mask m_it = 1 on completion tokens):
  ratio   r_it = exp(logp_it - old_it)                      ratio_level="token"
          r_it = exp(sum_t m_it (logp_it - old_it) / n_i)   ratio_level="sequence" (GSPO)
  pg_it   = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A), and with dual clip c, for A < 0,
            min(that, -c A)
  kl_it   = k1: logp - ref,  k2: (logp - ref)^2 / 2,  k3: exp(ref - logp) - (ref - logp) - 1
  loss_it = w_it * pg_it + kl_coef * kl_it - entropy_coef * entropy_it
where w_it = 1, or with truncated importance sampling (`tis_cap` = C, off by default)
w_it = min(exp(old_it - sampler_it), C): the correction for a sampler whose numerics differ
from the trainer's (bf16 decoding, another engine, stale weights), as in veRL's TIS.
`loss_agg` reduces loss_it to a scalar:
  token_mean               sum_it m loss / sum_it m                        (DAPO)
  seq_mean_token_mean      mean_i (sum_t m loss / n_i)                     (DeepSeekMath)
  seq_mean_token_sum_norm  mean_i (sum_t m loss / L)                       (Dr. GRPO)
where mean_i runs over the sequences with at least one unmasked token and L is the constant
`token_sum_divisor` (the response budget), never the array width, so trimming or padding the
completion axis leaves the loss unchanged.

Which batch the denominators count: one optimizer step's mini-batch. The trainer splits a
rollout into mini-batches (one optimizer step each) and each mini-batch into micro-batches
whose gradients are summed; it passes `normalizer=loss_normalizer(minibatch_mask, cfg=cfg)` to
every micro-batch's `policy_loss`, so the summed losses and gradients equal the mini-batch's
exactly (up to float rounding), as TRL's `dapo` loss (normalised by the tokens of the whole
optimizer step) and veRL's global token mean do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from r1jax.grpo_config import (PRESETS, GRPOConfig, dapo, dr_grpo, grpo_deepseekmath, gspo,
                               r1_zero)

__all__ = [
    "GRPOConfig", "PRESETS", "advantages", "dapo", "dr_grpo", "entropy", "filter_truncated",
    "group_metrics", "grpo_deepseekmath", "gspo", "loss_normalizer", "overlong_penalty",
    "policy_loss", "r1_zero", "token_entropy", "token_logprobs", "zero_variance_groups",
]

Array = jax.Array
_F32 = jnp.float32


def _tempered(logits: Array, temperature: float) -> Array:
  """float32 logits / temperature (temperature 0, greedy, leaves them as they are)."""
  logits = logits.astype(_F32)  # Softmax in float32 whatever the model's compute dtype.
  if temperature < 0:
    raise ValueError(f"temperature must be >= 0 (0 = greedy, scored untempered), got "
                     f"{temperature!r}")
  return logits if temperature in (0, 1) else logits / temperature


def token_logprobs(logits: Array, targets: Array, *, temperature: float = 1.0) -> Array:
  """log softmax(logits / temperature)[target]: [B,T,V] logits, [B,T] targets -> [B,T] f32.

  `temperature` is the rollout's sampling temperature, so the logprobs are those of the
  distribution the tokens were drawn from (before any top-k / top-p / min-p truncation,
  which `r1jax.sampling` documents); 0 (greedy) scores the untempered model.
  """
  logits = _tempered(logits, temperature)
  picked = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return picked - jax.nn.logsumexp(logits, axis=-1)


def token_entropy(logits: Array, *, temperature: float = 1.0) -> Array:
  """Entropy of softmax(logits / temperature) at every position: [B,T,V] -> [B,T] float32."""
  # -sum p log p over log-probabilities: logz - sum p * logits would cancel catastrophically
  # for peaked distributions (both terms ~ max logit, their difference ~ 0).
  logp = jax.nn.log_softmax(_tempered(logits, temperature), axis=-1)
  logp = jnp.where(jnp.isfinite(logp), logp, 0.0)  # Logits of -inf (banned tokens) add 0.
  return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def entropy(logits: Array, mask: Array) -> Array:
  """Mean next-token entropy over the positions where mask is set: [B,T,V], [B,T] -> scalar."""
  m = mask.astype(bool)
  total = jnp.sum(jnp.where(m, token_entropy(logits), 0.0))
  return total / jnp.maximum(jnp.sum(m), 1).astype(_F32)


def zero_variance_groups(rewards: Array) -> Array:
  """Groups whose R rewards are all equal (no learning signal; DAPO drops them): [P,R] -> bool [P].

  Compares max with min rather than testing std == 0, which float rounding can miss.
  """
  return jnp.max(rewards, axis=-1) == jnp.min(rewards, axis=-1)


def advantages(rewards: Array, *, cfg: GRPOConfig) -> Array:
  """Group-relative advantages of each completion: [P,R] rewards -> [P,R] float32.

  A = (r - baseline) / (scale + adv_eps), where baseline is the group mean (GRPO) or the mean of
  the other R - 1 rewards (RLOO), and scale is the group's std (GRPO), the whole batch's std
  (Lite PPO), or 1 (Dr. GRPO). Stds are unbiased (ddof=1), as torch.std in TRL and verl. A group
  whose rewards are all equal gets exactly zero advantage.
  """
  r = jnp.asarray(rewards, _F32)
  if r.ndim != 2 or r.shape[1] != cfg.num_samples:
    raise ValueError(f"advantages expects rewards of shape [P, R={cfg.num_samples}] "
                     f"(R = GRPOConfig.num_samples), got shape {tuple(r.shape)}")
  num = r.shape[1]
  if cfg.adv_baseline == "group_mean":
    baseline = jnp.mean(r, axis=-1, keepdims=True)
  else:  # rloo
    baseline = (jnp.sum(r, axis=-1, keepdims=True) - r) / (num - 1)
  centered = r - baseline
  if cfg.adv_scale == "group_std":
    adv = centered / (jnp.std(r, axis=-1, keepdims=True, ddof=1) + cfg.adv_eps)
  elif cfg.adv_scale == "batch_std":
    adv = centered / (jnp.std(r, ddof=1) + cfg.adv_eps)
  else:  # none
    adv = centered
  # Rounding in the mean can leave ~1e-8 residues that the std division would amplify.
  return jnp.where(zero_variance_groups(r)[:, None], 0.0, adv)


def group_metrics(rewards: Array) -> dict[str, Array]:
  """Reward statistics of a rollout batch: [P,R] -> flat dict of float32 scalars."""
  r = jax.lax.stop_gradient(jnp.asarray(rewards, _F32))
  return {
      "reward/mean": jnp.mean(r),
      "reward/std": jnp.std(r),
      "groups/zero_var_frac": jnp.mean(zero_variance_groups(r).astype(_F32)),
  }


def overlong_penalty(lengths: Array, max_len: int, buffer: int, penalty: float = 1.0) -> Array:
  """DAPO's soft overlong punishment, a reward term added to each completion: [B] -> [B] f32.

  0 up to max_len - buffer tokens, then falling linearly to -penalty at max_len, and -penalty
  beyond (Yu et al. 2025, Sec. 3.4, with L_max = max_len and L_cache = buffer).
  """
  if not (isinstance(buffer, int) and 0 < buffer <= max_len):
    raise ValueError(f"overlong_penalty needs 0 < buffer <= max_len ({max_len}), got {buffer!r}")
  length = jnp.asarray(lengths, _F32)
  start = max_len - buffer
  ramp = (start - length) / buffer * penalty
  return jnp.where(length <= start, 0.0, jnp.where(length <= max_len, ramp, -penalty))


def filter_truncated(mask: Array, truncated: Array, *, cfg: GRPOConfig) -> Array:
  """DAPO overlong filtering: zero the mask rows of truncated completions if cfg.mask_truncated.

  mask [B,T]; truncated [B] bool, true where a completion hit the token budget without EOS.
  """
  if not cfg.mask_truncated:
    return mask
  return jnp.where(jnp.asarray(truncated, bool)[:, None], jnp.zeros_like(mask), mask)


def loss_normalizer(mask: Array, *, cfg: GRPOConfig) -> Array:
  """The denominator of cfg.loss_agg for this mask: unmasked tokens (token_mean) or sequences.

  Compute it once on the full rollout batch's mask and pass it to every minibatch's
  `policy_loss` so accumulated gradients equal the full batch's.
  """
  m = mask.astype(bool)
  if cfg.loss_agg == "token_mean":
    count = jnp.sum(m)
  else:  # Sequences with no unmasked token (filtered, padding rows) do not count.
    count = jnp.sum(jnp.any(m, axis=-1))
  return jnp.maximum(count, 1).astype(_F32)


def _masked_mean(x: Array, m: Array) -> Array:
  return jnp.sum(jnp.where(m, x, 0.0)) / jnp.maximum(jnp.sum(m), 1).astype(_F32)


def policy_loss(logprobs: Array, old_logprobs: Array | None, ref_logprobs: Array | None,
                advantages: Array, mask: Array, *, cfg: GRPOConfig,
                entropies: Array | None = None,
                normalizer: Array | float | None = None,
                sampler_logprobs: Array | None = None) -> tuple[Array, dict[str, Array]]:
  """The GRPO loss (to minimise) of one batch, and its metrics. See the module docstring.

  Args:
    logprobs: [B,T] logprobs of the sampled tokens under the policy being trained.
    old_logprobs: [B,T] logprobs under the policy that sampled them; None means on-policy
      (the stop-gradient of `logprobs`, so every ratio is 1).
    ref_logprobs: [B,T] logprobs under the reference policy; may be None when cfg.kl_coef == 0
      (if given then, KL is only reported).
    advantages: [B] one advantage per completion (rows of `advantages(...)` flattened, B = P*R).
    mask: [B,T] 1 (or True) on the completion tokens that enter the loss.
    cfg: the objective.
    entropies: [B,T] per-token entropies (`token_entropy(logits)`); required when
      cfg.entropy_coef > 0. Without it the `entropy` metric is the sampled-token estimate
      mean(-logprobs).
    normalizer: the denominator from `loss_normalizer(minibatch_mask, cfg=cfg)` when this
      batch is one of several micro-batches whose gradients are summed; None uses this batch's.
    sampler_logprobs: [B,T] logprobs the sampler reported for the same tokens; required when
      cfg.tis_cap is set (the truncated importance-sampling weight old / sampler).

  Returns:
    (loss, metrics). Values at masked positions never reach the loss and get exactly zero
    gradient, even if they are inf or nan. `loss` and `metrics['pg_loss']` are this batch's
    share of the full loss when `normalizer` is given (they add up over minibatches); the other
    metrics are statistics of this batch's unmasked tokens (average them). All metrics are
    stop-gradient float32 scalars.
  """
  m = mask.astype(bool)
  if logprobs.ndim != 2 or m.shape != logprobs.shape or advantages.shape != logprobs.shape[:1]:
    raise ValueError(f"policy_loss expects logprobs and mask of shape [B, T] and advantages of "
                     f"shape [B]; got {logprobs.shape}, {mask.shape}, {advantages.shape}")
  if cfg.kl_coef > 0 and ref_logprobs is None:
    raise ValueError(f"GRPOConfig.kl_coef = {cfg.kl_coef} needs ref_logprobs; pass them or set "
                     "kl_coef = 0")
  if cfg.tis_cap is not None and sampler_logprobs is None:
    raise ValueError(f"GRPOConfig.tis_cap = {cfg.tis_cap} needs sampler_logprobs (the "
                     "sampler's logprobs of the same tokens); pass them or set tis_cap = None")
  if cfg.loss_agg == "seq_mean_token_sum_norm" and not cfg.token_sum_divisor:
    raise ValueError("loss_agg 'seq_mean_token_sum_norm' (Dr. GRPO) divides each token sum by "
                     "GRPOConfig.token_sum_divisor, which is 0; set it to the response budget "
                     "(the trainer sets it to sampling.max_new_tokens)")
  if cfg.entropy_coef > 0 and entropies is None:
    raise ValueError(f"GRPOConfig.entropy_coef = {cfg.entropy_coef} needs entropies "
                     "(token_entropy(logits)); pass them or set entropy_coef = 0")
  # Sanitise masked positions first: where() alone would still send nan gradients through
  # exp(inf) at positions it discards.
  logp = jnp.where(m, logprobs.astype(_F32), 0.0)
  old = (jax.lax.stop_gradient(logp) if old_logprobs is None
         else jnp.where(m, old_logprobs.astype(_F32), 0.0))
  adv = advantages.astype(_F32)[:, None]
  num_tokens = jnp.sum(m, axis=-1).astype(_F32)  # n_i
  log_ratio = logp - old
  if cfg.ratio_level == "sequence":
    seq_log_ratio = jnp.sum(log_ratio, axis=-1) / jnp.maximum(num_tokens, 1.0)
    ratio = jnp.broadcast_to(jnp.exp(seq_log_ratio)[:, None], logp.shape)
  else:
    ratio = jnp.exp(log_ratio)

  high = 1.0 + cfg.clip_high
  if cfg.clip_low is None:
    low = None
    clipped = jnp.minimum(ratio, high)
  else:
    low = 1.0 - cfg.clip_low
    clipped = jnp.clip(ratio, low, high)
  objective = jnp.minimum(ratio * adv, clipped * adv)
  if cfg.dual_clip is not None:  # Bounds the loss of a negative advantage as the ratio grows.
    objective = jnp.where(adv < 0, jnp.maximum(objective, cfg.dual_clip * adv), objective)
  pg = -objective
  tis = None
  if cfg.tis_cap is not None:  # A constant weight per token: no gradient flows through it.
    behaviour = jnp.where(m, sampler_logprobs.astype(_F32), 0.0)
    tis = jax.lax.stop_gradient(jnp.exp(old - behaviour))
    pg = pg * jnp.minimum(tis, cfg.tis_cap)
  token_loss = pg

  kl = None
  if ref_logprobs is not None:
    ref = jnp.where(m, ref_logprobs.astype(_F32), 0.0)
    log_ref_ratio = ref - logp  # log(pi_ref / pi)
    if cfg.kl_estimator == "k1":  # Unbiased value, but its per-token gradient is always 1.
      kl = -log_ref_ratio
    elif cfg.kl_estimator == "k2":
      kl = 0.5 * jnp.square(log_ref_ratio)
    else:  # k3: unbiased and always >= 0 (Schulman 2020), DeepSeekMath's choice.
      kl = jnp.exp(log_ref_ratio) - log_ref_ratio - 1.0
    if cfg.kl_coef > 0:
      token_loss = token_loss + cfg.kl_coef * kl
  if entropies is not None:
    ent = jnp.where(m, entropies.astype(_F32), 0.0)
    if cfg.entropy_coef > 0:
      token_loss = token_loss - cfg.entropy_coef * ent
  else:
    ent = -logp

  denom = loss_normalizer(m, cfg=cfg) if normalizer is None else jnp.asarray(normalizer, _F32)

  def aggregate(x):
    x = jnp.where(m, x, 0.0)
    if cfg.loss_agg == "token_mean":
      return jnp.sum(x) / denom
    if cfg.loss_agg == "seq_mean_token_mean":
      per_seq = jnp.sum(x, axis=-1) / jnp.maximum(num_tokens, 1.0)
    else:  # seq_mean_token_sum_norm: a constant divisor removes the length bias.
      per_seq = jnp.sum(x, axis=-1) / float(cfg.token_sum_divisor)
    return jnp.sum(per_seq) / denom

  loss = aggregate(token_loss)
  fm = m.astype(_F32)
  any_token = jnp.any(m)
  low_clipped = (adv < 0) & (ratio < low) if low is not None else jnp.zeros_like(m)
  dual_clipped = ((adv < 0) & (ratio > cfg.dual_clip) if cfg.dual_clip is not None
                  else jnp.zeros_like(m))
  metrics = {
      "loss": loss,
      "pg_loss": aggregate(pg),
      "kl": _masked_mean(kl, m) if kl is not None else jnp.zeros((), _F32),
      "entropy": _masked_mean(ent, m),
      "ratio/mean": _masked_mean(ratio, m),
      "ratio/min": jnp.where(any_token, jnp.min(jnp.where(m, ratio, jnp.inf)), 1.0),
      "ratio/max": jnp.where(any_token, jnp.max(jnp.where(m, ratio, -jnp.inf)), 1.0),
      # A clip "binds" where it zeroes the token's policy gradient.
      "clip/low_frac": _masked_mean(low_clipped.astype(_F32), m),
      "clip/high_frac": _masked_mean(((adv > 0) & (ratio > high)).astype(_F32), m),
      "clip/dual_frac": _masked_mean(dual_clipped.astype(_F32), m),
      "adv/mean": jnp.mean(adv),
      "adv/std": jnp.std(adv),
      "tokens": jnp.sum(fm),
  }
  if tis is not None:
    metrics["tis/mean"] = _masked_mean(jnp.minimum(tis, cfg.tis_cap), m)
    metrics["tis/max"] = jnp.where(any_token, jnp.max(jnp.where(m, tis, -jnp.inf)), 1.0)
    metrics["tis/capped_frac"] = _masked_mean((tis > cfg.tis_cap).astype(_F32), m)
  metrics = {k: jax.lax.stop_gradient(v).astype(_F32) for k, v in metrics.items()}
  return loss, metrics
