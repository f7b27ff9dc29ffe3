"""Tests for r1jax.data.sources: JSONL/Parquet/TFDS readers and the resumable sharded stream."""

import json
import sys

import pytest

from r1jax.data import sources
from r1jax.data.generators import ArithmeticGenerator

FIELDS = {"question": "problem", "answer": "answer", "level": lambda r: r.get("level")}


def _write_jsonl(path, rows, extra_lines=()):
  lines = [json.dumps(r) for r in rows] + list(extra_lines)
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return path


def _rows(n):
  return [{"problem": f"What is {i} + 1?", "answer": str(i + 1), "level": i % 5 + 1}
          for i in range(n)]


def _source(n):
  return sources.RecordSource([{"question": f"q{i}", "answer": str(i), "id": i}
                               for i in range(n)], name="toy")


# --- JSONL ------------------------------------------------------------------------------------


def test_jsonl_maps_fields_skips_blank_lines_and_ids_records_by_file_and_line(tmp_path):
  path = tmp_path / "d.jsonl"
  rows = _rows(3)
  path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" +
                  json.dumps(rows[2]) + "\n\n", encoding="utf-8")
  src = sources.read_jsonl(path, FIELDS)
  assert len(src) == 3
  assert src[0] == {"question": "What is 0 + 1?", "answer": "1", "level": 1,
                    "id": f"{path}:1"}
  assert src[1]["id"] == f"{path}:3"  # Line numbers count the blank line.
  assert src[2]["level"] == 3


def test_jsonl_reads_a_glob_of_files_in_sorted_order(tmp_path):
  _write_jsonl(tmp_path / "b.jsonl", _rows(2)[1:])
  _write_jsonl(tmp_path / "a.jsonl", _rows(1))
  src = sources.read_jsonl(str(tmp_path / "*.jsonl"), FIELDS)
  assert [src[i]["answer"] for i in range(len(src))] == ["1", "2"]


def test_malformed_jsonl_line_is_reported_with_file_and_line(tmp_path):
  path = _write_jsonl(tmp_path / "bad.jsonl", _rows(2), extra_lines=['{"problem": "x", '])
  with pytest.raises(ValueError, match=rf"{path}:3: malformed JSON"):
    sources.read_jsonl(path, FIELDS)


def test_a_line_that_is_not_an_object_is_reported(tmp_path):
  path = _write_jsonl(tmp_path / "list.jsonl", _rows(1), extra_lines=["[1, 2]"])
  with pytest.raises(ValueError, match=rf"{path}:2: expected a JSON object, got list"):
    sources.read_jsonl(path, FIELDS)


def test_missing_field_names_the_field_the_line_and_the_fields_present(tmp_path):
  rows = _rows(2)
  del rows[1]["answer"]
  path = _write_jsonl(tmp_path / "d.jsonl", rows)
  with pytest.raises(ValueError, match=rf"{path}:2: record has no field 'answer'.*'level'"):
    sources.read_jsonl(path, FIELDS)


def test_empty_file_and_missing_file_give_clear_errors(tmp_path):
  empty = tmp_path / "empty.jsonl"
  empty.write_text("\n\n", encoding="utf-8")
  with pytest.raises(ValueError, match="is empty"):
    sources.read_jsonl(empty, FIELDS)
  with pytest.raises(FileNotFoundError, match="nope.jsonl"):
    sources.read_jsonl(tmp_path / "nope.jsonl", FIELDS)
  with pytest.raises(FileNotFoundError, match="no files match"):
    sources.read_jsonl(str(tmp_path / "*.parquet"), FIELDS)


def test_answers_become_text_and_empty_answers_are_rejected(tmp_path):
  path = _write_jsonl(tmp_path / "amc.jsonl", [{"problem": "p", "answer": 27.0},
                                               {"problem": "q", "answer": 0.5},
                                               {"problem": "r", "answer": 204}])
  src = sources.read_jsonl(path, {"question": "problem", "answer": "answer"})
  assert [src[i]["answer"] for i in range(3)] == ["27", "0.5", "204"]
  bad = _write_jsonl(tmp_path / "bad.jsonl", [{"problem": "p", "answer": "  "}])
  with pytest.raises(ValueError, match=rf"{bad}:1: answer is empty"):
    sources.read_jsonl(bad, {"question": "problem", "answer": "answer"})


def test_field_map_must_name_answer_and_a_question():
  with pytest.raises(ValueError, match="must map 'answer'"):
    sources.read_records([], {"question": "q"}, name="x")


