"""Loading straight into shardings: a multi-shard safetensors checkpoint on 8 fake devices."""

import os

from tests._subprocess import run_json_script


def test_sharded_load_equals_the_plain_load_and_never_holds_a_whole_leaf():
  r = run_json_script(os.path.join(os.path.dirname(__file__), "_sharded_load_checks.py"))
  assert len(r["shards"]) >= 2, r
  assert r["same"], r
  assert r["whole_on_a_device"] == [], r
  # Host memory beyond what the loaded params keep. On the CPU backend the 8 devices' shards
  # of a leaf are host memory too (one leaf in all); besides them the sharded loader holds
  # about one tensor being read and sliced. The plain path stacks whole leaves on the host and
  # copies them to the device.
  assert r["sharded_peak"] <= r["leaf_bytes"] + 3 * r["tensor_bytes"], r
  assert r["plain_peak"] > r["sharded_peak"] + r["leaf_bytes"] // 2, r
