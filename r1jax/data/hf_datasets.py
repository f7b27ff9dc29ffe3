"""Hugging Face `datasets` as a data source: local files of any format it reads, and hub data
sets already in the local cache, mapped to Examples by a field map in the task args.

Place in the pipeline: step 1 of a training step, beside the JSONL/Parquet/TFDS sources of
sources.py. `load_dataset` opens the data (Parquet, JSON lines, CSV, Arrow, a folder written by
`Dataset.save_to_disk`, or a hub id found in the Hugging Face cache; nothing is downloaded);
`HFDatasetSource` maps its rows to Examples through a field map and reads them by random access,
so `ExampleStream` walks it in the same seeded, sharded, resumable order as any other source.

A field map names, for each Example key, the column that holds it; a dotted name reads inside a
struct column (DAPO-Math-17k keeps its gold answer in `reward_model.ground_truth`):

  {"question": "problem", "answer": "answer"}                   OpenR1-Math, DeepScaleR
  {"question": "prompt", "answer": "reward_model.ground_truth"}  DAPO-Math-17k (chat turns)
  {"question": "question", "answer": "answer"}, answer_format="gsm8k"   GSM8K

A question column holding chat turns ([{"role", "content"}, ...]) becomes the Example's
`messages` (the chat template shows them as given) and its last user turn the `question`.
`answer_format` parses the gold out of a worked solution: "gsm8k" (after "####") or "boxed"
(the last \\boxed{}). Other keys of the map (id, level, tests, ...) are copied as metadata.
Every row is mapped once when the source is built, so a missing column or an empty answer fails
at start-up with the row's index, and the content digest that guards resumes is taken then.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
from typing import Any, Callable, Mapping, Sequence

from r1jax.data import code_tasks
from r1jax.data import sources
from r1jax.data import tasks as tasks_lib
from r1jax.data.code_templates import CODE_INSTRUCTION
from r1jax.data.sources import Example, Source

__all__ = ["ANSWER_FORMATS", "FILE_BUILDERS", "GRADERS", "HFDatasetSource", "field_map", "hf",
           "load_dataset"]

# File extension -> the `datasets` packaged builder that reads it.
FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv",
                 ".arrow": "arrow"}
ANSWER_FORMATS = ("plain", "gsm8k", "boxed")
# How completions are graded: maths answers (strict/lenient), or stdin/stdout code tests.
GRADERS = ("math", "code")
_INSTALL = "pip install 'r1jax[datasets]'"


def _import_datasets():
  try:
    import datasets  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"the 'hf' data source needs the Hugging Face `datasets` library, which "
                      f"is not installed; install the extra with `{_INSTALL}`") from e
  return datasets


def _local_files(path: str | Sequence[str]) -> list[str] | None:
  """The files `path` names (a file, a glob, or a list of them), or None if it names none."""
  items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
  files: list[str] = []
  for item in map(os.fspath, items):
    if glob.has_magic(item):
      files.extend(sorted(glob.glob(item)))
    elif os.path.isfile(item):
      files.append(item)
    else:
      return None
  return files or None


def _builder_for(files: Sequence[str]) -> str:
  kinds = set()
  for f in files:
    ext = os.path.splitext(f)[1].lower()
    if ext not in FILE_BUILDERS:
      raise ValueError(f"data file {f!r} has extension {ext!r}; the 'hf' source reads "
                       f"{sorted(FILE_BUILDERS)} files, folders written by save_to_disk, and "
                       f"hub ids in the local cache")
    kinds.add(FILE_BUILDERS[ext])
  if len(kinds) > 1:
    raise ValueError(f"data files {list(files)} mix formats {sorted(kinds)}; give one format")
  return kinds.pop()


def _hub_snapshot(repo_id: str, revision: str | None) -> str:
  """The local folder of a hub data set in the Hugging Face cache; never downloads."""
  from huggingface_hub import snapshot_download  # pylint: disable=g-import-not-at-top
  from huggingface_hub.errors import LocalEntryNotFoundError  # pylint: disable=g-import-not-at-top
  try:
    return snapshot_download(repo_id, repo_type="dataset", revision=revision,
                             local_files_only=True)
  except (LocalEntryNotFoundError, FileNotFoundError, ValueError) as e:
    raise FileNotFoundError(
        f"data set {repo_id!r} is neither a local file or folder nor in the local Hugging Face "
        f"cache (HF_HOME / HF_HUB_CACHE); download it where the hub is reachable (`hf download "
        f"{repo_id} --repo-type dataset`) or pass a local file") from e


def load_dataset(path: str | Sequence[str], *, split: str = "train", subset: str | None = None,
                 data_files: Any = None, revision: str | None = None,
                 cache_dir: str | None = None) -> Any:
  """One split of a data set as a `datasets.Dataset`, from local data or the local hub cache.

  Args:
    path: a data file, glob or list of them (Parquet, JSONL/JSON, CSV, Arrow); a folder written
      by `save_to_disk`; a folder of data files (a downloaded hub repository); or a hub id
      ("open-r1/DAPO-Math-17k-Processed") already in the Hugging Face cache.
    split: the split to read ("train", "test", or a slice such as "train[:1000]"). Loose files
      form the split "train".
    subset: the data set's configuration name (hub "subset", e.g. "en", "main").
    data_files: files inside a folder or hub snapshot to read instead of its own layout.
    revision: the hub revision (a branch, tag or commit) of a cached hub data set.
    cache_dir: where `datasets` keeps its Arrow copy of file data (default: its own cache).

  Raises:
    FileNotFoundError: nothing at `path`, locally or in the hub cache.
    ValueError: an unknown file type, or the split does not exist.
    ImportError: `datasets` is not installed (the message names the extra).
  """
  datasets = _import_datasets()
  files = _local_files(path)
  if files is not None:
    builder, args = _builder_for(files), {"data_files": {"train": files}}
  else:
    if not isinstance(path, (str, os.PathLike)):
      raise FileNotFoundError(f"data files {list(path)!r} do not all exist")
    folder = os.fspath(path)
    if os.path.isdir(folder) and (os.path.isfile(os.path.join(folder, "dataset_info.json")) or
                                  os.path.isfile(os.path.join(folder, "dataset_dict.json"))):
      loaded = datasets.load_from_disk(folder)  # save_to_disk output: Arrow, read in place.
      if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
          raise ValueError(f"data set {folder!r} has no split {split!r}; its splits are "
                           f"{sorted(loaded)}")
        loaded = loaded[split]
      elif split != "train":
        raise ValueError(f"data set {folder!r} holds one split (saved without split names); "
                         f"use split='train', got {split!r}")
      return loaded
    if not os.path.isdir(folder):
      looks_local = (folder.startswith((".", "/", "~")) or "/" not in folder or
                     os.path.splitext(folder)[1].lower() in FILE_BUILDERS)
      if os.path.exists(folder) or looks_local:
        raise FileNotFoundError(f"data path {folder!r} does not exist (a data file, a glob, a "
                                f"folder, or a hub id such as 'owner/name' in the local cache)")
      folder = _hub_snapshot(folder, revision)
    builder, args = folder, {"data_files": data_files} if data_files else {}
  try:
    return datasets.load_dataset(builder, subset, split=split, cache_dir=cache_dir, **args)
  except ValueError as e:
    if "split" in str(e).lower():
      raise ValueError(f"data set {path!r} has no split {split!r}: {e}") from None
    raise


def _column(record: Mapping[str, Any], *, name: str) -> Any:
  """The value of column `name`; "a.b" reads key b inside struct column a."""
  value: Any = record
  for i, part in enumerate(name.split(".")):
    if not isinstance(value, Mapping) or part not in value:
      where = ".".join(name.split(".")[:i]) or "the row"
      have = sorted(value) if isinstance(value, Mapping) else type(value).__name__
      raise ValueError(f"column {name!r} not found: {where} has no {part!r} (it has {have})")
    value = value[part]
  return value


def _is_turns(value: Any) -> bool:
  return (isinstance(value, (list, tuple)) and bool(value) and
          all(isinstance(m, Mapping) and "role" in m and "content" in m for m in value))


def _question(record: Mapping[str, Any], *, name: str) -> str:
  """The question text: the column's text, or the last user turn of its chat turns."""
  value = _column(record, name=name)
  if _is_turns(value):
    users = [m["content"] for m in value if m["role"] == "user"]
    if not users:
      raise ValueError(f"column {name!r} holds chat turns without a user turn")
    return users[-1]
  if not isinstance(value, str) or not value.strip():
    raise ValueError(f"column {name!r} must hold text or chat turns, got {value!r:.80}")
  return value


