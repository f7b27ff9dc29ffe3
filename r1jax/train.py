"""The GRPO training loop: rollout -> reward -> advantage -> update, with exact resume.

Place in the pipeline: the top. `run(cfg, workdir)` composes the model, sampler, rewards,
objective, checkpoints and metrics into the thing `r1jax train EXPERIMENT.py` runs:

  1. load or init the policy (and its tokenizer), restore the latest checkpoint if any, else
     run the optional cold-start SFT stage and save step 0;
  2. each step: P prompts from the task's resumable stream, R samples each (`rollout`),
     rewards on the host, group advantages, then `updates_per_rollout` optimizer steps over
     shuffled mini-batches, `grpo.num_iterations` times (`policy_update`), KL to a frozen
     reference copy when kl_coef > 0 (reset to the policy every `ref_reset_every` steps);
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
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from r1jax import analysis as analysis_lib
from r1jax import checkpoint as checkpoint_lib
from r1jax import config as config_lib
from r1jax import grpo
from r1jax import lora as lora_lib
from r1jax import metrics as metrics_lib
from r1jax import policy_update as policy_update_lib
from r1jax import rollout as rollout_lib
from r1jax import sampler as sampler_lib
from r1jax import sft as sft_lib
from r1jax import sharding
from r1jax import tracking as tracking_lib
from r1jax import train_step
from r1jax.data import tasks as tasks_lib
from r1jax.models import transformer
from r1jax.run_config import Config
from r1jax.tokenizer import load_tokenizer

__all__ = ["run", "load_policy", "evaluate_batch"]

# Key streams: separate fold_in tags keep init, SFT data, rollouts and evals independent.
_INIT, _ROLLOUT, _EVAL, _SHUFFLE, _LORA = 0, 1, 2, 3, 4
# With LoRA, the frozen base when the workdir is its only source (after SFT or random init).
BASE_DIR = "base_params"
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
  `tokenizer_path = "miniature"` (or `"aha_miniature"`) writes the built-in task's tokenizer
  into the workdir.
  """
  numerics = {k: getattr(cfg.model, k) for k in _NUMERICS}
  tok_path = cfg.tokenizer_path or cfg.model_path
  if tok_path in ("miniature", "aha_miniature"):
    # Local: registers the tasks, writes their tokenizer.
    from r1jax.data import aha_miniature, miniature  # pylint: disable=g-import-not-at-top
    write = miniature.write_tokenizer if tok_path == "miniature" else (
        aha_miniature.write_tokenizer)
    # Process 0 writes the workdir's copy; the others their own, so no file is read half-written.
    tok_path = write(os.path.join(workdir, "tokenizer") if jax.process_index() == 0
                     else tempfile.mkdtemp())
  if not tok_path:
    raise ValueError("Config.tokenizer_path is empty and there is no model_path to take a "
                     "tokenizer from; set tokenizer_path (a tokenizer.json, .model or GGUF)")
  tokenizer = load_tokenizer(tok_path)
  tokenizer.chat_template_kwargs = dict(cfg.chat_template_kwargs)  # e.g. enable_thinking
  if cfg.model_path:
    from r1jax.models import weights  # Local: weight formats pull in gguf/safetensors.
    # Each leaf is read straight into its sharding and param dtype, a tensor at a time: no
    # device (and no host) ever holds a whole 7B model on the way.
    model_cfg, params = weights.load(cfg.model_path, cfg.model.param_dtype, mesh=mesh,
                                     rules=cfg.mesh.rules)
    model_cfg = dataclasses.replace(model_cfg, **numerics)
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
  """Accuracy, length and behaviour of `num_samples` completions per example, as metrics.

  `prefix/<accuracy>`, `prefix/reward`, `prefix/length`; `prefix/working`: the share that
  write out a calculation with its result; `prefix/reflective_per_1k`: reflective words (R1's
  "wait", "check", ...) per 1,000 generated tokens (`r1jax.analysis`).
  """
  ro = rollout_lib.collect(params, examples, task=task, tokenizer=tokenizer,
                           model_cfg=model_cfg, sampling=sampling,
                           grpo_cfg=_NO_SHAPING, key=key, num_samples=num_samples, chat=chat)
  out = {f"{prefix}/{name}": float(v.mean()) for name, v in ro.accuracy.items()}
  out[f"{prefix}/reward"] = float(ro.total_reward.mean())
  out[f"{prefix}/length"] = float(ro.lengths.mean())
  out[f"{prefix}/working"] = analysis_lib.working_share(ro.completions)
  tokens = int(ro.lengths.sum())
  out[f"{prefix}/reflective_per_1k"] = (
      analysis_lib.reflective_word_rates(ro.completions, tokens)["total"] if tokens else 0.0)
  return out


