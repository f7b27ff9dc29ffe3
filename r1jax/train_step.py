"""The jit-compiled parts of training: optimizer, teacher-forced logprobs, GRPO and SFT updates.

Place in the pipeline: step 5 of a GRPO step (r1jax/__init__.py). `r1jax.policy_update` splits a
rollout into mini-batches and hands each one here as static-shape arrays:

  tokens      int32 [B, Tp + Tn]  left-padded prompt, then the completion (Tp = prompt bucket)
  attn_mask   bool  [B, Tp + Tn]  True on real prompt tokens and on generated tokens
  loss_mask   f32   [B, Tn]       1 on the completion tokens that enter the loss
  advantages  f32   [B]
  old_logprobs, ref_logprobs, sampler_logprobs  f32 [B, Tn]

`make_grpo_update` builds one optimizer step over such a mini-batch: its gradient is summed in
float32 over `num_microbatches` micro-batches (lax.scan, so memory holds one micro-batch's
activations), each normalised by the whole mini-batch's denominator (`grpo.loss_normalizer`),
so the step equals the one over the whole mini-batch at once. Every logprob is of the tempered
distribution softmax(logits / T) that the rollout sampled from.

With LoRA (`lora` given) the learned tree is the adapters and the frozen base rides along as
an extra argument: the model runs on `lora.merge(base, adapters)`, built inside the loss of
each micro-batch, so gradients (and the optimizer) see the adapters only.
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from r1jax import grpo
from r1jax import lora as lora_lib
from r1jax.grpo_config import GRPOConfig
from r1jax.models import shared_prompt
from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.run_config import OptimConfig

__all__ = ["Batch", "make_optimizer", "completion_logprobs", "completion_token_stats",
           "make_grpo_grads",
           "make_grpo_update", "make_logprobs", "make_sft_grad", "make_apply_update",
           "reduce_metrics"]

# How per-micro-batch metrics combine into one optimizer step's: shares of the step's sum
# (added), extremes (min of minima, max of maxima); every other metric is a per-token mean,
# weighted by the micro-batch's token count. `adv/*` are per-row statistics that only the
# whole rollout can give (the caller computes them there), so they are left out.
_SUMMED = ("loss", "pg_loss", "tokens")
_MINIMA = ("ratio/min",)
_MAXIMA = ("ratio/max", "tis/max")
_ROW_STATS = ("adv/mean", "adv/std")


class Batch(NamedTuple):
  tokens: jax.Array
  attn_mask: jax.Array
  loss_mask: jax.Array
  advantages: jax.Array
  old_logprobs: jax.Array
  ref_logprobs: jax.Array
  sampler_logprobs: jax.Array | None = None


def reduce_metrics(stacked: Mapping[str, jax.Array | np.ndarray],
                   xp=jnp) -> dict[str, jax.Array | np.ndarray]:
  """Combines metrics stacked over n parts ({name: [n]}) into one value per name.

  Sums for the summed keys, the min of minima and max of maxima over parts that hold tokens,
  token-weighted means for the rest (`stacked['tokens']` are the weights). `xp` is jnp inside
  jit and np on the host, where the same rules combine optimizer steps.
  """
  w = xp.asarray(stacked["tokens"], xp.float32)
  total = xp.sum(w)
  has = w > 0
  out = {}
  for k, v in stacked.items():
    if k in _ROW_STATS:
      continue
    v = xp.asarray(v, xp.float32)
    if k in _SUMMED:
      out[k] = xp.sum(v)
    elif k in _MINIMA:
      out[k] = xp.where(total > 0, xp.min(xp.where(has, v, xp.inf)), 1.0)
    elif k in _MAXIMA:
      out[k] = xp.where(total > 0, xp.max(xp.where(has, v, -xp.inf)), 1.0)
    else:
      out[k] = xp.where(total > 0, xp.sum(v * w) / xp.maximum(total, 1.0), xp.mean(v))
  return out


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
  """Teacher-forced logits [B, Tn, V] that predict the last Tn tokens of tokens [B, T].

  The model sees all T tokens (a round length, where T - 1 would be odd) and the logits at
  positions T - Tn - 1 .. T - 2 are kept: each predicts the next token.
  """
  logits, _ = transformer.forward(params, tokens, cfg=cfg, attention_mask=attn_mask,
                                  logits_last=t_new + 1)
  return logits[:, :-1]


def completion_token_stats(params, tokens: jax.Array, attn_mask: jax.Array, *,
                           cfg: ModelConfig, t_new: int, temperature: float = 1.0,
                           with_entropy: bool = False, entropy_grad: bool = True,
                           group: int = 1) -> tuple[jax.Array, jax.Array | None]:
  """Teacher-forced logprobs [B, Tn] of the completion and, if asked, entropies [B, Tn].

  With `group` = R > 1, rows g R .. g R + R - 1 share their prompt and it runs once for them
  (r1jax/models/shared_prompt.py); the values equal group 1's up to float rounding.

  With `cfg.logits_chunk` = C > 0 the vocabulary head runs over chunks of C completion
  positions in a `lax.scan` whose body is under `jax.checkpoint`: the forward pass keeps only
  [B, C, V] logits at a time and the backward pass recomputes each chunk's, so the [B, Tn, V]
  logits, log-softmax and their cotangent (3 x 7.5 GB at 4 x 3,072 x 152k) never exist whole.
  The values equal the unchunked path's (the same ops on the same rows). `entropy_grad=False`
  computes the entropies for a metric only (no gradient flows through them).
  """
  chunk = cfg.logits_chunk
  if group > 1:
    x = shared_prompt.completion_hidden(params, tokens, attn_mask, cfg=cfg, t_new=t_new,
                                        group=group)
  elif chunk:
    x, _ = transformer.forward(params, tokens, cfg=cfg, attention_mask=attn_mask,
                               logits_last=t_new + 1, hidden_only=True)
    x = x[:, :-1]  # [B, Tn, D]: the positions that predict the completion (all T fed).
  if not chunk:
    logits = (transformer.head_logits(params, x, cfg=cfg) if group > 1 else
              completion_logits(params, tokens, attn_mask, cfg=cfg, t_new=t_new))
    logp = grpo.token_logprobs(logits, tokens[:, -t_new:], temperature=temperature)
    ent = None
    if with_entropy:
      ent = grpo.token_entropy(logits, temperature=temperature)
      ent = ent if entropy_grad else jax.lax.stop_gradient(ent)
    return logp, ent

  targets = tokens[:, -t_new:]
  b, _, d = x.shape
  c = min(chunk, t_new)
  n = -(-t_new // c)
  pad = n * c - t_new  # Padded positions are computed and dropped.
  x = jnp.pad(x, ((0, 0), (0, pad), (0, 0)))
  targets = jnp.pad(targets, ((0, 0), (0, pad)))
  # [n, B, C, ...]: the scan runs over chunks; each keeps the rows' batch sharding.
  xs = nn.with_logical_constraint(x.reshape(b, n, c, d).swapaxes(0, 1),
                                  (None,) + transformer.ACT_AXES)
  ts = targets.reshape(b, n, c).swapaxes(0, 1)
  head = ({"model": {"embed_tokens": params["model"]["embed_tokens"]}} if cfg.tie_embeddings
          else {"lm_head": params["lm_head"]})

  @jax.checkpoint
  def stats(head, xc, tc):
    logits = transformer.head_logits(head, xc, cfg=cfg)  # [B, C, V] float32
    logp = grpo.token_logprobs(logits, tc, temperature=temperature)
    if not with_entropy:
      return logp, None
    ent = grpo.token_entropy(logits, temperature=temperature)
    return logp, ent if entropy_grad else jax.lax.stop_gradient(ent)

  _, (logp, ent) = jax.lax.scan(lambda _, a: (None, stats(head, *a)), None, (xs, ts))
  unchunk = lambda y: y.swapaxes(0, 1).reshape(b, n * c)[:, :t_new]
  return unchunk(logp), None if ent is None else unchunk(ent)


def completion_logprobs(params, tokens: jax.Array, attn_mask: jax.Array, *, cfg: ModelConfig,
                        t_new: int, temperature: float = 1.0, group: int = 1) -> jax.Array:
  """Teacher-forced logprobs [B, Tn] of the last Tn tokens (the completion) at a temperature
  (`group`: see `completion_token_stats`)."""
  logp, _ = completion_token_stats(params, tokens, attn_mask, cfg=cfg, t_new=t_new,
                                   temperature=temperature, group=group)
  return logp


def _split(x: jax.Array, num: int) -> jax.Array:
  """[B, ...] -> [num, B / num, ...] micro-batches, each split over the batch devices.

  Without the constraint XLA may shard the new leading axis instead, so that a scan step's
  micro-batch lives whole on a few devices: the Dr. GRPO 7B recipe's step (4 micro-batches of
  32 rows, 8 devices) compiled to 94 GiB a device, and to 55 GiB with it.
  """
  x = x.reshape(num, x.shape[0] // num, *x.shape[1:])
  return nn.with_logical_constraint(x, (None, "act_batch") + (None,) * (x.ndim - 2))


def _effective(lora: lora_lib.LoRAConfig | None) -> Callable:
  """(learned, frozen) -> the params the model runs on: the learned tree, or base + adapters."""
  if lora is None or not lora.enabled:
    return lambda learned, frozen: learned
  return lambda adapters, base: lora_lib.merge(base, adapters, lora)


def make_logprobs(model_cfg: ModelConfig, t_new: int, num_microbatches: int,
                  temperature: float = 1.0, lora: lora_lib.LoRAConfig | None = None,
                  group: int = 1) -> Callable:
  """jit(params, tokens, attn_mask, frozen=None) -> logprobs [B, Tn], a micro-batch at a time.

  The reference model's logprobs, and pi_old on the rollout's params before its first step.
  With `lora`, `params` are the adapters and `frozen` the base they are merged into. With
  `group` = R > 1 each micro-batch is whole groups of R rows sharing a prompt, run once.
  """
  effective = _effective(lora)

  @jax.jit
  def logprobs(params, tokens, attn_mask, frozen=None):
    params = effective(params, frozen)

    def one(_, mb):
      return None, completion_logprobs(params, *mb, cfg=model_cfg, t_new=t_new,
                                       temperature=temperature, group=group)
    _, out = jax.lax.scan(one, None, (_split(tokens, num_microbatches),
                                      _split(attn_mask, num_microbatches)))
    return out.reshape(tokens.shape[0], t_new)
  return logprobs


def _grads_fn(model_cfg: ModelConfig, grpo_cfg: GRPOConfig, *, t_new: int,
              num_microbatches: int, temperature: float,
              lora: lora_lib.LoRAConfig | None = None, group: int = 1) -> Callable:
  """(params, batch, on_policy, frozen) -> (float32 grads, metrics, logprobs [B, Tn]).

  Traceable. With `lora`, `params` are the adapters (the gradient's tree) and `frozen` the
  base; the merge happens per micro-batch, so only the adapters' gradient is accumulated.
  """
  use_ref = grpo_cfg.kl_coef > 0
  effective = _effective(lora)

  def loss_fn(learned, frozen, mb: Batch, normalizer, on_policy):
    params = effective(learned, frozen)
    # Entropies always feed the `entropy` metric; they carry a gradient only when the loss
    # has an entropy term.
    logp, ent = completion_token_stats(
        params, mb.tokens, mb.attn_mask, cfg=model_cfg, t_new=t_new, temperature=temperature,
        with_entropy=True, entropy_grad=grpo_cfg.entropy_coef > 0, group=group)
    loss, metrics = grpo.policy_loss(
        logp, None if on_policy else mb.old_logprobs, mb.ref_logprobs if use_ref else None,
        mb.advantages, mb.loss_mask, cfg=grpo_cfg, entropies=ent, normalizer=normalizer,
        sampler_logprobs=mb.sampler_logprobs)
    return loss, (metrics, logp)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def grads(params, batch: Batch, on_policy: bool, frozen=None):
    normalizer = grpo.loss_normalizer(batch.loss_mask, cfg=grpo_cfg)

    def one(acc, mb):
      (_, (metrics, logp)), g = grad_fn(params, frozen, mb, normalizer, on_policy)
      # Summed in float32 whatever the param dtype: 16-32 bf16 additions would lose the
      # low bits of every micro-batch's share.
      return jax.tree.map(lambda a, x: a + x.astype(jnp.float32), acc, g), (metrics, logp)

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    total, (metrics, logps) = jax.lax.scan(
        one, zeros, jax.tree.map(lambda x: _split(x, num_microbatches), batch))
    return total, reduce_metrics(metrics), logps.reshape(batch.tokens.shape[0], t_new)

  return grads


def make_grpo_grads(model_cfg: ModelConfig, grpo_cfg: GRPOConfig, *, t_new: int,
                    num_microbatches: int, temperature: float = 1.0,
                    lora: lora_lib.LoRAConfig | None = None, group: int = 1) -> Callable:
  """jit(params, batch, on_policy, frozen=None) -> (float32 grads, metrics, logprobs [B, Tn]).

  The gradient of one optimizer step's loss, accumulated over micro-batches; see
  `make_grpo_update` for `on_policy`, `lora`, `frozen` and `group`.
  """
  fn = _grads_fn(model_cfg, grpo_cfg, t_new=t_new, num_microbatches=num_microbatches,
                 temperature=temperature, lora=lora, group=group)
  return jax.jit(fn, static_argnums=(2,))


def make_grpo_update(model_cfg: ModelConfig, grpo_cfg: GRPOConfig,
                     tx: optax.GradientTransformation, *, t_new: int, num_microbatches: int,
                     temperature: float = 1.0,
                     lora: lora_lib.LoRAConfig | None = None, group: int = 1) -> Callable:
  """Builds jit(params, opt_state, batch, on_policy, frozen=None) -> (params, opt_state,
  metrics, logprobs).

  One optimizer step over `batch` (a mini-batch). `on_policy` (static) means the batch was
  sampled from these very params and this is the rollout's only step before pi_old is known
  (one update per rollout): the old logprobs are then the stop-gradient of the current ones,
  which saves a forward pass. The returned logprobs [B, Tn] are the current policy's (before
  the step), to be pi_old of later passes. `temperature` is the rollout's sampling temperature.
  With `lora`, `params` and `opt_state` are the adapters' and `frozen` is the base (read, not
  donated, not updated). With `group` = R > 1 every micro-batch is whole groups of R rows that
  share their prompt (rows g R .. g R + R - 1), and each prompt runs once for its group
  (r1jax/models/shared_prompt.py).
  """
  grads_fn = _grads_fn(model_cfg, grpo_cfg, t_new=t_new, num_microbatches=num_microbatches,
                       temperature=temperature, lora=lora, group=group)

  @functools.partial(jax.jit, static_argnums=(3,), donate_argnums=(0, 1))
  def update(params, opt_state, batch: Batch, on_policy: bool, frozen=None):
    grads, metrics, logps = grads_fn(params, batch, on_policy, frozen)
    metrics["grad_norm"] = optax.tree.norm(grads)
    # The optimizer state was made from the params, so it sees grads of their dtype.
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, metrics, logps

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
