"""Run metrics on disk and on the console: JSONL, TensorBoard event files, a progress bar.

Place in the pipeline: step 6 of every training step (see r1jax/__init__.py). train.py passes each
step's flat metrics dict (`reward/mean`, `accuracy/strict`, `length/mean`, `kl`, ...) to
`MetricsWriter.write` and a few completions to `write_samples`; `Progress` shows a bar with ETA.
plots.py reads the files back (`read_metrics`) to draw the curves.

Files under the workdir, written by process 0 only:
  metrics.jsonl   one JSON object per `write`: {"step": s, "reward/mean": 0.5, ...}. Non-finite
                  floats are the strings "NaN", "Infinity", "-Infinity" (the protobuf JSON
                  convention), since JSON has no NaN and a NaN loss is exactly what one greps for.
  samples.jsonl   one JSON object per completion: {"step": s, "prompt": ..., "completion": ...}.
  tensorboard/    an event file with one Event per `write` (scalars as simple_value).
Trackers (tracking.py, e.g. Weights & Biases) get the same records, samples and final plots.
Exact resume: `MetricsWriter(workdir, resume_step=k)` drops every line with step > k (written
after the checkpoint being restored, or half-written by a killed process) and rebuilds the
TensorBoard file from what is kept, so the files equal those of an uninterrupted run.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
TENSORBOARD_DIR = "tensorboard"

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _scalar(name: str, value: Any) -> Any:
  """One metric value as a JSON value: bool, int, float (non-finite as a string) or str."""
  if hasattr(value, "shape") and hasattr(value, "dtype"):  # jax / numpy arrays and scalars
    if int(np.prod(value.shape)) != 1:
      raise ValueError(f"Metric {name!r} must be a scalar, got an array of shape "
                       f"{tuple(value.shape)}.")
    value = np.asarray(value).reshape(()).item()
  if isinstance(value, (bool, str)):
    return value
  if isinstance(value, int):
    return value
  if isinstance(value, float):
    if math.isnan(value):
      return "NaN"
    if math.isinf(value):
      return "Infinity" if value > 0 else "-Infinity"
    return value
  raise ValueError(f"Metric {name!r} must be a number, bool or string, got "
                   f"{type(value).__name__} ({value!r}).")


def _json_default(value: Any) -> Any:
  """json.dumps fallback for the numpy/jax values found in samples."""
  if hasattr(value, "dtype") and hasattr(value, "shape"):
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()
  raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _decode(record: dict) -> dict:
  return {k: _NONFINITE.get(v, v) if isinstance(v, str) else v for k, v in record.items()}


def _read_jsonl(path: str) -> tuple[list[dict], int]:
  """(records, number of lines that were not JSON objects with an integer step)."""
  records, bad = [], 0
  if not os.path.exists(path):
    return records, bad
  with open(path, encoding="utf-8") as f:
    for line in f:
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        bad += 1  # A line cut short by a killed process.
        continue
      if isinstance(record, dict) and isinstance(record.get("step"), int):
        records.append(record)
      else:
        bad += 1
  return records, bad


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
  """The records of `workdir/metrics.jsonl` (or of a given .jsonl path), floats restored.

  Non-finite values come back as float NaN / inf; lines cut short by a crash are skipped.
  """
  path = os.fspath(workdir)
  if os.path.isdir(path):
    path = os.path.join(path, METRICS_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"No metrics file at {path}; a training run writes one into its "
                            f"workdir.")
  return [_decode(r) for r in _read_jsonl(path)[0]]


class _EventFile:
  """A TensorBoard event file, written by tensorboardX (a maintained writer of the format).

  tensorboardX queues events to a thread, so an event may be missing from the file for a
  moment after `flush`; metrics.jsonl is written first and is the record: a resumed run
  rebuilds the event file from it, and `close` writes out everything queued.
  """

  _count = 0

  def __init__(self, logdir: str):
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    os.makedirs(logdir, exist_ok=True)
    # tensorboardX names files events.out.tfevents.<time>.<host>; the suffix keeps two writers
    # of one process in one second apart.
    _EventFile._count += 1
    self._writer = SummaryWriter(logdir, flush_secs=1,
                                 filename_suffix=f".{os.getpid()}.{_EventFile._count}")

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    for tag, value in values.items():
      self._writer.add_scalar(tag, float(value), global_step=step)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def _tb_values(record: Mapping[str, Any]) -> dict[str, float]:
  """The numeric entries of a decoded record, for TensorBoard (strings have no plot)."""
  return {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, (int, float))}


class MetricsWriter:
  """Writes a run's per-step metrics and sample completions into its workdir.

  Only the process whose index is 0 writes; the others accept and drop everything, so the
  trainer can call it unconditionally on every host.
  """

  def __init__(self, workdir: str | os.PathLike, *, resume_step: int | None = None,
               tensorboard: bool = True, process_index: int | None = None,
               console: bool = True, trackers: Sequence[Any] = ()):
    """Opens the files.

    Args:
      workdir: the run's directory (created if needed).
      resume_step: the step of the restored checkpoint: lines with step > resume_step are
        dropped. None or 0 for a run that starts from scratch: earlier files are cleared
        (step-0 records, e.g. an evaluation before training, are written again by such a run).
      tensorboard: also write TensorBoard event files (skipped, with one warning, when the
        `tensorboardX` package, their writer, is not installed).
      process_index: this host's index; None asks jax.
      console: show the progress bar and console lines of `progress` / `log_console`.
      trackers: `tracking.Tracker`s (W&B) fed every record, the samples and the plots; the
        writer closes them. Process 0 passes them; other processes pass none.
    """
    if resume_step is not None and (not isinstance(resume_step, int) or resume_step < 0):
      raise ValueError(f"resume_step must be None or a non-negative integer, got "
                       f"{resume_step!r}.")
    if process_index is None:
      import jax  # pylint: disable=g-import-not-at-top
      process_index = jax.process_index()
    self.workdir = os.fspath(workdir)
    self.active = process_index == 0
    self.metrics_path = os.path.join(self.workdir, METRICS_FILE)
    self.samples_path = os.path.join(self.workdir, SAMPLES_FILE)
    self.tensorboard_dir = os.path.join(self.workdir, TENSORBOARD_DIR)
    self._events: _EventFile | None = None
    self._metrics = self._samples = None
    self._console = console
    self._progress: Progress | None = None
    self._trackers = list(trackers) if self.active else []
    if not self.active:
      return
    os.makedirs(self.workdir, exist_ok=True)
    keep = resume_step or -1
    kept = self._truncate(self.metrics_path, keep)
    self._truncate(self.samples_path, keep)
    # Event files cannot be truncated in place and TensorBoard shows every point of every file,
    # so earlier ones go and the kept history is replayed into one fresh file.
    for old in glob.glob(os.path.join(self.tensorboard_dir, "events.out.tfevents.*")):
      os.remove(old)
    if tensorboard:
      self._events = self._open_event_file(kept)
    # Line-buffered appends: a kill loses at most the line being written.
    self._metrics = open(self.metrics_path, "a", encoding="utf-8", buffering=1)
    self._samples = open(self.samples_path, "a", encoding="utf-8", buffering=1)

  @staticmethod
  def _truncate(path: str, max_step: int) -> list[dict]:
    """Rewrites `path` with only its records of step <= max_step; returns them."""
    records, bad = _read_jsonl(path)
    kept = [r for r in records if r["step"] <= max_step]
    if not os.path.exists(path) or (len(kept) == len(records) and not bad):
      return kept
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      for r in kept:
        f.write(json.dumps(r, allow_nan=False) + "\n")
    os.replace(tmp, path)  # Atomic: a kill here leaves either the old or the new file.
    return kept

  def _open_event_file(self, kept: list[dict]) -> _EventFile | None:
    try:
      events = _EventFile(self.tensorboard_dir)
    except ImportError:
      warnings.warn("tensorboardX is not installed, so no TensorBoard event files are written "
                    "(pip install tensorboardX); metrics.jsonl has everything.", stacklevel=3)
      return None
    for record in kept:
      events.scalars(record["step"], _tb_values(_decode(record)))
    events.flush()
    return events

  def write(self, step: int, metrics: Mapping[str, Any]) -> dict:
    """Appends one record {"step": step, **metrics}; returns it as written (JSON values).

    Values may be Python or numpy/jax scalars (arrays of size 1), bools or strings.
    """
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
      raise ValueError(f"step must be a non-negative integer, got {step!r}.")
    record = {"step": int(step)}
    for name, value in metrics.items():
      if name == "step":
        if value != step:
          raise ValueError(f"metrics['step'] = {value!r} differs from step = {step}.")
        continue
      record[str(name)] = _scalar(name, value)
    if self.active:
      self._metrics.write(json.dumps(record, allow_nan=False) + "\n")
      if self._events is not None:
        self._events.scalars(record["step"], _tb_values(_decode(record)))
        self._events.flush()
      for tracker in self._trackers:
        tracker.log(record["step"], record)
    return record

  def write_samples(self, step: int, samples: Sequence[Mapping[str, Any]]) -> None:
    """Appends one line per sample: {"step": step, **sample} (prompt, completion, reward, ...)."""
    if not self.active:
      return
    for sample in samples:
      line = json.dumps({"step": int(step), **sample}, default=_json_default, ensure_ascii=False)
      self._samples.write(line + "\n")
    for tracker in self._trackers:
      tracker.log_samples(int(step), samples)

  def plot(self) -> list[str]:
    """Draws the run's PNG curves into the workdir (plots.plot_run) and hands them to the
    trackers; returns their paths ([] on processes other than 0).

    Raises:
      ImportError: matplotlib is not installed.
    """
    if not self.active:
      return []
    self.flush()
    paths = plot_run(self.workdir)
    for tracker in self._trackers:
      tracker.log_images(paths)
    return paths

  def progress(self, step: int, total_steps: int, metrics: Mapping[str, Any] | None = None
               ) -> None:
    """Moves the console bar to `step` of `total_steps` (made on the first call, so a resumed
    run's bar starts where it resumed) and shows the key metrics."""
    if not (self.active and self._console):
      return
    if self._progress is None:
      self._progress = Progress(total_steps, initial_step=max(0, step - 1))
    self._progress.update(step, metrics)

  def log_console(self, message: str, metrics: Mapping[str, Any] | None = None) -> None:
    """Prints `message` and the given metrics as one line (above the bar if there is one)."""
    if not (self.active and self._console):
      return
    parts = [message] + [f"{k}={_format(_scalar(k, v))}" for k, v in (metrics or {}).items()]
    line = "  ".join(parts)
    if self._progress is not None:
      self._progress.write(line)
    else:
      print(line, file=sys.stderr, flush=True)

  def flush(self) -> None:
    if self.active:
      self._metrics.flush()
      self._samples.flush()
      if self._events is not None:
        self._events.flush()

  def close(self) -> None:
    if self.active:
      for f in (self._metrics, self._samples, self._events, self._progress, *self._trackers):
        if f is not None:
          f.close()
      self.active = False

  def __enter__(self) -> "MetricsWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


# Shown on the progress bar, in this order, when present (short labels keep it on one line).
DEFAULT_PROGRESS_KEYS = (("reward/mean", "reward"), ("accuracy/strict", "acc"),
                         ("length/mean", "len"), ("kl", "kl"), ("loss", "loss"))


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:.3g}"
  return str(value)


