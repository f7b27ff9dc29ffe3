"""The `hf` task: Hugging Face `datasets` as a source, mapped by field maps in the task args.

Every data set here is a small file the test writes (Parquet, JSONL, CSV, a save_to_disk
folder, a hub snapshot laid out as the Hugging Face cache lays it); nothing is downloaded.
"""

import json
import sys

import pytest

datasets = pytest.importorskip("datasets")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from r1jax import config as config_lib  # pylint: disable=g-import-not-at-top
from r1jax.data import get_task  # pylint: disable=g-import-not-at-top
from r1jax.data import hf_datasets  # pylint: disable=g-import-not-at-top
from r1jax.run_config import Config  # pylint: disable=g-import-not-at-top


def _gsm8k_rows(n=12):
  """GSM8K's layout: question; answer = worked solution ending "#### N" (commas in N)."""
  return [{"question": f"Tom has {1000 + i} apples and buys {i} more. How many?",
           "answer": f"He has {1000 + i} + {i} = {1000 + 2 * i} apples.\n#### {1000 + 2 * i:,}"}
          for i in range(n)]


@pytest.fixture
def gsm8k_parquet(tmp_path):
  path = tmp_path / "gsm8k_train.parquet"
  pq.write_table(pa.Table.from_pylist(_gsm8k_rows()), path)
  return str(path)


def _task(tmp_path, **kwargs):
  return get_task("hf", cache_dir=str(tmp_path / "hf_cache"), **kwargs)


def test_gsm8k_layout_parquet_loads_with_a_field_map_alone(tmp_path, gsm8k_parquet):
  task = _task(tmp_path, path=gsm8k_parquet, fields={"question": "question", "answer": "answer"},
               answer_format="gsm8k")
  assert len(task.source) == 12
  first = task.source[0]
  assert first["question"] == "Tom has 1000 apples and buys 0 more. How many?"
  assert first["answer"] == "1000"
  assert task.source[11]["answer"] == "1022"  # "1,022" without its thousands comma
  # Graded as maths: the gold in <answer> tags earns accuracy and format.
  scores = task.rewards("<think>1000 + 11 = 1011</think> <answer>1022</answer>", task.source[11])
  assert scores["accuracy"] == 1.0 and scores["format"] == 1.0


def test_jsonl_with_renamed_and_nested_columns_and_chat_turns(tmp_path):
  """DAPO-Math-17k's layout: chat turns in `prompt`, the gold in `reward_model.ground_truth`."""
  path = tmp_path / "dapo.jsonl"
  with open(path, "w") as f:
    for i in range(6):
      f.write(json.dumps({
          "data_source": "math_dapo",
          "prompt": [{"role": "user", "content": f"Compute {i} * 7."}],
          "reward_model": {"ground_truth": str(7 * i), "style": "rule"},
          "extra_info": {"index": f"dapo-{i}"}}) + "\n")
  task = _task(tmp_path, path=str(path), fields={
      "question": "prompt", "answer": "reward_model.ground_truth", "id": "extra_info.index",
      "source": "data_source"})
  ex = task.source[3]
  assert ex == {"question": "Compute 3 * 7.", "answer": "21", "id": "dapo-3",
                "source": "math_dapo",
                "messages": [{"role": "user", "content": "Compute 3 * 7."}]}
  assert "Compute 3 * 7." in task.render(ex)  # r1_zero shows the last user turn


def test_openr1_and_deepscaler_layouts_and_csv(tmp_path):
  rows = [{"problem": f"What is {i}^2?", "solution": f"... \\boxed{{{i * i}}}",
           "answer": str(i * i)} for i in range(4)]
  path = tmp_path / "openr1.csv"
  datasets.Dataset.from_list(rows).to_csv(str(path))
  by_answer = _task(tmp_path, path=str(path), fields={"question": "problem", "answer": "answer"})
  by_boxed = _task(tmp_path, path=str(path), fields={"question": "problem",
                                                     "answer": "solution"},
                   answer_format="boxed")
  assert [e["answer"] for e in by_answer.source] == ["0", "1", "4", "9"]
  assert [by_boxed.source[i]["answer"] for i in range(4)] == ["0", "1", "4", "9"]


def test_save_to_disk_folder_and_its_splits(tmp_path):
  dd = datasets.DatasetDict({
      "train": datasets.Dataset.from_list(_gsm8k_rows(5)),
      "test": datasets.Dataset.from_list(_gsm8k_rows(3))})
  dd.save_to_disk(str(tmp_path / "saved"))
  train = _task(tmp_path, path=str(tmp_path / "saved"), answer_format="gsm8k")
  test = _task(tmp_path, path=str(tmp_path / "saved"), split="test", answer_format="gsm8k")
  assert (len(train.source), len(test.source)) == (5, 3)
  with pytest.raises(ValueError, match="no split 'validation'.*'test', 'train'"):
    _task(tmp_path, path=str(tmp_path / "saved"), split="validation")


def test_hub_dataset_in_the_local_cache_loads_and_a_missing_one_is_a_clear_error(
    tmp_path, monkeypatch):
  from huggingface_hub import constants
  cache = tmp_path / "hub"
  commit = "0123456789abcdef0123456789abcdef01234567"
  repo = cache / "datasets--someone--tiny-math"
  (repo / "refs").mkdir(parents=True)
  (repo / "refs" / "main").write_text(commit)
  data = repo / "snapshots" / commit / "data"
  data.mkdir(parents=True)
  pq.write_table(pa.Table.from_pylist(_gsm8k_rows(4)), data / "train-00000-of-00001.parquet")
  monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
  task = _task(tmp_path, path="someone/tiny-math", answer_format="gsm8k")
  assert len(task.source) == 4 and task.source[2]["answer"] == "1004"
  with pytest.raises(FileNotFoundError, match="'someone/absent'.*local Hugging Face cache"):
    _task(tmp_path, path="someone/absent")


