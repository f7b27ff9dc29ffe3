"""A GRPO update and a greedy sampler run, sharded vs one device, on 8 fake CPU devices.

Run by sharding_rl_multidevice_test.py in its own process (XLA's fake device count must be
set before jax is imported). For the reference (one device) and each (data, fsdp, tensor) mesh
it runs the pieces `train.py` composes, on a tiny model and a fixed rollout batch:

  * `train_step.make_logprobs` (teacher-forced reference logprobs, 2 micro-batches);
  * `train_step.make_grpo_update` off-policy (old logprobs given, so ratios leave 1 and both
    clips engage; KL term on; 2 minibatches accumulated with lax.scan). The optimizer is
    plain SGD with learning rate 1, so `params - new_params` IS the gradient: comparing the
    updated params compares gradients, with no Adam normalisation to magnify float noise
    in near-zero gradients into lr-sized steps;
  * `sampler.generate` at temperature 0 (prefill, fan-out to 2 rows a prompt, while-loop
    decode, an eos that stops rows at different steps). One mesh samples from the separate
    sampler layout (`SAMPLE_RULES`, one reshard), as `MeshConfig.sample_rules` makes train.py do.

It measures (does not judge) and prints one JSON object; the test file holds the tolerances.
"""

import os

# Cheaper CPU compiles: compile time dominates these checks (3 programs per mesh).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0"
                           " --xla_llvm_disable_expensive_passes=true")
os.environ["JAX_PLATFORMS"] = "cpu"

import dataclasses  # pylint: disable=g-import-not-at-top
import json
import sys
import time

import jax
import numpy as np
import optax

from r1jax import sampler as sampler_lib
from r1jax import sharding
from r1jax import train_step
from r1jax.grpo_config import GRPOConfig
from r1jax.models import ModelConfig, transformer

MESHES = ((8, 1, 1), (2, 4, 1), (1, 4, 2), (2, 2, 2))
SAMPLE_LAYOUT_MESH = (1, 4, 2)  # Params split over fsdp for training, not for sampling.
CFG = dataclasses.replace(ModelConfig(), tie_embeddings=False, qkv_bias=True)
GRPO = GRPOConfig(num_samples=2, kl_coef=0.04, clip_low=0.2, clip_high=0.28, entropy_coef=0.01,
                  loss_agg="seq_mean_token_mean")
B, T_PROMPT, T_NEW, NUM_MB = 8, 6, 6, 2
PROMPTS = ([5, 17, 33], [9], [101, 7, 64, 2, 250], [40, 41])  # 4 prompts x 2 samples = 8 rows.
# Chosen from this model's greedy output so that rows end in each way: prompt 0 at the eos
# (length 8), prompt 1 at the stop sequence (7), prompt 3 at the eos (3), prompt 2 never (10).
SAMPLING = sampler_lib.SamplingConfig(temperature=0.0, max_new_tokens=10, eos_ids=(144,),
                                      stop_sequences=((242, 119),), pad_id=0,
                                      prompt_multiple=8)


def _tick(name, t0=[time.process_time()]):  # pylint: disable=dangerous-default-value
  print(f"{name}: {time.process_time() - t0[0]:.1f} s cpu", file=sys.stderr, flush=True)
  t0[0] = time.process_time()


def _max_diff(a, b) -> float:
  return max(jax.tree.leaves(jax.tree.map(
      lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))),
      a, b)))


def _batch() -> train_step.Batch:
  """A fixed rollout batch shaped as train.py builds it (left-padded prompts, ragged ends)."""
  rng = np.random.default_rng(0)
  t = T_PROMPT + T_NEW
  tokens = rng.integers(1, CFG.vocab_size, (B, t)).astype(np.int32)
  prompt_len = np.array([6, 3, 6, 1, 4, 6, 2, 5])
  gen_len = np.array([6, 6, 2, 5, 1, 6, 4, 3])
  cols = np.arange(t)[None, :]
  attn = ((cols >= T_PROMPT - prompt_len[:, None]) & (cols < T_PROMPT)) | (
      (cols >= T_PROMPT) & (cols < T_PROMPT + gen_len[:, None]))
  loss_mask = (np.arange(T_NEW)[None, :] < gen_len[:, None]).astype(np.float32)
  adv = rng.normal(size=B).astype(np.float32)
  zeros = np.zeros((B, T_NEW), np.float32)
  return train_step.Batch(tokens, attn, loss_mask, adv, zeros, zeros)


