"""The GRPO loop: runs end to end, logs every promised metric, resumes exactly, stops on NaN."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from r1jax import checkpoint, train
from r1jax.data import tasks
from r1jax.grpo_config import GRPOConfig
from r1jax.metrics import read_metrics
from r1jax.models.config import ModelConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig, SFTConfig
from r1jax.sampler import SamplingConfig

_TIMING = ("time/", "tokens_per_s", "sft/step_s")


def tiny_config(**kw) -> Config:
  cfg = Config(
      model=ModelConfig(vocab_size=20, hidden_size=32, num_layers=2, num_heads=4,
                        num_kv_heads=2, head_dim=8, intermediate_size=64,
                        max_position_embeddings=64),
      tokenizer_path="miniature", task="miniature", task_args={"seed": 0},
      eval_task_args={"seed": 1},
      grpo=GRPOConfig(num_samples=4, kl_coef=0.01, loss_agg="token_mean", num_iterations=2),
      sampling=SamplingConfig(max_new_tokens=16, prompt_multiple=16),
      prompts_per_step=4, updates_per_rollout=2, minibatch_size=4, num_steps=4,
      ref_reset_every=2,
      optim=OptimConfig(lr=1e-3),
      sft=SFTConfig(steps=2, data="miniature", batch_size=16, optim=OptimConfig(lr=1e-3)),
      eval=EvalConfig(every=2, num_examples=4, batch_size=4),
      checkpoint=CheckpointConfig(every=1, keep=2), tensorboard=False, seed=3)
  return dataclasses.replace(cfg, **kw)


def _strip_timing(rows):
  return [{k: v for k, v in r.items() if not k.startswith(_TIMING)} for r in rows]


def _final_params(workdir, cfg):
  ckpt = checkpoint.Checkpointer(workdir, save_every=1, keep=2)
  model_cfg, params, _ = train.load_policy(cfg, workdir, jax.random.key(0))
  del model_cfg
  import optax
  from r1jax import train_step
  tx, _ = train_step.make_optimizer(cfg.optim, cfg.num_steps)
  target = train._state(params, tx.init(params), params if cfg.grpo.kl_coef else None,
                        jax.random.key(0))
  step, state = ckpt.restore_latest(target)
  ckpt.close()
  return step, state["params"]


def test_run_logs_every_promised_metric_and_plots(tmp_path):
  cfg = tiny_config()
  train.run(cfg, tmp_path)
  rows = read_metrics(tmp_path)
  assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
  step = rows[1]
  for key in ("reward/mean", "reward/accuracy", "accuracy/strict", "length/mean", "length/max",
              "truncated_frac", "kl", "entropy", "clip/low_frac", "clip/high_frac",
              "groups/zero_var_frac", "logprob_gap/max", "time/rollout_s", "time/train_s",
              "tokens_per_s", "loss", "grad_norm", "length/correct_mean", "length/wrong_mean"):
    assert key in step, key
  assert "eval/greedy/strict" in rows[2] and "eval/sampled/strict" in rows[0]
  # Temperature 1, no truncation: the sampler's logprobs are the trainer's.
  assert all(r["logprob_gap/max"] < 1e-4 for r in rows[1:])
  samples = [json.loads(l) for l in open(tmp_path / "samples.jsonl")]
  assert samples and {"prompt", "completion", "reward"} <= set(samples[0])
  assert (tmp_path / "accuracy_reward.png").exists() and (tmp_path / "length.png").exists()
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["grpo"]["kl_coef"] == 0.01 and "git_hash" in json.loads(
      (tmp_path / "run_info.json").read_text())


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from train_test import tiny_config
    from r1jax import train
    from r1jax.run_config import CheckpointConfig
    train.run(tiny_config(checkpoint=CheckpointConfig(every=1, keep=2, async_save={async_save})),
              {workdir!r})
""")


@pytest.mark.parametrize("async_save", [False, True])
def test_sigkilled_run_resumes_bit_for_bit(tmp_path, async_save):
  cfg = tiny_config(checkpoint=CheckpointConfig(every=1, keep=2, async_save=async_save))
  full, killed = tmp_path / "full", tmp_path / "killed"
  train.run(cfg, full)
  script = _KILL_SCRIPT.format(tests=os.path.dirname(__file__), workdir=str(killed),
                               async_save=async_save)
  proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  while time.time() < deadline and proc.poll() is None:
    path = killed / "metrics.jsonl"
    if path.exists() and any('"step": 2' in l for l in open(path)):
      break
    time.sleep(0.05)
  assert proc.poll() is None, "the run ended before it could be killed"
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  train.run(cfg, killed)  # The same command again: resumes.
  assert _strip_timing(read_metrics(killed)) == _strip_timing(read_metrics(full))
  (s1, p1), (s2, p2) = _final_params(full, cfg), _final_params(killed, cfg)
  assert s1 == s2 == cfg.num_steps
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), p1, p2)


def test_stopping_early_then_continuing_equals_one_run(tmp_path):
  cfg = tiny_config(grpo=GRPOConfig(num_samples=4, kl_coef=0.0, dynamic_sampling=True),
                    sft=SFTConfig(), eval=EvalConfig(), minibatch_size=0, updates_per_rollout=1)
  train.run(cfg, tmp_path / "a")
  train.run(cfg, tmp_path / "b", max_steps=1)
  train.run(cfg, tmp_path / "b", max_steps=1)
  train.run(cfg, tmp_path / "b")
  assert _strip_timing(read_metrics(tmp_path / "a")) == _strip_timing(read_metrics(tmp_path / "b"))
  assert "sampling/rounds" in read_metrics(tmp_path / "a")[0]


