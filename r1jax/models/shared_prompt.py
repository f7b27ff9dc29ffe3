"""Teacher forcing with each prompt run once for its R samples (shared-prompt forward).

Place in the pipeline: the GRPO update's forward pass (r1jax/train_step.py), when
`Config.share_prompts` is on. A rollout's R samples of one prompt repeat that prompt's T_p
tokens, so the plain forward (`transformer.forward`) runs every prompt position R times, and
with short answers the prompt is most of the update's work (SmolLM2 on a 122-token chat prompt
and 64 new tokens: 128 of 192 positions). Here the model runs two streams through each layer:

  prompts      [G, T_p]   one row per group, attending to itself (causal);
  completions  [B, T_n]   one row per sample, attending to its group's prompt keys and
                          values from the same layer, then to its own earlier positions;

so every matmul runs on G T_p + B T_n positions instead of B (T_p + T_n). RoPE positions are
the unshared row's, so the logits equal the plain forward's up to float rounding, and autodiff
sums each prompt position's gradient over the R completions that read it, as the plain
forward does R times over. The completions keep the rows' batch sharding (a packed row of a
whole group would not shard over more devices than there are groups: R1-Zero's 7B update on
8 devices compiled to 131 GB a device that way, against 58 GB unshared).

Shape letters as in r1jax/models/transformer.py; G groups, R rows a group, B = G R.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from r1jax.models import transformer
from r1jax.models.config import ModelConfig

__all__ = ["completion_hidden"]


def _completion_positions(prompt_mask: jax.Array, completion_mask: jax.Array) -> jax.Array:
  """RoPE positions [B, T_n] of the completions, as `positions_from_mask` gives the unshared
  rows [prompt | completion]: the prompt's real tokens, then the completion's count."""
  before = prompt_mask.sum(axis=1, dtype=jnp.int32)[:, None]
  return jnp.maximum(before + jnp.cumsum(completion_mask, axis=1, dtype=jnp.int32) - 1, 0)


def completion_hidden(params: transformer.Params, tokens: jax.Array, attn_mask: jax.Array, *,
                      cfg: ModelConfig, t_new: int, group: int) -> jax.Array:
  """Final hidden states [B, T_n, D] at the positions that predict each row's completion.

  Args:
    params: the model's params (`transformer.init` / `models.load`).
    tokens: int32 [B, T_p + T_n] rows as the update holds them: a left-padded prompt, then
      the completion. Rows g R .. g R + R - 1 are group g's and must share the prompt part
      (tokens and mask); only each group's first row's prompt is read (the caller checks the
      others: r1jax/policy_update.py).
    attn_mask: bool [B, T_p + T_n], True on real prompt tokens and generated tokens.
    cfg: the model's architecture.
    t_new: T_n, the completion length (static).
    group: R, rows per group (static); B must be a multiple of it.

  Returns:
    What `transformer.forward(..., logits_last=T_n + 1, hidden_only=True)[:, :-1]` gives for
    the same rows: the normed hidden states at position T_p - 1 (the prompt's last token),
    then at completion positions 0 .. T_n - 2; `transformer.head_logits` makes them logits.
  """
  b, t = tokens.shape
  if b % group:
    raise ValueError(f"completion_hidden: {b} rows are not whole groups of {group}")
  g, t_p, r, t_n = b // group, t - t_new, group, t_new
  mask = attn_mask.astype(bool)
  prompt_mask, completion_mask = mask[::r, :t_p], mask[:, t_p:]  # [G, T_p], [B, T_n]
  row_prompt_mask = jnp.repeat(prompt_mask, r, axis=0)  # [B, T_p]: each row's group's.
  prompt_pos = transformer.positions_from_mask(prompt_mask)
  completion_pos = _completion_positions(row_prompt_mask, completion_mask)
  prompt_allowed = transformer.causal_allowed(prompt_mask)  # [G, T_p, T_p]
  # A completion's queries see the real prompt keys, then its own up to themselves.
  own = completion_mask[:, None, :] & jnp.tril(jnp.ones((t_n, t_n), bool))[None]
  completion_allowed = jnp.concatenate(
      [jnp.broadcast_to(row_prompt_mask[:, None, :], (b, t_n, t_p)), own],
      axis=2)  # [B, T_n, T_p + T_n]

  def prompt_attend(q, k, v):
    out = transformer.masked_attention(q, k, v, prompt_allowed, cfg=cfg)
    return out, (k, v)  # The layer's prompt keys and values, for the completions.

  def body(carry, p):
    x_prompt, x_completion = carry
    x_prompt, (k_p, v_p) = transformer.block(p, x_prompt, prompt_pos, prompt_attend, cfg=cfg)
    fan = lambda y: nn.with_logical_constraint(  # [G, T_p, K, H] -> each row's [B, T_p, K, H]
        jnp.repeat(y, r, axis=0), ("act_batch", "act_length", None, None))

    def completion_attend(q, k, v):
      k, v = jnp.concatenate([fan(k_p), k], axis=1), jnp.concatenate([fan(v_p), v], axis=1)
      return transformer.masked_attention(q, k, v, completion_allowed, cfg=cfg), None

    x_completion, _ = transformer.block(p, x_completion, completion_pos, completion_attend,
                                        cfg=cfg)
    return (x_prompt, x_completion), None

  embed = lambda x: nn.with_logical_constraint(transformer.embed(params, x, cfg),
                                               transformer.ACT_AXES)
  (x_prompt, x_completion), _ = transformer.scan_layers(
      body, (embed(tokens[::r, :t_p]), embed(tokens[:, t_p:])), params["model"]["layers"],
      cfg=cfg, remat=True)
  norm = lambda x: transformer.rms_norm(params["model"]["norm"], x, cfg)
  last_prompt = jnp.repeat(norm(x_prompt[:, -1:]), r, axis=0)  # [B, 1, D]
  return jnp.concatenate([last_prompt, norm(x_completion[:, :-1])], axis=1)
