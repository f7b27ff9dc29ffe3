"""Splash attention under a mesh on 8 fake CPU devices; run by models_attention_test.py.

Runs in its own process because XLA's fake device count must be set before jax is imported.
The kernel (Pallas interpret mode on CPU) runs inside shard_map with rows split over
(data, fsdp) and kv heads over tensor; this prints the largest difference from the einsum
reference at real positions (logits), and the parameter gradients' largest difference relative
to each gradient's largest entry. The test file holds the tolerance.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8")
os.environ["JAX_PLATFORMS"] = "cpu"

import dataclasses  # pylint: disable=g-import-not-at-top
import json

import jax
import jax.numpy as jnp
import numpy as np

from r1jax import sharding
from r1jax.models import ModelConfig, transformer

REF = ModelConfig(attention="einsum", num_heads=8, num_kv_heads=2)
SPLASH = dataclasses.replace(REF, attention="splash")


def main() -> None:
  mesh_cfg = sharding.MeshConfig(data=2, fsdp=2, tensor=2)
  mesh = sharding.make_mesh(mesh_cfg)
  tokens = jax.random.randint(jax.random.key(1), (4, 12), 0, 256)
  mask = np.ones((4, 12), bool)
  mask[0, :5] = False  # Left padding.
  mask[3, :2] = False
  weights = jax.random.normal(jax.random.key(2), (4, 12, 256)) * mask[..., None]
  out = {}
  with sharding.axis_rules_context(mesh, mesh_cfg.rules):
    params = sharding.init_params_sharded(REF, jax.random.key(0), mesh, mesh_cfg.rules)
    batch = sharding.batch_shardings({"t": tokens, "m": mask}, mesh, mesh_cfg.rules)
    tok = jax.device_put(tokens, batch["t"])
    msk = jax.device_put(jnp.asarray(mask), batch["m"])
    for cfg in (REF, SPLASH):
      def loss(p, cfg=cfg):
        logits = transformer.forward(p, tok, cfg=cfg, attention_mask=msk)[0]
        return jnp.sum(logits * weights), logits
      step = jax.jit(jax.value_and_grad(loss, has_aux=True))
      (_, logits), grads = step(params)
      out[cfg.attention] = (np.asarray(logits), jax.tree.map(np.asarray, grads))
  real = mask[..., None]
  (ref_logits, ref_grads), (got_logits, got_grads) = out["einsum"], out["splash"]
  print(json.dumps({
      "logits_max_diff": float(np.abs(np.where(real, got_logits - ref_logits, 0)).max()),
      "grads_max_rel_diff": float(max(jax.tree.leaves(jax.tree.map(
          lambda a, b: float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)),
          got_grads, ref_grads)))),
  }))


if __name__ == "__main__":
  main()
