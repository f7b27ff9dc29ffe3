"""A recipe whose model_path is a hub id starts from the local Hugging Face cache alone.

The cache is made in the test (huggingface_hub's layout: models--org--name/{refs/main,
snapshots/<commit>/...}) with a tiny Qwen2 checkpoint, a byte-level BPE tokenizer.json and a
tokenizer_config.json; the R1-Zero recipe's debug variant then trains one step with
`model_path` set to the hub id and no tokenizer_path, through the real loading path (weights
and tokenizer both from the snapshot), offline.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from r1jax.models import transformer, weights
from r1jax.models.config import ModelConfig

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _make_cache(root: pathlib.Path) -> None:
  repo = root / "models--someorg--tiny-r1"
  snap = repo / "snapshots" / _COMMIT
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  corpus = [f"What is {a} + {b}? <think> carry </think> <answer>{a + b}</answer>"
            for a in range(30) for b in range(30)]
  tok.train_from_iterator(corpus, trainers.BpeTrainer(
      vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
  cfg = ModelConfig(family="qwen2", vocab_size=320, hidden_size=32, num_layers=2, num_heads=4,
                    num_kv_heads=2, head_dim=8, intermediate_size=64, qkv_bias=True)
  weights.save_hf(cfg, transformer.init(cfg, jax.random.key(0)), snap)
  tok.save(str(snap / "tokenizer.json"))
  (snap / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
  (repo / "refs").mkdir()
  (repo / "refs" / "main").write_text(_COMMIT)


def test_recipe_with_a_cached_hub_id_trains_a_step(tmp_path):
  _make_cache(tmp_path / "hub")
  env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run(
      [sys.executable, "-m", "r1jax.cli", "train",
       str(_ROOT / "experiments" / "r1_zero_qwen2_5_math_7b.py"), "--debug",
       "--set", "model_path=someorg/tiny-r1", "--set", "tokenizer_path=",
       "--set", "num_steps=1", "--workdir", str(tmp_path / "run")],
      capture_output=True, text=True, env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
  assert any(r.get("step") == 1 for r in rows), rows[-1]
  config = json.loads((tmp_path / "run" / "config.json").read_text())
  assert config["model_path"] == "someorg/tiny-r1" and config["tokenizer_path"] == ""