def _messages(record: Mapping[str, Any], *, name: str) -> list[dict[str, str]] | None:
  value = _column(record, name=name)
  if not _is_turns(value):
    return None
  return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


def _answer(record: Mapping[str, Any], *, name: str, answer_format: str) -> Any:
  value = _column(record, name=name)
  if answer_format == "plain":
    return value
  if not isinstance(value, str):
    raise ValueError(f"answer_format {answer_format!r} parses text, but column {name!r} holds "
                     f"{type(value).__name__}")
  if answer_format == "gsm8k":
    return tasks_lib.gsm8k_gold(value)
  boxed = tasks_lib.last_boxed(value)
  if not boxed:
    raise ValueError(f"column {name!r} has no \\boxed{{}} answer")
  return boxed


def field_map(fields: Mapping[str, str], *, answer_format: str = "plain",
              required: Sequence[str] = ("question", "answer")
              ) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
  """Example key -> column name (dotted for struct fields), as `sources.FieldMap` functions.

  Raises:
    ValueError: a `required` key is not mapped, a column name is not text, or the answer
      format is unknown.
  """
  if answer_format not in ANSWER_FORMATS:
    raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
  if not isinstance(fields, Mapping):
    raise ValueError(f"fields must be a dict of Example key -> column name, e.g. "
                     f"{{'question': 'problem', 'answer': 'answer'}}; got {fields!r}")
  missing = [k for k in required if k not in fields]
  if missing:
    raise ValueError(f"fields must name the {missing[0]!r} column, e.g. {{'question': "
                     f"'problem', 'answer': 'answer'}}; got {dict(fields)!r}")
  out: dict[str, Callable[[Mapping[str, Any]], Any]] = {}
  for key, name in fields.items():
    if not isinstance(name, str) or not name:
      raise ValueError(f"fields[{key!r}] must be a column name, got {name!r}")
    # functools.partial of module-level functions: sources holding them pickle.
    if key == "question":
      out["question"] = functools.partial(_question, name=name)
      out["messages"] = functools.partial(_messages, name=name)
    elif key == "answer":
      out["answer"] = functools.partial(_answer, name=name, answer_format=answer_format)
    else:
      out[key] = functools.partial(_column, name=name)
  return out


