"""The GRPO training loop: rollout -> reward -> advantage -> update, with exact resume.

Place in the pipeline: the top. `run(cfg, workdir)` composes the model, sampler, rewards,
objective, checkpoints and metrics into the thing `r1jax train EXPERIMENT.py` runs:

  1. load or init the policy (and its tokenizer), restore the latest checkpoint if any, else
     run the optional cold-start SFT stage and save step 0;
  2. each step: P prompts from the task's resumable stream, R samples each (`rollout`),
     rewards on the host, group advantages, then `grpo.num_iterations` optimizer updates over
     gradient-accumulated minibatches (`train_step`), KL to a frozen reference when
     kl_coef > 0 (reset to the policy every `ref_reset_every` steps);
  3. metrics.jsonl / TensorBoard / samples.jsonl every step, held-out evaluation every
     `eval.every` steps, checkpoints every `checkpoint.every` steps and on SIGTERM/SIGINT.

Everything random derives from `cfg.seed` through `jax.random.fold_in(key, step)`, and the
data position is saved with the params, so a killed run rerun in the same workdir continues
bit for bit as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from r1jax import checkpoint as checkpoint_lib
from r1jax import config as config_lib
from r1jax import grpo
from r1jax import metrics as metrics_lib
from r1jax import rollout as rollout_lib
from r1jax import sampler as sampler_lib
from r1jax import sft as sft_lib
from r1jax import sharding
from r1jax import train_step
from r1jax.data import tasks as tasks_lib
from r1jax.models import transformer
from r1jax.run_config import Config
from r1jax.tokenizer import load_tokenizer

__all__ = ["run", "load_policy", "evaluate_batch"]

# Key streams: separate fold_in tags keep init, SFT data, rollouts and evals independent.
_INIT, _ROLLOUT, _EVAL = 0, 1, 2
_NUMERICS = ("dtype", "param_dtype", "remat")


def _git_hash() -> str | None:
  try:
    out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                         cwd=os.path.dirname(__file__), timeout=10)
    return out.stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


def load_policy(cfg: Config, workdir: str | os.PathLike, key: jax.Array,
                mesh: jax.sharding.Mesh | None = None):
  """(model_cfg, params, tokenizer): from cfg.model_path, or random init of cfg.model.

  The config's numerics (dtype, param_dtype, remat) apply to loaded weights too. With a mesh,
  the params are placed in their shardings (random ones are born sharded).
  `tokenizer_path = "miniature"` writes the built-in task's tokenizer into the workdir.
  """
  numerics = {k: getattr(cfg.model, k) for k in _NUMERICS}
  tok_path = cfg.tokenizer_path or cfg.model_path
  if tok_path == "miniature":
    from r1jax.data import miniature  # Local: registers the task, writes its tokenizer.
    # Process 0 writes the workdir's copy; the others their own, so no file is read half-written.
    tok_path = miniature.write_tokenizer(os.path.join(workdir, "tokenizer") if
                                         jax.process_index() == 0 else tempfile.mkdtemp())
  if not tok_path:
    raise ValueError("Config.tokenizer_path is empty and there is no model_path to take a "
                     "tokenizer from; set tokenizer_path (a tokenizer.json, .model or GGUF)")
  tokenizer = load_tokenizer(tok_path)
  if cfg.model_path:
    from r1jax.models import weights  # Local: weight formats pull in gguf/safetensors.
    model_cfg, params = weights.load(cfg.model_path)
    model_cfg = dataclasses.replace(model_cfg, **numerics)
    params = jax.tree.map(lambda x: x.astype(model_cfg.param_dtype), params)
    if mesh is not None:
      params = jax.device_put(params, sharding.param_shardings(model_cfg, mesh, cfg.mesh.rules))
  elif mesh is not None:
    model_cfg = cfg.model
    params = sharding.init_params_sharded(model_cfg, key, mesh, cfg.mesh.rules)
  else:
    model_cfg = cfg.model
    params = jax.jit(lambda k: transformer.init(model_cfg, k))(key)
  if tokenizer.vocab_size > model_cfg.vocab_size:
    raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model's "
                     f"vocab_size is {model_cfg.vocab_size}")
  return model_cfg, params, tokenizer


def _sampling(cfg: Config, tokenizer) -> sampler_lib.SamplingConfig:
  """cfg.sampling with the tokenizer's eos and pad ids filled in where the config has none."""
  s = cfg.sampling
  return dataclasses.replace(s, eos_ids=s.eos_ids or tuple(tokenizer.eos_ids),
                             pad_id=tokenizer.pad_id if s.pad_id == 0 else s.pad_id)