class Progress:
  """A console progress bar over training steps with ETA and a few key metrics (tqdm)."""

  def __init__(self, total_steps: int, *, initial_step: int = 0,
               keys: Iterable[tuple[str, str]] = DEFAULT_PROGRESS_KEYS,
               enabled: bool = True, desc: str = "train", file=None):
    """Starts the bar at `initial_step` of `total_steps` (a resumed run starts part-way)."""
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    self._keys = tuple(keys)
    self._file = file or sys.stderr
    self._bar = tqdm(total=total_steps, initial=initial_step, desc=desc, unit="step",
                     dynamic_ncols=True, disable=not enabled, file=self._file, smoothing=0.1)

  def update(self, step: int, metrics: Mapping[str, Any] | None = None) -> None:
    """Moves the bar to `step` (steps completed) and shows the key metrics."""
    if metrics:
      shown = {}
      for key, label in self._keys:
        if key in metrics:
          value = metrics[key]
          if hasattr(value, "dtype"):
            value = np.asarray(value).item()
          shown[label] = _format(value)
      self._bar.set_postfix(shown, refresh=False)
    self._bar.update(max(0, step - self._bar.n))

  def write(self, message: str) -> None:
    """Prints a line above the bar without breaking it."""
    self._bar.write(message, file=self._file)

  def external_write(self):
    """A context in which others may print to the console: the bar is cleared, then redrawn.

    For callbacks that print on their own (e.g. `MetricsWriter.log_console` from SFT, whose
    writer has no bar yet) so their lines do not land in the middle of the bar.
    """
    return self._bar.external_write_mode(file=self._file)

  def close(self) -> None:
    self._bar.close()

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def plot_run(workdir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[str]:
  """`plots.plot_run`: the run's PNG curves (needs matplotlib; ImportError without it)."""
  from r1jax import plots  # pylint: disable=g-import-not-at-top  (matplotlib is optional)
  return plots.plot_run(workdir, out_dir)
