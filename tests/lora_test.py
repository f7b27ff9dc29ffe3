"""LoRA: merged adapters equal the base at B = 0, only adapters learn, state scales with rank."""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from r1jax import checkpoint, eval_run, lora, policy_update, sharding, train, train_step
from r1jax.grpo_config import GRPOConfig
from r1jax.metrics import read_metrics
from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig, SFTConfig
from r1jax.sampler import SamplingConfig

MODEL = ModelConfig(vocab_size=24, hidden_size=16, num_layers=2, num_heads=2, num_kv_heads=1,
                    head_dim=8, intermediate_size=32, max_position_embeddings=32)
T_PROMPT, T_NEW, P, R = 6, 5, 2, 4
B = P * R


def _params(seed=0):
  return transformer.init(MODEL, jax.random.key(seed))


def _logits(params, tokens):
  return np.asarray(transformer.forward(params, jnp.asarray(tokens), cfg=MODEL)[0])


def test_zero_b_gives_exactly_the_base_logits():
  params = _params()
  adapters = lora.init_adapters(MODEL, lora.LoRAConfig(rank=4), jax.random.key(1))
  tokens = np.random.default_rng(0).integers(0, MODEL.vocab_size, (2, 9))
  merged = lora.merge(params, adapters, lora.LoRAConfig(rank=4))
  np.testing.assert_array_equal(_logits(merged, tokens), _logits(params, tokens))
  # A is random (the merge is not a no-op by accident): with B random the logits move.
  moved = jax.tree.map(lambda x: x + 0.5 if x.shape[1] == 4 else x, adapters)
  assert np.abs(_logits(lora.merge(params, moved, lora.LoRAConfig(rank=4)), tokens)
                - _logits(params, tokens)).max() > 1e-3


def test_merge_is_w_plus_scaled_a_b_on_the_targets_only():
  cfg = lora.LoRAConfig(rank=3, alpha=6.0, targets=("q_proj", "down_proj"))
  params = _params()
  rng = np.random.default_rng(0)
  adapters = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32),
                          lora.abstract_adapters(MODEL, cfg))
  merged = lora.merge(params, adapters, cfg)
  for module, name in (("self_attn", "q_proj"), ("mlp", "down_proj")):
    ad = adapters["model"]["layers"][module][name]
    want = (np.asarray(params["model"]["layers"][module][name]["kernel"])
            + 2.0 * np.einsum("lir,lro->lio", ad["lora_a"], ad["lora_b"]))
    np.testing.assert_allclose(merged["model"]["layers"][module][name]["kernel"], want,
                               rtol=1e-6, atol=1e-6)
  flat_m = dict(jax.tree_util.tree_flatten_with_path(merged)[0])
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    if "q_proj" not in str(path) and "down_proj" not in str(path):
      assert flat_m[path] is leaf  # Untargeted leaves are the base's own arrays.
  assert lora.num_adapter_params(MODEL, cfg) == sum(
      x.size for x in jax.tree.leaves(adapters)) == 2 * 3 * ((16 + 16) + (32 + 16))


@pytest.mark.parametrize("bad, match", [
    (dict(rank=-1), "rank"), (dict(rank=4, alpha=0.0), "alpha"),
    (dict(rank=4, targets=("qkv",)), "targets"), (dict(rank=4, dropout=0.05), "dropout")])
def test_bad_lora_config_is_one_clear_error(bad, match):
  with pytest.raises(ValueError, match=match):
    lora.LoRAConfig(**bad)


def test_ref_reset_needs_a_trained_reference_so_lora_refuses_it():
  with pytest.raises(ValueError, match="ref_reset_every"):
    Config(lora=lora.LoRAConfig(rank=4), ref_reset_every=10, grpo=GRPOConfig(kl_coef=0.1))
  with pytest.raises(ValueError, match="ref_dtype"):
    Config(lora=lora.LoRAConfig(rank=4), ref_dtype="bfloat16", grpo=GRPOConfig(kl_coef=0.1))


def _batch(seed=0) -> train_step.Batch:
  rng = np.random.default_rng(seed)
  t = T_PROMPT + T_NEW
  tokens = rng.integers(1, MODEL.vocab_size, (B, t)).astype(np.int32)
  attn = np.ones((B, t), bool)
  loss_mask = np.ones((B, T_NEW), np.float32)
  adv = rng.normal(size=B).astype(np.float32)
  zeros = np.zeros((B, T_NEW), np.float32)
  return train_step.Batch(tokens, attn, loss_mask, adv, zeros, zeros, zeros)