def test_resume_mid_stream_gives_the_same_order(tmp_path, gsm8k_parquet):
  def make():
    return _task(tmp_path, path=gsm8k_parquet, answer_format="gsm8k")

  straight = make().stream(seed=5)
  order = [straight.next_batch(4) for _ in range(5)]  # 20 > 12: crosses an epoch boundary
  first = make().stream(seed=5)
  seen = [first.next_batch(4) for _ in range(2)]
  position = json.loads(json.dumps(first.position))  # as a checkpoint stores it
  resumed = make().stream(seed=5)
  resumed.restore(position)
  seen += [resumed.next_batch(4) for _ in range(3)]
  assert [[e["id"] for e in b] for b in seen] == [[e["id"] for e in b] for b in order]
  assert seen == order
  assert len({e["id"] for e in order[0] + order[1] + order[2]}) == 12  # a whole epoch


def test_resume_on_edited_data_is_refused(tmp_path, gsm8k_parquet):
  stream = _task(tmp_path, path=gsm8k_parquet, answer_format="gsm8k").stream(seed=0)
  stream.next_batch(3)
  rows = _gsm8k_rows()
  rows[7]["answer"] = rows[7]["answer"].replace("1,014", "1,015")
  pq.write_table(pa.Table.from_pylist(rows), gsm8k_parquet)
  edited = _task(tmp_path, path=gsm8k_parquet, answer_format="gsm8k").stream(seed=0)
  with pytest.raises(ValueError, match="the data changed since the checkpoint"):
    edited.restore(stream.position)


def test_bad_field_maps_and_paths_are_one_clear_error(tmp_path, gsm8k_parquet):
  with pytest.raises(ValueError, match=r"\[0\].*column 'problem' not found.*'answer', "
                     r"'question'"):
    _task(tmp_path, path=gsm8k_parquet, fields={"question": "problem", "answer": "answer"})
  with pytest.raises(ValueError, match="fields must name the 'answer' column"):
    _task(tmp_path, path=gsm8k_parquet, fields={"question": "question"})
  with pytest.raises(ValueError, match=r"\[0\].*column 'answer' has no \\boxed"):
    _task(tmp_path, path=gsm8k_parquet, answer_format="boxed")
  with pytest.raises(ValueError, match="answer_format must be one of"):
    _task(tmp_path, path=gsm8k_parquet, answer_format="last_number")
  with pytest.raises(FileNotFoundError, match="does not exist"):
    _task(tmp_path, path=str(tmp_path / "nowhere.parquet"))
  with pytest.raises(FileNotFoundError, match="'data/nowhere.jsonl' does not exist"):
    _task(tmp_path, path="data/nowhere.jsonl")  # relative, not a hub id
  (tmp_path / "notes.txt").write_text("x")
  with pytest.raises(ValueError, match="extension '.txt'"):
    _task(tmp_path, path=str(tmp_path / "notes.txt"))
  with pytest.raises(ValueError, match="pass path="):
    get_task("hf")


def test_code_grader_reads_stdio_tests_from_a_column(tmp_path):
  rows = [{"statement": "Read n and print 2n.",
           "io": json.dumps({"inputs": ["3\n", "5\n"], "outputs": ["6\n", "10\n"]})}]
  path = tmp_path / "code.parquet"
  pq.write_table(pa.Table.from_pylist(rows), path)
  task = _task(tmp_path, path=str(path), grader="code",
               fields={"question": "statement", "tests": "io"}, timeout_s=5.0)
  ex = task.source[0]
  assert ex["tests"] == [{"input": "3\n", "output": "6\n"}, {"input": "5\n", "output": "10\n"}]
  assert ex["answer"] == "2 hidden tests" and "standard input" in ex["question"]
  right = "<think>double</think> <answer>```python\nprint(2 * int(input()))\n```</answer>"
  wrong = "<think>same</think> <answer>```python\nprint(int(input()))\n```</answer>"
  assert task.rewards(right, ex)["accuracy"] == 1.0
  assert task.rewards(wrong, ex)["accuracy"] == 0.0


def test_set_one_task_arg_key_from_the_command_line(tmp_path, gsm8k_parquet):
  """`--set task_args.path=...` sets one key and keeps the others (fields, answer_format)."""
  cfg = Config(task="hf", task_args={"fields": {"question": "question", "answer": "answer"},
                                     "answer_format": "gsm8k"})
  cfg = config_lib.apply_overrides(cfg, config_lib.parse_set_args([
      f"task_args.path={gsm8k_parquet}", f"task_args.cache_dir={tmp_path / 'c'}",
      "task_args.fields.id=question"]))
  assert cfg.task_args["answer_format"] == "gsm8k"
  task = get_task(cfg.task, **cfg.task_args)
  assert task.source[0]["id"] == task.source[0]["question"]


def test_without_datasets_installed_the_error_names_the_extra(tmp_path, monkeypatch,
                                                                gsm8k_parquet):
  monkeypatch.setitem(sys.modules, "datasets", None)
  with pytest.raises(ImportError, match=r"pip install 'r1jax\[datasets\]'"):
    _task(tmp_path, path=gsm8k_parquet)