def evaluate_batch(params, examples, *, task, tokenizer, model_cfg, sampling, key,
                   num_samples: int = 1, chat: bool = False, prefix: str) -> dict[str, float]:
  """Accuracy and length of `num_samples` completions per example, as `prefix/...` metrics."""
  ro = rollout_lib.collect(params, examples, task=task, tokenizer=tokenizer,
                           model_cfg=model_cfg, sampling=sampling,
                           grpo_cfg=_NO_SHAPING, key=key, num_samples=num_samples, chat=chat)
  out = {f"{prefix}/{name}": float(v.mean()) for name, v in ro.accuracy.items()}
  out[f"{prefix}/reward"] = float(ro.total_reward.mean())
  out[f"{prefix}/length"] = float(ro.lengths.mean())
  return out


def _no_shaping():
  from r1jax.grpo_config import GRPOConfig
  return GRPOConfig(kl_coef=0.0)


_NO_SHAPING = _no_shaping()


def _rollout_metrics(ro: rollout_lib.Rollouts, adv: np.ndarray) -> dict[str, float]:
  m = {"reward/mean": float(ro.total_reward.mean()), "reward/std": float(ro.total_reward.std())}
  for name, v in ro.rewards.items():
    m[f"reward/{name}"] = float(v.mean())
  for name, v in ro.accuracy.items():
    m[f"accuracy/{name}"] = float(v.mean())
  lengths = ro.lengths.astype(np.float64)
  m["length/mean"] = float(lengths.mean())
  m["length/max"] = float(lengths.max())
  correct = (ro.accuracy.get("strict", ro.total_reward) > 0).reshape(-1)
  m["length/correct_mean"] = float(lengths[correct].mean()) if correct.any() else float("nan")
  m["length/wrong_mean"] = float(lengths[~correct].mean()) if (~correct).any() else float("nan")
  m["truncated_frac"] = float(1.0 - ro.finished.mean())
  m["think_frac"] = float(np.mean(["</think>" in c for c in ro.completions]))
  m["reward/errors"] = float(ro.reward_errors)
  m.update({k: float(v) for k, v in grpo.group_metrics(jnp.asarray(ro.total_reward)).items()})
  m["adv/abs_mean"] = float(np.abs(adv).mean())
  return m


def _state(params, opt_state, ref_params, key, mesh=None) -> dict[str, Any]:
  key_data = jax.random.key_data(key)
  if mesh is not None:  # Replicated over the mesh: one global array that orbax saves once.
    key_data = jax.device_put(key_data, sharding.replicated(mesh))
  state = {"params": params, "opt_state": opt_state, "key": key_data}
  if ref_params is not None:
    state["ref_params"] = ref_params
  return state


