"""Sharded-vs-single-device checks on 8 fake CPU devices; run by sharding_multidevice_test.py.

Runs in its own process because XLA's fake device count must be set before jax is imported.
For each mesh it measures (does not judge) the differences between the sharded and the
one-device computation and prints one JSON object; the test file holds the tolerances.
"""

import os

# Cheaper CPU compiles (the checks compile ~10 programs; the reference is compiled alike).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0"
                           " --xla_llvm_disable_expensive_passes=true")
os.environ["JAX_PLATFORMS"] = "cpu"

import dataclasses  # pylint: disable=g-import-not-at-top
import json
import re
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from r1jax import decode_layout
from r1jax import dryrun
from r1jax import prefill
from r1jax import sampler
from r1jax import sharding
from r1jax.models import ModelConfig, transformer

MESHES = ((8, 1, 1), (2, 4, 1), (1, 4, 2), (2, 2, 2))
CFG = dataclasses.replace(ModelConfig(), tie_embeddings=False, qkv_bias=True)
B, T, T_NEW = 8, 12, 4
ODD_BATCH_MESH = (2, 2, 2)


def _tick(name, t0=[time.process_time()]):  # pylint: disable=dangerous-default-value
  print(f"{name}: {time.process_time() - t0[0]:.1f} s cpu", file=sys.stderr)
  t0[0] = time.process_time()


def _max_diff(a, b) -> float:
  diffs = jax.tree.leaves(jax.tree.map(
      lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b))
  return max(diffs)


def _loss(params, tokens, mask):
  logits, _ = transformer.forward(params, tokens, cfg=CFG, attention_mask=mask)
  logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
  picked = jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
  m = mask[:, 1:].astype(jnp.float32)
  return -jnp.sum(picked * m) / jnp.sum(m)


def _forward(params, tokens, mask):
  return transformer.forward(params, tokens, cfg=CFG, attention_mask=mask)[0]


def _decode(params, tokens, mask):
  """The sampler on these prompts after a shared 3-token prefix (prefilled once), then
  continuous batching over 8 slots, finishing in a narrow batch of 4. On the meshes that split
  the slots 4 ways (2x2x2, 1x4x2) that is 4 slot groups of 2, each narrowing to 1 slot; the
  reference runs one group."""
  sc = sampler.SamplingConfig(temperature=1.0, max_new_tokens=T_NEW, max_rows=8,
                              cache_blocks=2, tail_slots=4)
  prefix = jnp.asarray([[11, 12, 13]], jnp.int32)
  budget = jnp.asarray([4, 1, 3, 2, 4, 1, 2, 3], jnp.int32)  # Uneven ends: refills, a tail.
  out = sampler._generate(params, prefix, tokens, mask, jax.random.key(3), budget, cfg=CFG,  # pylint: disable=protected-access
                          sampling=sc, num_samples=2, progress=False)
  return out.logprobs, out.tokens


def _continuous_decode_collectives(params, tokens, mask) -> dict[str, list[int]]:
  """Sizes (elements) of the arrays that cross devices in continuous batching over 16 slots
  (two a device) with a narrow tail of 8: {"loop_all_gathers": inside the decode loops, "outside": any collective
  outside them}.

  Each slot writes its new key and value at its own position: a scatter that must stay on
  the slot's device, not gather the cache. Slots and output rows pair up at run time, so
  per-slot ids, positions and sampled tokens do cross devices. Starting a row copies its
  prompt's keys and values into the slot, and the narrow tail moves live rows: both within
  the slot's device (its slot group), not built for all slots on every device and summed.
  The prefill packs each device's prompts apart and scatters their keys and values there."""
  sc = sampler.SamplingConfig(temperature=1.0, max_new_tokens=T_NEW, max_rows=16,
                              cache_blocks=2, tail_slots=8)
  # The prompts packed as `sampler.generate` packs them: one group a device (8 here).
  packed = prefill.pack(np.asarray(mask), np.asarray(tokens), 0,
                        decode_layout.row_shards(tokens.shape[0], "batch"))
  decode = lambda p, t, m, pk: sampler._generate(  # pylint: disable=protected-access
      p, jnp.zeros((1, 0), jnp.int32), t, m, jax.random.key(3), None, pk, cfg=CFG,
      sampling=sc, num_samples=4, progress=False)
  hlo = jax.jit(decode).lower(params, tokens, mask, packed).compile().as_text()
  sizes = {"loop_all_gathers": [], "outside": []}
  for line in hlo.splitlines():
    shape = re.search(r"= \(?\w+\[([\d,]*)\]\S* (all-gather|all-reduce|reduce-scatter|"
                      r"all-to-all|collective-permute)(?:-start)?\(", line)
    if not shape:
      continue
    n = int(np.prod([int(d) for d in shape.group(1).split(",") if d]))
    if "/while/" not in line:
      sizes["outside"].append(n)
    elif shape.group(2) == "all-gather":
      sizes["loop_all_gathers"].append(n)
  return sizes


def _everything(params, tokens, mask, odd_tokens, odd_mask):
  """All model computations of one mesh in one jit: a single compile per mesh."""
  out = {"logits": _forward(params, tokens, mask),
         "grads": jax.grad(_loss)(params, tokens, mask),
         "decode": _decode(params, tokens, mask)}
  if odd_tokens is not None:
    out["odd"] = _forward(params, odd_tokens, odd_mask)
  return out