def test_shared_prompts_train_like_whole_rows_and_resume_exactly(tmp_path):
  # KL reference, two mini-batches of whole groups, two passes: every optimizer step runs,
  # the sampler's logprobs equal the shared-prompt trainer's to float rounding, and a stopped
  # run resumes bit for bit.
  cfg = tiny_config(sft=SFTConfig(), eval=EvalConfig(), share_prompts=True)
  train.run(cfg, tmp_path / "a")
  train.run(cfg, tmp_path / "b", max_steps=2)
  train.run(cfg, tmp_path / "b")
  rows = read_metrics(tmp_path / "a")
  assert _strip_timing(rows) == _strip_timing(read_metrics(tmp_path / "b"))
  assert len(rows) == cfg.num_steps and all(r["updates"] == 4 for r in rows)
  assert all(r["logprob_gap/max"] <= 1e-5 for r in rows)


def test_nan_stops_the_run_naming_the_step_and_keeps_the_last_checkpoint(tmp_path):
  # The entropy bonus gives a gradient even when every reward is equal, so a huge learning
  # rate surely blows the params up to inf after the first update.
  cfg = tiny_config(optim=OptimConfig(lr=1e30, max_grad_norm=0.0), sft=SFTConfig(),
                    eval=EvalConfig(), grpo=GRPOConfig(num_samples=4, kl_coef=0.0,
                                                       entropy_coef=1.0))
  with pytest.raises(FloatingPointError, match=r"at step \d+.*last good checkpoint"):
    train.run(cfg, tmp_path)
  step, params = _final_params(tmp_path, cfg)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params)), step


def _raising_reward(response, example):
  raise RuntimeError("a broken reward function")


@tasks.register_task("test_raising")
def _raising_task(seed=0):
  base = tasks.get_task("miniature", seed=seed)
  return dataclasses.replace(base, reward_fns={**base.reward_fns,
                                               "broken": (_raising_reward, 1.0)})


def test_a_raising_reward_scores_zero_and_is_counted(tmp_path):
  cfg = tiny_config(task="test_raising", sft=SFTConfig(), eval=EvalConfig(), num_steps=1,
                    grpo=GRPOConfig(num_samples=4, kl_coef=0.0))
  metrics = train.run(cfg, tmp_path)
  assert metrics["reward/errors"] == 16 and metrics["reward/broken"] == 0.0


def test_bf16_reference_is_stored_in_bf16_and_a_stopped_run_resumes_it_exactly(tmp_path):
  """Config.ref_dtype: the reference is a rounded copy (KL > 0 before the first update, where a
  float32 reference gives exactly 0), checkpointed in bf16 and restored in bf16."""
  base = tiny_config(grpo=GRPOConfig(num_samples=4, kl_coef=0.01), sft=SFTConfig(),
                     eval=EvalConfig(), updates_per_rollout=1, minibatch_size=0, num_steps=2,
                     ref_reset_every=0)
  bf16 = dataclasses.replace(base, ref_dtype="bfloat16")
  train.run(base, tmp_path / "f32", max_steps=1)
  train.run(bf16, tmp_path / "a")
  train.run(bf16, tmp_path / "b", max_steps=1)
  train.run(bf16, tmp_path / "b")
  assert read_metrics(tmp_path / "f32")[0]["kl"] == 0.0
  assert read_metrics(tmp_path / "a")[0]["kl"] > 0.0
  assert _strip_timing(read_metrics(tmp_path / "a")) == _strip_timing(read_metrics(tmp_path / "b"))
  ckpt = checkpoint.Checkpointer(tmp_path / "b", save_every=1, keep=2)
  saved = ckpt._manager.item_metadata(2)["arrays"]["ref_params"]  # pylint: disable=protected-access
  ckpt.close()
  dtypes = {jax.tree_util.keystr(p): np.dtype(m.dtype)
            for p, m in jax.tree_util.tree_leaves_with_path(saved)}
  assert dtypes["['model']['embed_tokens']['embedding']"] == np.dtype("bfloat16")
  assert all(d == (np.float32 if "norm" in k else np.dtype("bfloat16")) for k, d in dtypes.items())
  with pytest.raises(ValueError, match="Config.ref_dtype must be one of float32, bfloat16"):
    tiny_config(ref_dtype="int8")


def test_a_run_resumed_at_step_0_keeps_stage_1_metrics_in_step_0s_record(tmp_path):
  """Stopped after stage 1 and checkpoint 0 (as a kill during the step-0 evaluation, or while
  later asynchronous saves are in flight, leaves it), the resumed run's records equal an
  uninterrupted run's: stage 1's final metrics come back from checkpoint 0's metadata."""
  cfg = tiny_config(grpo=GRPOConfig(num_samples=4, kl_coef=0.0), eval=EvalConfig(),
                    updates_per_rollout=1, minibatch_size=0, num_steps=1, ref_reset_every=0)
  train.run(cfg, tmp_path / "a")
  train.run(cfg, tmp_path / "b", max_steps=0)
  train.run(cfg, tmp_path / "b")
  rows = _strip_timing(read_metrics(tmp_path / "b"))
  assert rows[0]["step"] == 0 and rows[0]["sft/steps"] == 2
  assert rows == _strip_timing(read_metrics(tmp_path / "a"))
