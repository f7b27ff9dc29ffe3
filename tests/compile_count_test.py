"""The number of XLA compilations of a whole training run is pinned.

A small miniature run (stage 1, 6 GRPO steps with two optimizer steps per rollout and two
passes, the KL reference, a held-out evaluation every 2 steps, checkpoints every step) compiles
what it needs while its first rollouts run, then nothing: a new shape or config that makes a
step recompile (a length that is not bucketed, a Python scalar traced as a constant, a new
sampling config per evaluation) changes these counts and fails here. If a change adds a
compilation on purpose, update EXPECTED_TOTAL and say why in the commit.
"""

import os

from tests._subprocess import run_json_script

EXPECTED_TOTAL = 62
WARM_UP_CALLS = 3  # Rollout calls (training and evaluation) whose spans may compile.


def test_a_training_run_compiles_a_pinned_number_of_times_and_nothing_after_warm_up():
  out = run_json_script(os.path.join(os.path.dirname(__file__), "_compile_count_run.py"))
  later = out["per_rollout_call"][WARM_UP_CALLS:]
  assert len(later) >= 8, out  # The run's later steps and evaluations were counted.
  assert not any(later), out
  assert out["total"] == EXPECTED_TOTAL, out
  # One sampler per sampling config: the rollout, the greedy and the sampled evaluation.
  assert out["by_name"]["jit(_generate)"] == 3, out
