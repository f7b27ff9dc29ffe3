"""A resumable record of an evaluation in progress: `r1jax eval` picks up where it stopped.

Place in the pipeline: `r1jax.evaluate.evaluate` appends each finished batch of questions here
(with `--out`, as `samples.partial.jsonl` beside the report). A full GSM8K pass on a CPU or a
k=64 AIME pass takes hours; a crash, a pre-empted TPU or a Ctrl-C should cost one batch, not
the run. Batch b samples with `fold_in(key, b)`, so a resumed evaluation is the same, sample for
sample, as one that never stopped.

The file is JSON lines:
  1. a header: {"r1jax_eval_journal": 1, "settings": {...}} (what must match to resume);
  2. per batch, its question records (the lines of samples.jsonl), then a marker
     {"batch_done": b, "questions_done": n, "elapsed_s": t}.
Only records followed by their batch's marker count: a write torn by a crash is cut off when
the journal is reopened. Each batch is flushed and fsync'd before the next one starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

__all__ = ["Journal", "JOURNAL_VERSION"]

JOURNAL_VERSION = 1


def _normal(x: Any, default: Any) -> Any:
  """`x` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
  return json.loads(json.dumps(x, default=default))


@dataclasses.dataclass
class Journal:
  """An open journal: what was done before, and a handle to append the next batches.

  Use `Journal.open(path, settings)`; `records` are the question records of the completed
  batches, `batches_done` their count and `elapsed_s` the evaluation time they took.
  """

  path: str
  records: list[dict[str, Any]]
  batches_done: int
  elapsed_s: float
  _default: Any = None

  @classmethod
  def open(cls, path: str | os.PathLike, settings: Mapping[str, Any], *,
           default: Any = None) -> "Journal":
    """Opens (or starts) the journal at `path` for an evaluation with these `settings`.

    Args:
      path: the journal file.
      settings: JSON-able description of everything the samples depend on (model, task,
        questions, sampling, seed, batch size). An existing journal must have been written with
        equal settings.
      default: `json.dumps` default for values JSON does not know (e.g. numpy scalars).

    Raises:
      ValueError: the journal exists but was written for other settings, or is not a journal.
    """
    path = os.fspath(path)
    settings = _normal(dict(settings), default)
    if not os.path.exists(path):
      os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
      tmp = path + ".tmp"
      with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({"r1jax_eval_journal": JOURNAL_VERSION, "settings": settings},
                           ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, path)  # A header is either whole or absent.
      return cls(path, [], 0, 0.0, default)
    header, records, batches, elapsed, keep, size = _parse(path)
    if header.get("settings") != settings:
      old = header.get("settings") or {}
      diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
      shown = "; ".join(f"{k}: {old.get(k)!r} then, {settings.get(k)!r} now" for k in diff[:4])
      raise ValueError(f"{path!r} holds an unfinished evaluation with other settings ({shown}); "
                       f"evaluate into another output folder, or delete the file to start over")
    if keep < size:
      with open(path, "r+b") as f:  # Cut off the unfinished batch before appending.
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return cls(path, records, batches, elapsed, default)

  @staticmethod
  def read(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """(settings, records of the completed batches, elapsed seconds) of a journal; read only."""
    header, records, _, elapsed, _, _ = _parse(os.fspath(path))
    return header.get("settings") or {}, records, elapsed

  def append(self, records: list[Mapping[str, Any]], *, elapsed_s: float) -> None:
    """Adds one finished batch (its question records) and the total time spent so far."""
    lines = [json.dumps(r, default=self._default, ensure_ascii=False) for r in records]
    self.records += [json.loads(line) for line in lines]
    marker = {"batch_done": self.batches_done, "questions_done": len(self.records),
              "elapsed_s": elapsed_s}
    with open(self.path, "a", encoding="utf-8") as f:
      f.write("\n".join(lines + [json.dumps(marker)]) + "\n")
      f.flush()
      os.fsync(f.fileno())
    self.batches_done += 1
    self.elapsed_s = elapsed_s


def _parse(path: str):
  """(header, completed records, batches done, elapsed s, bytes to keep, file size)."""
  with open(path, "rb") as f:
    data = f.read()
  lines = data.split(b"\n")
  try:
    header = json.loads(lines[0])
    version = header["r1jax_eval_journal"]
  except (ValueError, KeyError, TypeError):
    raise ValueError(f"{path!r} is not an r1jax evaluation journal (its first line is not a "
                     f"journal header); move it away or choose another output folder") from None
  if version != JOURNAL_VERSION:
    raise ValueError(f"{path!r} is an evaluation journal of version {version!r}; this r1jax "
                     f"reads version {JOURNAL_VERSION}. Delete it to start over")
  records, pending = [], []
  batches, elapsed = 0, 0.0
  keep = offset = len(lines[0]) + 1
  for raw in lines[1:]:
    offset += len(raw) + 1
    if not raw.strip():
      continue
    try:
      obj = json.loads(raw)
    except ValueError:
      break  # A torn last write; everything after the last marker is dropped.
    if "batch_done" in obj:
      records += pending
      pending = []
      batches, elapsed = obj["batch_done"] + 1, float(obj["elapsed_s"])
      keep = min(offset, len(data))
    else:
      pending.append(obj)
  if [r.get("index") for r in records] != list(range(len(records))):
    raise ValueError(f"{path!r} is damaged: its completed records are not questions 0.."
                     f"{len(records) - 1} in order; delete it to start over")
  return header, records, batches, elapsed, keep, len(data)
