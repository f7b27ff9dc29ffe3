"""Model presets: architectures of published checkpoints, as ModelConfig (no weights).

Place in the pipeline: experiment files name a preset to size a run (dry runs, sharding
plans, eval_shape checks); real weights come from `models.load`, which reads the same fields
from the checkpoint's own config.json or GGUF metadata. Each preset's parameter count is
checked against the published figure in tests/models_presets_test.py.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from r1jax.models.config import ModelConfig

__all__ = ["PRESETS", "get_preset", "PUBLISHED_PARAM_COUNTS"]


def tiny() -> ModelConfig:
  """Tests: D=32, L=2, N=4, K=2, H=8, V=256."""
  return ModelConfig()


def smollm2_135m() -> ModelConfig:
  """HuggingFaceTB/SmolLM2-135M(-Instruct): llama, tied embeddings, rope theta 1e5."""
  return ModelConfig(family="llama", vocab_size=49152, hidden_size=576, num_layers=30,
                     num_heads=9, num_kv_heads=3, head_dim=64, intermediate_size=1536,
                     max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5,
                     tie_embeddings=True)


def _qwen2(d, f, layers, n, k, vocab, tied, theta=1e6, max_pos=32768, eps=1e-6):
  return ModelConfig(family="qwen2", vocab_size=vocab, hidden_size=d, num_layers=layers,
                     num_heads=n, num_kv_heads=k, head_dim=d // n, intermediate_size=f,
                     max_position_embeddings=max_pos, rope_theta=theta, rms_norm_eps=eps,
                     tie_embeddings=tied, qkv_bias=True)


def _qwen3(d, f, layers, n, k, tied):
  return ModelConfig(family="qwen3", vocab_size=151936, hidden_size=d, num_layers=layers,
                     num_heads=n, num_kv_heads=k, head_dim=128, intermediate_size=f,
                     max_position_embeddings=40960, rope_theta=1e6, rms_norm_eps=1e-6,
                     tie_embeddings=tied, qk_norm=True)


def _llama3(d, f, layers, n, k, h, tied, factor):
  return ModelConfig(family="llama", vocab_size=128256, hidden_size=d, num_layers=layers,
                     num_heads=n, num_kv_heads=k, head_dim=h, intermediate_size=f,
                     max_position_embeddings=131072, rope_theta=500000.0,
                     rope_scaling="llama3", rope_factor=factor, rope_low_freq_factor=1.0,
                     rope_high_freq_factor=4.0, rope_original_max_position=8192,
                     rms_norm_eps=1e-5, tie_embeddings=tied)


def gemma_2b() -> ModelConfig:
  """google/gemma-2b: GeGLU, multi-query attention, sqrt(D) embedding scale, (1 + w) norms."""
  return ModelConfig(family="gemma", vocab_size=256000, hidden_size=2048, num_layers=18,
                     num_heads=8, num_kv_heads=1, head_dim=256, intermediate_size=16384,
                     max_position_embeddings=8192, rope_theta=10000.0, rms_norm_eps=1e-6,
                     tie_embeddings=True, mlp_activation="gelu_tanh", embed_scale=True,
                     norm_plus_one=True)


PRESETS: dict[str, Callable[[], ModelConfig]] = {
    "tiny": tiny,
    "smollm2-135m": smollm2_135m,
    # Qwen2.5 (Qwen Team 2024): the small models tie embeddings; 7B and up do not.
    "qwen2.5-0.5b": lambda: _qwen2(896, 4864, 24, 14, 2, 151936, True),
    "qwen2.5-1.5b": lambda: _qwen2(1536, 8960, 28, 12, 2, 151936, True),
    "qwen2.5-3b": lambda: _qwen2(2048, 11008, 36, 16, 2, 151936, True),
    "qwen2.5-7b": lambda: _qwen2(3584, 18944, 28, 28, 4, 152064, False),
    "qwen2.5-32b": lambda: _qwen2(5120, 27648, 64, 40, 8, 152064, False, eps=1e-5),
    # Qwen2.5-Math: the base models of R1-Zero-style studies; 4k context, rope theta 1e4.
    "qwen2.5-math-1.5b": lambda: _qwen2(1536, 8960, 28, 12, 2, 151936, True, 10000.0, 4096),
    "qwen2.5-math-7b": lambda: _qwen2(3584, 18944, 28, 28, 4, 152064, False, 10000.0, 4096),
    "qwen3-0.6b": lambda: _qwen3(1024, 3072, 28, 16, 8, True),
    "qwen3-1.7b": lambda: _qwen3(2048, 6144, 28, 16, 8, True),
    "qwen3-4b": lambda: _qwen3(2560, 9728, 36, 32, 8, True),
    "qwen3-8b": lambda: _qwen3(4096, 12288, 36, 32, 8, False),
    "llama-3.2-1b": lambda: _llama3(2048, 8192, 16, 32, 8, 64, True, 32.0),
    "llama-3.2-3b": lambda: _llama3(3072, 8192, 28, 24, 8, 128, True, 32.0),
    "llama-3.1-8b": lambda: _llama3(4096, 14336, 32, 32, 8, 128, False, 8.0),
    "gemma-2b": gemma_2b,
}

# Parameter counts as published on each checkpoint's model card / safetensors index.
PUBLISHED_PARAM_COUNTS = {
    "smollm2-135m": 134_515_008,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-3b": 3_085_938_688,
    "qwen2.5-7b": 7_615_616_512,
    "qwen2.5-32b": 32_763_876_352,
    "qwen2.5-math-1.5b": 1_543_714_304,
    "qwen2.5-math-7b": 7_615_616_512,
    "qwen3-0.6b": 596_049_920,
    # The card says 1.7B (1.4B non-embedding); the safetensors metadata says 2,031,739,904
    # because that checkpoint stores the tied lm_head a second time (151936 x 2048 more).
    "qwen3-1.7b": 1_720_574_976,
    "qwen3-4b": 4_022_468_096,
    "qwen3-8b": 8_190_735_360,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "llama-3.1-8b": 8_030_261_248,
    "gemma-2b": 2_506_172_416,
}


def get_preset(name: str, **overrides) -> ModelConfig:
  """The named preset, with optional field overrides (e.g. dtype="bfloat16")."""
  if name not in PRESETS:
    raise ValueError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}")
  return dataclasses.replace(PRESETS[name](), **overrides)
