"""Weights & Biases tracking: off unless asked; offline runs hold the config, every metric, a
samples table per step and the plots; a resumed run continues the same W&B run; without the
package, asking for it is one clear error naming the extra."""

import dataclasses
import glob
import json
import os
import sys

import pytest

from r1jax import cli, metrics, run_summary, tracking, train
from r1jax.grpo_config import GRPOConfig
from r1jax.models.config import ModelConfig
from r1jax.run_config import CheckpointConfig, Config, OptimConfig
from r1jax.sampler import SamplingConfig

from tests import _wandb_log


@pytest.fixture
def offline(monkeypatch):
  pytest.importorskip("wandb")
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_SILENT", "true")
  for name in ("WANDB_DIR", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_PROJECT"):
    monkeypatch.delenv(name, raising=False)


def _history(workdir):
  """{step: {metric: value}} and the config of every W&B run file under WORKDIR/wandb."""
  steps, configs = {}, []
  files = sorted(glob.glob(os.path.join(workdir, "wandb", "offline-run-*", "run-*.wandb")))
  assert files, os.listdir(workdir)
  for path in files:
    for rec in _wandb_log.records(path):
      kind = rec.WhichOneof("record_type")
      if kind == "history":
        row = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
               for i in rec.history.item}
        steps.setdefault(row["_step"], {}).update(row)
      elif kind == "run":
        configs.append({u.key: json.loads(u.value_json) for u in rec.run.config.update})
  return steps, configs, files


def _tiny_config(**kw) -> Config:
  cfg = Config(
      model=ModelConfig(vocab_size=20, hidden_size=32, num_layers=2, num_heads=4,
                        num_kv_heads=2, head_dim=8, intermediate_size=64,
                        max_position_embeddings=64),
      tokenizer_path="miniature", task="miniature", task_args={"seed": 0},
      eval_task_args={"seed": 1}, grpo=GRPOConfig(num_samples=4),
      sampling=SamplingConfig(max_new_tokens=16, prompt_multiple=16),
      prompts_per_step=2, num_steps=2, optim=OptimConfig(lr=1e-3),
      checkpoint=CheckpointConfig(every=2, keep=1), tensorboard=False, seed=0,
      tracking=("wandb",))
  return dataclasses.replace(cfg, **kw)


def test_tracking_is_off_by_default_and_names_are_checked():
  assert Config().tracking == ()
  with pytest.raises(ValueError, match="unknown tracker 'mlflow'.*accepted: wandb"):
    Config(tracking=("mlflow",))


def test_offline_debug_run_writes_a_wandb_run_with_every_metric_samples_and_plots(
    tmp_path, offline):
  train.run(_tiny_config(), tmp_path)
  steps, configs, files = _history(tmp_path)
  assert len(files) == 1
  assert configs[0]["task"] == "miniature" and configs[0]["tracking"] == ["wandb"]
  assert configs[0]["grpo"]["num_samples"] == 4
  for record in metrics.read_metrics(tmp_path):  # Every metric of metrics.jsonl, each step.
    logged = steps[record["step"]]
    for key, value in record.items():
      if key != "step":
        assert logged[key] == pytest.approx(value, nan_ok=True), key
  # A table of the step's sampled completions at steps 1 and 2.
  for step in (1, 2):
    assert steps[step]["samples/_type"] == "table-file"
    table_path = os.path.join(os.path.dirname(files[0]), "files", steps[step]["samples/path"])
    with open(table_path) as f:
      table = json.load(f)
    assert table["columns"][:3] == ["step", "prompt", "completion"]
    assert table["data"] and all(row[0] == step for row in table["data"])
  # The run's PNG curves, as images.
  images = [k[len("plots/"):-len("/_type")] for k, v in steps[2].items()
            if k.startswith("plots/") and k.endswith("/_type") and v == "image-file"]
  assert {"accuracy_reward", "length"} <= set(images)
  # The run's closing summary says how to upload the offline run.
  summary = run_summary.summarize(str(tmp_path)).splitlines()
  assert f"  wandb sync {os.path.dirname(files[0])}" in summary


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path, offline):
  with metrics.MetricsWriter(tmp_path, process_index=0, tensorboard=False,
                             trackers=tracking.make_trackers(
                                 ["wandb"], workdir=tmp_path, config={"seed": 0},
                                 wandb_cfg=tracking.WandbConfig(), resume=False)) as writer:
    writer.write(1, {"reward/mean": 0.25, "loss": float("nan")})
  first_id = (tmp_path / "wandb_run_id").read_text().strip()
  with metrics.MetricsWriter(tmp_path, process_index=0, tensorboard=False, resume_step=1,
                             trackers=tracking.make_trackers(
                                 ["wandb"], workdir=tmp_path, config={"seed": 0},
                                 wandb_cfg=tracking.WandbConfig(), resume=True)) as writer:
    writer.write(2, {"reward/mean": 0.5, "loss": 1.0})
  steps, _, files = _history(tmp_path)
  assert (tmp_path / "wandb_run_id").read_text().strip() == first_id
  assert all(f.endswith(f"run-{first_id}.wandb") for f in files) and len(files) == 2
  assert steps[1]["reward/mean"] == 0.25 and steps[2]["reward/mean"] == 0.5
  assert steps[1]["loss"] != steps[1]["loss"]  # NaN arrives as NaN


def test_without_wandb_asking_for_it_is_one_clear_error(tmp_path, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now fails
  with pytest.raises(RuntimeError, match=r"pip install 'r1jax\[wandb\]'"):
    tracking.check_trackers(["wandb"])
  experiment = os.path.join(os.path.dirname(__file__), "..", "experiments", "miniature.py")
  code = cli.main(["train", experiment, "--debug", "--workdir", str(tmp_path / "w"),
                   "--set", "tracking=wandb"])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2
  assert err[-1].startswith("r1jax train: error: tracking 'wandb' needs the Weights & Biases "
                            "package") and "pip install 'r1jax[wandb]'" in err[-1]
  assert not (tmp_path / "w" / "checkpoints").exists()  # refused before any work
