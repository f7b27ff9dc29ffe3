"""r1jax.metrics: JSONL records, NaN handling, exact-resume truncation, TensorBoard files,
process-0-only writing and the progress bar."""

import glob
import io
import json
import math
import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from r1jax import metrics


def _step_metrics(step: int) -> dict:
  """Metrics of one step in the mix of types a trainer hands over."""
  return {"reward/mean": 0.25 * step, "accuracy/strict": np.float32(step / 10),
          "kl": jnp.float32(1e-3 * step), "length/max": np.int32(10 + step),
          "groups/zero_var_frac": 1 / 3, "stopped_early": step % 2 == 0}


def _samples(step: int) -> list[dict]:
  return [{"prompt": "1+1=", "completion": f"<think>{i}</think> 2", "reward": np.float32(i),
           "tokens": np.arange(3) + step} for i in range(2)]


def _tb_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
  from tensorboard.backend.event_processing import event_accumulator
  files = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
  assert len(files) == 1, files
  acc = event_accumulator.EventAccumulator(files[0])
  acc.Reload()
  return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_one_json_line_per_write_with_plain_numbers_and_nonfinite_as_strings(tmp_path):
  with metrics.MetricsWriter(tmp_path, tensorboard=False, process_index=0) as writer:
    writer.write(1, _step_metrics(1))
    writer.write(2, {"loss": float("nan"), "grad_norm": float("inf"), "x": -math.inf,
                     "entropy": jnp.array([0.5])})
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 2

  def no_constants(name):
    raise AssertionError(f"bare {name} in strict JSON")

  first = json.loads(lines[0], parse_constant=no_constants)
  assert first == {"step": 1, "reward/mean": 0.25, "accuracy/strict": float(np.float32(0.1)),
                   "kl": float(np.float32(1e-3)), "length/max": 11,
                   "groups/zero_var_frac": 1 / 3, "stopped_early": False}
  assert list(first)[0] == "step"
  second = json.loads(lines[1], parse_constant=no_constants)
  assert second == {"step": 2, "loss": "NaN", "grad_norm": "Infinity", "x": "-Infinity",
                    "entropy": 0.5}
  back = metrics.read_metrics(tmp_path)
  assert math.isnan(back[1]["loss"]) and back[1]["grad_norm"] == math.inf
  assert back[1]["x"] == -math.inf and back[0]["groups/zero_var_frac"] == 1 / 3


def test_bad_values_are_one_clear_error(tmp_path):
  with metrics.MetricsWriter(tmp_path, tensorboard=False, process_index=0) as writer:
    with pytest.raises(ValueError, match="'reward/all'.*shape \\(4,\\)"):
      writer.write(1, {"reward/all": np.zeros(4)})
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
      writer.write(-1, {})
    with pytest.raises(ValueError, match="'cfg' must be a number"):
      writer.write(1, {"cfg": {"a": 1}})
  with pytest.raises(FileNotFoundError, match="No metrics file"):
    metrics.read_metrics(tmp_path / "nowhere")


def _run(workdir, steps, *, resume_step=None, tensorboard=True):
  with metrics.MetricsWriter(workdir, resume_step=resume_step, tensorboard=tensorboard,
                             process_index=0) as writer:
    for step in steps:
      writer.write(step, _step_metrics(step))
      writer.write_samples(step, _samples(step))


def test_resume_drops_lines_after_the_restored_step_so_files_match_an_uninterrupted_run(
    tmp_path):
  pytest.importorskip("tensorboard")
  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  _run(straight, range(1, 7))

  # Interrupted run: checkpoint at step 2, metrics already written up to 4, then killed while
  # writing step 5 (half a line in each file).
  _run(resumed, range(1, 5))
  for name in ("metrics.jsonl", "samples.jsonl"):
    with open(resumed / name, "a") as f:
      f.write('{"step": 5, "reward/me')
  _run(resumed, range(3, 7), resume_step=2)

  for name in ("metrics.jsonl", "samples.jsonl"):
    assert (resumed / name).read_bytes() == (straight / name).read_bytes(), name
  assert _tb_scalars(resumed / "tensorboard") == _tb_scalars(straight / "tensorboard")
  samples = [json.loads(l) for l in (straight / "samples.jsonl").read_text().splitlines()]
  assert len(samples) == 12 and samples[0] == {
      "step": 1, "prompt": "1+1=", "completion": "<think>0</think> 2", "reward": 0.0,
      "tokens": [1, 2, 3]}


