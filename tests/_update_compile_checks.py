"""Compiles (never runs) a paper recipe's optimizer step on its device count of fake CPU devices.

Run by tests/policy_update_compile_test.py in its own process (the fake device count is fixed
before jax is imported). For each recipe named on the command line: the jitted mini-batch
update of `r1jax.policy_update.PolicyUpdater` and its pi_old pass are lowered with abstract,
sharded params, optimizer state and batch, compiled, and XLA's per-device memory analysis is
printed as JSON beside the dry run's analytic training peak.
"""

import os
import sys

_DEVICES = int(sys.argv[1])
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={_DEVICES}"

import json  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from r1jax import dryrun, experiment, policy_update, sharding, train_step  # pylint: disable=g-import-not-at-top,wrong-import-position


def _abstract(tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree,
                      shardings)


def _bytes(compiled) -> int:
  m = compiled.memory_analysis()
  # Donated inputs alias outputs: arguments + temporaries is the peak a device holds.
  return int(m.argument_size_in_bytes + m.temp_size_in_bytes)


def check(path: str) -> dict:
  module = experiment.load_experiment(path)
  cfg = module.get_config()
  assert module.HARDWARE["num_devices"] == jax.device_count(), module.HARDWARE
  mesh = sharding.make_mesh(cfg.mesh)
  with sharding.axis_rules_context(mesh, cfg.mesh.rules):
    tx, _ = train_step.make_optimizer(cfg.optim, 10)
    param_sh = sharding.param_shardings(cfg.model, mesh, cfg.mesh.rules)
    _, abstract = sharding.param_logical_and_abstract(cfg.model)
    params = sharding.sharded_abstract(abstract, param_sh)
    opt = sharding.sharded_abstract(jax.eval_shape(tx.init, abstract),
                                    sharding.opt_state_shardings(tx, param_sh, abstract))
    updater = policy_update.PolicyUpdater(cfg.model, cfg, tx, mesh)
    t = cfg.max_prompt_len + cfg.sampling.max_new_tokens
    t_new = cfg.sampling.max_new_tokens

    def batch(rows):
      zeros = lambda *s: np.zeros(s, np.float32)
      host = train_step.Batch(np.zeros((rows, t), np.int32), np.zeros((rows, t), bool),
                              zeros(rows, t_new), zeros(rows), zeros(rows, t_new),
                              zeros(rows, t_new), zeros(rows, t_new))
      return _abstract(host, sharding.batch_shardings(host, mesh, cfg.mesh.rules))

    step = updater._update.lower(params, opt, batch(updater.rows_per_update), False).compile()  # pylint: disable=protected-access
    full = batch(updater.rows)
    old = updater._logprobs.lower(params, full.tokens, full.attn_mask).compile()  # pylint: disable=protected-access
  plan = dryrun.dry_run_config(cfg, **module.HARDWARE)
  return {"update_bytes": _bytes(step), "old_logprobs_bytes": _bytes(old),
          "plan_train_bytes": int(plan.train_peak_bytes),
          "device_bytes": int(module.HARDWARE["device_memory_gb"] * 2**30),
          "rows_per_update": updater.rows_per_update}


if __name__ == "__main__":
  json.dump({p: check(p) for p in sys.argv[2:]}, sys.stdout)
