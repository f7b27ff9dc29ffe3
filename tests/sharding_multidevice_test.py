"""Sharded runs equal one-device runs on 8 fake CPU devices, for four (data, fsdp, tensor) meshes.

The checks run in one subprocess (tests/_multidevice_checks.py) because the fake device count
must be set before jax is imported, and this pytest process has already imported it. The
subprocess measures; the tolerances live here.
"""

import os

import pytest

from tests._subprocess import run_json_script

MESHES = ("8x1x1", "2x4x1", "1x4x2", "2x2x2")
ATOL = 1e-5  # float32 sharded vs one device: only the reduction order differs.
INIT_ATOL = 1e-7  # Same random bits; only the normal transform may fuse differently.
_SCRIPT = os.path.join(os.path.dirname(__file__), "_multidevice_checks.py")


@pytest.fixture(scope="module")
def results():
  return run_json_script(_SCRIPT)


def test_subprocess_sees_eight_devices(results):
  assert results["num_devices"] == 8


@pytest.mark.parametrize("mesh", MESHES)
def test_params_born_sharded_equal_single_device_init(results, mesh):
  r = results[mesh]
  assert r["init_max_diff"] <= INIT_ATOL
  assert r["init_shardings_match"]
  if mesh != "8x1x1":  # fsdp or tensor > 1 must actually split params.
    assert r["num_split_params"] > 0
  else:
    assert r["num_split_params"] == 0


@pytest.mark.parametrize("mesh", MESHES)
def test_dryrun_param_bytes_equal_real_shards(results, mesh):
  assert results[mesh]["dryrun_param_bytes"] == results[mesh]["actual_param_bytes"]


@pytest.mark.parametrize("mesh", MESHES)
def test_axis_rules_context_applies_model_constraints(results, mesh):
  assert results[mesh]["constraint_in_hlo"]
  assert not results[mesh]["constraint_without_context"]


@pytest.mark.parametrize("mesh", MESHES)
def test_sharded_forward_grad_and_decode_match_single_device(results, mesh):
  r = results[mesh]
  assert r["logits_max_diff"] <= ATOL
  assert r["grads_max_diff"] <= ATOL
  assert r["decode_max_diff"] <= ATOL
  assert r["decode_tokens_equal"]


def test_indivisible_batch_falls_back_to_replication_and_still_matches(results):
  for mesh in MESHES:
    assert results[mesh]["odd_batch_spec"] == "P(None, None)"
  assert results["2x2x2"]["odd_batch_logits_max_diff"] <= ATOL


@pytest.mark.parametrize("mesh", MESHES)
def test_optimizer_state_mirrors_param_shardings(results, mesh):
  assert results[mesh]["opt_mu_shardings_match"]
  assert results[mesh]["opt_count_replicated"]


@pytest.mark.parametrize("mesh", MESHES)
def test_reshard_to_sample_layout_keeps_values(results, mesh):
  assert results[mesh]["reshard_max_diff"] == 0.0
  assert results[mesh]["reshard_shardings_match"]


@pytest.mark.parametrize("mesh", MESHES)
def test_host_local_to_global_single_process(results, mesh):
  assert results[mesh]["host_local_equal"]
  assert results[mesh]["host_local_sharding"]


def test_continuous_batching_decodes_each_slot_on_its_own_device(results):
  # 16 slots over 8 devices, finishing in a narrow batch of 8. Each device's slots take only
  # the rows of the prompts on that device (a slot group), so nothing crosses devices:
  #  * in the decode loops: each slot's cache write (its own position) is a scatter batched
  #    over the slots; indexing the slots by position made XLA all-gather the cache parts on
  #    every step and layer (R1-Zero, 256 slots on 8 devices: 905 all-gathers in the loop);
  #    the outputs are written within each group, so no slot ids or tokens are gathered;
  #  * outside them: starting a row copies its prompt's keys and values within the group, and
  #    the narrow tail moves each group's rows within it. Across all slots, these copies were
  #    built whole on every device and summed (R1-Zero: 96 GiB a device against 46 static);
  #  * in the prefill's loop over packed chunks: each device packs its own prompts, and
  #    scatters their keys and values into its own part of the prompts' cache.
  sizes = results["8x1x1"]["continuous_decode_collectives"]
  assert sizes == {"loop_all_gathers": [], "outside": []}, sizes