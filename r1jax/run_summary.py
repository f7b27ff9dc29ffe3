"""The few lines a training run ends with: what changed, how long it took, what to run next.

Place in the pipeline: after `train.run` (`r1jax train` prints it). It reads the workdir that
the run wrote (metrics.jsonl with its held-out evaluations `eval/greedy/...` and
`eval/sampled/...`, config.json, samples.jsonl, the PNGs) and returns text; it computes nothing
new. The first evaluation (step 0: after the optional SFT stage, before any RL step) is the
"before", the last one the "after".
"""

from __future__ import annotations

import glob
import json
import os
import shlex
from typing import Any

from r1jax import metrics as metrics_lib
from r1jax import plots

__all__ = ["summarize", "format_duration"]

# The share that thinks: the miniature's `worked` metric (its task reports it per evaluation).
_THINK_KEY = "worked"


def format_duration(seconds: float) -> str:
  """`3 min 25 s`, or `42 s` under a minute."""
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds} s"
  return f"{seconds // 60} min {seconds % 60} s"


def _percent(value: float) -> str:
  return f"{100 * value:.1f}%"


def _change(before: dict, after: dict, key: str, fmt) -> str | None:
  if key not in before or key not in after:
    return None
  return f"{fmt(before[key])} -> {fmt(after[key])}"


def _config(workdir: str) -> dict[str, Any]:
  try:
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return {}


def _example_prompt(workdir: str, chat: bool) -> str:
  """A prompt of the run's own task (from samples.jsonl) for the `r1jax sample` line."""
  if not chat:  # A chat run's stored prompt holds the rendered template; sample adds its own.
    try:
      with open(os.path.join(workdir, metrics_lib.SAMPLES_FILE), encoding="utf-8") as f:
        for line in f:
          prompt = json.loads(line).get("prompt")
          if prompt:
            return prompt
    except (OSError, json.JSONDecodeError):
      pass
  return "What is 12 * 7?"


def summarize(workdir: str | os.PathLike, wall_s: float | None = None) -> str:
  """The end-of-run text for `workdir` (as the user typed it: the commands reuse it).

  Args:
    workdir: the training run's directory.
    wall_s: the run's wall time in seconds, if known.

  Returns:
    Lines: held-out greedy and sampled accuracy, response length and the share that thinks,
    before -> after; wall time; where the plots and metrics are; the next commands.
  """
  workdir = os.fspath(workdir)
  records = metrics_lib.read_metrics(workdir)
  evals = [r for r in records if "eval/greedy/strict" in r or "eval/sampled/strict" in r]
  cfg = _config(workdir)
  lines = []
  head = f"finished in {format_duration(wall_s)}" if wall_s is not None else "finished"
  steps = max((r["step"] for r in records), default=0)
  lines.append(f"{head}: {steps} RL steps in {workdir}")
  sft = next((r for r in records if "sft/steps" in r), None)
  if sft is not None:  # Stage 1's last metrics, when the trainer records them.
    crit = sft.get("sft/heldout_accuracy")
    lines.append(f"stage 1 (SFT): {sft['sft/steps']} steps" + (
        "" if crit is None else f", held-out criterion {_percent(crit)}"))
  if len(evals) >= 2:
    before, after = evals[0], evals[-1]
    num = cfg.get("eval", {}).get("num_examples")
    where = f"{num} held-out questions" if num else "held-out questions"
    lines.append(f"{where}, before RL (step {before['step']}) -> after (step {after['step']}):")
    # Strict grading, unless it is 0 in every evaluation and lenient is not (prose answers).
    graded, note = "strict", ""
    if not any(r.get(f"eval/{m}/strict") for r in evals for m in ("greedy", "sampled")) and any(
        r.get(f"eval/{m}/lenient") for r in evals for m in ("greedy", "sampled")):
      graded, note = "lenient", " (lenient)"
    rows = [
        (f"greedy accuracy{note}", f"eval/greedy/{graded}", _percent),
        (f"sampled accuracy{note}", f"eval/sampled/{graded}", _percent),
        ("greedy length", "eval/greedy/length", lambda v: f"{v:.1f} tokens"),
        ("sampled length", "eval/sampled/length", lambda v: f"{v:.1f} tokens"),
        ("greedy answers that think", f"eval/greedy/{_THINK_KEY}", _percent),
        ("sampled answers that think", f"eval/sampled/{_THINK_KEY}", _percent),
        # The aha miniature's checking and its reflective marker (absent elsewhere: skipped).
        ("sampled answers that check", "eval/sampled/verify", _percent),
        ("sampled <wait> per answer", "eval/sampled/wait", lambda v: f"{v:.2f}"),
        ("greedy answers that work", "eval/greedy/working", _percent),
        ("sampled answers that work", "eval/sampled/working", _percent),
    ]
    for label, key, fmt in rows:
      if key.endswith("/working") and not (before.get(key) or after.get(key)):
        continue  # No written-out calculation before or after (the miniature works in columns).
      change = _change(before, after, key, fmt)
      if change:
        lines.append(f"  {label:<27}{change}")
  else:
    lines.append("no held-out evaluation before and after training (set eval.every to get one)")
  pngs = [name for name in (plots.ACCURACY_FILE, plots.LENGTH_FILE, plots.SLIDE_FILE,
                            plots.BEHAVIOUR_FILE)
          if os.path.exists(os.path.join(workdir, name))]
  q = shlex.quote(workdir)
  lines.append("plots: " + (", ".join(os.path.join(workdir, n) for n in pngs) if pngs else
                            f"none yet (r1jax plot {q})"))
  lines.append(f"metrics: {os.path.join(workdir, metrics_lib.METRICS_FILE)}")
  if os.path.isdir(os.path.join(workdir, metrics_lib.TENSORBOARD_DIR)):
    lines.append(f"  tensorboard --logdir {shlex.quote(os.path.join(workdir, 'tensorboard'))}")
  # An offline W&B run (WANDB_MODE=offline) waits in the workdir to be uploaded.
  offline = sorted(glob.glob(os.path.join(workdir, "wandb", "offline-run-*")))
  if offline:
    lines.append(f"  wandb sync {shlex.quote(offline[-1])}")
  chat = bool(cfg.get("chat", False))
  num = cfg.get("eval", {}).get("num_examples") or 64
  lines.append("next:")
  lines.append(f"  r1jax eval --model {q} --limit {num} --k 1 --temperature 0")
  lines.append(f"  r1jax sample --model {q} --prompt {shlex.quote(_example_prompt(workdir, chat))}"
               f" --temperature 0")
  lines.append(f"  r1jax plot {q}")
  return "\n".join(lines)
