"""Optimizer steps per rollout, seen as a user sees them: the CLI runs of two debug variants.

DAPO's debug variant takes two optimizer steps per rollout with pi_old fixed before the first,
so (at a toy learning rate) the second step's ratios leave 1 and clip-higher binds; with one step per rollout the only
step is on-policy and no clip can bind. The miniature at a sampling temperature other than 1
shows that the trainer scores tokens at the temperature the sampler drew them at.
"""

import pathlib
import subprocess
import sys

from r1jax.metrics import read_metrics

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _train(workdir: pathlib.Path, experiment: str, *overrides: str) -> list[dict]:
  args = [sys.executable, "-m", "r1jax.cli", "train", str(_ROOT / "experiments" / experiment),
          "--debug", "--workdir", str(workdir)]
  for o in overrides:
    args += ["--set", o]
  proc = subprocess.run(args, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return [r for r in read_metrics(workdir) if "clip/high_frac" in r]


# A tiny random model at the recipe's lr (1e-6) barely moves in one step; at a toy lr the
# first optimizer step moves it enough for the second step's ratios to pass 1 + eps_high.
_TOY_LR = ("optim.lr=1e-2", "optim.warmup_steps=0")


def test_dapo_debug_clips_with_two_updates_per_rollout_and_never_with_one(tmp_path):
  rows = _train(tmp_path / "u2", "dapo_qwen2_5_32b.py", *_TOY_LR)
  assert all(r["updates"] == 2 for r in rows)
  assert max(r["clip/high_frac"] for r in rows) > 0
  assert any(r["ratio/max"] != 1.0 for r in rows)
  rows = _train(tmp_path / "u1", "dapo_qwen2_5_32b.py", *_TOY_LR, "updates_per_rollout=1")
  assert all(r["updates"] == 1 for r in rows)
  # On-policy: pi_old is the stop-gradient of the step's own logprobs, every ratio exactly 1.
  assert all(r["clip/high_frac"] == 0.0 and r["clip/low_frac"] == 0.0 for r in rows)
  assert all(r["ratio/max"] == 1.0 and r["ratio/min"] == 1.0 for r in rows)


def test_miniature_at_temperature_0_6_logs_no_logprob_gap(tmp_path):
  rows = _train(tmp_path / "t06", "miniature.py", "sampling.temperature=0.6")
  assert rows and all(r["logprob_gap/max"] <= 1e-5 for r in rows)
