"""Tests of r1jax.policy_update: U mini-batch optimizer steps per rollout, against a plain-JAX
reference written here (its own loss, shuffling rule, AdamW), and float32 accumulation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import policy_update, sharding, train_step
from r1jax.grpo_config import GRPOConfig
from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.run_config import Config, OptimConfig
from r1jax.sampler import SamplingConfig

MODEL = ModelConfig(vocab_size=24, hidden_size=16, num_layers=2, num_heads=2, num_kv_heads=1,
                    head_dim=8, intermediate_size=32, max_position_embeddings=32)
T_PROMPT, T_NEW, P, R, U = 6, 5, 4, 4, 4
B = P * R
TEMPERATURE = 0.7
CLIP = 0.01  # Narrow, so that after a few steps some ratios leave the clip range.
LR, B1, B2, EPS = 1e-3, 0.9, 0.99, 1e-8


def _config(loss_agg: str, **kw) -> Config:
  kw.setdefault("minibatch_size", 2)
  return Config(model=MODEL, prompts_per_step=P, updates_per_rollout=U,
                grpo=GRPOConfig(num_samples=R, kl_coef=0.0, clip_low=CLIP, clip_high=CLIP,
                                loss_agg=loss_agg),
                sampling=SamplingConfig(temperature=TEMPERATURE, max_new_tokens=T_NEW),
                optim=OptimConfig(lr=LR, b1=B1, b2=B2, eps=EPS, max_grad_norm=0.0), **kw)


def _rollout(seed: int = 0, max_gen: int = T_NEW) -> train_step.Batch:
  """A rollout laid out as train.py lays it out: left-padded prompts, ragged completions."""
  rng = np.random.default_rng(seed)
  t = T_PROMPT + T_NEW
  tokens = rng.integers(1, MODEL.vocab_size, (B, t)).astype(np.int32)
  prompt_len = rng.integers(1, T_PROMPT + 1, B)
  gen_len = rng.integers(1, max_gen + 1, B)
  cols = np.arange(t)[None, :]
  attn = ((cols >= T_PROMPT - prompt_len[:, None]) & (cols < T_PROMPT)) | (
      (cols >= T_PROMPT) & (cols < T_PROMPT + gen_len[:, None]))
  loss_mask = (np.arange(T_NEW)[None, :] < gen_len[:, None]).astype(np.float32)
  adv = rng.normal(size=B).astype(np.float32)
  zeros = np.zeros((B, T_NEW), np.float32)
  return train_step.Batch(tokens, attn, loss_mask, adv, zeros, zeros, zeros)


# The reference: nothing below calls r1jax's losses, normalisers, optimizers or updater.

def _logprobs(params, tokens, attn):
  logits, _ = transformer.forward(params, jnp.asarray(tokens[:, :-1]), cfg=MODEL,
                                  attention_mask=jnp.asarray(attn[:, :-1]))
  logp = jax.nn.log_softmax(logits[:, -T_NEW:].astype(jnp.float32) / TEMPERATURE, axis=-1)
  return jnp.take_along_axis(logp, jnp.asarray(tokens[:, -T_NEW:])[..., None], axis=-1)[..., 0]


def _loss(params, tokens, attn, mask, adv, old, loss_agg):
  ratio = jnp.exp(_logprobs(params, tokens, attn) - old)
  a = adv[:, None]
  pg = -jnp.minimum(ratio * a, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * a) * mask
  if loss_agg == "token_mean":
    return jnp.sum(pg) / jnp.sum(mask)
  per_seq = jnp.sum(pg, axis=1) / jnp.sum(mask, axis=1)  # Every row has a token here.
  return jnp.mean(per_seq)


def _adamw_steps(params, host: train_step.Batch, key, loss_agg, group=1):
  old = _logprobs(params, host.tokens, host.attn_mask)  # Fixed before the first step.
  # Rows are shuffled one by one, or (shared prompts) as whole groups of `group` rows.
  groups = np.asarray(jax.random.permutation(jax.random.fold_in(key, 0), B // group))
  order = (groups[:, None] * group + np.arange(group)).reshape(-1)
  m = jax.tree.map(jnp.zeros_like, params)
  v = jax.tree.map(jnp.zeros_like, params)
  ratios = []
  for t in range(1, U + 1):
    rows = order[(t - 1) * (B // U):t * (B // U)]
    args = (host.tokens[rows], host.attn_mask[rows], jnp.asarray(host.loss_mask[rows]),
            jnp.asarray(host.advantages[rows]), old[rows])
    ratios.append(np.exp(np.asarray(_logprobs(params, *args[:2]) - old[rows]))[
        host.loss_mask[rows] > 0])
    g = jax.grad(_loss)(params, *args, loss_agg)
    m = jax.tree.map(lambda m, g: B1 * m + (1 - B1) * g, m, g)
    v = jax.tree.map(lambda v, g: B2 * v + (1 - B2) * g * g, v, g)
    params = jax.tree.map(
        lambda p, m, v: p - LR * (m / (1 - B1 ** t)) / (jnp.sqrt(v / (1 - B2 ** t)) + EPS),
        params, m, v)
  return params, np.concatenate(ratios)


@pytest.mark.parametrize("loss_agg", ["token_mean", "seq_mean_token_mean"])
def test_u_minibatch_steps_equal_hand_sequenced_adamw_steps(loss_agg):
  cfg = _config(loss_agg)
  params0 = jax.device_get(transformer.init(MODEL, jax.random.key(0)))
  host = _rollout()
  key = jax.random.key(42)
  want, ratios = _adamw_steps(params0, host, key, loss_agg)
  mesh = sharding.make_mesh(cfg.mesh)
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    tx, _ = train_step.make_optimizer(cfg.optim, 10)
    updater = policy_update.PolicyUpdater(MODEL, cfg, tx, mesh)
    params = jax.tree.map(jnp.asarray, params0)
    got, _, metrics = updater(params, tx.init(params), None, host, key=key, step=1, where="-")
  diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(got),
                                                             jax.tree.leaves(want)))
  moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(params0),
                                                              jax.tree.leaves(want)))
  assert diff <= 1e-6, diff
  assert moved > 1e-3  # Four real steps were taken.
  assert metrics["updates"] == U
  # pi_old was fixed before the first step, so later steps see ratios away from 1 and the
  # narrow clip binds; the metrics are the extremes over all four steps.
  assert metrics["ratio/max"] == pytest.approx(ratios.max(), rel=1e-5)
  assert metrics["ratio/min"] == pytest.approx(ratios.min(), rel=1e-5)
  assert ratios.max() > 1 + CLIP and metrics["clip/high_frac"] + metrics["clip/low_frac"] > 0
  assert metrics["tokens"] == host.loss_mask.sum()


def _shared_prompt_rollout(seed: int = 0) -> train_step.Batch:
  """`_rollout` with each group's R rows given its first row's prompt (tokens and mask)."""
  host = _rollout(seed)
  first = np.repeat(np.arange(0, B, R), R)
  tokens, attn = host.tokens.copy(), host.attn_mask.copy()
  tokens[:, :T_PROMPT], attn[:, :T_PROMPT] = tokens[first, :T_PROMPT], attn[first, :T_PROMPT]
  return host._replace(tokens=tokens, attn_mask=attn)


def test_shared_prompts_take_the_same_steps_with_groups_shuffled_whole():
  # U = 4 mini-batches of one group each: the hand-sequenced AdamW steps over the same
  # group-wise order, on the plain forward, give the same params.
  cfg = _config("token_mean", minibatch_size=R, share_prompts=True)
  params0 = jax.device_get(transformer.init(MODEL, jax.random.key(0)))
  host = _shared_prompt_rollout()
  key = jax.random.key(42)
  want, ratios = _adamw_steps(params0, host, key, "token_mean", group=R)
  mesh = sharding.make_mesh(cfg.mesh)
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    tx, _ = train_step.make_optimizer(cfg.optim, 10)
    updater = policy_update.PolicyUpdater(MODEL, cfg, tx, mesh)
    assert updater.group == R
    params = jax.tree.map(jnp.asarray, params0)
    got, _, metrics = updater(params, tx.init(params), None, host, key=key, step=1, where="-")
  diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(got),
                                                             jax.tree.leaves(want)))
  assert diff <= 1e-6, diff
  assert metrics["updates"] == U
  assert metrics["ratio/max"] == pytest.approx(ratios.max(), rel=1e-5)


def test_shared_prompts_refuse_a_group_whose_rows_differ_in_their_prompt():
  cfg = _config("token_mean", minibatch_size=R, share_prompts=True)
  host = _shared_prompt_rollout()
  host.attn_mask[5, 0] = not host.attn_mask[5, 0]  # Row 5 is in group 1 (rows 4..7).
  params = transformer.init(MODEL, jax.random.key(0))
  mesh = sharding.make_mesh(cfg.mesh)
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    tx, _ = train_step.make_optimizer(cfg.optim, 10)
    updater = policy_update.PolicyUpdater(MODEL, cfg, tx, mesh)
    with pytest.raises(ValueError, match=r"group 1 \(rows 4..7\) differ in their prompt "
                                         r"attn_mask"):
      updater(params, tx.init(params), None, host, key=jax.random.key(1), step=1, where="-")


def test_shared_prompts_need_whole_groups_in_every_micro_batch():
  with pytest.raises(ValueError, match=r"share_prompts needs whole groups.*2 rows.*\(4\)"):
    _config("token_mean", minibatch_size=2, share_prompts=True)


def test_one_step_per_rollout_is_on_policy_and_never_clips():
  # U = 1 (and mu = 1): the only step's pi_old is the params it starts from, so every ratio
  # is exactly 1 and neither clip can bind, whatever the clip range.
  cfg = dataclasses.replace(_config("token_mean"), updates_per_rollout=1, minibatch_size=4)
  params = transformer.init(MODEL, jax.random.key(0))
  mesh = sharding.make_mesh(cfg.mesh)
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    tx, _ = train_step.make_optimizer(cfg.optim, 10)
    updater = policy_update.PolicyUpdater(MODEL, cfg, tx, mesh)
    _, _, metrics = updater(params, tx.init(params), None, _rollout(), key=jax.random.key(1),
                            step=1, where="-")
  assert metrics["ratio/min"] == metrics["ratio/max"] == 1.0
  assert metrics["clip/low_frac"] == metrics["clip/high_frac"] == 0.0


def test_trimming_the_completion_axis_to_the_longest_completion_changes_no_value():
  # Completions of at most 2 of the 5 budget tokens: with 5 length buckets the update runs on
  # 2 completion positions; the params and metrics equal the whole budget's.
  host = _rollout(seed=3, max_gen=2)
  out = {}
  for buckets in (1, 5):
    cfg = _config("token_mean", update_length_buckets=buckets)
    params = transformer.init(MODEL, jax.random.key(0))
    mesh = sharding.make_mesh(cfg.mesh)
    with sharding.axis_rules_context(mesh, cfg.mesh.rules):
      tx, _ = train_step.make_optimizer(cfg.optim, 10)
      updater = policy_update.PolicyUpdater(MODEL, cfg, tx, mesh)
      width = updater.trimmed(host).tokens.shape[1]
      out[buckets] = (width, *updater(params, tx.init(params), None, host,
                                      key=jax.random.key(1), step=1, where="-"))
  assert out[1][0] == T_PROMPT + T_NEW and out[5][0] == T_PROMPT + 2
  diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(out[1][1]),
                                                             jax.tree.leaves(out[5][1])))
  assert diff <= 1e-6, diff
  for name in ("loss", "ratio/max", "tokens", "grad_norm"):
    assert out[5][3][name] == pytest.approx(out[1][3][name], rel=1e-5, abs=1e-7), name
  with pytest.raises(ValueError, match="update_length_buckets must be a positive integer"):
    _config("token_mean", update_length_buckets=0)


def _outer_scan_carry_dtypes(closed) -> set:
  """dtypes of the carries of the outermost lax.scan(s) in a jitted function's jaxpr."""
  jaxpr = closed.jaxpr
  while not any(e.primitive.name == "scan" for e in jaxpr.eqns):
    (jaxpr,) = [p.jaxpr for e in jaxpr.eqns for p in e.params.values() if hasattr(p, "jaxpr")]
  return {v.aval.dtype for e in jaxpr.eqns if e.primitive.name == "scan"
          for v in e.outvars[:e.params["num_carry"]]}