def _no_shaping():
  from r1jax.grpo_config import GRPOConfig
  return GRPOConfig(kl_coef=0.0)


_NO_SHAPING = _no_shaping()


def _state(params, opt_state, ref_params, key, mesh=None, *, lora: bool = False
           ) -> dict[str, Any]:
  """The checkpointed arrays; with LoRA `params` are the adapters (the base is not saved)."""
  key_data = jax.random.key_data(key)
  if mesh is not None:  # Replicated over the mesh: one global array that orbax saves once.
    key_data = jax.device_put(key_data, sharding.replicated(mesh))
  state = {"adapters" if lora else "params": params, "opt_state": opt_state, "key": key_data}
  if ref_params is not None:
    state["ref_params"] = ref_params
  return state


def _ref_leaf_dtype(path, x, dtype: str):
  """A reference leaf's dtype: `dtype` (Config.ref_dtype) for float weights; norms keep theirs."""
  floating = jnp.issubdtype(x.dtype, jnp.floating)
  if not dtype or not floating or "norm" in jax.tree_util.keystr(path):
    return jnp.dtype(x.dtype)
  return jnp.dtype(dtype)


def _reference(params, dtype: str = ""):
  """The frozen reference: its own copy of the policy's arrays (the update donates those).

  In `dtype` (Config.ref_dtype; "" = theirs): a bf16 reference of float32 params halves its
  memory, and its logprobs are those of the rounded weights. Each leaf keeps its sharding.
  """
  def copy(path, x):
    dt = _ref_leaf_dtype(path, x, dtype)
    return jnp.copy(x) if dt == x.dtype else x.astype(dt)
  return jax.tree_util.tree_map_with_path(copy, params)


def _reference_like(params, dtype: str = ""):
  """The reference's restore target: the params' shapes and shardings in its dtypes (no copy)."""
  return jax.tree_util.tree_map_with_path(
      lambda path, x: jax.ShapeDtypeStruct(x.shape, _ref_leaf_dtype(path, x, dtype),
                                           sharding=x.sharding), params)


