"""One GRPO step's policy update: U shuffled mini-batch optimizer steps over a rollout, mu times.

Place in the pipeline: step 5 of a GRPO step (r1jax/__init__.py), after the rollout's rewards and
advantages. What one step does, in the papers' terms:

  1. pi_old is fixed before the first optimizer step: the trainer's teacher-forced logprobs on
     the rollout's params (`grpo.old_logprobs="trainer"`, one extra forward pass) or the
     sampler's own (`"sampler"`, no pass; equal in float32). With a single optimizer step per
     rollout and the trainer's pi_old, the pass is skipped: that step computes the same
     logprobs itself, so every ratio is exactly 1 and no clip can bind.
  2. The reference model's logprobs, when the KL term is on.
  3. `grpo.num_iterations` (mu) passes; each shuffles the B rows with a key from the seed, the
     step and the pass (whole groups of R rows with `Config.share_prompts`), and cuts them
     into `updates_per_rollout` (U) mini-batches of B / U rows, one optimizer step each.
     Inside a step the rows are split into micro-batches of `minibatch_size` rows whose
     float32 gradients are summed (`train_step`). Each loss_agg
     normalises over its mini-batch: token_mean by the mini-batch's tokens, the per-sequence
     means by its sequences.

Every logprob (trainer, reference, KL, the sampler's) is of softmax(logits / T) at the
rollout's sampling temperature T. With LoRA (`Config.lora.rank` > 0) the updated tree is the
adapters, the frozen base comes along as `base`, and the reference is that base itself.

Names elsewhere: U is TRL's `steps_per_generation` and veRL's train_batch_size /
ppo_mini_batch_size; `minibatch_size` is TRL's per-device train batch and
veRL's ppo_micro_batch_size; mu is TRL's `num_iterations` and veRL's `ppo_epochs`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
import optax

from r1jax import sharding
from r1jax import train_step
from r1jax.models.config import ModelConfig
from r1jax.run_config import Config

__all__ = ["PolicyUpdater", "resolve_grpo", "training_temperature", "updates_per_step"]


def updates_per_step(cfg: Config) -> int:
  """Optimizer steps per training step (U x mu): what the learning-rate schedule counts."""
  return cfg.updates_per_rollout * cfg.grpo.num_iterations


def training_temperature(cfg: Config) -> float:
  """The temperature the trainer scores tokens at: the rollout's (greedy rollouts: 1)."""
  return cfg.sampling.temperature or 1.0


def resolve_grpo(cfg: Config):
  """cfg.grpo with the trainer's defaults filled in (Dr. GRPO's divisor = the budget)."""
  g = cfg.grpo
  if g.loss_agg == "seq_mean_token_sum_norm" and not g.token_sum_divisor:
    g = dataclasses.replace(g, token_sum_divisor=cfg.sampling.max_new_tokens)
  return g


