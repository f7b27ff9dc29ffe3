"""Writes tests/fixtures/miniature_stage1: stage 1 (cold-start SFT) of "R1 in miniature".

Place in the pipeline: test data. `tests/miniature_test.py` runs stage 2 of the main job
(GRPO from rule rewards) in CI from this checkpoint, because stage 1 alone needs minutes
of the 2-core CPU (it runs until the worked style is right on 85% of held-out sums: 325
steps of 128 rows for seed 0) and the CI run has 2 minutes. The checkpoint is made by the
experiment's own stage 1 through `train.run` (its step-0 checkpoint), then written as an HF
folder (config.json + safetensors, 1.3 MB) with the miniature tokenizer, so
`Config.model_path` loads it like any model.

Regenerate after a change to experiments/miniature.py's model or stage 1 (about 3 minutes):

  python tests/make_miniature_stage1.py
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

_ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = _ROOT / "tests" / "fixtures" / "miniature_stage1"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=str(FIXTURE), help="the folder to write")
  args = parser.parse_args(argv)
  sys.path.insert(0, str(_ROOT))
  import dataclasses
  from r1jax import config as config_lib
  from r1jax import eval_run, experiment, train
  from r1jax.data import miniature
  from r1jax.models import weights
  from r1jax.models.config import ModelConfig
  from r1jax.run_config import CheckpointConfig, EvalConfig

  cfg = experiment.resolve_config(experiment.load_experiment(_ROOT / "experiments/miniature.py"))
  # Stage 1 only: no RL step runs (max_steps=0), so the step-0 checkpoint is the SFT model.
  cfg = dataclasses.replace(cfg, eval=EvalConfig(every=0), tensorboard=False,
                            checkpoint=CheckpointConfig(every=10**6, keep=1))
  with tempfile.TemporaryDirectory() as workdir:
    train.run(cfg, workdir, max_steps=0)
    model_cfg = config_lib.from_json(
        ModelConfig, pathlib.Path(workdir, "model_config.json").read_text())
    step, params = eval_run.restore_params(workdir, model_cfg, step=0)
  out = pathlib.Path(args.out)
  weights.save_hf(model_cfg, params, out)
  miniature.write_tokenizer(out)
  (out / "stage1.json").write_text(json.dumps(
      {"made_by": "tests/make_miniature_stage1.py", "experiment": "experiments/miniature.py",
       "checkpoint_step": step, "seed": cfg.seed,
       "sft": json.loads(config_lib.to_json(cfg.sft))},
      indent=2) + "\n")
  print(os.fspath(out))
  return 0


if __name__ == "__main__":
  sys.exit(main())