class HFDatasetSource(Source):
  """The rows of a `datasets.Dataset`, mapped to Examples, read by random access.

  The rows stay in the Dataset's memory-mapped Arrow files; each `source[i]` maps row i. All
  rows are mapped once at construction (errors name the row) and the mapped Examples are hashed
  into `fingerprint`, so a run resumed on edited data is refused like with the file sources.
  """

  def __init__(self, dataset: Any, fields: Mapping[str, Callable[[Mapping[str, Any]], Any]], *,
               name: str, example_fn: Callable[[Example], Example] | None = None):
    if not len(dataset):
      raise ValueError(f"data set {name!r} is empty; a source needs at least one example")
    self.name = name
    self.size = len(dataset)
    self._data = dataset
    self._fields = dict(fields)
    self._example_fn = example_fn
    digest = hashlib.sha256()
    start = 0
    for batch in dataset.iter(batch_size=1024):  # Columnar batches: one pass, fast.
      rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
      for i, row in enumerate(rows, start=start):
        example = self._map(row, i)
        digest.update(json.dumps(example, sort_keys=True, default=repr,
                                 ensure_ascii=False).encode())
      start += len(rows)
    self._fingerprint = digest.hexdigest()[:16]

  def _map(self, row: Mapping[str, Any], index: int) -> Example:
    where = f"{self.name}[{index}]"
    example = sources._map_record(row, self._fields, where)  # pylint: disable=protected-access
    if example.get("messages") is None:
      example.pop("messages", None)
    if example.get("id") is None:
      example["id"] = where
    if self._example_fn is not None:
      try:
        example = self._example_fn(example)
      except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{where}: {e}") from e
    return example

  def __getitem__(self, index: int) -> Example:
    return self._map(self._data[int(index)], int(index))

  @property
  def fingerprint(self) -> str:
    """sha256 (16 hex digits) of every mapped Example, in order."""
    return self._fingerprint


