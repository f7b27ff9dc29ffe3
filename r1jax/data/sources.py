"""Data sources: JSONL, Parquet and TFDS records as Examples, and a resumable sharded stream.

Place in the pipeline: the first step of a training step. A source turns stored records into
Examples (plain dicts: `question`, `answer` (the gold answer as text), optional `messages`, and
metadata such as `id`, `level`, `numbers`, `target`). `ExampleStream` walks a source in a
seeded order, one disjoint shard per process, and its `position` (a small JSON-able dict) is
saved in checkpoints so a resumed run continues with exactly the next example.

Every source is random access (`len(source)`, `source[i]`); a generator (generators.py) is a
source too, unbounded when it has no size. File sources read and check every record when they
are built, so a malformed line or a missing field fails at start-up with file and line, never
hours into a run.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

import numpy as np

__all__ = [
    "Example",
    "ExampleStream",
    "FieldMap",
    "RecordSource",
    "Source",
    "TfdsSource",
    "read_jsonl",
    "read_parquet",
    "read_records",
]

# An Example is a plain dict: "question" (str) or "messages" (chat turns), "answer" (gold, str),
# and any metadata. Plain dicts pickle, print and JSON-dump without ceremony.
Example = dict[str, Any]
# Example key -> record field name, or a function of the whole record (for answers that must be
# parsed out of a solution). "answer" and one of "question"/"messages" are required.
FieldMap = Mapping[str, Union[str, Callable[[Mapping[str, Any]], Any]]]
PathLike = Union[str, os.PathLike]


class Source:
  """A random-access collection of Examples; `size` None means unbounded (a generator)."""

  name: str = "source"
  size: int | None = None

  def __len__(self) -> int:
    if self.size is None:
      raise TypeError(f"source {self.name!r} is unbounded and has no length")
    return self.size

  def __getitem__(self, index: int) -> Example:
    raise NotImplementedError

  @property
  def fingerprint(self) -> str:
    """A short digest of what the source holds; stream positions carry it, so a run resumed
    on edited data fails instead of silently taking other examples. Subclasses that read
    data hash their content; the default names the type, name and size."""
    return _digest([type(self).__name__, self.name, self.size])


def _digest(value: Any) -> str:
  text = json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_fields(fields: FieldMap) -> None:
  if "answer" not in fields or not ("question" in fields or "messages" in fields):
    raise ValueError(f"fields must map 'answer' and one of 'question'/'messages', got keys "
                     f"{sorted(fields)}")
  for key, how in fields.items():
    if not (isinstance(how, str) or callable(how)):
      raise ValueError(f"fields[{key!r}] must be a field name or a function of the record, "
                       f"got {how!r}")


def _map_record(record: Mapping[str, Any], fields: FieldMap, where: str) -> Example:
  """Builds one Example from a raw record; errors name `where` (file:line)."""
  if not isinstance(record, Mapping):
    raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
  example: Example = {}
  for key, how in fields.items():
    if isinstance(how, str):
      if how not in record:
        raise ValueError(f"{where}: record has no field {how!r} (for {key!r}); its fields are "
                         f"{sorted(record)}")
      value = record[how]
    else:
      try:
        value = how(record)
      except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{where}: cannot build {key!r}: {e}") from e
    example[key] = value
  example["answer"] = _answer_text(example["answer"], where)
  if "question" in example and not isinstance(example["question"], str):
    raise ValueError(f"{where}: question must be text, got {type(example['question']).__name__}")
  return example


def _answer_text(value: Any, where: str) -> str:
  """Gold answers as text: 27.0 -> "27" (AMC stores floats), 204 -> "204"."""
  if isinstance(value, bool) or value is None:
    raise ValueError(f"{where}: answer must be text or a number, got {value!r}")
  if isinstance(value, (float, np.floating)) and float(value).is_integer():
    return str(int(value))
  if isinstance(value, (int, float, np.integer, np.floating)):
    return str(value)
  if isinstance(value, str):
    if not value.strip():
      raise ValueError(f"{where}: answer is empty")
    return value.strip()
  raise ValueError(f"{where}: answer must be text or a number, got {type(value).__name__}")


class RecordSource(Source):
  """Examples held in memory, built from records read once (JSONL, Parquet, or given)."""

  def __init__(self, examples: Sequence[Example], *, name: str):
    if not examples:
      raise ValueError(f"data set {name!r} is empty; a source needs at least one example")
    self.name = name
    self.size = len(examples)
    self._examples = list(examples)
    self._fingerprint: str | None = None  # Computed on first use (hashing reads every example).

  def __getitem__(self, index: int) -> Example:
    return dict(self._examples[index])  # A copy: callers may annotate their example.

  @property
  def fingerprint(self) -> str:
    """sha256 (16 hex digits) of every example, in order: any edit of the data changes it."""
    if self._fingerprint is None:
      self._fingerprint = _digest(self._examples)
    return self._fingerprint

  def filter(self, keep: Callable[[Example], bool], *, name: str | None = None) -> RecordSource:
    """A new source with the examples for which `keep` is true (e.g. MATH levels 3-5)."""
    return RecordSource([e for e in self._examples if keep(e)], name=name or self.name)


def read_records(records: Iterable[tuple[str, Mapping[str, Any]]], fields: FieldMap, *,
                 name: str) -> RecordSource:
  """Maps (where, record) pairs through `fields`; a missing or None id becomes `where`."""
  _check_fields(fields)
  examples = []
  for where, record in records:
    example = _map_record(record, fields, where)
    if example.get("id") is None:  # Unmapped or empty ids: the record's place is its id.
      example["id"] = where
    examples.append(example)
  return RecordSource(examples, name=name)


def _expand_paths(path: PathLike | Sequence[PathLike]) -> list[str]:
  """One path, a glob pattern, or a list of them -> sorted existing files."""
  items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
  files = []
  for item in items:
    item = os.fspath(item)
    if glob.has_magic(item):
      matched = sorted(glob.glob(item))
      if not matched:
        raise FileNotFoundError(f"no files match {item!r}")
      files.extend(matched)
    elif not os.path.isfile(item):
      raise FileNotFoundError(f"data file {item!r} does not exist")
    else:
      files.append(item)
  if not files:
    raise ValueError("no data files given; pass a path, a glob pattern, or a list of paths")
  return files


def _jsonl_records(path: str) -> Iterator[tuple[str, Any]]:
  with open(path, encoding="utf-8") as f:
    for line_no, line in enumerate(f, start=1):
      if not line.strip():
        continue  # Trailing blank lines are common and harmless.
      where = f"{path}:{line_no}"
      try:
        yield where, json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None


def read_jsonl(path: PathLike | Sequence[PathLike], fields: FieldMap, *,
               name: str | None = None) -> RecordSource:
  """Reads JSON-lines files (one object a line) into a source; blank lines are skipped.

  Args:
    path: a file, a glob pattern, or a list of them (read in sorted order).
    fields: Example key -> record field or function of the record.
    name: the source's name in messages; defaults to the first file.

  Raises:
    FileNotFoundError: a file is missing.
    ValueError: a line is not a JSON object, lacks a mapped field, or there are no records;
      the message names the file and line.
  """
  files = _expand_paths(path)
  records = (rec for f in files for rec in _jsonl_records(f))
  return read_records(records, fields, name=name or files[0])


def _import_pyarrow_parquet():
  try:
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("reading Parquet files needs pyarrow, which is not installed; "
                      "install it with `pip install pyarrow`") from e
  return pq


def read_parquet(path: PathLike | Sequence[PathLike], fields: FieldMap, *,
                 name: str | None = None) -> RecordSource:
  """Reads Parquet files into a source (needs pyarrow); rows are numbered from 1 in messages."""
  pq = _import_pyarrow_parquet()
  files = _expand_paths(path)

  def records():
    for f in files:
      for row_no, row in enumerate(pq.read_table(f).to_pylist(), start=1):
        yield f"{f}:row {row_no}", row

  return read_records(records(), fields, name=name or files[0])


class TfdsSource(Source):
  """A split of a prepared TensorFlow Datasets data set, read by random access.

  Reads through `builder.as_data_source`, which needs the data set prepared in the array_record
  file format (`tfds build gsm8k --file_format=array_record`) and no TensorFlow. Nothing is
  downloaded: a data set that is not prepared under `data_dir` is an error.
  """

  def __init__(self, dataset: str, split: str, fields: FieldMap, *,
               data_dir: PathLike | None = None):
    _check_fields(fields)
    try:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("reading TFDS data sets needs tensorflow-datasets; install it with "
                        "`pip install tensorflow-datasets`") from e
    where = f"TFDS {dataset!r} in data_dir {os.fspath(data_dir) if data_dir else '(default)'}"
    not_prepared = ValueError(
        f"{where} is not prepared; prepare it with `tfds build {dataset} "
        f"--file_format=array_record` where the data can be downloaded, or read the original "
        f"files with a JSONL source")
    try:
      builder = tfds.builder(dataset, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
      raise not_prepared from None
    if not builder.info.splits:  # A registered builder class with nothing prepared on disk.
      raise not_prepared
    if split not in builder.info.splits:
      raise ValueError(f"{where} has no split {split!r}; its splits are "
                       f"{sorted(builder.info.splits)}")
    file_format = getattr(builder.info.file_format, "value", builder.info.file_format)
    if file_format != "array_record":
      raise ValueError(f"{where} is stored as {file_format}, which needs TensorFlow to read; "
                       f"rebuild it with `tfds build {dataset} --file_format=array_record`")
    features = sorted(builder.info.features.keys())
    for key, how in fields.items():
      if isinstance(how, str) and how not in features:
        raise ValueError(f"{where} has no feature {how!r} (for {key!r}); its features are "
                         f"{features}")
    self.name = f"tfds:{dataset}/{split}"
    self._fields = fields
    self._data = builder.as_data_source(split=split)
    self.size = len(self._data)
    if not self.size:
      raise ValueError(f"{where} split {split!r} is empty; a source needs at least one example")
    self[0]  # Fails now, not mid-run, if a mapping function cannot handle the records.

  def __getitem__(self, index: int) -> Example:
    where = f"{self.name}[{index}]"
    # TFDS Text features arrive as bytes; decode before mapping functions see the record.
    record = {k: v.decode("utf-8") if isinstance(v, bytes) else v
              for k, v in self._data[index].items()}
    example = _map_record(record, self._fields, where)
    if example.get("id") is None:
      example["id"] = where
    return example


class ExampleStream:
  """Examples of a source in a seeded order, one process's shard, with a resumable position.

  Finite sources are walked epoch by epoch; epoch e visits the permutation drawn from
  `np.random.default_rng([seed, e])` (or the stored order when `shuffle` is False) and process
  p of n takes its entries p, p + n, p + 2n, ...: shards are disjoint and together cover the
  data. Shards of one epoch differ in size by at most one, so in a single pass (num_epochs=1)
  processes may end with batches of different sizes: pad before a collective step.
  Unbounded sources (generators) are read at indices p, p + n, ... and stay in epoch 0; their
  examples are fixed by the generator's own seed, and `seed`/`num_epochs` do not apply.
  `position` = {"seed", "epoch", "index", "source"} (index = examples this process has taken
  in the epoch; source = the source's fingerprint) is all that a checkpoint needs; `restore`
  puts the stream back exactly, and refuses a position taken from different data.
  """

  def __init__(self, source: Source, *, seed: int = 0, shuffle: bool = True,
               num_epochs: int | None = None, process_index: int = 0, process_count: int = 1):
    if not isinstance(process_count, int) or process_count < 1:
      raise ValueError(f"process_count must be a positive integer, got {process_count!r}")
    if not isinstance(process_index, int) or not 0 <= process_index < process_count:
      raise ValueError(f"process_index must be in [0, {process_count}), got {process_index!r}")
    if num_epochs is not None and (not isinstance(num_epochs, int) or num_epochs < 1):
      raise ValueError(f"num_epochs must be a positive integer or None, got {num_epochs!r}")
    if source.size is not None and source.size < process_count:
      raise ValueError(f"data set {source.name!r} has {source.size} examples, fewer than the "
                       f"{process_count} processes that would share it")
    self.source = source
    self.seed = int(seed)
    self.shuffle = shuffle
    self.num_epochs = num_epochs
    self.process_index = process_index
    self.process_count = process_count
    self._epoch = 0
    self._index = 0
    self._order: np.ndarray | None = None  # This process's source indices for self._epoch.

  def _shard(self, epoch: int) -> np.ndarray:
    n = self.source.size
    order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
             else np.arange(n))
    return order[self.process_index::self.process_count]

  @property
  def position(self) -> dict[str, Any]:
    """Where the stream stands: {"seed", "epoch", "index", "source"}, JSON-able."""
    return {"seed": self.seed, "epoch": self._epoch, "index": self._index,
            "source": self.source.fingerprint}

  def restore(self, position: Mapping[str, Any]) -> None:
    """Continues from a `position` saved by a stream over the same source and seed."""
    # "source" is absent from positions saved before fingerprints existed; those still load.
    if not isinstance(position, Mapping) or not (
        {"seed", "epoch", "index"} <= set(position) <= {"seed", "epoch", "index", "source"}):
      raise ValueError(f"a stream position is a dict with keys seed, epoch, index and source; "
                       f"got {position!r}")
    if "source" in position and position["source"] != self.source.fingerprint:
      raise ValueError(f"position was saved from data with fingerprint {position['source']!r}, "
                       f"but {self.source.name!r} now has fingerprint "
                       f"{self.source.fingerprint!r}: the data changed since the checkpoint; "
                       f"restore the original data or start a new run")
    if position["seed"] != self.seed:
      raise ValueError(f"position was saved with seed {position['seed']}, but this stream has "
                       f"seed {self.seed}; build the stream with the saved seed")
    epoch, index = int(position["epoch"]), int(position["index"])
    if epoch < 0 or index < 0 or (self.source.size is None and epoch != 0):
      raise ValueError(f"position {dict(position)!r} is not a valid place in {self.source.name!r}")
    if self.source.size is not None and index > len(self._shard(epoch)):
      raise ValueError(f"position index {index} is past the end of this process's shard of "
                       f"{self.source.name!r} in epoch {epoch}; was it saved with another "
                       f"process count or data set?")
    self._epoch, self._index, self._order = epoch, index, None

  def __iter__(self) -> ExampleStream:
    return self

  def __next__(self) -> Example:
    if self.source.size is None:
      example = self.source[self._index * self.process_count + self.process_index]
      self._index += 1
      return example
    while True:
      if self.num_epochs is not None and self._epoch >= self.num_epochs:
        raise StopIteration
      if self._order is None:
        self._order = self._shard(self._epoch)
      if self._index < len(self._order):
        example = self.source[int(self._order[self._index])]
        self._index += 1
        return example
      self._epoch, self._index, self._order = self._epoch + 1, 0, None

  def next_batch(self, size: int) -> list[Example]:
    """The next `size` examples (fewer only at the end of the last epoch; [] when done)."""
    if not isinstance(size, int) or size < 1:
      raise ValueError(f"batch size must be a positive integer, got {size!r}")
    batch = []
    for example in self:
      batch.append(example)
      if len(batch) == size:
        break
    return batch