def test_gradients_accumulate_in_float32_for_bfloat16_params():
  model = dataclasses.replace(MODEL, param_dtype="bfloat16", dtype="bfloat16")
  params = transformer.init(model, jax.random.key(0))
  host = _rollout(seed=3)
  # Every row fills the budget, so each of the 8 micro-batches holds 1/8 of the tokens: its
  # share of the batch gradient is its own mean's gradient / 8, exact in any float format.
  host = host._replace(loss_mask=np.ones_like(host.loss_mask),
                       attn_mask=host.attn_mask | (np.arange(T_PROMPT + T_NEW) >= T_PROMPT))
  grpo_cfg = GRPOConfig(num_samples=R, kl_coef=0.0, loss_agg="token_mean")
  micro = 8
  grads_fn = train_step.make_grpo_grads(model, grpo_cfg, t_new=T_NEW, num_microbatches=micro)
  batch = jax.tree.map(jnp.asarray, host._replace(sampler_logprobs=None))
  grads, _, _ = grads_fn(params, batch, True)
  assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}
  # The micro-batch loop's carry (the gradient sum) is float32.
  assert _outer_scan_carry_dtypes(jax.make_jaxpr(grads_fn, static_argnums=(2,))(
      params, batch, True)) == {jnp.dtype(jnp.float32)}
  # The micro-batches' bf16 gradients summed in float64 here: a float32 accumulator matches
  # the sum to float32 rounding; a bf16 one would be off by ~1e-2 of the largest element.
  one = train_step.make_grpo_grads(model, grpo_cfg, t_new=T_NEW, num_microbatches=1)
  parts = [one(params, jax.tree.map(lambda x: x[2 * i:2 * i + 2], batch), True)[0]
           for i in range(micro)]
  want = jax.tree.map(lambda *xs: sum(np.asarray(x, np.float64) for x in xs) / micro, *parts)
  for got, ref in zip(jax.tree.leaves(grads), jax.tree.leaves(want)):
    scale = max(float(np.abs(ref).max()), 1e-12)
    assert float(np.abs(np.asarray(got, np.float64) - ref).max()) <= 1e-5 * scale
