"""ModelConfig: the architecture of a decoder-only transformer, one frozen dataclass.

One config covers the Llama, Qwen2, Qwen3 and Gemma families: the differences are flags
(qkv bias, q/k norm, GeGLU, embedding scale, (1 + w) norms, tied embeddings, rope scaling).
Presets live in `presets.py`; `weights.py` builds a config from an HF config.json or GGUF.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Family = Literal["llama", "qwen2", "qwen3", "gemma"]
DType = Literal["float32", "bfloat16", "float16"]
# Remat (activation checkpointing) policies by name; see transformer.REMAT_POLICIES.
Remat = Literal["none", "full", "dots", "dots_no_batch"]
RopeScaling = Literal["none", "llama3", "linear"]
# How the model's (training and prefill) attention is computed; see transformer.attention_impl.
Attention = Literal["auto", "einsum", "xla", "cudnn", "splash"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture and numerics of a decoder-only transformer."""

  family: Family = "llama"  # Selects the HF architecture name when saving (save_hf).
  vocab_size: int = 256  # V: rows of the embedding table.
  hidden_size: int = 32  # D: residual stream width.
  num_layers: int = 2  # L: transformer blocks (stacked on a leading axis and scanned).
  num_heads: int = 4  # N: query heads.
  num_kv_heads: int = 2  # K: key/value heads (GQA); N must be a multiple of K.
  head_dim: int = 8  # H: width of one head.
  intermediate_size: int = 64  # F: MLP hidden width.
  max_position_embeddings: int = 2048  # Longest context the model supports (prompt + new tokens).
  rope_theta: float = 10000.0  # RoPE base frequency (SmolLM2 1e5, Qwen2.5 1e6, Llama-3 5e5).
  rope_scaling: RopeScaling = "none"  # "llama3" for Llama-3.1/3.2 frequency scaling.
  rope_factor: float = 1.0  # Scaling factor (llama3: 8 or 32; linear: position divisor).
  rope_low_freq_factor: float = 1.0  # llama3 scaling: low-frequency boundary factor.
  rope_high_freq_factor: float = 4.0  # llama3 scaling: high-frequency boundary factor.
  rope_original_max_position: int = 8192  # llama3 scaling: pretraining context length.
  rms_norm_eps: float = 1e-5  # Epsilon inside every RMSNorm.
  tie_embeddings: bool = True  # lm_head reuses the embedding table.
  qkv_bias: bool = False  # Biases on q/k/v projections (Qwen2).
  qk_norm: bool = False  # RMSNorm on each head of q and k before RoPE (Qwen3).
  mlp_activation: Literal["silu", "gelu_tanh"] = "silu"  # SwiGLU (silu) or GeGLU (Gemma).
  embed_scale: bool = False  # Multiply embeddings by sqrt(D) (Gemma).
  norm_plus_one: bool = False  # RMSNorm scales by (1 + w) instead of w (Gemma).
  dtype: DType = "float32"  # Compute dtype of activations; logits are always float32.
  param_dtype: DType = "float32"  # Storage dtype of the params.
  remat: Remat = "none"  # Activation checkpointing policy per block (see transformer.py).
  # Layers unrolled per iteration of the layer scan. 1 keeps one compiled block (fast
  # compiles, big models); num_layers unrolls fully, which for tiny models on CPU saves the
  # loop's per-layer copies of weights and saved activations (~2x a training step).
  scan_unroll: int = 1
  # Completion positions whose [B, C, V] float32 logits a GRPO update holds at once: the
  # vocabulary head, logprobs and entropy run over chunks of C positions under
  # jax.checkpoint (recomputed in the backward pass). 0 = the whole completion at once.
  logits_chunk: int = 512
  # Attention: "einsum" (the reference: float32 scores [B, K, G, T, S] in memory), "xla" or
  # "cudnn" (jax.nn.dot_product_attention; cudnn is flash attention on NVIDIA GPUs, bf16/f16
  # only), "splash" (the Pallas splash kernel for TPU, models/attention_kernels.py; passes
  # that write a KV cache use xla), or "auto": splash on TPU, cudnn on GPU in bf16/f16, xla
  # elsewhere.
  attention: Attention = "auto"

  def __post_init__(self):
    for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                 "head_dim", "intermediate_size", "max_position_embeddings", "scan_unroll"):
      value = getattr(self, name)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
    if self.attention not in ("auto", "einsum", "xla", "cudnn", "splash"):
      raise ValueError(f"ModelConfig.attention must be one of auto, einsum, xla, cudnn, "
                       f"splash; got {self.attention!r}")
    if not isinstance(self.logits_chunk, int) or self.logits_chunk < 0:
      raise ValueError(f"ModelConfig.logits_chunk must be an integer >= 0 (0 = no chunks), "
                       f"got {self.logits_chunk!r}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"ModelConfig.num_heads ({self.num_heads}) must be a multiple of "
                       f"num_kv_heads ({self.num_kv_heads})")
    if self.head_dim % 2:
      raise ValueError(f"ModelConfig.head_dim must be even for RoPE, got {self.head_dim}")
    if self.rope_theta <= 0:
      raise ValueError(f"ModelConfig.rope_theta must be positive, got {self.rope_theta}")
    if self.rope_scaling != "none" and self.rope_factor <= 0:
      raise ValueError(f"ModelConfig.rope_factor must be positive, got {self.rope_factor}")

  @property
  def num_groups(self) -> int:
    """G = N / K: query heads that share one key/value head."""
    return self.num_heads // self.num_kv_heads
