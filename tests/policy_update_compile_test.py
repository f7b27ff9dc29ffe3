"""The optimizer step and the sampler of 7B paper recipes, compiled (not run) on fake devices.

`r1jax.dryrun_compile` (what `r1jax train RECIPE --dry-run --compile` runs) lowers the real
update step, pi_old pass and sampler with abstract sharded params in a process of its own,
on as many fake CPU devices as the recipe's HARDWARE names. XLA's memory analysis of the real
shapes must fit the recipe's named device memory, the dry run's analytic plans of the update
and of the sampler must each stay within 30% of it (the sampler's as planned for XLA:CPU,
which holds bf16 matmul weights in float32), and the decode loop must hold no all-gather (the
default sample layout gathers the weights once, before the loop): what tiny CPU models cannot
show (a micro-batch gathered onto a few devices, a float32 gradient sum, weights gathered on
every token).
"""

import collections
import os

import pytest

from r1jax import dryrun_compile, experiment

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RECIPES = ("experiments/r1_zero_qwen2_5_math_7b.py",
            "experiments/dr_grpo_oat_zero_qwen2_5_math_7b.py")


@pytest.fixture(scope="module")
def compiled():
  """Each recipe compiled on its HARDWARE's device count (one process per count)."""
  by_count = collections.defaultdict(list)
  for r in _RECIPES:
    path = os.path.join(_ROOT, r)
    by_count[experiment.load_experiment(path).HARDWARE["num_devices"]].append(path)
  out = {}
  for count, paths in by_count.items():
    out.update(dryrun_compile.run_subprocess(paths, count))
  return out


@pytest.mark.parametrize("recipe", _RECIPES)
def test_update_step_fits_the_device_and_the_plan_is_within_30_percent(compiled, recipe):
  r = compiled[os.path.join(_ROOT, recipe)]
  usable = 0.9 * r["device_bytes"]  # The dry run's 10% headroom.
  assert r["update_bytes"] <= usable, r
  assert r["old_logprobs_bytes"] <= usable, r
  assert abs(r["plan_train_bytes"] - r["update_bytes"]) <= 0.3 * r["update_bytes"], r
  assert r["num_devices"] == experiment.load_experiment(os.path.join(_ROOT, recipe)).HARDWARE[
      "num_devices"]


@pytest.mark.parametrize("recipe", _RECIPES)
def test_sampler_fits_the_plan_is_within_30_percent_and_its_loop_gathers_no_weights(
    compiled, recipe):
  r = compiled[os.path.join(_ROOT, recipe)]
  assert r["decode_bytes"] <= 0.9 * r["device_bytes"], r
  assert abs(r["plan_sample_bytes"] - r["decode_bytes"]) <= 0.3 * r["decode_bytes"], r
  # On an accelerator the decode copy is bf16: the plan there is the CPU plan less half of
  # the float32 copy XLA:CPU holds, never more.
  assert r["plan_sample_accelerator_bytes"] < r["plan_sample_bytes"], r
  assert r["decode_loop_collectives"]["all-gather"] == 0, r


@pytest.fixture(scope="module")
def variant(compiled):
  """R1-Zero compiled again with shared prompts in the update and continuous batching over
  256 slots in the sampler (one process for both: they are separate programs)."""
  recipe = os.path.join(_ROOT, _RECIPES[0])
  return dryrun_compile.run_subprocess(
      [recipe], 8, overrides=("share_prompts=true", "sampling.max_rows=256"))[recipe]


def test_shared_prompts_update_fits_and_needs_no_more_memory_than_rows_run_whole(
    compiled, variant):
  # R1-Zero's 32-row micro-batches hold 2 groups of 16 on 8 devices: the completions keep
  # the rows' sharding (a packed row per group did not: 131 GB a device), and the prompt
  # stream, run once a group, only takes memory away.
  whole = compiled[os.path.join(_ROOT, _RECIPES[0])]
  assert variant["update_bytes"] <= min(whole["update_bytes"], 0.9 * variant["device_bytes"])
  assert variant["old_logprobs_bytes"] <= whole["old_logprobs_bytes"]


def test_continuous_batching_fits_in_no_more_memory_than_the_static_schedule(compiled, variant):
  # 256 slots for 512 rows: each device's 32 slots take the rows of its own 4 prompts. When
  # a start copied prompts' keys and values into any slot, or the narrow tail moved rows
  # across all slots, every device built those copies for all 256 slots: 96 GiB a device.
  static = compiled[os.path.join(_ROOT, _RECIPES[0])]
  assert variant["decode_bytes"] <= min(static["decode_bytes"], 0.9 * variant["device_bytes"])
  assert variant["decode_loop_collectives"]["all-gather"] == 0, variant
  # The plan counts the slots' caches, not one a row.
  assert abs(variant["plan_sample_bytes"] - variant["decode_bytes"]) <= 0.3 * variant[
      "decode_bytes"], variant
