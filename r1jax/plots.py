"""PNG curves of a run, drawn from its `metrics.jsonl`: the R1 figures in miniature.

Place in the pipeline: after training (train.py calls `plot_run` at the end of a run) and on
demand (`r1jax plot WORKDIR`). Two figures, written into the workdir:
  accuracy_reward.png  accuracy (`accuracy/*`, and evaluation accuracies) and reward vs step;
  length.png           mean response length overall, of correct and of wrong answers vs step.
Missing metrics are skipped, so partial runs and tasks without e.g. lenient accuracy still plot.
matplotlib is an optional dependency (the `plots` extra); it is imported only here, and its
absence is an ImportError with the install command.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

from r1jax import metrics as metrics_lib

ACCURACY_FILE = "accuracy_reward.png"
LENGTH_FILE = "length.png"

_LENGTH_KEYS = (("length/mean", "all"), ("length/correct_mean", "correct"),
                ("length/wrong_mean", "wrong"))


def _figure(**kwargs):
  """A matplotlib Figure outside pyplot: writing PNGs leaves the caller's backend alone.

  So a notebook's inline plots keep working after a run, and no display is needed.
  """
  try:
    from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("Plotting needs matplotlib, which is not installed; run "
                      "`pip install matplotlib` (or `pip install r1jax[plots]`).") from None
  return Figure(**kwargs)


def _series(records: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
  """(steps, values) where `key` is present and finite."""
  steps, values = [], []
  for r in records:
    v = r.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
      steps.append(r["step"])
      values.append(float(v))
  return steps, values


def _accuracy_keys(keys: set[str]) -> list[str]:
  main = [k for k in ("accuracy/strict", "accuracy/lenient") if k in keys]
  others = sorted(k for k in keys if k not in main and (
      k.startswith("accuracy/") or (k.startswith("eval/") and "accuracy" in k)))
  return main + others


def _reward_keys(keys: set[str]) -> list[str]:
  # reward/mean plus one curve per reward function; spreads (std/min/max) and the count of
  # failed reward calls would only clutter.
  spread = ("std", "min", "max", "errors")
  others = sorted(k for k in keys if k.startswith("reward/") and k != "reward/mean"
                  and not k.rsplit("/", 1)[-1].endswith(spread))
  return (["reward/mean"] if "reward/mean" in keys else []) + others


def _draw(ax, records, keys_labels, title, ylabel) -> bool:
  drawn = False
  for key, label in keys_labels:
    steps, values = _series(records, key)
    if steps:
      ax.plot(steps, values, label=label, marker="o" if len(steps) <= 30 else None,
              markersize=3, linewidth=2 if key in ("reward/mean", "length/mean") else 1.2)
      drawn = True
  ax.set_title(title)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  if drawn:
    ax.legend(fontsize=8)
  return drawn


def plot_run(workdir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[str]:
  """Draws the run's curves as PNG files; returns their paths.

  Args:
    workdir: a run's directory with `metrics.jsonl`.
    out_dir: where to write the PNGs (default: the workdir).

  Returns:
    Paths of the written files: accuracy/reward when any of those metrics exist, length when
    any `length/*` mean exists.
  """
  records = metrics_lib.read_metrics(workdir)
  keys = {k for r in records for k in r}
  accuracy = [(k, k) for k in _accuracy_keys(keys)]
  reward = [(k, k) for k in _reward_keys(keys)]
  length = [(k, label) for k, label in _LENGTH_KEYS if k in keys]
  if not (accuracy or reward or length):
    raise ValueError(f"{os.fspath(workdir)} has no accuracy/*, reward/* or length/* metrics to "
                     f"plot ({len(records)} records).")
  _figure()  # Fails early, with the install hint, when matplotlib is missing.
  out_dir = os.fspath(out_dir if out_dir is not None else workdir)
  os.makedirs(out_dir, exist_ok=True)
  name = os.path.basename(os.path.abspath(os.fspath(workdir)))
  paths = []

  if accuracy or reward:
    fig = _figure(figsize=(11, 4))
    ax_acc, ax_rew = fig.subplots(1, 2)
    _draw(ax_acc, records, accuracy, "accuracy", "fraction correct")
    _draw(ax_rew, records, reward, "reward", "mean reward")
    fig.suptitle(name)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, ACCURACY_FILE))
    fig.savefig(paths[-1], dpi=110)

  if length:
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    _draw(ax, records, length, f"{name}: response length", "tokens")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, LENGTH_FILE))
    fig.savefig(paths[-1], dpi=110)
  return paths
