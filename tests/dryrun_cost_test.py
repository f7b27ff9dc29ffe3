"""The run-cost projection: device-hours from FLOPs at given MFUs, and its line in the report."""

import pytest

from r1jax import dryrun, dryrun_cost, experiment


def test_cost_is_flops_over_peak_times_mfu():
  c = dryrun_cost.run_cost(3600 * 1e15 * 0.5, 3600 * 1e15 * 0.1, steps=2, num_devices=4,
                           peak_flops=1e15, update_mfu=0.5, rollout_mfu=0.1,
                           price_per_device_hour=3.0)
  assert (c.update_hours, c.rollout_hours, c.device_hours) == pytest.approx((2.0, 2.0, 4.0))
  assert c.wall_hours == pytest.approx(1.0) and c.dollars == pytest.approx(12.0)
  with pytest.raises(ValueError, match="update_mfu must be in \\(0, 1\\], got 1.5"):
    dryrun_cost.run_cost(1.0, 1.0, steps=1, num_devices=1, update_mfu=1.5)


def test_recipe_dry_run_prints_the_whole_run_cost():
  module = experiment.load_experiment("experiments/r1_zero_qwen2_5_math_7b.py")
  report = dryrun.dry_run_config(module.get_config(), **module.HARDWARE)
  text = dryrun.format_report(report)
  assert f"Whole run ({module.get_config().num_steps} steps):" in text.splitlines()[-2]
  assert "device-hours" in text and "rollout MFU 10%" in text
