"""PNG curves of a run, drawn from its `metrics.jsonl`: the R1 figures in miniature.

Place in the pipeline: after training (train.py calls `plot_run` at the end of a run) and on
demand (`r1jax plot WORKDIR`). Three figures, written into the workdir:
  accuracy_reward.png   the share of answers that are right, the share that think (work the
                        problem inside <think>...</think>), and the reward, vs RL step;
  length.png            mean response length in tokens vs RL step;
  accuracy_length.png   one slide: accuracy and length side by side, training and held-out;
  behaviour.png         held-out share of answers that show their working, and reflective
                        words per 1,000 tokens (when the run logged them).
Each panel draws the training rollouts (temperature of the run) and, where the run has them,
the held-out evaluations (`eval/greedy/...`, `eval/sampled/...`) beside them. Missing metrics
are skipped, so partial runs and tasks without e.g. lenient accuracy still plot. matplotlib is
imported only here; its absence is an ImportError with the install command.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

from r1jax import metrics as metrics_lib

ACCURACY_FILE = "accuracy_reward.png"
LENGTH_FILE = "length.png"
SLIDE_FILE = "accuracy_length.png"
BEHAVIOUR_FILE = "behaviour.png"

# Metric names that measure correctness, and those that measure the share of answers that
# think (`worked`: the miniature's `<think>...</think>` before `A:`; `think_frac`: `</think>`
# anywhere); anything else under accuracy/ is drawn on its own panel under its own name.
_CORRECT = ("strict", "lenient", "accuracy")
_THINKS = ("worked", "think", "think_frac")
# Where a curve comes from, for legends: training rollouts or a held-out evaluation.
_SOURCES = (("accuracy/", "training rollouts"), ("eval/greedy/", "held-out, greedy"),
            ("eval/sampled/", "held-out, sampled"))


def _figure(**kwargs):
  """A matplotlib Figure outside pyplot: writing PNGs leaves the caller's backend alone.

  So a notebook's inline plots keep working after a run, and no display is needed.
  """
  try:
    from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("Plotting needs matplotlib, which is not installed; run "
                      "`pip install matplotlib` (a dependency of r1jax, so "
                      "`pip install -e .` brings it).") from None
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


def _label(key: str) -> str:
  """`eval/greedy/strict` -> `held-out, greedy (strict)`; unknown keys stay as they are."""
  for prefix, source in _SOURCES:
    if key.startswith(prefix):
      return f"{source} ({key[len(prefix):]})"
  if key == "think_frac":
    return "training rollouts (</think> anywhere)"
  return key


def _metric(key: str) -> str:
  return key.rsplit("/", 1)[-1]


def _is_eval(key: str) -> bool:
  return key.startswith("eval/")


def _correct_keys(keys: set[str]) -> list[str]:
  """Training accuracy first (strict, lenient), then held-out accuracies."""
  train = [f"accuracy/{m}" for m in ("strict", "lenient") if f"accuracy/{m}" in keys]
  held = sorted(k for k in keys if _is_eval(k) and (
      _metric(k) in _CORRECT or "accuracy" in _metric(k)))
  return train + held


def _think_keys(keys: set[str]) -> list[str]:
  return sorted(k for k in keys if (k.startswith("accuracy/") or _is_eval(k))
                and _metric(k) in _THINKS) + (["think_frac"] if "think_frac" in keys else [])


def _other_accuracy_keys(keys: set[str]) -> list[str]:
  return sorted(k for k in keys if k.startswith("accuracy/")
                and _metric(k) not in _CORRECT + _THINKS)


def _reward_keys(keys: set[str]) -> list[str]:
  # reward/mean plus one curve per reward function; spreads (std/min/max) and the count of
  # failed reward calls would only clutter.
  spread = ("std", "min", "max", "errors")
  others = sorted(k for k in keys if k.startswith("reward/") and k != "reward/mean"
                  and not k.rsplit("/", 1)[-1].endswith(spread))
  return (["reward/mean"] if "reward/mean" in keys else []) + others


def _length_keys(keys: set[str]) -> list[tuple[str, str]]:
  train = [(k, label) for k, label in (
      ("length/mean", "training rollouts, all"), ("length/correct_mean", "training, correct"),
      ("length/wrong_mean", "training, wrong")) if k in keys]
  held = [(k, label) for k, label in (("eval/greedy/length", "held-out, greedy"),
                                      ("eval/sampled/length", "held-out, sampled")) if k in keys]
  return train + held


def _trend(records, keys_labels, what: str, up: str, down: str) -> str:
  """A slide title that says which way the held-out greedy curve went (else the first curve)."""
  keys = [k for k, _ in keys_labels]
  greedy = [k for k in keys if k.startswith("eval/greedy/")]
  values = _series(records, greedy[0])[1] if greedy else []
  if len(values) < 2 and keys:
    values = _series(records, keys[0])[1]
  if len(values) < 2 or values[-1] == values[0]:
    return what
  return f"{what} {up if values[-1] > values[0] else down}"


def _draw(ax, records, keys_labels, title, ylabel, share: bool = False) -> bool:
  drawn = False
  for key, label in keys_labels:
    steps, values = _series(records, key)
    if steps:
      # Held-out curves are few points (every eval.every steps): markers, dashed when sampled.
      held = _is_eval(key)
      ax.plot(steps, values, label=label, marker="o" if held or len(steps) <= 30 else None,
              markersize=4 if held else 3, linestyle="--" if "/sampled/" in key else "-",
              linewidth=2 if held or key in ("reward/mean", "length/mean") else 1.2)
      drawn = True
  ax.set_title(title)
  ax.set_xlabel("RL step (0 = before RL, after any stage 1)")
  ax.set_ylabel(ylabel)
  if share:
    ax.set_ylim(-0.03, 1.03)
  ax.grid(alpha=0.3)
  if drawn:
    ax.legend(fontsize=7)
  return drawn


def plot_run(workdir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[str]:
  """Draws the run's curves as PNG files; returns their paths.

  Args:
    workdir: a run's directory with `metrics.jsonl`.
    out_dir: where to write the PNGs (default: the workdir).

  Returns:
    Paths of the written files: accuracy/reward when any of those metrics exist, length when
    any length exists, the slide when both accuracy and length exist, and the behaviour
    figure when held-out working or reflective-word rates exist.
  """
  records = metrics_lib.read_metrics(workdir)
  keys = {k for r in records for k in r}
  correct = [(k, _label(k)) for k in _correct_keys(keys)]
  thinks = [(k, _label(k)) for k in _think_keys(keys)]
  others = [(k, k) for k in _other_accuracy_keys(keys)]
  reward = [(k, k) for k in _reward_keys(keys)]
  length = _length_keys(keys)
  if not (correct or thinks or others or reward or length):
    raise ValueError(f"{os.fspath(workdir)} has no accuracy/*, reward/* or length/* metrics to "
                     f"plot ({len(records)} records).")
  _figure()  # Fails early, with the install hint, when matplotlib is missing.
  out_dir = os.fspath(out_dir if out_dir is not None else workdir)
  os.makedirs(out_dir, exist_ok=True)
  name = os.path.basename(os.path.abspath(os.fspath(workdir)))
  paths = []

  panels = [p for p in (
      (correct, "accuracy", "share of answers correct", True),
      (thinks, "thinking (<think>...</think>)", "share of answers that think", True),
      (others, "other accuracy metrics", "share", True),
      (reward, "reward", "mean reward per answer", False)) if p[0]]
  if correct or thinks or others or reward:
    fig = _figure(figsize=(5.5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (curves, title, ylabel, share) in zip(axes, panels):
      _draw(ax, records, curves, title, ylabel, share)
    fig.suptitle(name)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, ACCURACY_FILE))
    fig.savefig(paths[-1], dpi=110)

  if length:
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    _draw(ax, records, length, f"{name}: response length", "mean response length (tokens)")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, LENGTH_FILE))
    fig.savefig(paths[-1], dpi=110)

  if correct and length:
    # The slide: training rollouts thin, held-out evaluations bold, short legend labels;
    # accuracy left, length right, one shared x axis.
    def slide(train_key, metric, fallback):
      labels = {train_key: "training rollouts", f"eval/greedy/{metric}": "held-out, greedy",
                f"eval/sampled/{metric}": "held-out, sampled"}
      return [(k, label) for k, label in labels.items() if k in keys] or fallback
    fig = _figure(figsize=(10, 4))
    ax_acc, ax_len = fig.subplots(1, 2, sharex=True)
    # Strict grading, unless it is 0 throughout and lenient is not (answers in prose).
    graded = "strict"
    if not any(v for k in keys if _metric(k) == "strict" for v in _series(records, k)[1]) and (
        any(v for k in keys if _metric(k) == "lenient" for v in _series(records, k)[1])):
      graded = "lenient"
    acc_curves = slide(f"accuracy/{graded}", graded, correct)
    len_curves = slide("length/mean", "length", length)
    _draw(ax_acc, records, acc_curves, _trend(records, acc_curves, "accuracy", "rises", "falls"),
          "share of answers correct", share=True)
    _draw(ax_len, records, len_curves,
          _trend(records, len_curves, "response length", "grows", "shrinks"),
          "mean response length (tokens)")
    fig.suptitle(f"{name}: GRPO with a correct-answer reward alone")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, SLIDE_FILE))
    fig.savefig(paths[-1], dpi=130)

  working = [(k, _label(k)) for k in sorted(keys) if _is_eval(k) and _metric(k) == "working"]
  reflective = [(k, _label(k)) for k in sorted(keys)
                if _is_eval(k) and _metric(k) == "reflective_per_1k"]
  if working or reflective:
    fig = _figure(figsize=(10, 4))
    ax_work, ax_refl = fig.subplots(1, 2, sharex=True)
    _draw(ax_work, records, working, "working shown (a calculation = its result)",
          "share of answers", share=True)
    _draw(ax_refl, records, reflective, "reflective words (wait, check, ...)",
          "per 1,000 generated tokens")
    fig.suptitle(f"{name}: how the held-out answers are written")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, BEHAVIOUR_FILE))
    fig.savefig(paths[-1], dpi=110)
  return paths
