"""The dry run checked against the compiler: a recipe's real steps compiled on fake devices.

Place in the pipeline: `r1jax train RECIPE --dry-run --compile` runs this module in a fresh
process (`run_subprocess`), because the fake CPU device count
(`--xla_force_host_platform_device_count`) is fixed before jax is imported. There, with
abstract params, optimizer state and batches carrying the recipe's shardings (nothing is
allocated), it lowers and compiles:

  * the update: one optimizer step over a mini-batch (`PolicyUpdater._update`) and the pi_old
    pass over the rollout (`PolicyUpdater._logprobs`);
  * the sampler: prefill plus the decode `while` loop (`sampler._generate`) on one rollout
    chunk of prompts, under the mesh and rules the trainer uses;

and reports XLA's per-device memory (arguments + temporaries: donated inputs alias outputs)
beside the analytic plan (`r1jax.dryrun`), and the collectives inside the decode loop's body
(an all-gather there runs on every generated token).

The plan set beside XLA's figure is the one for XLA:CPU (`dryrun.dry_run(platform="cpu")`):
XLA:CPU widens bf16 matmul weights to float32, which doubles the sampler's decode copy of a
bf16 recipe; the accelerator plan (a bf16 copy) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from typing import Any

__all__ = ["compile_recipe", "format_compiled", "loop_collectives", "run_subprocess"]

COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
GIB = 2 ** 30


def _computations(hlo: str) -> dict[str, str]:
  """HLO module text -> {computation name: its body text}."""
  comps, name, lines = {}, None, []
  for line in hlo.splitlines():
    head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if head and name is None:
      name, lines = head.group(1), []
    elif line.strip() == "}" and name is not None:
      comps[name] = "\n".join(lines)
      name = None
    elif name is not None:
      lines.append(line)
  return comps


def _called(text: str) -> set[str]:
  names = set()
  for group in re.findall(r"(?:calls|to_apply|body|condition|branch_computations)="
                          r"(\{[^}]*\}|%?[\w.\-]+)", text):
    names.update(n.strip().lstrip("%") for n in group.strip("{}").split(","))
  return names


def loop_collectives(hlo: str) -> dict[str, int]:
  """Collective ops inside the largest `while` loop of compiled HLO text, by kind.

  The decode loop is the while whose body (with every computation it calls) holds the most
  instructions; prefill and sampling's own small loops are left out.
  """
  comps = _computations(hlo)
  best, best_size = None, -1
  for body in re.findall(r"while\(.*?body=%?([\w.\-]+)", hlo):
    seen, todo = set(), [body]
    while todo:
      c = todo.pop()
      if c in seen or c not in comps:
        continue
      seen.add(c)
      todo.extend(_called(comps[c]))
    size = sum(comps[c].count("\n") + 1 for c in seen)
    if size > best_size:
      best, best_size = seen, size
  text = "\n".join(comps[c] for c in best or ())
  return {op: len(re.findall(rf"\s{op}(?:-start)?\(", text)) for op in COLLECTIVES}


def _bytes(compiled) -> int:
  m = compiled.memory_analysis()
  return int(m.argument_size_in_bytes + m.temp_size_in_bytes)


def compile_recipe(path: str, *, device_memory_gb: float | None = None, debug: bool = False,
                   overrides: tuple[str, ...] = ()) -> dict[str, Any]:
  """Compiles recipe `path`'s update and decode on this process's devices; returns figures.

  The plan is for jax's device count (fake CPU devices: see `run_subprocess`) and
  `device_memory_gb` (default the recipe's HARDWARE, else 80); `debug` and `overrides`
  (`--set` strings) resolve the config as `r1jax train` does.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  # pylint: disable-next=import-outside-toplevel
  from r1jax import dryrun, experiment, policy_update, sampler, sharding, train_step

  module = experiment.load_experiment(path)
  cfg = experiment.resolve_config(module, debug=debug, overrides=list(overrides))
  memory = device_memory_gb or getattr(module, "HARDWARE", {}).get("device_memory_gb", 80.0)
  hardware = {"num_devices": jax.device_count(), "device_memory_gb": memory}
  abstract = lambda tree, sh: jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, sh)
  mesh = sharding.make_mesh(cfg.mesh)
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    tx, _ = train_step.make_optimizer(cfg.optim, 10)
    param_sh = sharding.param_shardings(cfg.model, mesh, cfg.mesh.rules)
    _, shapes = sharding.param_logical_and_abstract(cfg.model)
    params = sharding.sharded_abstract(shapes, param_sh)
    opt = sharding.sharded_abstract(jax.eval_shape(tx.init, shapes),
                                    sharding.opt_state_shardings(tx, param_sh, shapes))
    updater = policy_update.PolicyUpdater(cfg.model, cfg, tx, mesh)
    t_new = cfg.sampling.max_new_tokens
    t = cfg.max_prompt_len + t_new

    def batch(rows):
      zeros = lambda *s: np.zeros(s, np.float32)
      host = train_step.Batch(np.zeros((rows, t), np.int32), np.zeros((rows, t), bool),
                              zeros(rows, t_new), zeros(rows), zeros(rows, t_new),
                              zeros(rows, t_new), zeros(rows, t_new))
      return abstract(host, sharding.batch_shardings(host, mesh, cfg.mesh.rules))

    update_fn, logprobs_fn, _ = updater.compiled()  # The whole budget: the largest shapes.
    update = update_fn.lower(params, opt, batch(updater.rows_per_update), False).compile()
    full = batch(updater.rows)
    old = logprobs_fn.lower(params, full.tokens, full.attn_mask).compile()

    # The sampler gets the params in the trainer's layout (sample_rules None) or its own.
    s_params = params if cfg.mesh.sample_rules is None else sharding.sharded_abstract(
        shapes, sharding.param_shardings(cfg.model, mesh, cfg.mesh.sample_rules))
    prompts = cfg.rollout_chunk or cfg.prompts_per_step
    prompt_len = sampler.bucket_length(cfg.max_prompt_len, cfg.sampling)
    tokens = jax.ShapeDtypeStruct((prompts, prompt_len), np.int32)
    mask = jax.ShapeDtypeStruct((prompts, prompt_len), bool)
    key = jax.eval_shape(lambda: jax.random.key(0))
    no_prefix = jax.ShapeDtypeStruct((1, 0), np.int32)  # Every column in the prompts' rows.
    decode = sampler._jitted_generate("cpu").lower(  # pylint: disable=protected-access
        s_params, no_prefix, tokens, mask, key, cfg=cfg.model, sampling=cfg.sampling,
        num_samples=cfg.grpo.num_samples, progress=False).compile()
  plan = dryrun.dry_run_config(cfg, **hardware, platform="cpu")
  accel = dryrun.dry_run_config(cfg, **hardware)
  sample = lambda p: int(p.params_bytes + p.sampler_params_bytes + p.kv_cache_bytes
                         + p.sampler_work_bytes)
  return {
      "update_bytes": _bytes(update), "old_logprobs_bytes": _bytes(old),
      "decode_bytes": _bytes(decode),
      "decode_loop_collectives": loop_collectives(decode.as_text()),
      "plan_train_bytes": int(plan.train_peak_bytes),
      # What the sampler's own jit holds in the plan: the params it is handed, its decode
      # copy, the KV cache and its working set.
      "plan_sample_bytes": sample(plan),
      "plan_sample_accelerator_bytes": sample(accel),
      "device_bytes": int(hardware["device_memory_gb"] * GIB),
      "num_devices": int(hardware["num_devices"]), "rows_per_update": updater.rows_per_update,
      "decode_rows": prompts * cfg.grpo.num_samples,
      "decode_slots": min(cfg.sampling.max_rows or prompts * cfg.grpo.num_samples,
                          prompts * cfg.grpo.num_samples),
  }