class PolicyUpdater:
  """The compiled update of a run, and the host loop over its mini-batches (see module doc)."""

  def __init__(self, model_cfg: ModelConfig, cfg: Config, tx: optax.GradientTransformation,
               mesh: jax.sharding.Mesh):
    self._cfg = cfg
    self._mesh = mesh
    self._grpo = resolve_grpo(cfg)
    self.rows = cfg.prompts_per_step * cfg.grpo.num_samples
    self.num_updates = cfg.updates_per_rollout
    self.rows_per_update = self.rows // self.num_updates
    self._model_cfg, self._tx = model_cfg, tx
    self._t_new = cfg.sampling.max_new_tokens
    # Rows a shared prompt runs once for (Config.share_prompts): a group's R samples.
    self.group = cfg.grpo.num_samples if cfg.share_prompts else 1
    self._compiled = {}

  def compiled(self, t_new: int | None = None) -> tuple[Any, Any, Any]:
    """(update, policy logprobs, plain logprobs) jitted for t_new completion tokens (default:
    the whole budget, the largest a rollout may need); what the dry run compiles."""
    return self._fns(t_new or self._t_new)

  def _fns(self, t_new: int) -> tuple[Any, Any, Any]:
    """(update, policy logprobs, plain logprobs) for completions of t_new tokens, built once."""
    if t_new not in self._compiled:
      cfg = self._cfg
      micro = cfg.minibatch_size or self.rows_per_update
      temperature = training_temperature(cfg)
      lora = cfg.lora if cfg.lora.enabled else None
      update = train_step.make_grpo_update(
          self._model_cfg, self._grpo, self._tx, t_new=t_new,
          num_microbatches=self.rows_per_update // micro, temperature=temperature, lora=lora,
          group=self.group)
      # The policy's logprobs (merging adapters into the base with LoRA) and plain ones for a
      # full set of weights: the reference (with LoRA: the base itself).
      logprobs = train_step.make_logprobs(self._model_cfg, t_new, self.rows // micro,
                                          temperature, lora=lora, group=self.group)
      plain = logprobs if lora is None else train_step.make_logprobs(
          self._model_cfg, t_new, self.rows // micro, temperature, group=self.group)
      self._compiled[t_new] = (update, logprobs, plain)
    return self._compiled[t_new]

  def trimmed(self, host: train_step.Batch) -> train_step.Batch:
    """The rollout with its completion axis cut to the longest completion, rounded up.

    Positions past every row's completion carry no loss, no attention and no logprob, so the
    update's values are those of the whole budget; its cost follows the rollout's lengths.
    The length is one of `Config.update_length_buckets` fractions of the budget.
    """
    t_full = self._t_new
    t_prompt = host.tokens.shape[1] - t_full
    longest = int(np.asarray(host.attn_mask)[:, t_prompt:].sum(axis=1).max())
    quantum = -(-t_full // self._cfg.update_length_buckets)
    t = min(t_full, max(1, -(-longest // quantum)) * quantum)
    if t == t_full:
      return host
    per_token = lambda x: x if x is None or np.ndim(x) < 2 else x[:, :t]
    return train_step.Batch(
        host.tokens[:, :t_prompt + t], host.attn_mask[:, :t_prompt + t],
        per_token(host.loss_mask), per_token(host.advantages), per_token(host.old_logprobs),
        per_token(host.ref_logprobs), per_token(host.sampler_logprobs))

  def _place(self, host: train_step.Batch) -> train_step.Batch:
    return sharding.global_batch(
        host, sharding.batch_shardings(host, self._mesh, self._cfg.mesh.rules))

  def _teacher_forced(self, params, full: train_step.Batch, base: Any = None) -> np.ndarray:
    logprobs = self._fns(full.loss_mask.shape[1])[1]
    return sharding.to_host(logprobs(params, full.tokens, full.attn_mask, base))

  def _order(self, key: jax.Array, it: int) -> np.ndarray:
    if self.num_updates == 1:  # One mini-batch: its row order changes nothing but rounding.
      return np.arange(self.rows)
    r = self.group  # Shared prompts: whole groups move together, their rows in order.
    groups = np.asarray(jax.random.permutation(jax.random.fold_in(key, it), self.rows // r))
    return (groups[:, None] * r + np.arange(r)).reshape(-1)

  def _check_groups(self, host: train_step.Batch) -> None:
    """With shared prompts, each group's rows must carry the same prompt (tokens and mask)."""
    t_prompt = host.tokens.shape[1] - host.loss_mask.shape[1]
    for name, x in (("tokens", host.tokens), ("attn_mask", host.attn_mask)):
      part = np.asarray(x)[:, :t_prompt].reshape(-1, self.group, t_prompt)
      bad = np.flatnonzero(np.any(part != part[:, :1], axis=(1, 2)))
      if bad.size:
        raise ValueError(
            f"Config.share_prompts: the rows of group {bad[0]} (rows {bad[0] * self.group}.."
            f"{(bad[0] + 1) * self.group - 1}) differ in their prompt {name}; shared prompts "
            f"need each prompt's {self.group} samples as consecutive rows with one prompt")

  def __call__(self, params: Any, opt_state: Any, ref_params: Any, host: train_step.Batch, *,
               key: jax.Array, step: int, where: str,
               base: Any = None) -> tuple[Any, Any, dict[str, float]]:
    """Runs the U x mu optimizer steps of one rollout.

    Args:
      params, opt_state: the policy and its optimizer state (donated); with LoRA, the
        adapters and theirs.
      ref_params: the frozen reference (used when grpo.kl_coef > 0); with LoRA, pass `base`.
      host: the rollout as numpy arrays [B, ...] (old/ref logprobs are filled in here;
        `sampler_logprobs` holds the sampler's).
      key: the shuffling key of this step.
      step: the training step, for error messages.
      where: where the last good checkpoint lives, for error messages.
      base: with LoRA, the frozen weights the adapters are merged into (required then).

    Returns:
      (params, opt_state, metrics): the metrics of all optimizer steps combined (loss and
      pg_loss averaged over steps, extremes of extremes, token-weighted means), the update
      count, advantage statistics over the rollout and `logprob_gap/max`.
    """
    g = self._grpo
    host = self.trimmed(host)
    if self.group > 1:
      self._check_groups(host)
    update, _, plain_logprobs = self._fns(host.loss_mask.shape[1])
    if self._cfg.lora.enabled and base is None:
      raise ValueError("PolicyUpdater: Config.lora.rank > 0, so params are adapters and the "
                       "frozen base weights must be passed as base=")
    full = None
    if g.kl_coef > 0 or (self.num_updates > 1 and g.old_logprobs == "trainer"):
      full = self._place(host)
    ref = (sharding.to_host(plain_logprobs(ref_params, full.tokens, full.attn_mask))
           if g.kl_coef > 0 else host.ref_logprobs)
    if g.old_logprobs == "sampler":
      old = host.sampler_logprobs
    elif self.num_updates > 1:
      old = self._teacher_forced(params, full, base)
    else:
      old = None  # The single step computes it (on-policy); kept for the later passes.
    first = seen = None  # The first step's logprobs: still on the rollout's params.
    per_update = []
    for it in range(g.num_iterations):
      order = self._order(key, it)
      for u in range(self.num_updates):
        rows = order[u * self.rows_per_update:(u + 1) * self.rows_per_update]
        on_policy = old is None
        take = lambda x: None if x is None else x[rows]
        mb = train_step.Batch(
            take(host.tokens), take(host.attn_mask), take(host.loss_mask),
            take(host.advantages), take(host.old_logprobs if on_policy else old),
            take(ref), take(host.sampler_logprobs))
        params, opt_state, m, logp = update(params, opt_state, self._place(mb), on_policy, base)
        m = {k: float(v) for k, v in jax.device_get(m).items()}
        if not (np.isfinite(m["loss"]) and np.isfinite(m["grad_norm"])):
          raise FloatingPointError(
              f"non-finite loss ({m['loss']}) or gradient norm ({m['grad_norm']}) at step "
              f"{step}, pass {it + 1}, optimizer step {u + 1} of {self.num_updates}; the "
              f"last good checkpoint in {where} is kept")
        if first is None and (on_policy or g.old_logprobs == "sampler"):
          first, seen = np.zeros_like(host.loss_mask), rows
          first[rows] = sharding.to_host(logp)
          if on_policy:
            old = first
        per_update.append(m)
    # How far the sampler's logprobs are from the trainer's on the same params: all rows with
    # the trainer's pi_old, the first mini-batch's rows with the sampler's.
    trainer_old, seen = (old, slice(None)) if g.old_logprobs == "trainer" else (first, seen)
    gap = np.abs(trainer_old[seen] - host.sampler_logprobs[seen]) * host.loss_mask[seen]
    metrics = _combine(per_update, g.num_iterations)
    metrics["adv/mean"] = float(np.mean(host.advantages))
    metrics["adv/std"] = float(np.std(host.advantages))
    metrics["logprob_gap/max"] = float(gap.max())
    return params, opt_state, metrics


def _combine(per_update: list[dict[str, float]], num_iterations: int) -> dict[str, float]:
  """One step's metrics from its optimizer steps' (see `train_step.reduce_metrics`)."""
  norms = np.array([m.pop("grad_norm") for m in per_update])
  stacked = {k: np.array([m[k] for m in per_update]) for k in per_update[0]}
  out = {k: float(v) for k, v in train_step.reduce_metrics(stacked, xp=np).items()}
  n = len(per_update)
  out["loss"] /= n  # Each step's loss is its mini-batch's mean: average them.
  out["pg_loss"] /= n
  out["tokens"] /= num_iterations  # The rollout's tokens in the loss, once.
  out["grad_norm"] = float(norms.mean())
  out["grad_norm/max"] = float(norms.max())
  out["updates"] = float(n)
  return out