def test_mapping_function_errors_carry_the_place(tmp_path):
  path = _write_jsonl(tmp_path / "d.jsonl", _rows(1))
  fields = {"question": "problem", "answer": lambda r: r["gold"]}
  with pytest.raises(ValueError, match=rf"{path}:1: cannot build 'answer'"):
    sources.read_jsonl(path, fields)


# --- Parquet ----------------------------------------------------------------------------------


def test_parquet_reads_the_same_examples_as_jsonl(tmp_path):
  pa = pytest.importorskip("pyarrow")
  pq = pytest.importorskip("pyarrow.parquet")
  rows = _rows(4)
  pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
  from_parquet = sources.read_parquet(tmp_path / "d.parquet", FIELDS)
  from_jsonl = sources.read_jsonl(_write_jsonl(tmp_path / "d.jsonl", rows), FIELDS)
  strip = lambda e: {k: v for k, v in e.items() if k != "id"}
  assert [strip(from_parquet[i]) for i in range(4)] == [strip(from_jsonl[i]) for i in range(4)]
  assert from_parquet[2]["id"] == f"{tmp_path / 'd.parquet'}:row 3"


def test_parquet_missing_column_is_reported_with_row(tmp_path):
  pa = pytest.importorskip("pyarrow")
  pq = pytest.importorskip("pyarrow.parquet")
  pq.write_table(pa.Table.from_pylist([{"problem": "p", "gold": "1"}]), tmp_path / "d.parquet")
  with pytest.raises(ValueError, match=r"d.parquet:row 1: record has no field 'answer'"):
    sources.read_parquet(tmp_path / "d.parquet", FIELDS)


def test_parquet_without_pyarrow_says_to_install_it(tmp_path, monkeypatch):
  # A None entry in sys.modules makes `import pyarrow.parquet` raise ImportError, as when the
  # package is absent.
  monkeypatch.setitem(sys.modules, "pyarrow", None)
  monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
  with pytest.raises(ImportError, match="pip install pyarrow"):
    sources.read_parquet(tmp_path / "d.parquet", FIELDS)


# --- TFDS -------------------------------------------------------------------------------------


def prepare_tfds_gsm8k(data_dir, jsonl_path):
  """Prepares the real TFDS gsm8k builder (array_record) from a local file, no download."""
  tfds = pytest.importorskip("tensorflow_datasets")
  from tensorflow_datasets.text.gsm8k import gsm8k  # pylint: disable=g-import-not-at-top

  with tfds.core.registered.skip_registration():

    class LocalGsm8k(gsm8k.Gsm8k):
      name = "gsm8k"
      # Nothing is downloaded, so there are no checksums to look up (finding them would import
      # importlib_resources, an optional dependency of etils).
      url_infos = {}

      def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples(jsonl_path)}

  LocalGsm8k(data_dir=str(data_dir), file_format="array_record").download_and_prepare()


def test_tfds_source_reads_a_prepared_gsm8k(tmp_path):
  rows = [{"question": f"Q{i}?", "answer": f"work\n#### {i}"} for i in range(5)]
  path = _write_jsonl(tmp_path / "train.jsonl", rows)
  prepare_tfds_gsm8k(tmp_path / "tfds", path)
  fields = {"question": "question", "answer": "short_answer"}
  src = sources.TfdsSource("gsm8k", "train", fields, data_dir=tmp_path / "tfds")
  got = sorted((src[i]["question"], src[i]["answer"]) for i in range(len(src)))
  assert got == [(f"Q{i}?", str(i)) for i in range(5)]
  assert src[0]["id"] == "tfds:gsm8k/train[0]"
  with pytest.raises(ValueError, match="has no split 'test'; its splits are \\['train'\\]"):
    sources.TfdsSource("gsm8k", "test", fields, data_dir=tmp_path / "tfds")
  with pytest.raises(ValueError, match="has no feature 'problem'"):
    sources.TfdsSource("gsm8k", "train", {"question": "problem", "answer": "answer"},
                       data_dir=tmp_path / "tfds")