def test_adapter_gradient_is_the_chain_rule_of_the_full_gradient():
  # With B = 0: dL/dB = (alpha / r) A^T dL/dW, and dL/dA = 0 (W + s A B does not depend on A).
  cfg = lora.LoRAConfig(rank=4, alpha=8.0)
  grpo_cfg = GRPOConfig(num_samples=R, kl_coef=0.0, loss_agg="token_mean")
  params = _params()
  adapters = lora.init_adapters(MODEL, cfg, jax.random.key(1))
  batch = _batch()
  full = train_step.make_grpo_grads(MODEL, grpo_cfg, t_new=T_NEW, num_microbatches=2)
  low = train_step.make_grpo_grads(MODEL, grpo_cfg, t_new=T_NEW, num_microbatches=2, lora=cfg)
  g_full, m_full, _ = full(params, batch, True)
  g_low, m_low, _ = low(adapters, batch, True, params)
  assert float(m_full["loss"]) == pytest.approx(float(m_low["loss"]), abs=1e-7)
  for module, names in adapters["model"]["layers"].items():
    for name, ad in names.items():
      dw = np.asarray(g_full["model"]["layers"][module][name]["kernel"])
      got = g_low["model"]["layers"][module][name]
      want_b = cfg.scale * np.einsum("lir,lio->lro", np.asarray(ad["lora_a"]), dw)
      np.testing.assert_allclose(got["lora_b"], want_b, rtol=1e-4, atol=1e-7)
      np.testing.assert_array_equal(got["lora_a"], 0.0)


def _config(**kw) -> Config:
  return Config(model=MODEL, prompts_per_step=P, updates_per_rollout=2, minibatch_size=2,
                grpo=GRPOConfig(num_samples=R, kl_coef=0.05, loss_agg="token_mean"),
                sampling=SamplingConfig(temperature=1.0, max_new_tokens=T_NEW),
                optim=OptimConfig(lr=1e-2), lora=lora.LoRAConfig(rank=4), **kw)


def test_only_adapter_leaves_change_and_the_reference_is_the_base():
  cfg = _config()
  params = _params()
  base_copy = jax.tree.map(np.array, params)
  adapters = lora.init_adapters(MODEL, cfg.lora, jax.random.key(1))
  before = jax.tree.map(np.array, adapters)
  tx, _ = train_step.make_optimizer(cfg.optim, 10)
  opt_state = tx.init(adapters)
  mesh = sharding.make_mesh(cfg.mesh)
  updater = policy_update.PolicyUpdater(MODEL, cfg, tx, mesh)
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    adapters, opt_state, m = updater(adapters, opt_state, params, _batch(), base=params,
                                     key=jax.random.key(0), step=1, where="-")
  # Two optimizer steps (updates_per_rollout=2): B moves in the first, then A too.
  for path, leaf in jax.tree_util.tree_flatten_with_path(adapters)[0]:
    old = dict(jax.tree_util.tree_flatten_with_path(before)[0])[path]
    assert not np.array_equal(np.asarray(leaf), old), path
  jax.tree.map(np.testing.assert_array_equal, params, base_copy)  # The base never moves.
  # The optimizer state mirrors the adapters only.
  assert sum(x.size for x in jax.tree.leaves(opt_state)) <= 2 * sum(
      x.size for x in jax.tree.leaves(adapters)) + 4
  # KL to the base: 0 at the first step (policy == base), positive once the adapters moved.
  assert m["kl"] >= 0 and np.isfinite(m["loss"])


def _bytes(tree):
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _dir_bytes(path: pathlib.Path) -> int:
  return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_optimizer_state_and_checkpoint_scale_with_the_rank(tmp_path):
  tx = optax.adamw(1e-3)
  cfg = dataclasses.replace(MODEL, hidden_size=64, intermediate_size=128, head_dim=32)
  full = transformer.init(cfg, jax.random.key(0))
  sizes = {}
  for rank in (4, 8, 16):
    adapters = lora.init_adapters(cfg, lora.LoRAConfig(rank=rank), jax.random.key(1))
    with checkpoint.Checkpointer(tmp_path / str(rank), save_every=1, keep=1) as ckpt:
      ckpt.save(1, {"adapters": adapters, "opt_state": tx.init(adapters)}, force=True)
    sizes[rank] = (_bytes(tx.init(adapters)), _dir_bytes(tmp_path / str(rank)))
  with checkpoint.Checkpointer(tmp_path / "full", save_every=1, keep=1) as ckpt:
    ckpt.save(1, {"params": full, "opt_state": tx.init(full)}, force=True)
  full_opt, full_ckpt = _bytes(tx.init(full)), _dir_bytes(tmp_path / "full")
  # Adam's two moments: exactly 2 x the adapters' float32 numbers (+ the step count).
  for rank, (opt_b, _) in sizes.items():
    n = lora.num_adapter_params(cfg, lora.LoRAConfig(rank=rank))
    assert opt_b == 2 * 4 * n + 4
  assert sizes[8][0] - 4 == 2 * (sizes[4][0] - 4) and sizes[16][0] - 4 == 4 * (sizes[4][0] - 4)
  # Checkpoints grow with the rank (file overheads aside) and stay below the full model's.
  assert sizes[4][1] < sizes[8][1] < sizes[16][1] < full_ckpt
  assert sizes[16][0] < full_opt