def _inputs():
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, CFG.vocab_size, (B, T)).astype(np.int32)
  lengths = np.array([T, T - 3, T, 5, T - 1, T, 2, T])  # Left padding of various lengths.
  mask = np.arange(T)[None, :] >= (T - lengths)[:, None]
  return jnp.asarray(tokens), jnp.asarray(mask)


def main() -> None:
  key = jax.random.key(0)
  tokens, mask = _inputs()
  ref_params = jax.jit(lambda k: transformer.init(CFG, k))(key)
  odd_tokens, odd_mask = tokens[:6], mask[:6]  # 6 rows: not divisible by 8 batch shards.
  ref = jax.jit(_everything)(ref_params, tokens, mask, odd_tokens, odd_mask)
  _tick("reference")

  results = {}
  for shape in MESHES:
    r = {}
    mesh_cfg = sharding.MeshConfig(*shape)
    mesh = sharding.make_mesh(mesh_cfg)
    rules = mesh_cfg.rules
    params = sharding.init_params_sharded(CFG, key, mesh, rules)
    expected = sharding.param_shardings(CFG, mesh, rules)
    _tick("init")
    r["init_max_diff"] = _max_diff(params, ref_params)
    r["init_shardings_match"] = all(jax.tree.leaves(jax.tree.map(
        lambda a, s: a.sharding.is_equivalent_to(s, a.ndim), params, expected)))
    r["num_split_params"] = sum(
        a.addressable_shards[0].data.shape != a.shape for a in jax.tree.leaves(params))
    # Per-device bytes as the dry run computes them arithmetically, against real shards.
    specs = sharding.param_specs(CFG, mesh, rules)
    r["dryrun_param_bytes"] = dryrun.per_device_bytes(
        transformer.abstract_params(CFG), specs, dict(mesh.shape))
    r["actual_param_bytes"] = sum(
        a.addressable_shards[0].data.nbytes for a in jax.tree.leaves(params))

    tok_s = jax.device_put(tokens, sharding.batch_shardings(tokens, mesh, rules))
    mask_s = jax.device_put(mask, sharding.batch_shardings(mask, mesh, rules))
    # One mesh (compiles are the cost) also runs 6 rows: inputs replicated by the fallback,
    # activation constraints split unevenly.
    odd = (odd_tokens, odd_mask) if shape == ODD_BATCH_MESH else (None, None)
    with sharding.axis_rules_context(mesh, rules):
      lowered = jax.jit(_everything).lower(params, tok_s, mask_s, *odd)
      out = lowered.compile()(params, tok_s, mask_s, *odd)
    _tick("model")
    r["constraint_in_hlo"] = "sharding_constraint" in lowered.as_text()
    # Without the context the model's constraints are no-ops (lowering only: no compile).
    plain = jax.jit(_forward).lower(params, tok_s, mask_s).as_text()
    r["constraint_without_context"] = "sharding_constraint" in plain
    r["logits_max_diff"] = _max_diff(out["logits"], ref["logits"])
    r["grads_max_diff"] = _max_diff(out["grads"], ref["grads"])
    r["decode_max_diff"] = _max_diff(out["decode"][0], ref["decode"][0])
    r["decode_tokens_equal"] = bool(np.array_equal(np.asarray(out["decode"][1]),
                                                   np.asarray(ref["decode"][1])))
    if shape == (8, 1, 1):  # Rows split over all 8 devices.
      with sharding.axis_rules_context(mesh, rules):
        r["continuous_decode_collectives"] = _continuous_decode_collectives(params, tok_s,
                                                                            mask_s)
    r["odd_batch_spec"] = str(sharding.batch_spec(odd_tokens.shape, mesh, rules))
    if "odd" in out:
      r["odd_batch_logits_max_diff"] = _max_diff(out["odd"], ref["odd"])

    # Optimizer state mirrors the params' shardings; scalars are replicated.
    opt = optax.adamw(1e-3)
    opt_sh = sharding.opt_state_shardings(opt, expected, transformer.abstract_params(CFG))
    state = jax.jit(opt.init, out_shardings=opt_sh)(params)
    mu = state[0].mu
    r["opt_mu_shardings_match"] = all(jax.tree.leaves(jax.tree.map(
        lambda a, s: a.sharding.is_equivalent_to(s, a.ndim), mu, expected)))
    r["opt_count_replicated"] = state[0].count.sharding.is_fully_replicated

    _tick("opt")
    # Train -> sample layout switch: the same values, the sample layout's shardings.
    sample = sharding.param_shardings(CFG, mesh, sharding.SAMPLE_RULES)
    moved = sharding.reshard(params, sample)
    r["reshard_max_diff"] = _max_diff(moved, params)
    r["reshard_shardings_match"] = all(jax.tree.leaves(jax.tree.map(
        lambda a, s: a.sharding.is_equivalent_to(s, a.ndim), moved, sample)))

    # One process: host-local data is the whole batch.
    glob = sharding.host_local_to_global({"t": np.asarray(tokens)}, mesh, P(("data", "fsdp")))
    r["host_local_equal"] = bool(np.array_equal(np.asarray(glob["t"]), np.asarray(tokens)))
    r["host_local_sharding"] = glob["t"].sharding.is_equivalent_to(
        NamedSharding(mesh, P(("data", "fsdp"))), 2)
    results["x".join(map(str, shape))] = r
    _tick("rest")
  results["num_devices"] = jax.device_count()
  json.dump(results, sys.stdout)


if __name__ == "__main__":
  main()