def test_tfds_source_that_is_not_prepared_says_how_to_prepare_it(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(ValueError, match="is not prepared; prepare it with `tfds build gsm8k"):
    sources.TfdsSource("gsm8k", "train", {"question": "question", "answer": "answer"},
                       data_dir=tmp_path / "empty")


# --- ExampleStream ----------------------------------------------------------------------------


def _ids(stream, n):
  return [next(stream)["id"] for _ in range(n)]


def test_each_epoch_is_a_seeded_permutation_of_all_examples():
  src = _source(10)
  a = _ids(sources.ExampleStream(src, seed=3), 30)
  assert a == _ids(sources.ExampleStream(src, seed=3), 30)
  assert a != _ids(sources.ExampleStream(src, seed=4), 30)
  epochs = [a[0:10], a[10:20], a[20:30]]
  assert all(sorted(e) == list(range(10)) for e in epochs)
  assert epochs[0] != epochs[1]  # Reshuffled every epoch.


def test_unshuffled_single_epoch_stream_yields_stored_order_then_stops():
  stream = sources.ExampleStream(_source(5), shuffle=False, num_epochs=1)
  batches = [[e["id"] for e in stream.next_batch(2)] for _ in range(4)]
  assert batches == [[0, 1], [2, 3], [4], []]


@pytest.mark.parametrize("count", [1, 3, 4])
def test_process_shards_are_disjoint_and_cover_every_epoch(count):
  src = _source(10)
  streams = [sources.ExampleStream(src, seed=1, num_epochs=2, process_index=p,
                                   process_count=count) for p in range(count)]
  seen = [[e["id"] for e in s] for s in streams]
  for epoch in range(2):
    shards = [ids[len(ids) // 2 * epoch:len(ids) // 2 * (epoch + 1)] for ids in seen]
    flat = [i for shard in shards for i in shard]
    assert sorted(flat) == list(range(10))  # Disjoint (no repeats) and covering.


def test_position_round_trips_through_json_and_resumes_exactly():
  src = _source(7)
  stream = sources.ExampleStream(src, seed=5, process_index=1, process_count=2)
  _ids(stream, 5)  # Crosses the epoch boundary (this shard has 3 examples an epoch).
  saved = json.loads(json.dumps(stream.position))
  assert saved == {"seed": 5, "epoch": 1, "index": 2, "source": src.fingerprint}
  expected = _ids(stream, 8)
  resumed = sources.ExampleStream(src, seed=5, process_index=1, process_count=2)
  resumed.restore(saved)
  assert _ids(resumed, 8) == expected


def test_unbounded_source_is_sharded_by_index_and_resumes():
  gen = ArithmeticGenerator(seed=0)
  single = _ids(sources.ExampleStream(gen), 6)
  parts = [_ids(sources.ExampleStream(gen, process_index=p, process_count=2), 3)
           for p in range(2)]
  assert sorted(parts[0] + parts[1]) == sorted(single)
  assert not set(parts[0]) & set(parts[1])
  stream = sources.ExampleStream(gen, process_index=1, process_count=2)
  _ids(stream, 2)
  resumed = sources.ExampleStream(gen, process_index=1, process_count=2)
  resumed.restore(stream.position)
  assert _ids(resumed, 3) == _ids(stream, 3)


def test_restore_rejects_foreign_positions():
  stream = sources.ExampleStream(_source(4), seed=1)
  with pytest.raises(ValueError, match="saved with seed 2"):
    stream.restore({"seed": 2, "epoch": 0, "index": 0})
  with pytest.raises(ValueError, match="keys seed, epoch, index"):
    stream.restore({"epoch": 0, "index": 0})
  with pytest.raises(ValueError, match="past the end"):
    stream.restore({"seed": 1, "epoch": 0, "index": 9})


def test_a_position_refuses_edited_data(tmp_path):
  path = tmp_path / "data.jsonl"
  rows = [{"question": f"q{i}", "answer": str(i)} for i in range(6)]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  fields = {"question": "question", "answer": "answer"}
  stream = sources.ExampleStream(sources.read_jsonl(path, fields), seed=3)
  _ids(stream, 2)
  saved = json.loads(json.dumps(stream.position))
  same = sources.ExampleStream(sources.read_jsonl(path, fields), seed=3)
  same.restore(saved)  # The same file: fine.
  rows[4]["answer"] = "40"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  edited = sources.ExampleStream(sources.read_jsonl(path, fields), seed=3)
  with pytest.raises(ValueError, match="the data changed since the checkpoint"):
    edited.restore(saved)
  # Positions saved before fingerprints existed still load.
  edited.restore({k: v for k, v in saved.items() if k != "source"})


def test_bad_stream_options_are_rejected():
  with pytest.raises(ValueError, match="process_index must be in \\[0, 2\\)"):
    sources.ExampleStream(_source(4), process_index=2, process_count=2)
  with pytest.raises(ValueError, match="fewer than the 5 processes"):
    sources.ExampleStream(_source(4), process_count=5)
  with pytest.raises(ValueError, match="batch size must be a positive integer"):
    sources.ExampleStream(_source(4)).next_batch(0)