_NO_ANSWER = "(hidden tests)"
_STDIN_NOTE = ("The program reads its input from standard input and writes the answer to "
               "standard output.")


def _code_example(example: Example, *, max_tests: int | None) -> Example:
  """A code Example: stdin/stdout tests parsed, the question asking for one Python program."""
  tests = code_tasks.stdio_tests(example["tests"])
  if not tests:
    raise ValueError("the tests column holds no tests")
  if max_tests is not None:
    tests = tests[:max_tests]
  out = {**example, "tests": tests,
         "question": f"{example['question'].strip()}\n\n{_STDIN_NOTE}\n\n{CODE_INSTRUCTION}"}
  if out["answer"] == _NO_ANSWER:
    out["answer"] = f"{len(tests)} hidden tests"
  return out


@tasks_lib.register_task("hf")
def hf(path: Any = None, *, fields: Mapping[str, str] | None = None, split: str = "train",
       subset: str | None = None, data_files: Any = None, revision: str | None = None,
       cache_dir: str | None = None, answer_format: str = "plain", grader: str = "math",
       template: Any = "r1_zero", format_weight: float = 0.1, format_kind: str = "strict",
       max_tests: int | None = None, timeout_s: float = 10.0,
       memory_mb: int = 1024) -> tasks_lib.Task:
  """Any data set `datasets` reads (see `load_dataset`), mapped by `fields`, graded by `grader`.

  fields defaults to {"question": "question", "answer": "answer"} ("math") or
  {"question": "question", "tests": "tests"} ("code": stdin/stdout tests in any layout
  `code_tasks.stdio_tests` reads; the answer, a reference solution, is optional).
  """
  if grader not in GRADERS:
    raise ValueError(f"grader must be one of {GRADERS}, got {grader!r}")
  if path is None:
    raise ValueError("task 'hf' reads a data set; pass path= (a data file, glob, folder, or a "
                     "hub id in the local cache), e.g. --set task_args.path=train.parquet")
  if grader == "code":
    fields = dict(fields or {"question": "question", "tests": "tests"})
    fmap = field_map(fields, answer_format=answer_format, required=("question", "tests"))
    example_fn = functools.partial(_code_example, max_tests=max_tests)
  else:
    fields = dict(fields or {"question": "question", "answer": "answer"})
    fmap = field_map(fields, answer_format=answer_format)
    example_fn = None
  data = load_dataset(path, split=split, subset=subset, data_files=data_files,
                      revision=revision, cache_dir=cache_dir)
  where = path if isinstance(path, str) else list(path)[0]
  name = f"hf:{where}" + (f"/{subset}" if subset else "") + f"[{split}]"
  if "answer" not in fmap:  # Code without a reference solution: the Example names its tests.
    fmap["answer"] = _no_answer
  source = HFDatasetSource(data, fmap, name=name, example_fn=example_fn)
  if grader == "code":
    return code_tasks.code_task("hf", source, template=template, format_weight=format_weight,
                                format_kind=format_kind, timeout_s=timeout_s,
                                memory_mb=memory_mb)
  return tasks_lib._math_task("hf", source, template, format_weight, format_kind)  # pylint: disable=protected-access


def _no_answer(record: Mapping[str, Any]) -> str:
  """The answer of a code Example without a reference solution (rewards read the tests)."""
  del record
  return _NO_ANSWER
