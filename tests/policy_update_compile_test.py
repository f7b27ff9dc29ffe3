"""The optimizer step of 7B paper recipes, compiled (not run) on their 8 fake CPU devices.

XLA's memory analysis of the real shapes must fit the recipe's named device memory, and the
dry run's analytic plan must stay within 30% of it: what tiny CPU models cannot show (a
micro-batch gathered onto a few devices, a float32 gradient sum, the pi_old pass).
"""

import os

import pytest

from tests._subprocess import run_json_script

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RECIPES = ("experiments/r1_zero_qwen2_5_math_7b.py",
            "experiments/dr_grpo_oat_zero_qwen2_5_math_7b.py")


@pytest.fixture(scope="module")
def compiled():
  return run_json_script(os.path.join(_ROOT, "tests", "_update_compile_checks.py"),
                         args=["8", *(os.path.join(_ROOT, r) for r in _RECIPES)])


@pytest.mark.parametrize("recipe", _RECIPES)
def test_update_step_fits_the_device_and_the_plan_is_within_30_percent(compiled, recipe):
  r = compiled[os.path.join(_ROOT, recipe)]
  usable = 0.9 * r["device_bytes"]  # The dry run's 10% headroom.
  assert r["update_bytes"] <= usable, r
  assert r["old_logprobs_bytes"] <= usable, r
  assert abs(r["plan_train_bytes"] - r["update_bytes"]) <= 0.3 * r["update_bytes"], r
