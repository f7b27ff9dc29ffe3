"""Every experiment file: its config plans on the hardware it names, its debug variant trains.

For each `experiments/*.py`: get_config() passes a dry run (r1jax.dryrun) on the devices of its
HARDWARE and its docstring's command says the same; get_debug_config() keeps the recipe's
objective and trains one step on CPU, and the workdir it leaves loads back.
"""

import dataclasses
import math
import pathlib
import re

import pytest

from r1jax import config as config_lib
from r1jax import dryrun
from r1jax import eval_run
from r1jax import experiment
from r1jax import train
from r1jax.metrics import read_metrics
from r1jax.run_config import Config

EXPERIMENTS = sorted((pathlib.Path(__file__).parent.parent / "experiments").glob("*.py"))
# Experiments without a HARDWARE constant (the CPU miniature) are planned on one small device.
_DEFAULT_HARDWARE = {"num_devices": 1, "device_memory_gb": 16.0}
# Fields a debug variant may shrink; every other objective field must equal the recipe's.
_SIZE_FIELDS = ("num_samples", "overlong_buffer")


def _ids(paths):
  return [p.stem for p in paths]


def test_every_recipe_of_the_issue_is_here():
  names = {p.stem for p in EXPERIMENTS}
  assert {"r1_zero_qwen2_5_math_7b", "tinyzero_countdown_qwen2_5_3b",
          "dr_grpo_oat_zero_qwen2_5_math_7b", "dapo_qwen2_5_32b",
          "simplerl_zoo_qwen2_5_0_5b_gsm8k", "miniature",
          # Programming and logic puzzles (code tasks, Knights and Knaves).
          "logic_rl_knights_knaves_qwen2_5_7b", "deepcoder_14b_preview",
          "smollm2_code_functions"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=_ids(EXPERIMENTS))
def test_full_config_fits_the_hardware_it_names(path):
  module = experiment.load_experiment(path)
  cfg = module.get_config()
  assert isinstance(cfg, Config)
  hardware = getattr(module, "HARDWARE", _DEFAULT_HARDWARE)
  report = dryrun.dry_run_config(cfg, **hardware)
  assert report.fits, f"{path.name}: {report.verdict}"
  assert report.num_devices == hardware["num_devices"]
  if hasattr(module, "HARDWARE"):
    # The docstring's dry-run command plans the same hardware as the test does.
    doc = " ".join(module.__doc__.split())
    command = re.search(r"--dry-run --num-devices (\d+) \\ --device-memory-gb (\d+)", doc)
    assert command, f"{path.name}: the docstring has no dry-run command"
    assert (int(command.group(1)), float(command.group(2))) == (
        hardware["num_devices"], hardware["device_memory_gb"])
  # The resolved config survives the JSON round trip the trainer writes into the workdir.
  text = config_lib.to_json(cfg)
  assert config_lib.to_dict(config_lib.from_json(Config, text)) == config_lib.to_dict(cfg)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=_ids(EXPERIMENTS))
def test_debug_variant_keeps_the_objective_and_trains_one_step(path, tmp_path):
  module = experiment.load_experiment(path)
  full, debug = module.get_config(), module.get_debug_config()
  shrink = {f: getattr(debug.grpo, f) for f in _SIZE_FIELDS}
  assert dataclasses.replace(full.grpo, **shrink) == debug.grpo, (
      f"{path.name}: the debug variant changes the objective, not only its sizes")
  assert debug.optim.lr == full.optim.lr and debug.sampling.temperature == (
      full.sampling.temperature)

  metrics = train.run(debug, tmp_path, max_steps=1)
  rows = read_metrics(tmp_path)
  assert [r["step"] for r in rows if "loss" in r] == [1]
  assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["grad_norm"])
  assert metrics["length/mean"] > 0
  # The sampler's logprobs are the trainer's (temperature 1, same params, no top-p).
  assert metrics["logprob_gap/max"] < 1e-4
  loaded = eval_run.load_model(tmp_path)  # The workdir loads back like any model.
  assert loaded.step == 1 and loaded.tokenizer.vocab_size <= loaded.model_cfg.vocab_size