def tiny_run_config(**kw) -> Config:
  cfg = Config(
      model=ModelConfig(vocab_size=20, hidden_size=32, num_layers=2, num_heads=4,
                        num_kv_heads=2, head_dim=8, intermediate_size=64,
                        max_position_embeddings=64),
      tokenizer_path="miniature", task="miniature", task_args={"seed": 0},
      eval_task_args={"seed": 1},
      grpo=GRPOConfig(num_samples=4, kl_coef=0.01, loss_agg="token_mean"),
      sampling=SamplingConfig(max_new_tokens=16, prompt_multiple=16),
      prompts_per_step=4, num_steps=2, optim=OptimConfig(lr=1e-2),
      sft=SFTConfig(steps=2, data="miniature", batch_size=16, optim=OptimConfig(lr=1e-3)),
      eval=EvalConfig(every=2, num_examples=4, batch_size=4),
      checkpoint=CheckpointConfig(every=1, keep=2), tensorboard=False, seed=3,
      lora=lora.LoRAConfig(rank=2, alpha=4.0))
  return dataclasses.replace(cfg, **kw)


def test_lora_run_checkpoints_adapters_resumes_exactly_and_loads_merged(tmp_path):
  cfg = tiny_run_config()
  train.run(cfg, tmp_path / "whole")
  train.run(cfg, tmp_path / "split", max_steps=1)
  train.run(cfg, tmp_path / "split")
  timing = ("time/", "tokens_per_s", "sft/step_s")
  strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith(timing)} for r in rows]
  assert strip(read_metrics(tmp_path / "whole")) == strip(read_metrics(tmp_path / "split"))
  # The checkpoint holds the adapters and their optimizer state, no weights, no reference.
  meta = checkpoint.Checkpointer(tmp_path / "whole", save_every=1, keep=2)
  saved = meta._manager.item_metadata(2)["arrays"]  # pylint: disable=protected-access
  meta.close()
  assert set(saved.keys()) == {"adapters", "opt_state", "key"}
  # The stage-1 base is written once; the workdir loads back as base + merged adapters.
  assert (tmp_path / "whole" / train.BASE_DIR).is_dir()
  loaded = eval_run.load_model(tmp_path / "whole")
  assert loaded.step == 2
  # pylint: disable-next=protected-access
  base = eval_run._lora_base(tmp_path / "whole", cfg, loaded.model_cfg)
  diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), loaded.params, base)
  changed = {jax.tree_util.keystr(p) for p, d in jax.tree_util.tree_flatten_with_path(diff)[0]
             if d > 0}
  assert changed and all("proj" in p for p in changed)  # Only the targeted kernels moved.


def test_dry_run_counts_adapters_merged_kernels_and_no_reference_copy():
  from r1jax import dryrun  # pylint: disable=g-import-not-at-top
  cfg = dataclasses.replace(_config(), model=dataclasses.replace(
      MODEL, hidden_size=64, intermediate_size=128, head_dim=32))
  full = dryrun.dry_run_config(dataclasses.replace(cfg, lora=lora.LoRAConfig()), num_devices=1)
  low = dryrun.dry_run_config(cfg, num_devices=1)
  n = lora.num_adapter_params(cfg.model, cfg.lora)
  assert low.adapter_bytes == 4 * n and full.adapter_bytes == 0
  assert low.opt_state_bytes == 2 * 4 * n + 4  # Adam's moments of the adapters, and a count.
  assert full.reference_bytes == full.params_bytes and low.reference_bytes == 0
  kernels = sum(4 * cfg.model.num_layers * a * b for a, b in (
      (64, 64), (64, 32), (64, 32), (64, 64), (64, 128), (64, 128), (128, 64)))
  assert low.merged_bytes == kernels
  assert low.params_bytes == full.params_bytes
  assert low.train_peak_bytes < full.train_peak_bytes
  assert "LoRA adapters" in dryrun.format_report(low)
