"""Stage 1 (SFT): the teacher-forced criterion, stopping on it, and the console it reports to."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from r1jax import sft, train_step
from r1jax.data import miniature
from r1jax.data.sources import ExampleStream
from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.run_config import OptimConfig, SFTConfig
from r1jax.tokenizer import load_tokenizer

_MODEL = ModelConfig(vocab_size=20, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=64, max_position_embeddings=64)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  return load_tokenizer(miniature.write_tokenizer(tmp_path_factory.mktemp("tok")))


def _greedy_continuation(params, prefix, n):
  tokens = list(prefix)
  for _ in range(n):
    logits, _ = transformer.forward(params, np.array([tokens], np.int32), cfg=_MODEL)
    tokens.append(int(np.argmax(logits[0, -1])))
  return tokens


def test_exact_match_is_greedy_decoding_after_the_style_token():
  params = transformer.init(_MODEL, jax.random.key(0))
  exact = sft.make_exact_match(_MODEL)
  prompt = [16, 5, 14, 6, 15]  # Any ids: a random model's greedy continuation is the target.
  first = 3  # The first completion token need not be the argmax: it picks the style.
  row = _greedy_continuation(params, prompt + [first], 6)
  t = len(row)
  loss = np.zeros((1, t), np.float32)
  loss[0, len(prompt):] = 1.0
  attn = np.ones((1, t), bool)
  assert bool(exact(params, np.array([row], np.int32), attn, loss)[0])
  for i in range(len(prompt) + 1, t):  # Any later token off the argmax: not a match.
    wrong = list(row)
    wrong[i] = (wrong[i] + 1) % _MODEL.vocab_size
    assert not bool(exact(params, np.array([wrong], np.int32), attn, loss)[0]), i
  # Tokens outside the loss mask (the prompt) are not checked.
  other_prompt = list(row)
  other_prompt[1] = (other_prompt[1] + 1) % _MODEL.vocab_size
  loss_late = np.zeros((1, t), np.float32)
  loss_late[0, t - 1:] = 1.0  # Only the last token learned: it is the style token, unchecked.
  assert bool(exact(params, np.array([other_prompt], np.int32), attn, loss_late)[0])


def test_heldout_rows_are_of_the_style_and_unseen_in_training():
  cfg = SFTConfig(steps=1, data="miniature", data_args={"worked_frac": 0.25},
                  stop_accuracy=0.5, stop_style="worked", heldout_rows=32)
  rows = sft.heldout_rows(cfg, seed=0)
  assert len(rows) == 32 and all(r["style"] == "worked" for r in rows)
  train_prompts = {r["prompt"] for r in ExampleStream(sft.sft_source(cfg, seed=0),
                                                      seed=0).next_batch(2000)}
  assert not train_prompts & {r["prompt"] for r in rows}
  # Rows with <think> in the prompt are training-only: every held-out row starts its completion
  # with the style token the criterion skips.
  cfg = dataclasses.replace(cfg, data_args={"worked_frac": 0.5, "think_in_prompt": 0.67})
  assert all(r["completion"].startswith(miniature.THINK) for r in sft.heldout_rows(cfg, seed=0))


def test_a_criterion_without_heldout_rows_is_a_clear_error(tmp_path):
  path = tmp_path / "sft.jsonl"
  path.write_text(json.dumps({"prompt": "Q:1+1=", "completion": "A:2"}) + "\n")
  cfg = SFTConfig(steps=1, data=str(path), stop_accuracy=0.5)
  with pytest.raises(ValueError, match="heldout_data"):
    sft.heldout_rows(cfg, seed=0)
  with pytest.raises(ValueError, match="stop_accuracy must be in"):
    SFTConfig(stop_accuracy=1.5)


def _run(cfg, tokenizer, rows, log):
  params = transformer.init(_MODEL, jax.random.key(1))
  tx, _ = train_step.make_optimizer(cfg.optim, cfg.steps)
  stream = ExampleStream(_ListSource(rows), seed=0)
  return sft.run_sft(params, tx.init(params), model_cfg=_MODEL, tokenizer=tokenizer, cfg=cfg,
                     apply_update=train_step.make_apply_update(tx), stream=stream, log=log,
                     log_every=10, progress=False, heldout=rows)


class _ListSource:
  name = "rows"

  def __init__(self, rows):
    self.rows, self.size = rows, len(rows)

  def __getitem__(self, i):
    return dict(self.rows[i])


_ROWS = [{"prompt": f"Q:{a}+{b}=", "completion": f"A:{a + b:02d}<eos>", "style": "direct"}
         for a, b in ((1, 2), (3, 4), (5, 1), (2, 2))]


def test_run_sft_stops_once_the_heldout_criterion_holds(tokenizer):
  # Four sums memorised: the criterion (all four right) holds long before the cap.
  cfg = SFTConfig(steps=300, data="rows", batch_size=8, optim=OptimConfig(lr=1e-2),
                  stop_accuracy=1.0, check_every=5, min_steps=10)
  logged = []
  _, _, metrics = _run(cfg, tokenizer, _ROWS, lambda s, m: logged.append((s, dict(m))))
  assert metrics["sft/heldout_accuracy"] == 1.0
  assert 10 <= metrics["sft/steps"] < 300 and (metrics["sft/steps"] - 10) % 5 == 0
  # The last line is the stopping step; the others every log_every steps, not every step.
  assert logged[-1][0] == metrics["sft/steps"]
  assert all(s % 10 == 0 for s, _ in logged[:-1])


def test_run_sft_without_a_criterion_runs_every_step_and_logs_a_few_lines(tokenizer):
  cfg = SFTConfig(steps=25, data="rows", batch_size=8, optim=OptimConfig(lr=1e-2))
  logged = []
  _, _, metrics = _run(cfg, tokenizer, _ROWS, lambda s, m: logged.append(s))
  assert metrics["sft/steps"] == 25 and "sft/heldout_accuracy" not in metrics
  assert logged == [10, 20, 25]
