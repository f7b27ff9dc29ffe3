"""The jit-compiled parts of training: optimizer, teacher-forced logprobs, GRPO and SFT updates.

Place in the pipeline: steps 4-5 of a GRPO step (DESIGN.md). `train.py` gathers a rollout
batch on the host and hands it here as static-shape arrays:

  tokens      int32 [B, Tp + Tn]  left-padded prompt, then the completion (Tp = prompt bucket)
  attn_mask   bool  [B, Tp + Tn]  True on real prompt tokens and on generated tokens
  loss_mask   f32   [B, Tn]       1 on the completion tokens that enter the loss
  advantages  f32   [B]
  old_logprobs, ref_logprobs  f32 [B, Tn]

An update is one optimizer step whose gradient is summed over `num_minibatches` minibatches
(lax.scan, so memory holds one minibatch's activations), each normalised by the full batch's
denominator (`grpo.loss_normalizer`), so the update equals the whole-batch update exactly.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from r1jax import grpo
from r1jax.grpo_config import GRPOConfig
from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.run_config import OptimConfig

__all__ = ["Batch", "make_optimizer", "completion_logprobs", "make_grpo_update",
           "make_ref_logprobs", "make_sft_grad", "make_apply_update"]

# Metrics that are a minibatch's share of a whole-batch sum (add them); the rest are averaged.
_SUMMED = ("loss", "pg_loss", "tokens")


class Batch(NamedTuple):
  tokens: jax.Array
  attn_mask: jax.Array
  loss_mask: jax.Array
  advantages: jax.Array
  old_logprobs: jax.Array
  ref_logprobs: jax.Array


def make_optimizer(cfg: OptimConfig, total_updates: int) -> tuple[optax.GradientTransformation,
                                                                  optax.Schedule]:
  """AdamW behind global-norm clipping, with linear warmup then constant/cosine/linear decay."""
  decay = cfg.decay_steps or max(total_updates - cfg.warmup_steps, 1)
  end = cfg.lr * cfg.min_lr_ratio
  if cfg.schedule == "cosine":
    after = optax.cosine_decay_schedule(cfg.lr, decay, alpha=cfg.min_lr_ratio)
  elif cfg.schedule == "linear":
    after = optax.linear_schedule(cfg.lr, end, decay)
  else:
    after = optax.constant_schedule(cfg.lr)
  if cfg.warmup_steps:
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps), after], [cfg.warmup_steps])
  else:
    schedule = after
  parts = [optax.clip_by_global_norm(cfg.max_grad_norm)] if cfg.max_grad_norm else []
  parts.append(optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                           weight_decay=cfg.weight_decay))
  return optax.chain(*parts), schedule


def completion_logits(params, tokens: jax.Array, attn_mask: jax.Array, *, cfg: ModelConfig,
                      t_new: int) -> jax.Array:
  """Teacher-forced logits [B, Tn, V] that predict the last Tn tokens of tokens [B, T]."""
  logits, _ = transformer.forward(params, tokens[:, :-1], cfg=cfg,
                                  attention_mask=attn_mask[:, :-1], logits_last=t_new)
  return logits


def completion_logprobs(params, tokens: jax.Array, attn_mask: jax.Array, *, cfg: ModelConfig,
                        t_new: int) -> jax.Array:
  """Teacher-forced logprobs [B, Tn] of the last Tn tokens (the completion)."""
  logits = completion_logits(params, tokens, attn_mask, cfg=cfg, t_new=t_new)
  return grpo.token_logprobs(logits, tokens[:, -t_new:])


def _split(x: jax.Array, num: int) -> jax.Array:
  return x.reshape(num, x.shape[0] // num, *x.shape[1:])


def make_ref_logprobs(model_cfg: ModelConfig, t_new: int, num_minibatches: int) -> Callable:
  """jit(ref_params, tokens, attn_mask) -> ref logprobs [B, Tn], one minibatch at a time."""
  @jax.jit
  def ref_logprobs(ref_params, tokens, attn_mask):
    def one(_, mb):
      return None, completion_logprobs(ref_params, *mb, cfg=model_cfg, t_new=t_new)
    _, out = jax.lax.scan(one, None, (_split(tokens, num_minibatches),
                                      _split(attn_mask, num_minibatches)))
    return out.reshape(tokens.shape[0], t_new)
  return ref_logprobs


def make_grpo_update(model_cfg: ModelConfig, grpo_cfg: GRPOConfig,
                     tx: optax.GradientTransformation, *, t_new: int,
                     num_minibatches: int) -> Callable:
  """Builds jit(params, opt_state, batch, on_policy) -> (params, opt_state, metrics, logprobs).

  `on_policy` (static) means the batch was sampled from these very params (the first of
  `num_iterations` passes): the old logprobs are then the stop-gradient of the current ones,
  which saves a forward pass. The returned logprobs [B, Tn] are the current policy's, to be
  the old logprobs of later passes.
  """
  use_ref = grpo_cfg.kl_coef > 0

  def loss_fn(params, mb: Batch, normalizer, on_policy):
    logits = completion_logits(params, mb.tokens, mb.attn_mask, cfg=model_cfg, t_new=t_new)
    logp = grpo.token_logprobs(logits, mb.tokens[:, -t_new:])
    ent = grpo.token_entropy(logits)
    loss, metrics = grpo.policy_loss(
        logp, None if on_policy else mb.old_logprobs, mb.ref_logprobs if use_ref else None,
        mb.advantages, mb.loss_mask, cfg=grpo_cfg, entropies=ent, normalizer=normalizer)
    return loss, (metrics, logp)

  @functools.partial(jax.jit, static_argnums=(3,), donate_argnums=(0, 1))
  def update(params, opt_state, batch: Batch, on_policy: bool):
    normalizer = grpo.loss_normalizer(batch.loss_mask, cfg=grpo_cfg)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def one(acc, mb):
      (_, (metrics, logp)), grads = grad_fn(params, mb, normalizer, on_policy)
      return jax.tree.map(jnp.add, acc, grads), (metrics, logp)

    zeros = jax.tree.map(jnp.zeros_like, params)
    grads, (metrics, logps) = jax.lax.scan(
        one, zeros, jax.tree.map(lambda x: _split(x, num_minibatches), batch))
    metrics = {k: jnp.sum(v) if k in _SUMMED else jnp.mean(v) for k, v in metrics.items()}
    metrics["grad_norm"] = optax.tree.norm(grads)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, metrics, logps.reshape(batch.tokens.shape[0], t_new)

  return update


def make_sft_grad(model_cfg: ModelConfig) -> Callable:
  """jit(params, tokens [B,T], attn_mask [B,T], loss_mask [B,T]) -> (loss sum, tokens, grads).

  Next-token cross-entropy summed over the positions where loss_mask is 1 (position t's mask
  says whether token t is learned), with the gradient of that sum: sub-batches of different
  lengths (e.g. split by style, so short rows are not padded to long ones) add up exactly.
  """
  def loss_sum(params, tokens, attn_mask, loss_mask):
    logits, _ = transformer.forward(params, tokens[:, :-1], cfg=model_cfg,
                                    attention_mask=attn_mask[:, :-1])
    logp = grpo.token_logprobs(logits, tokens[:, 1:])
    m = loss_mask[:, 1:].astype(jnp.float32)
    return -jnp.sum(logp * m), jnp.sum(m)

  @jax.jit
  def grad(params, tokens, attn_mask, loss_mask):
    (loss, count), grads = jax.value_and_grad(loss_sum, has_aux=True)(
        params, tokens, attn_mask, loss_mask)
    return loss, count, grads

  return grad


def make_apply_update(tx: optax.GradientTransformation) -> Callable:
  """jit(params, opt_state, grads, scale) -> (params, opt_state, grad_norm) for grads * scale."""
  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def apply(params, opt_state, grads, scale):
    grads = jax.tree.map(lambda g: g * scale, grads)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, optax.tree.norm(grads)

  return apply
