"""A sharded GRPO update and greedy sampler run equal one device's, on 8 fake CPU devices.

The acceptance check of scale-out: under meshes (data, fsdp, tensor) = (8,1,1), (2,4,1),
(1,4,2), (2,2,2), the same loss, gradients and greedy tokens as one device (float32, 1e-5).
The computations run in one subprocess (tests/_multidevice_rl_checks.py) because the fake
device count must be set before jax is imported; it measures, the tolerances live here.
"""

import os

import pytest

from tests._subprocess import run_json_script

MESHES = ("8x1x1", "2x4x1", "1x4x2", "2x2x2")
ATOL = 1e-5  # float32 sharded vs one device: only the reduction order differs.
_SCRIPT = os.path.join(os.path.dirname(__file__), "_multidevice_rl_checks.py")


@pytest.fixture(scope="module")
def results():
  return run_json_script(_SCRIPT)


def test_subprocess_sees_eight_devices(results):
  assert results["num_devices"] == 8


def test_reference_exercises_every_path(results):
  """Guards against a vacuous comparison: real gradients, clipping, KL, ragged stops."""
  ref = results["reference"]
  m = ref["metrics"]
  assert ref["grad_abs_max"] > 1e-2
  assert m["clip/low_frac"] > 0 and m["clip/high_frac"] > 0 and m["kl"] > 0
  # Rows stop at an eos, at a stop sequence, or run out of budget (10 tokens).
  assert ref["lengths"] == [8, 8, 7, 7, 10, 10, 3, 3]
  assert ref["finished"] == [True, True, True, True, False, False, True, True]


@pytest.mark.parametrize("mesh", MESHES)
def test_sharded_grpo_update_matches_single_device(results, mesh):
  r = results[mesh]
  assert r["batch_rows_split"]
  assert r["params_split"] == (mesh != "8x1x1")  # fsdp or tensor > 1 splits params.
  assert r["ref_logprobs_max_diff"] <= ATOL
  assert r["logprobs_max_diff"] <= ATOL
  assert r["grads_max_diff"] <= ATOL  # SGD(1): the updated params differ by the gradients'.
  for name, diff in r["metrics_max_diff"].items():
    assert diff <= ATOL, name


@pytest.mark.parametrize("mesh", MESHES)
def test_sharded_greedy_sampling_matches_single_device(results, mesh):
  r = results[mesh]
  assert r["tokens_equal"] and r["lengths_equal"] and r["finished_equal"]
  assert r["sample_logprobs_max_diff"] <= ATOL
  assert r["sample_layout"] == (mesh == "1x4x2")