def run_subprocess(paths: list[str], num_devices: int, *, device_memory_gb: float | None = None,
                   debug: bool = False, overrides: tuple[str, ...] = (),
                   timeout: float = 3600) -> dict[str, Any]:
  """`compile_recipe` of each path in a fresh process with `num_devices` fake CPU devices."""
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}",
             JAX_PLATFORMS="cpu")
  args = [sys.executable, "-m", "r1jax.dryrun_compile", *paths]
  if device_memory_gb:
    args += ["--device-memory-gb", str(device_memory_gb)]
  args += ["--debug"] * debug + [f"--set={o}" for o in overrides]
  proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                        check=False)
  if proc.returncode:
    raise RuntimeError(f"compiling {', '.join(paths)} on {num_devices} fake devices failed:\n"
                       f"{proc.stderr[-4000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def format_compiled(r: dict[str, Any]) -> str:
  """The compiler's figures beside the plan, for the console."""
  gib = lambda b: f"{b / GIB:6.1f} GiB" if b >= GIB else f"{b / 2**20:6.1f} MiB"
  off = lambda got, plan: f"plan {(plan - got) / got:+.0%}"
  loop = ", ".join(f"{v} {k}" for k, v in r["decode_loop_collectives"].items() if v) or "none"
  rows = f"{r['decode_rows']} rows"
  if r.get("decode_slots", r["decode_rows"]) < r["decode_rows"]:
    rows += f" in {r['decode_slots']} slots"  # Continuous batching.
  return "\n".join([
      f"Compiled on {r['num_devices']} fake CPU devices (XLA memory per device, arguments + "
      f"temporaries; device {gib(r['device_bytes'])}):",
      f"  update step ({r['rows_per_update']} rows)  {gib(r['update_bytes'])}   plan "
      f"{gib(r['plan_train_bytes'])} ({off(r['update_bytes'], r['plan_train_bytes'])})",
      f"  pi_old pass                {gib(r['old_logprobs_bytes'])}",
      f"  sampler ({rows})".ljust(27) + f"{gib(r['decode_bytes'])}   plan "
      f"{gib(r['plan_sample_bytes'])} ({off(r['decode_bytes'], r['plan_sample_bytes'])}; "
      f"XLA:CPU holds bf16 matmul weights in float32: on a GPU or TPU the plan is "
      f"{gib(r['plan_sample_accelerator_bytes']).strip()})",
      f"  collectives in the decode loop body: {loop}",
  ])


def _main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("paths", nargs="+")
  parser.add_argument("--device-memory-gb", type=float)
  parser.add_argument("--debug", action="store_true")
  parser.add_argument("--set", action="append", default=[])
  a = parser.parse_args()
  print(json.dumps({p: compile_recipe(p, device_memory_gb=a.device_memory_gb, debug=a.debug,
                                      overrides=tuple(a.set)) for p in a.paths}))


if __name__ == "__main__":
  _main()