def test_tensorboard_file_holds_every_numeric_metric_per_step(tmp_path):
  pytest.importorskip("tensorboard")
  _run(tmp_path, range(1, 4))
  scalars = _tb_scalars(tmp_path / "tensorboard")
  assert set(scalars) == {"reward/mean", "accuracy/strict", "kl", "length/max",
                          "groups/zero_var_frac", "stopped_early"}
  assert scalars["reward/mean"] == [(1, 0.25), (2, 0.5), (3, 0.75)]
  assert scalars["length/max"] == [(1, 11.0), (2, 12.0), (3, 13.0)]


@pytest.mark.parametrize("resume_step", [None, 0])
def test_a_fresh_run_clears_an_earlier_runs_files(tmp_path, resume_step):
  pytest.importorskip("tensorboard")
  _run(tmp_path, range(0, 5))  # step 0: e.g. an evaluation before training
  _run(tmp_path, [0, 1], resume_step=resume_step)
  assert [r["step"] for r in metrics.read_metrics(tmp_path)] == [0, 1]
  assert list(_tb_scalars(tmp_path / "tensorboard")["reward/mean"]) == [(0, 0.0), (1, 0.25)]
  assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 4


def test_only_process_zero_writes(tmp_path):
  with metrics.MetricsWriter(tmp_path, process_index=1) as writer:
    record = writer.write(3, {"reward/mean": np.float32(0.5)})
    writer.write_samples(3, _samples(3))
  assert record == {"step": 3, "reward/mean": 0.5}  # still validated and converted
  assert os.listdir(tmp_path) == []


def test_missing_tensorboard_writer_warns_and_still_writes_jsonl(tmp_path, monkeypatch):
  # A None entry makes `import` fail, as if the package (and all its modules) were absent.
  for name in [m for m in sys.modules if m.split(".")[0] == "tensorboardX"] + ["tensorboardX"]:
    monkeypatch.setitem(sys.modules, name, None)
  with pytest.warns(UserWarning, match="tensorboardX is not installed"):
    writer = metrics.MetricsWriter(tmp_path, process_index=0)
  writer.write(1, {"reward/mean": 1.0})
  writer.close()
  assert metrics.read_metrics(tmp_path) == [{"step": 1, "reward/mean": 1.0}]
  assert not glob.glob(str(tmp_path / "tensorboard" / "events*"))


def test_progress_bar_shows_position_eta_and_key_metrics():
  out = io.StringIO()
  with metrics.Progress(10, initial_step=4, file=out) as bar:
    bar.update(5, {"reward/mean": np.float32(0.5), "accuracy/strict": 0.25, "other": 1.0})
    bar.update(7, {"reward/mean": 0.75, "length/mean": jnp.float32(33.0)})
  text = out.getvalue()
  assert "7/10" in text
  assert "reward=0.75" in text and "len=33" in text
  assert "<" in text  # tqdm's "elapsed<remaining" ETA field


def test_writer_progress_starts_at_the_resumed_step_and_logs_lines(tmp_path, capsys):
  with metrics.MetricsWriter(tmp_path, tensorboard=False, process_index=0) as writer:
    writer.log_console("sft 5/10", {"loss": np.float32(0.5)})
    writer.progress(4, 6, {"reward/mean": 0.5})   # resumed after step 3
    writer.log_console("eval", {"eval/greedy_accuracy": 0.75})
    writer.progress(6, 6, {"reward/mean": 1.0})
  err = capsys.readouterr().err
  assert "sft 5/10  loss=0.5" in err and "eval  eval/greedy_accuracy=0.75" in err
  assert "4/6" in err and "6/6" in err and "reward=1" in err
  with metrics.MetricsWriter(tmp_path / "other", process_index=1) as writer:
    writer.progress(1, 2, {"reward/mean": 0.5})
    writer.log_console("hidden")
  assert capsys.readouterr().err == ""


def test_lines_printed_by_others_inside_external_write_start_on_a_cleared_line():
  out = io.StringIO()
  with metrics.Progress(10, file=out, desc="sft") as bar:
    bar.update(3, {"loss": 0.5})
    with bar.external_write():
      out.write("sft 3/10  sft/loss=0.5\n")
    bar.update(4)
  text = out.getvalue()
  before, line, after = text.partition("sft 3/10  sft/loss=0.5\n")
  assert line
  # The bar was cleared first (the line starts at column 0, not after the bar's text) ...
  assert before.rsplit("\r", 1)[-1].strip() == ""
  # ... and drawn again after it.
  assert "4/10" in after
