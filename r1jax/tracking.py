"""Experiment trackers beside the workdir's own files: Weights & Biases, off unless asked.

Place in the pipeline: step 6 of a training step (see r1jax/__init__.py). metrics.jsonl,
samples.jsonl and TensorBoard are always written (metrics.py); `Config.tracking` names extra
trackers (`--set tracking=wandb`), which `MetricsWriter` feeds with what it writes: the resolved
config once, every metric of every step, a table of the step's sampled completions, and the
run's PNG curves at the end. Only process 0 tracks.

W&B is an optional extra (`pip install 'r1jax[wandb]'`). It follows its own environment
(`WANDB_MODE=offline` writes the run under WORKDIR/wandb/ without a network; `wandb sync` uploads
it later); `WandbConfig.mode` overrides that. A resumed run continues the same W&B run: its id
is kept in WORKDIR/wandb_run_id.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
from typing import Any, Literal, Mapping, Protocol, Sequence

__all__ = ["TRACKERS", "Tracker", "WandbConfig", "WandbTracker", "check_trackers",
           "make_trackers"]

TRACKERS = ("wandb",)
_RUN_ID_FILE = "wandb_run_id"


@dataclasses.dataclass(frozen=True)
class WandbConfig:
  """Weights & Biases settings, used when `Config.tracking` includes "wandb"."""

  project: str = "r1jax"  # The W&B project the run goes into.
  entity: str = ""  # The team or user; "" = your default entity.
  name: str = ""  # The run's display name; "" = the workdir's folder name.
  group: str = ""  # Group runs of one study (e.g. the seeds of an ablation).
  tags: tuple[str, ...] = ()  # Free-form labels.
  # "" follows WANDB_MODE (default online); "offline" writes WORKDIR/wandb/ for `wandb sync`.
  mode: Literal["", "online", "offline", "disabled"] = ""


class Tracker(Protocol):
  """What MetricsWriter hands a tracker (process 0 only)."""

  def log(self, step: int, metrics: Mapping[str, Any]) -> None: ...
  def log_samples(self, step: int, samples: Sequence[Mapping[str, Any]]) -> None: ...
  def log_images(self, paths: Sequence[str]) -> None: ...
  def close(self) -> None: ...


def check_trackers(names: Sequence[str]) -> None:
  """Refuses unknown tracker names and trackers whose package is missing (one clear error).

  Raises:
    ValueError: a name is not one of TRACKERS.
    RuntimeError: the tracker's package is not installed; the message names the extra.
  """
  for name in names:
    if name not in TRACKERS:
      raise ValueError(f"unknown tracker {name!r} in Config.tracking; accepted: "
                       f"{', '.join(TRACKERS)} (metrics.jsonl and TensorBoard are always on)")
  if "wandb" in names:
    _import_wandb()


def _import_wandb():
  try:
    import wandb  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RuntimeError("tracking 'wandb' needs the Weights & Biases package, which is not "
                       "installed; install the extra with `pip install 'r1jax[wandb]'` (or "
                       "drop 'wandb' from Config.tracking)") from None
  return wandb


def make_trackers(names: Sequence[str], *, workdir: str | os.PathLike, config: Mapping[str, Any],
                  wandb_cfg: WandbConfig, resume: bool) -> list[Tracker]:
  """The trackers `names` asks for, started; `resume` continues the workdir's earlier run."""
  check_trackers(names)
  trackers: list[Tracker] = []
  if "wandb" in names:
    trackers.append(WandbTracker(workdir, config=config, cfg=wandb_cfg, resume=resume))
  return trackers


def _plain(value: Any) -> Any:
  """A metric as W&B takes it (metrics.jsonl's "NaN"/"Infinity" strings back to floats)."""
  if isinstance(value, str):
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
  return value


class WandbTracker:
  """One W&B run: config, metrics by step, a completions table per step, the final plots."""

  def __init__(self, workdir: str | os.PathLike, *, config: Mapping[str, Any],
               cfg: WandbConfig = WandbConfig(), resume: bool = False):
    wandb = _import_wandb()
    self._wandb = wandb
    workdir = os.fspath(workdir)
    id_path = os.path.join(workdir, _RUN_ID_FILE)
    run_id = None
    if resume and os.path.exists(id_path):
      with open(id_path, encoding="utf-8") as f:
        run_id = f.read().strip() or None
    if run_id is None:
      run_id = secrets.token_hex(6)  # W&B run ids: lowercase letters and digits.
      with open(id_path, "w", encoding="utf-8") as f:
        f.write(run_id + "\n")
    self.run = wandb.init(
        project=cfg.project, entity=cfg.entity or None,
        name=cfg.name or os.path.basename(os.path.abspath(workdir)), group=cfg.group or None,
        tags=list(cfg.tags) or None, mode=cfg.mode or None, dir=workdir, id=run_id,
        resume="allow", config=dict(config), reinit="create_new")
    self.run_id = run_id

  def log(self, step: int, metrics: Mapping[str, Any]) -> None:
    self.run.log({k: _plain(v) for k, v in metrics.items() if k != "step"}, step=int(step))

  def log_samples(self, step: int, samples: Sequence[Mapping[str, Any]]) -> None:
    if not samples:
      return
    columns = ["step"] + [k for k in samples[0] if k != "step"]
    rows = [[int(step)] + [_cell(s.get(k)) for k in columns[1:]] for s in samples]
    self.run.log({"samples": self._wandb.Table(columns=columns, data=rows)}, step=int(step))

  def log_images(self, paths: Sequence[str]) -> None:
    images = {f"plots/{os.path.splitext(os.path.basename(p))[0]}": self._wandb.Image(p)
              for p in paths}
    if images:
      self.run.log(images)

  def close(self) -> None:
    self.run.finish()


def _cell(value: Any) -> Any:
  """A table cell: numbers and text as they are, anything else (token lists) as text."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
    return value.item()
  return str(value)