def run(cfg: Config, workdir: str | os.PathLike, *, max_steps: int | None = None) -> dict:
  """Trains per `cfg` in `workdir` (resuming if it holds a checkpoint); returns last metrics.

  `max_steps` stops early after that many steps of this call (for tests and notebooks); the
  run is then resumable like one stopped by a signal.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  if is_main:
    tracking_lib.check_trackers(cfg.tracking)  # A missing extra fails now, before the model loads.
    (workdir / "config.json").write_text(config_lib.to_json(cfg))
    (workdir / "run_info.json").write_text(json.dumps(
        {"git_hash": _git_hash(), "seed": cfg.seed, "jax": jax.__version__,
         "devices": [str(d) for d in jax.devices()]}, indent=2))
  mesh = sharding.make_mesh(cfg.mesh)
  # Every trace of the model happens under the mesh and the logical-axis rules.
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    return _run(cfg, workdir, mesh, max_steps, is_main)


@dataclasses.dataclass
class _Run:
  """What a run builds once: the model, data, optimizer, update and writers (phase 1)."""

  cfg: Config
  workdir: pathlib.Path
  mesh: jax.sharding.Mesh
  is_main: bool
  root: jax.Array  # The seed's key; every stream of randomness folds in from it.
  model_cfg: Any
  tokenizer: Any
  sampling: sampler_lib.SamplingConfig
  task: Any
  stream: Any  # The task's resumable prompt stream.
  schedule: Any
  opt_init: Any  # jit(params) -> optimizer state, born in the params' shardings.
  updater: policy_update_lib.PolicyUpdater
  ckpt: checkpoint_lib.Checkpointer
  sample_sh: Any  # The sampler's own param shardings (MeshConfig.sample_rules), or None.
  # LoRA: jit(key) -> fresh adapters, and jit(base, adapters) -> the merged params.
  adapter_init: Any = None
  merge: Any = None

  @property
  def use_ref(self) -> bool:
    return self.cfg.grpo.kl_coef > 0

  @property
  def lora(self) -> bool:
    return self.cfg.lora.enabled

  def policy(self, params, base):
    """The weights the policy samples with: the params, or the base with adapters merged."""
    return params if base is None else self.merge(base, params)


def _setup(cfg: Config, workdir: pathlib.Path, mesh: jax.sharding.Mesh, is_main: bool):
  """Phase 1: the policy's weights and tokenizer, the task's stream, optimizer and update."""
  root = jax.random.key(cfg.seed)
  model_cfg, params, tokenizer = load_policy(cfg, workdir, jax.random.fold_in(root, _INIT), mesh)
  if is_main:
    (workdir / "model_config.json").write_text(config_lib.to_json(model_cfg))
  task = tasks_lib.get_task(cfg.task, **cfg.task_args)
  # One global prompt stream on every process: the sampler is one SPMD program whose host
  # inputs must be equal everywhere, the order (so the run) does not depend on the process
  # count, and one data position is checkpointed. Each process grades its share of the rows.
  stream = task.stream(seed=cfg.seed)
  tx, schedule = train_step.make_optimizer(
      cfg.optim, cfg.num_steps * policy_update_lib.updates_per_step(cfg))
  adapter_init = merge = None
  learned = params
  if cfg.lora.enabled:  # The optimizer (and its state) sees only the adapters.
    adapter_sh = lora_lib.adapter_shardings(model_cfg, cfg.lora, mesh, cfg.mesh.rules)
    adapter_init = jax.jit(lambda k: lora_lib.init_adapters(model_cfg, cfg.lora, k),
                           out_shardings=adapter_sh)
    learned = lora_lib.abstract_adapters(model_cfg, cfg.lora)
    param_sh = adapter_sh
    merge = jax.jit(lambda base, adapters: lora_lib.merge(base, adapters, cfg.lora))
  else:
    param_sh = jax.tree.map(lambda x: x.sharding, params)
  opt_init = jax.jit(tx.init, out_shardings=sharding.opt_state_shardings(
      tx, param_sh, jax.eval_shape(lambda: learned)))
  run = _Run(cfg=cfg, workdir=workdir, mesh=mesh, is_main=is_main, root=root,
             model_cfg=model_cfg, tokenizer=tokenizer, sampling=_sampling(cfg, tokenizer),
             task=task, stream=stream, schedule=schedule, opt_init=opt_init,
             updater=policy_update_lib.PolicyUpdater(model_cfg, cfg, tx, mesh),
             ckpt=checkpoint_lib.Checkpointer(workdir, save_every=cfg.checkpoint.every,
                                              keep=cfg.checkpoint.keep,
                                              async_save=cfg.checkpoint.async_save),
             sample_sh=(None if cfg.mesh.sample_rules is None else
                        sharding.param_shardings(model_cfg, mesh, cfg.mesh.sample_rules)),
             adapter_init=adapter_init, merge=merge)
  return run, params


def _sft(run: _Run, params, writer_log) -> tuple[Any, dict[str, float]]:
  """The cold-start stage (full fine-tuning, its own optimizer): (params, final metrics)."""
  cfg = run.cfg
  if not cfg.sft.steps:
    return params, {}
  sft_tx, _ = train_step.make_optimizer(cfg.sft.optim, cfg.sft.steps)
  params, _, sft_metrics = sft_lib.run_sft(
      params, sft_tx.init(params), model_cfg=run.model_cfg, tokenizer=run.tokenizer,
      cfg=cfg.sft, apply_update=train_step.make_apply_update(sft_tx),
      stream=rollout_lib.ExampleStream(sft_lib.sft_source(cfg.sft, seed=cfg.seed),
                                       seed=cfg.seed),
      log=writer_log)
  return params, sft_metrics


def _begin_lora(run: _Run, params, writer_log) -> tuple[int, Any, Any, Any, Any,
                                                        dict[str, float]]:
  """Phase 2 with LoRA: `params` become the frozen base; fresh or restored adapters.

  The base is the loaded checkpoint, or (after SFT or from random init) the workdir's own
  copy in BASE_DIR, written once before step 0; checkpoints then hold only the adapters.
  """
  cfg = run.cfg
  adapters = run.adapter_init(jax.random.fold_in(run.root, _LORA))
  opt_state = run.opt_init(adapters)
  base_dir = (run.workdir / BASE_DIR).absolute()
  restored = run.ckpt.restore_latest(_state(adapters, opt_state, None, run.root, run.mesh,
                                            lora=True))
  if restored:
    start, state = restored
    if base_dir.is_dir():
      target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                            params)
      with ocp.StandardCheckpointer() as reader:
        params = reader.restore(base_dir, target)
    run.stream.restore(state["meta"]["data_position"])
    return (start, state["adapters"], state["opt_state"], params if run.use_ref else None,
            params, {})
  params, sft_metrics = _sft(run, params, writer_log)
  if cfg.sft.steps or not cfg.model_path:
    with ocp.StandardCheckpointer() as writer:
      writer.save(base_dir, params, force=True)
  run.ckpt.save(0, _state(adapters, opt_state, None, run.root, run.mesh, lora=True),
                meta={"data_position": run.stream.position}, force=True)
  # The reference is the base itself (when a KL term needs one): no copy.
  return 0, adapters, opt_state, params if run.use_ref else None, params, sft_metrics


def _begin(run: _Run, params, writer_log) -> tuple[int, Any, Any, Any, Any, dict[str, float]]:
  """Phase 2: restore the latest checkpoint, or run the cold-start SFT and save step 0.

  Returns (start step, learned params (the adapters with LoRA), optimizer state, reference
  params or None, the frozen base (LoRA) or None, the SFT stage's final metrics: empty when
  resuming or without SFT).
  """
  if run.lora:
    return _begin_lora(run, params, writer_log)
  cfg = run.cfg
  opt_state = run.opt_init(params)
  # The restore target only lends its structure and shardings: the policy's, in the
  # reference's dtypes, stand in for the reference, so no second copy of the weights
  # exists before a fresh start needs one.
  restored = run.ckpt.restore_latest(_state(
      params, opt_state, _reference_like(params, cfg.ref_dtype) if run.use_ref else None,
      run.root, run.mesh))
  if restored:
    start, state = restored
    run.stream.restore(state["meta"]["data_position"])
    return start, state["params"], state["opt_state"], state.get("ref_params"), None, {}
  sft_metrics: dict[str, float] = {}
  ref_params = _reference(params, cfg.ref_dtype) if run.use_ref else None
  if cfg.sft.steps:
    params, sft_metrics = _sft(run, params, writer_log)
    ref_params = _reference(params, cfg.ref_dtype) if run.use_ref else None
    opt_state = run.opt_init(params)
  # Stage 1's final metrics ride with step 0: a run resumed there writes step 0's record again.
  run.ckpt.save(0, _state(params, opt_state, ref_params, run.root, run.mesh),
                meta={"data_position": run.stream.position,
                      "sft": {k: v for k, v in sft_metrics.items() if np.isfinite(v)}},
                force=True)
  return 0, params, opt_state, ref_params, None, sft_metrics


def _make_evaluator(run: _Run) -> Callable[[Any, int], dict[str, float]] | None:
  """Phase 3: held-out greedy and sampled evaluation, every `eval.every` steps (or None)."""
  cfg = run.cfg
  if not cfg.eval.every:
    return None
  # Held out means not the training examples: a config that would evaluate on them is refused.
  tasks_lib.check_eval_split(cfg.task, cfg.task_args, cfg.eval_task_args)
  eval_task = tasks_lib.get_task(cfg.task, **{**cfg.task_args, **cfg.eval_task_args})
  examples = eval_task.stream(seed=cfg.seed + 1, shuffle=False).next_batch(cfg.eval.num_examples)
  greedy = dataclasses.replace(run.sampling, temperature=0.0)
  sampled = dataclasses.replace(run.sampling, temperature=cfg.eval.temperature)
  common = dict(task=eval_task, tokenizer=run.tokenizer, model_cfg=run.model_cfg,
                chat=cfg.chat)

  def evaluate(params, step: int) -> dict[str, float]:
    key = jax.random.fold_in(jax.random.fold_in(run.root, _EVAL), step)
    out: dict[str, float] = {}
    for i in range(0, len(examples), cfg.eval.batch_size):
      chunk = examples[i:i + cfg.eval.batch_size]
      parts = [evaluate_batch(params, chunk, sampling=greedy, key=key, prefix="eval/greedy",
                              **common),
               evaluate_batch(params, chunk, sampling=sampled, key=jax.random.fold_in(key, i),
                              num_samples=cfg.eval.num_samples, prefix="eval/sampled",
                              **common)]
      for part in parts:
        for k, v in part.items():
          out[k] = out.get(k, 0.0) + v * len(chunk) / len(examples)
    return out

  return evaluate


def _rollout(run: _Run, params, step: int) -> tuple[rollout_lib.Rollouts, dict[str, float]]:
  """Phase 4a: the step's P prompts, R samples each, graded (DAPO: refilled until varied)."""
  cfg = run.cfg
  # The sampler may use its own layout (MeshConfig.sample_rules): one reshard per rollout.
  if run.sample_sh is not None:
    params = sharding.reshard(params, run.sample_sh)
  key = jax.random.fold_in(jax.random.fold_in(run.root, _ROLLOUT), step)
  kwargs = dict(task=run.task, tokenizer=run.tokenizer, model_cfg=run.model_cfg,
                sampling=run.sampling, grpo_cfg=cfg.grpo, num_samples=cfg.grpo.num_samples,
                chat=cfg.chat, max_prompt_len=cfg.max_prompt_len, chunk=cfg.rollout_chunk)
  if cfg.grpo.dynamic_sampling:
    ro, metrics = rollout_lib.collect_filtered(
        params, run.stream, cfg.prompts_per_step, max_rounds=cfg.max_sampling_rounds, key=key,
        **kwargs)
  else:
    ro = rollout_lib.collect(params, run.stream.next_batch(cfg.prompts_per_step), key=key,
                             **kwargs)
    metrics = {}
  if len(ro.examples) < cfg.prompts_per_step:
    raise ValueError(f"the task {cfg.task!r} ran out of prompts at step {step}; use a "
                     "larger data set or fewer steps")
  return ro, metrics