def run(cfg: Config, workdir: str | os.PathLike, *, max_steps: int | None = None) -> dict:
  """Trains per `cfg` in `workdir` (resuming if it holds a checkpoint); returns last metrics.

  `max_steps` stops early after that many steps of this call (for tests and notebooks); the
  run is then resumable like one stopped by a signal.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  if is_main:
    (workdir / "config.json").write_text(config_lib.to_json(cfg))
    (workdir / "run_info.json").write_text(json.dumps(
        {"git_hash": _git_hash(), "seed": cfg.seed, "jax": jax.__version__,
         "devices": [str(d) for d in jax.devices()]}, indent=2))
  mesh = sharding.make_mesh(cfg.mesh)
  # Every trace of the model happens under the mesh and the logical-axis rules.
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    return _run(cfg, workdir, mesh, max_steps, is_main)


def _run(cfg: Config, workdir: pathlib.Path, mesh: jax.sharding.Mesh, max_steps: int | None,
         is_main: bool) -> dict:
  root = jax.random.key(cfg.seed)
  model_cfg, params, tokenizer = load_policy(cfg, workdir, jax.random.fold_in(root, _INIT), mesh)
  if is_main:
    (workdir / "model_config.json").write_text(config_lib.to_json(model_cfg))
  sampling = _sampling(cfg, tokenizer)
  task = tasks_lib.get_task(cfg.task, **cfg.task_args)
  # One global prompt stream on every process: the sampler is one SPMD program whose host
  # inputs must be equal everywhere, the order (so the run) does not depend on the process
  # count, and one data position is checkpointed. Each process grades its share of the rows.
  stream = task.stream(seed=cfg.seed)
  grpo_cfg = cfg.grpo
  r = grpo_cfg.num_samples
  rows = cfg.prompts_per_step * r
  num_mb = rows // cfg.minibatch_size if cfg.minibatch_size else 1
  tx, schedule = train_step.make_optimizer(cfg.optim, cfg.num_steps * grpo_cfg.num_iterations)
  use_ref = grpo_cfg.kl_coef > 0

  ckpt = checkpoint_lib.Checkpointer(workdir, save_every=cfg.checkpoint.every,
                                     keep=cfg.checkpoint.keep)
  param_sh = jax.tree.map(lambda x: x.sharding, params)
  opt_init = jax.jit(tx.init, out_shardings=sharding.opt_state_shardings(
      tx, param_sh, jax.eval_shape(lambda: params)))
  sample_sh = (None if cfg.mesh.sample_rules is None else
               sharding.param_shardings(model_cfg, mesh, cfg.mesh.sample_rules))
  opt_state = opt_init(params)
  ref_params = params if use_ref else None
  target = _state(params, opt_state, ref_params, root, mesh)
  restored = ckpt.restore_latest(target)
  writer = metrics_lib.MetricsWriter(workdir, tensorboard=cfg.tensorboard,
                                     process_index=jax.process_index(),
                                     resume_step=restored[0] if restored else 0)
  if restored:
    start, state = restored
    params, opt_state = state["params"], state["opt_state"]
    ref_params = state.get("ref_params")
    stream.restore(state["meta"]["data_position"])
  else:
    start = 0
    if cfg.sft.steps:
      sft_tx, _ = train_step.make_optimizer(cfg.sft.optim, cfg.sft.steps)
      sft_stream = sft_lib.sft_source(cfg.sft, seed=cfg.seed)
      params, _, sft_metrics = sft_lib.run_sft(
          params, sft_tx.init(params), model_cfg=model_cfg, tokenizer=tokenizer, cfg=cfg.sft,
          apply_update=train_step.make_apply_update(sft_tx),
          stream=rollout_lib.ExampleStream(sft_stream, seed=cfg.seed),
          log=lambda s, m: writer.log_console(f"sft {s}/{cfg.sft.steps}", m))
      ref_params = params if use_ref else None
      opt_state = opt_init(params)
    ckpt.save(0, _state(params, opt_state, ref_params, root, mesh),
              meta={"data_position": stream.position}, force=True)

  eval_task = eval_examples = None
  if cfg.eval.every:
    eval_task = tasks_lib.get_task(cfg.task, **{**cfg.task_args, **cfg.eval_task_args})
    eval_examples = eval_task.stream(seed=cfg.seed + 1, shuffle=False).next_batch(
        cfg.eval.num_examples)

  def run_eval(step: int) -> dict[str, float]:
    key = jax.random.fold_in(jax.random.fold_in(root, _EVAL), step)
    out: dict[str, float] = {}
    greedy = dataclasses.replace(sampling, temperature=0.0)
    sampled = dataclasses.replace(sampling, temperature=cfg.eval.temperature)
    for i in range(0, len(eval_examples), cfg.eval.batch_size):
      chunk = eval_examples[i:i + cfg.eval.batch_size]
      parts = [evaluate_batch(params, chunk, task=eval_task, tokenizer=tokenizer,
                              model_cfg=model_cfg, sampling=greedy, key=key, chat=cfg.chat,
                              prefix="eval/greedy"),
               evaluate_batch(params, chunk, task=eval_task, tokenizer=tokenizer,
                              model_cfg=model_cfg, sampling=sampled,
                              key=jax.random.fold_in(key, i), num_samples=cfg.eval.num_samples,
                              chat=cfg.chat, prefix="eval/sampled")]
      for part in parts:
        for k, v in part.items():
          out[k] = out.get(k, 0.0) + v * len(chunk) / len(eval_examples)
    return out

  t_new = sampling.max_new_tokens
  update = train_step.make_grpo_update(model_cfg, grpo_cfg, tx, t_new=t_new,
                                       num_minibatches=num_mb)
  ref_fn = train_step.make_ref_logprobs(model_cfg, t_new, num_mb) if use_ref else None
  collect_kwargs = dict(task=task, tokenizer=tokenizer, model_cfg=model_cfg, sampling=sampling,
                        grpo_cfg=grpo_cfg, num_samples=r, chat=cfg.chat,
                        max_prompt_len=cfg.max_prompt_len)

  def sampler_params():
    # The sampler may use its own layout (MeshConfig.sample_rules): one reshard per rollout.
    return params if sample_sh is None else sharding.reshard(params, sample_sh)
  checkpoint_lib.install_preemption_handler()
  end = cfg.num_steps if max_steps is None else min(cfg.num_steps, start + max_steps)
  metrics: dict[str, float] = {}
  if cfg.eval.every and start == 0:
    writer.write(0, run_eval(0))
  step = start
  try:
    for step in range(start + 1, end + 1):
      t0 = time.perf_counter()
      key = jax.random.fold_in(jax.random.fold_in(root, _ROLLOUT), step)
      if grpo_cfg.dynamic_sampling:
        ro, metrics = rollout_lib.collect_filtered(
            sampler_params(), stream, cfg.prompts_per_step, max_rounds=cfg.max_sampling_rounds, key=key,
            **collect_kwargs)
      else:
        ro = rollout_lib.collect(sampler_params(), stream.next_batch(cfg.prompts_per_step),
                                 key=key, **collect_kwargs)
        metrics = {"groups/zero_var_frac": float(np.asarray(
            grpo.zero_variance_groups(jnp.asarray(ro.total_reward))).mean())}
      if len(ro.examples) < cfg.prompts_per_step:
        raise ValueError(f"the task {cfg.task!r} ran out of prompts at step {step}; use a "
                         "larger data set or fewer steps")
      t_rollout = time.perf_counter() - t0
      adv = np.asarray(grpo.advantages(jnp.asarray(ro.total_reward), cfg=grpo_cfg))
      t_prompt = sampler_lib.bucket_length(max(len(p) for p in ro.prompt_ids), sampling)
      arrays = rollout_lib.to_batch_arrays(ro, t_prompt=t_prompt, pad_id=sampling.pad_id,
                                           mask_truncated=grpo_cfg.mask_truncated)
      host = train_step.Batch(arrays["tokens"], arrays["attn_mask"], arrays["loss_mask"],
                              adv.reshape(-1).astype(np.float32),
                              np.zeros((rows, t_new), np.float32),
                              np.zeros((rows, t_new), np.float32))
      batch = sharding.global_batch(host, sharding.batch_shardings(host, mesh, cfg.mesh.rules))
      if use_ref:
        batch = batch._replace(ref_logprobs=ref_fn(ref_params, batch.tokens, batch.attn_mask))
      if use_ref and ref_params is params:
        ref_params = jax.tree.map(jnp.copy, params)  # The update donates params.
      t1 = time.perf_counter()
      for it in range(grpo_cfg.num_iterations):
        params, opt_state, upd, logp = update(params, opt_state, batch, it == 0)
        if it == 0:
          batch = batch._replace(old_logprobs=logp)
          gap = np.abs(sharding.to_host(logp) - ro.logprobs) * arrays["loss_mask"]
        upd = {k: float(v) for k, v in jax.device_get(upd).items()}
        if not (np.isfinite(upd["loss"]) and np.isfinite(upd["grad_norm"])):
          raise FloatingPointError(
              f"non-finite loss ({upd['loss']}) or gradient norm ({upd['grad_norm']}) at step "
              f"{step}, iteration {it + 1}; the last good checkpoint in "
              f"{workdir / 'checkpoints'} is kept")
      t_train = time.perf_counter() - t1
      if use_ref and cfg.ref_reset_every and step % cfg.ref_reset_every == 0:
        ref_params = params  # Copied before the next update donates params.
      metrics.update(_rollout_metrics(ro, adv))
      metrics.update(upd)
      metrics["logprob_gap/max"] = float(gap.max())
      metrics["lr"] = float(schedule(step * grpo_cfg.num_iterations - 1))
      metrics["time/rollout_s"] = t_rollout
      metrics["time/train_s"] = t_train
      metrics["time/step_s"] = time.perf_counter() - t0
      metrics["tokens_per_s"] = float(ro.lengths.sum()) / max(t_rollout, 1e-9)
      if cfg.eval.every and step % cfg.eval.every == 0:
        metrics.update(run_eval(step))
      writer.write(step, metrics)
      writer.write_samples(step, [
          {"prompt": tokenizer.decode(ro.prompt_ids[i // r]), "completion": ro.completions[i],
           "reward": float(ro.total_reward.reshape(-1)[i]), "length": int(ro.lengths[i])}
          for i in range(min(cfg.samples_per_step, rows))])
      writer.progress(step, cfg.num_steps, metrics)
      stop = sharding.any_process(checkpoint_lib.should_stop())  # All stop at one step.
      ckpt.save(step, _state(params, opt_state, ref_params if use_ref else None, root, mesh),
                meta={"data_position": stream.position}, force=stop or step == end)
      if stop:
        break
  finally:
    ckpt.close()
    writer.close()
    checkpoint_lib.restore_signal_handlers()
  if is_main and step >= cfg.num_steps:
    try:
      metrics_lib.plot_run(workdir)
    except ImportError as e:  # matplotlib is optional.
      print(f"plots skipped: {e}")
  return metrics
