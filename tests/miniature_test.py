"""R1 in miniature, shortened for CI: GRPO with a correct-answer reward alone teaches thinking.

The main job (experiments/miniature.py) trains its tiny decoder in two stages. Stage 1 (SFT on
text where half of the completions work the sum) needs minutes here, so this test
starts stage 2 from that stage's committed output (tests/fixtures/miniature_stage1, written by
tests/make_miniature_stage1.py through the same code) and runs the experiment's own RL config
for 10 steps: about a minute on 2 CPU cores, compilation included.
"""

import dataclasses
import json
import pathlib

from r1jax import config as config_lib
from r1jax import experiment, train
from r1jax.metrics import read_metrics
from r1jax.run_config import CheckpointConfig, SFTConfig

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_FIXTURE = _ROOT / "tests" / "fixtures" / "miniature_stage1"


def _experiment_config():
  return experiment.resolve_config(
      experiment.load_experiment(_ROOT / "experiments" / "miniature.py"))


def test_stage1_fixture_matches_the_experiments_model():
  # A changed model in experiments/miniature.py needs a regenerated fixture.
  cfg = _experiment_config()
  model = cfg.model
  hf = json.loads((_FIXTURE / "config.json").read_text())
  assert (hf["hidden_size"], hf["num_hidden_layers"], hf["num_attention_heads"],
          hf["intermediate_size"], hf["vocab_size"]) == (
              model.hidden_size, model.num_layers, model.num_heads, model.intermediate_size,
              model.vocab_size)
  made = json.loads((_FIXTURE / "stage1.json").read_text())
  assert made["sft"] == json.loads(config_lib.to_json(cfg.sft))


def test_grpo_from_the_stage1_model_raises_greedy_accuracy_by_30_points(tmp_path):
  cfg = _experiment_config()
  cfg = dataclasses.replace(
      cfg, model_path=str(_FIXTURE), sft=SFTConfig(), num_steps=10,
      eval=dataclasses.replace(cfg.eval, every=10, num_examples=128, batch_size=128),
      checkpoint=CheckpointConfig(every=10**6, keep=1), tensorboard=False)
  train.run(cfg, tmp_path)
  evals = {r["step"]: r for r in read_metrics(tmp_path / "metrics.jsonl")
           if "eval/greedy/strict" in r}
  before, after = evals[0], evals[10]
  # Stage 1 leaves the greedy policy answering directly, and mostly wrong.
  assert before["eval/greedy/worked"] == 0.0
  assert after["eval/greedy/strict"] - before["eval/greedy/strict"] >= 0.30, (before, after)
  # It rises because the policy now works the sum: longer answers, R1's length curve.
  assert after["eval/greedy/worked"] > 0.5
  assert after["eval/greedy/length"] >= 2 * before["eval/greedy/length"]


def test_cold_start_rows_with_think_in_the_prompt_teach_the_style_not_the_choice():
  from r1jax.data import miniature  # pylint: disable=g-import-not-at-top
  source = miniature.ColdStartSource(seed=0, worked_frac=0.5, think_in_prompt=0.67)
  rows = [source[i] for i in range(4000)]
  forced = [r for r in rows if r["prompt"].endswith(miniature.THINK)]
  chosen = [r for r in rows if r["completion"].startswith(miniature.THINK)]
  direct = [r for r in rows if r["style"] == "direct"]
  assert all(r["style"] == "worked" and not r["completion"].startswith(miniature.THINK)
             for r in forced)
  # The prompt plus completion is the same text a freely chosen worked row has.
  example = forced[0]
  q = example["prompt"][2:-len("=" + miniature.THINK)]
  a, b = (int(x) for x in q.split("+"))
  assert example["prompt"] + example["completion"] == (
      f"Q:{q}=" + miniature.worked_solution(a, b) + miniature.EOS)
  # Half the rows work the sum, yet the learned first token is `<think>` on ~25% of rows.
  assert abs(len(forced + chosen) / len(rows) - 0.5) < 0.03
  assert abs(len(chosen) / (len(chosen) + len(direct)) - 0.248) < 0.03
  # Without the option every row is as before: no prompt ends in <think>.
  plain = miniature.ColdStartSource(seed=0, worked_frac=0.5)
  assert not any(plain[i]["prompt"].endswith(miniature.THINK) for i in range(200))
