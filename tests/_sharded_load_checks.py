"""Loads a 2-shard safetensors checkpoint straight into shardings on 8 fake CPU devices.

Run by tests/models_weights_sharded_test.py in its own process (the fake device count is fixed
before jax is imported). Prints JSON: whether the params equal the unsharded load, whether any
device holds a whole leaf that its sharding splits, and the host's peak traced allocation
(tracemalloc sees numpy's buffers) during each load beside the largest leaf's bytes.
"""

import os
import sys
import tempfile
import tracemalloc

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import json  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from r1jax import sharding  # pylint: disable=g-import-not-at-top,wrong-import-position
from r1jax.models import transformer, weights  # pylint: disable=g-import-not-at-top,wrong-import-position
from r1jax.models.config import ModelConfig  # pylint: disable=g-import-not-at-top,wrong-import-position


def _peak(fn):
  """fn()'s result and the host memory it held beyond what the result keeps.

  On the CPU backend a device buffer may alias the numpy array it was made from, so the
  loaded params themselves show up in tracemalloc: the peak less what is still held at the
  end (the result) is the loader's transient host memory.
  """
  tracemalloc.start()
  out = fn()
  jax.block_until_ready(out)
  held, peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  return out, peak - held


def main() -> dict:
  # Many layers, so a stacked leaf is many times one layer's tensor.
  cfg = ModelConfig(family="llama", vocab_size=256, hidden_size=256, num_layers=8, num_heads=4,
                    num_kv_heads=2, head_dim=64, intermediate_size=1024, tie_embeddings=False)
  params = transformer.init(cfg, jax.random.key(0))
  folder = tempfile.mkdtemp()
  leaf_bytes = max(x.nbytes for x in jax.tree.leaves(params))
  weights.save_hf(cfg, params, folder, max_shard_bytes=leaf_bytes * 3)  # Several shards.
  shards = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
  mesh = sharding.make_mesh(sharding.MeshConfig())  # fsdp = 8.
  sharding.param_shardings(cfg, mesh)  # Traced once (cached): not the loading's memory.
  (_, plain), plain_peak = _peak(lambda: weights.load(folder))
  (_, sharded), sharded_peak = _peak(lambda: weights.load(folder, mesh=mesh))
  same = all(np.array_equal(np.asarray(a), np.asarray(b))
             for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(sharded)))
  whole = []
  for path, x in jax.tree_util.tree_flatten_with_path(sharded)[0]:
    split = any(axis is not None for axis in x.sharding.spec)
    if split and any(s.data.shape == x.shape for s in x.addressable_shards):
      whole.append(jax.tree_util.keystr(path))
  return {"shards": shards, "same": bool(same), "whole_on_a_device": whole,
          "plain_peak": plain_peak, "sharded_peak": sharded_peak, "leaf_bytes": leaf_bytes,
          "tensor_bytes": leaf_bytes // cfg.num_layers}


if __name__ == "__main__":
  json.dump(main(), sys.stdout)