def _update_batch(run: _Run, ro: rollout_lib.Rollouts, adv: np.ndarray) -> train_step.Batch:
  """Phase 4b: the rollout as the update's host arrays (old/ref logprobs filled in later)."""
  t_prompt = sampler_lib.bucket_length(max(len(p) for p in ro.prompt_ids), run.sampling)
  arrays = rollout_lib.to_batch_arrays(ro, t_prompt=t_prompt, pad_id=run.sampling.pad_id,
                                       mask_truncated=run.cfg.grpo.mask_truncated)
  zeros = np.zeros(ro.logprobs.shape, np.float32)
  return train_step.Batch(arrays["tokens"], arrays["attn_mask"], arrays["loss_mask"],
                          adv.reshape(-1).astype(np.float32), zeros, zeros,
                          ro.logprobs.astype(np.float32))


def _step_samples(run: _Run, ro: rollout_lib.Rollouts) -> list[dict[str, Any]]:
  r = run.cfg.grpo.num_samples
  return [{"prompt": run.tokenizer.decode(ro.prompt_ids[i // r]),
           "completion": ro.completions[i], "reward": float(ro.total_reward.reshape(-1)[i]),
           "length": int(ro.lengths[i])}
          for i in range(min(run.cfg.samples_per_step, len(ro.completions)))]


def _run(cfg: Config, workdir: pathlib.Path, mesh: jax.sharding.Mesh, max_steps: int | None,
         is_main: bool) -> dict:
  run, params = _setup(cfg, workdir, mesh, is_main)
  writer = None
  try:
    # The writer resumes after the checkpoint's step; the SFT logs through it before that.
    resumed = run.ckpt.latest_step() is not None
    start_guess = run.ckpt.latest_step() or 0
    trackers = tracking_lib.make_trackers(
        cfg.tracking, workdir=workdir, config=config_lib.to_dict(cfg), wandb_cfg=cfg.wandb,
        resume=bool(start_guess)) if is_main else []
    writer = metrics_lib.MetricsWriter(workdir, tensorboard=cfg.tensorboard,
                                       process_index=jax.process_index(),
                                       resume_step=start_guess, trackers=trackers)
    start, params, opt_state, ref_params, base, sft_metrics = _begin(
        run, params, lambda s, m: writer.log_console(f"sft {s}/{cfg.sft.steps}", m))
    evaluate = _make_evaluator(run)
    checkpoint_lib.install_preemption_handler()
    end = cfg.num_steps if max_steps is None else min(cfg.num_steps, start + max_steps)
    metrics: dict[str, float] = {}
    if start == 0 and resumed:  # Stage 1's final metrics were saved with step 0.
      sft_metrics = run.ckpt.metadata(0).get("sft", {})
    if start == 0 and (evaluate or sft_metrics):  # Stage 1's end and the held-out baseline.
      writer.write(0, {**sft_metrics,
                       **(evaluate(run.policy(params, base), 0) if evaluate else {})})
    step = start
    for step in range(start + 1, end + 1):
      t0 = time.perf_counter()
      # With LoRA the adapters are merged into a copy of the weights once per rollout; the
      # sampler then decodes at the base model's speed, and the copy goes after the rollout.
      ro, metrics = _rollout(run, run.policy(params, base), step)
      t_rollout = time.perf_counter() - t0
      adv = np.asarray(grpo.advantages(jnp.asarray(ro.total_reward), cfg=cfg.grpo))
      t1 = time.perf_counter()
      params, opt_state, upd = run.updater(
          params, opt_state, ref_params, _update_batch(run, ro, adv),
          key=jax.random.fold_in(jax.random.fold_in(run.root, _SHUFFLE), step), step=step,
          where=str(workdir / "checkpoints"), base=base)
      t_train = time.perf_counter() - t1
      if run.use_ref and cfg.ref_reset_every and step % cfg.ref_reset_every == 0:
        ref_params = _reference(params, cfg.ref_dtype)
      metrics.update(rollout_lib.rollout_metrics(ro, adv))
      metrics.update(upd)
      metrics["lr"] = float(_schedule_lr(run, step))
      metrics["time/rollout_s"] = t_rollout
      metrics["time/train_s"] = t_train
      metrics["time/step_s"] = time.perf_counter() - t0
      metrics["tokens_per_s"] = float(ro.lengths.sum()) / max(t_rollout, 1e-9)
      if evaluate and step % cfg.eval.every == 0:
        metrics.update(evaluate(run.policy(params, base), step))
      writer.write(step, metrics)
      writer.write_samples(step, _step_samples(run, ro))
      writer.progress(step, cfg.num_steps, metrics)
      stop = sharding.any_process(checkpoint_lib.should_stop())  # All stop at one step.
      run.ckpt.save(step, _state(params, opt_state, None if run.lora else ref_params, run.root,
                                 mesh, lora=run.lora),
                    meta={"data_position": run.stream.position}, force=stop or step == end)
      if stop:
        break
    if step >= cfg.num_steps:  # The finished run's curves (process 0), also to the trackers.
      try:
        writer.plot()
      except ImportError as e:  # matplotlib is optional.
        print(f"plots skipped: {e}")
  finally:
    run.ckpt.close()
    if writer is not None:
      writer.close()
    checkpoint_lib.restore_signal_handlers()
  return metrics


def _schedule_lr(run: _Run, step: int) -> float:
  """The learning rate of the step's last optimizer update."""
  return run.schedule(step * policy_update_lib.updates_per_step(run.cfg) - 1)