def _grpo_step(params, opt_state, batch: train_step.Batch, noise: np.ndarray):
  """Reference logprobs, then one off-policy GRPO update; fresh jits (one trace per layout)."""
  ref_fn = train_step.make_logprobs(CFG, T_NEW, NUM_MB)
  update = train_step.make_grpo_update(CFG, GRPO, optax.sgd(1.0), t_new=T_NEW,
                                       num_microbatches=NUM_MB)
  ref_lp = ref_fn(params, batch.tokens, batch.attn_mask)
  # Old and reference logprobs off the current policy's, so the ratios leave 1, the clips
  # engage and the KL term has a gradient (at policy == reference it is 0 with 0 gradient).
  batch = batch._replace(ref_logprobs=ref_lp + noise[0], old_logprobs=ref_lp + noise[1])
  new_params, _, metrics, logp = update(params, opt_state, batch, False)
  return {"ref_logprobs": np.asarray(ref_lp), "logprobs": np.asarray(logp),
          "params": jax.device_get(new_params),
          "metrics": {k: float(v) for k, v in jax.device_get(metrics).items()}}


def _sample(params):
  out = sampler_lib.generate(params, PROMPTS, cfg=CFG, sampling=SAMPLING,
                             key=jax.random.key(7), num_samples=GRPO.num_samples)
  return {k: np.asarray(v) for k, v in out._asdict().items()}


def main() -> None:
  key = jax.random.key(0)
  batch = _batch()
  noise = np.random.default_rng(1).normal(scale=0.3, size=(2, B, T_NEW)).astype(np.float32)
  init = jax.jit(lambda k: transformer.init(CFG, k))
  params0 = jax.device_get(init(key))
  ref_sample = _sample(init(key))
  ref_step = _grpo_step(init(key), optax.sgd(1.0).init(params0), batch, noise)
  _tick("reference")
  # SGD(1): params - new params = the gradient. Its size shows the check is not vacuous.
  grads = jax.tree.map(lambda a, b: a - b, params0, ref_step["params"])
  results = {"num_devices": jax.device_count(),
             "reference": {"metrics": ref_step["metrics"],
                           "grad_abs_max": max(float(np.abs(g).max())
                                               for g in jax.tree.leaves(grads)),
                           "lengths": ref_sample["lengths"].tolist(),
                           "finished": ref_sample["finished"].tolist()}}
  for shape in MESHES:
    r = {}
    mesh_cfg = sharding.MeshConfig(*shape)
    mesh = sharding.make_mesh(mesh_cfg)
    rules = mesh_cfg.rules
    tx = optax.sgd(1.0)
    with sharding.axis_rules_context(mesh, rules):
      params = sharding.init_params_sharded(CFG, key, mesh, rules)
      abstract = jax.eval_shape(lambda: params)
      opt_state = jax.jit(tx.init, out_shardings=sharding.opt_state_shardings(
          tx, jax.tree.map(lambda x: x.sharding, params), abstract))(params)
      sharded_batch = jax.device_put(batch, sharding.batch_shardings(batch, mesh, rules))
      r["batch_rows_split"] = (
          sharded_batch.tokens.addressable_shards[0].data.shape[0] < B)
      r["params_split"] = any(a.addressable_shards[0].data.shape != a.shape
                              for a in jax.tree.leaves(params))
      if shape == SAMPLE_LAYOUT_MESH:
        sample_params = sharding.reshard(
            params, sharding.param_shardings(CFG, mesh, sharding.SAMPLE_RULES))
      else:
        sample_params = params
      r["sample_layout"] = shape == SAMPLE_LAYOUT_MESH
      out = _sample(sample_params)
      _tick(f"{shape} sample")
      step = _grpo_step(params, opt_state, sharded_batch, noise)  # Donates params.
      _tick(f"{shape} grpo step")
    r["tokens_equal"] = bool(np.array_equal(out["tokens"], ref_sample["tokens"]))
    r["lengths_equal"] = bool(np.array_equal(out["lengths"], ref_sample["lengths"]))
    r["finished_equal"] = bool(np.array_equal(out["finished"], ref_sample["finished"]))
    r["sample_logprobs_max_diff"] = _max_diff(out["logprobs"], ref_sample["logprobs"])
    r["ref_logprobs_max_diff"] = _max_diff(step["ref_logprobs"], ref_step["ref_logprobs"])
    r["logprobs_max_diff"] = _max_diff(step["logprobs"], ref_step["logprobs"])
    r["grads_max_diff"] = _max_diff(step["params"], ref_step["params"])
    r["metrics_max_diff"] = {k: abs(v - ref_step["metrics"][k])
                             for k, v in step["metrics"].items()}
    results["x".join(map(str, shape))] = r
  json.dump(results, sys.stdout)


if __name__ == "__main__":
  main()
