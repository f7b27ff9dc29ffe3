"""Makes the parity fixtures: tiny random HF checkpoints with transformers' logits, and SmolLM2's.

Run from the repository root (needs torch, transformers and accelerate; ~2 min on 2 cores):

  python -m tests.make_golden

Writes
  tests/fixtures/tiny_<family>/{config.json,model.safetensors}  one tiny checkpoint per family
  tests/fixtures/golden_tiny.npz     transformers' float32 logits for each, on fixed inputs
  tests/fixtures/golden_smollm2.npz  transformers' logits of the SmolLM2 GGUF (top values and
                                     a fixed sample of vocab columns, to stay small)

It also holds `hf_to_gguf`, which converts a tiny checkpoint to a GGUF file the way llama.cpp's
convert script does (tensor names, reversed dims, Q/K row permutation for Llama, (1 + w) Gemma
norms), so tests can check the GGUF reader on small files. Only this file imports torch; the
tests import it lazily.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
FAMILIES = ("llama", "qwen2", "qwen3", "gemma")
SEED = 0
TOKENS_SHAPE = (2, 16)  # B, T of the fixed tiny input.
POSITION_STRIDE = 128  # Second golden input: positions 0, 128, 256, ... (long-range rope).
SMOLLM2_TOP = 8  # Top logits stored per position.
SMOLLM2_COLUMNS = 128  # Fixed random vocab columns stored per position.


def tiny_hf_config(family: str) -> dict:
  """config.json fields of the tiny checkpoint of `family` (each exercises its quirks)."""
  common = dict(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192)
  if family == "llama":  # Llama-3.1 rope scaling; theta 5e5 puts frequencies in all 3 bands.
    return dict(common, rms_norm_eps=1e-5, tie_word_embeddings=False, rope_theta=500000.0,
                max_position_embeddings=131072,
                rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192))
  if family == "qwen2":  # q/k/v biases, tied embeddings, linear rope scaling.
    return dict(common, rms_norm_eps=1e-6, tie_word_embeddings=True, rope_theta=1000000.0,
                rope_scaling=dict(rope_type="linear", factor=4.0))
  if family == "qwen3":  # q/k norms, head_dim != D / N, untied.
    return dict(common, rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=1000000.0,
                head_dim=16)
  if family == "gemma":  # GeGLU, sqrt(D) embedding scale, (1 + w) norms, MQA, head_dim 16.
    return dict(common, rms_norm_eps=1e-6, tie_word_embeddings=True, rope_theta=10000.0,
                head_dim=16, num_key_value_heads=1, hidden_act="gelu_pytorch_tanh")
  raise ValueError(f"unknown family {family!r}")


def tiny_tokens() -> np.ndarray:
  return np.random.default_rng(SEED).integers(0, 256, TOKENS_SHAPE).astype(np.int32)


def random_hf_model(family: str, hf_config: dict):
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  cls = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config,
         "qwen3": transformers.Qwen3Config, "gemma": transformers.GemmaConfig}[family]
  config = cls(**hf_config)
  config._attn_implementation = "eager"  # pylint: disable=protected-access
  torch.manual_seed(SEED)
  model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
  # The default init (std 0.02) gives logits near zero, which would hide layout bugs under any
  # tolerance: weights scaled for O(1) activations, norms and biases away from 1 and 0.
  gen = torch.Generator().manual_seed(SEED)
  with torch.no_grad():
    for name, p in model.named_parameters():
      noise = torch.randn(p.shape, generator=gen)
      if name.endswith("norm.weight"):
        p.copy_((0.0 if family == "gemma" else 1.0) + 0.2 * noise)
      elif name.endswith("bias"):
        p.copy_(0.2 * noise)
      elif "embed_tokens" in name:  # Tied heads reuse it: 2 / sqrt(D) keeps logits O(1).
        p.copy_(2.0 * noise / p.shape[1] ** 0.5)
      else:  # [out, in] projection.
        p.copy_(noise / p.shape[1] ** 0.5)
  return model.eval()


def hf_logits(model, tokens: np.ndarray, positions: np.ndarray | None = None,
              attention_mask: np.ndarray | None = None) -> np.ndarray:
  """transformers' float32 logits [B, T, V] for int tokens [B, T]."""
  import torch  # pylint: disable=g-import-not-at-top
  kwargs = {}
  if positions is not None and attention_mask is None:
    # Without a mask, transformers reads position jumps as packed-sequence boundaries.
    attention_mask = np.ones(np.shape(tokens), np.int64)
  if positions is not None:
    kwargs["position_ids"] = torch.as_tensor(np.asarray(positions, np.int64))
  if attention_mask is not None:
    kwargs["attention_mask"] = torch.as_tensor(np.asarray(attention_mask, np.int64))
  with torch.no_grad():
    out = model(torch.as_tensor(np.asarray(tokens, np.int64)), use_cache=False, **kwargs)
  return out.logits.float().numpy()


def make_tiny(out: pathlib.Path = FIXTURES) -> dict[str, np.ndarray]:
  tokens = tiny_tokens()
  # RoPE only sees relative positions, so a plain input never reaches the long wavelengths
  # that llama3/linear scaling change: spread positions (up to ~2k apart) do.
  spread = np.arange(TOKENS_SHAPE[1])[None].repeat(TOKENS_SHAPE[0], 0) * POSITION_STRIDE
  golden = {"tokens": tokens, "spread_positions": spread}
  for family in FAMILIES:
    model = random_hf_model(family, tiny_hf_config(family))
    folder = out / f"tiny_{family}"
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "generation_config.json").unlink(missing_ok=True)
    golden[f"{family}/logits"] = hf_logits(model, tokens)
    golden[f"{family}/spread_logits"] = hf_logits(model, tokens, spread)
  np.savez(out / "golden_tiny.npz", **golden)
  return golden


# Two GSM8K-style questions in SmolLM2's chat template: realistic prompts, of different lengths
# so the batch is left-padded (with the pad id 2, which is also <|im_end|> inside the prompts).
SMOLLM2_QUESTIONS = (
    "What is 12 times 7? Think step by step.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?",
)
SMOLLM2_PAD = 2


def smollm2_batch() -> tuple[np.ndarray, np.ndarray]:
  """Left-padded chat prompts: tokens int32 [2, T] and mask bool [2, T]."""
  from r1jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top
  tok = load_tokenizer("smollm2-135m")
  rows = [tok.encode(tok.apply_chat_template([{"role": "user", "content": q}]))
          for q in SMOLLM2_QUESTIONS]
  t = max(map(len, rows))
  tokens = np.full((len(rows), t), SMOLLM2_PAD, np.int32)
  mask = np.zeros((len(rows), t), bool)
  for i, row in enumerate(rows):
    tokens[i, t - len(row):] = row
    mask[i, t - len(row):] = True
  return tokens, mask


def hf_logits_unpadded(model, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """transformers' logits of each row run alone without its padding (zeros at pad slots)."""
  out = None
  for i in range(tokens.shape[0]):
    row = hf_logits(model, tokens[i:i + 1, mask[i]])
    if out is None:
      out = np.zeros(tokens.shape + row.shape[-1:], np.float32)
    out[i, mask[i]] = row[0]
  return out


def smollm2_columns() -> np.ndarray:
  return np.sort(np.random.default_rng(SEED + 1).choice(49152, SMOLLM2_COLUMNS, replace=False))


def load_hf_gguf(path: str | pathlib.Path):
  """transformers' own float32 model from a GGUF file (its dequantizer, its Q/K unpermute)."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  model = transformers.AutoModelForCausalLM.from_pretrained(
      str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager")
  return model.eval()


def make_smollm2(out: pathlib.Path = FIXTURES) -> None:
  from r1jax import fetch  # pylint: disable=g-import-not-at-top
  model = load_hf_gguf(fetch.resolve_model_path("smollm2-135m"))
  tokens, mask = smollm2_batch()
  logits = hf_logits_unpadded(model, tokens, mask)
  top = np.argsort(-logits, axis=-1)[..., :SMOLLM2_TOP]
  columns = smollm2_columns()
  np.savez(out / "golden_smollm2.npz", tokens=tokens, mask=mask, top_ids=top.astype(np.int32),
           top_logits=np.take_along_axis(logits, top, -1), columns=columns.astype(np.int32),
           column_logits=logits[..., columns])


# --- GGUF conversion (llama.cpp's conventions) --------------------------------------------------
_GGUF_LAYER = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
               "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
               "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
               "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
               "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
_GGUF_GLOBAL = {"model.embed_tokens.weight": "token_embd.weight",
                "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}


def _llama_cpp_permute(w: np.ndarray, n: int) -> np.ndarray:
  """llama.cpp's convert_hf_to_gguf permutation of Llama Q/K rows (interleaved rope)."""
  return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _rope_factors(hf: dict, head_dim: int) -> np.ndarray:
  """llama.cpp's rope_freqs.weight for Llama-3.1 scaling (divisors of each inv frequency)."""
  rs = hf["rope_scaling"]
  inv = 1.0 / hf["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
  factors = []
  for freq in inv:
    wavelen = 2 * np.pi / freq
    if wavelen < rs["original_max_position_embeddings"] / rs["high_freq_factor"]:
      factors.append(1.0)
    elif wavelen > rs["original_max_position_embeddings"] / rs["low_freq_factor"]:
      factors.append(rs["factor"])
    else:
      smooth = ((rs["original_max_position_embeddings"] / wavelen - rs["low_freq_factor"])
                / (rs["high_freq_factor"] - rs["low_freq_factor"]))
      factors.append(1 / ((1 - smooth) / rs["factor"] + smooth))
  return np.asarray(factors, np.float32)


def hf_to_gguf(folder: str | pathlib.Path, path: str | pathlib.Path, *, quant: str = "F32",
               overrides: dict[str, np.ndarray | None] | None = None,
               arch: str | None = None) -> pathlib.Path:
  """Converts a tiny HF checkpoint folder to a GGUF file as llama.cpp would.

  Args:
    folder: HF folder with config.json and model.safetensors.
    path: GGUF file to write.
    quant: "F32", "F16" or "Q8_0" for 2-D weights (norms and biases stay F32).
    overrides: by GGUF tensor name, an array written as is instead of the converted tensor
      (its numpy dtype picks the GGUF type; new names are added), or None to leave it out.
      Tests use it to make broken files.
    arch: overrides general.architecture (tests of unsupported architectures).
  """
  import gguf  # pylint: disable=g-import-not-at-top
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  folder = pathlib.Path(folder)
  hf = json.loads((folder / "config.json").read_text())
  tensors = load_file(str(folder / "model.safetensors"))
  family = hf["model_type"]
  arch = arch or family
  n, k = hf["num_attention_heads"], hf["num_key_value_heads"]
  head_dim = hf.get("head_dim") or hf["hidden_size"] // n
  writer = gguf.GGUFWriter(str(path), arch)
  writer.add_context_length(hf["max_position_embeddings"])
  writer.add_embedding_length(hf["hidden_size"])
  writer.add_block_count(hf["num_hidden_layers"])
  writer.add_feed_forward_length(hf["intermediate_size"])
  writer.add_head_count(n)
  writer.add_head_count_kv(k)
  writer.add_key_length(head_dim)
  writer.add_value_length(head_dim)
  writer.add_rope_dimension_count(head_dim)
  rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
  theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
  writer.add_rope_freq_base(theta)
  writer.add_layer_norm_rms_eps(hf["rms_norm_eps"])
  writer.add_vocab_size(hf["vocab_size"])
  if rope.get("rope_type") == "linear":
    writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    writer.add_rope_scaling_factor(rope["factor"])
  overrides = dict(overrides or {})
  if rope.get("rope_type") == "llama3" and "rope_freqs.weight" not in overrides:
    writer.add_tensor("rope_freqs.weight", _rope_factors(dict(hf, rope_theta=theta,
                                                              rope_scaling=rope), head_dim))
  qtype = gguf.GGMLQuantizationType[quant]
  for name, w in tensors.items():
    if name == "lm_head.weight" and hf.get("tie_word_embeddings"):
      continue
    w = np.asarray(w, np.float32)
    if name in _GGUF_GLOBAL:
      gname = _GGUF_GLOBAL[name]
    else:
      parts = name.split(".")  # model.layers.{i}.<module...>.{weight|bias}
      gname = f"blk.{parts[2]}.{_GGUF_LAYER['.'.join(parts[3:-1])]}.{parts[-1]}"
    if family == "llama" and ".self_attn.q_proj." in name:
      w = _llama_cpp_permute(w, n)
    elif family == "llama" and ".self_attn.k_proj." in name:
      w = _llama_cpp_permute(w, k)
    if family == "gemma" and name.endswith("norm.weight"):
      w = w + 1.0
    if gname in overrides:
      continue
    if w.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
      data = gguf.quants.quantize(w, qtype)  # uint8 blocks, or float16 for F16.
      writer.add_tensor(gname, data, raw_dtype=qtype if data.dtype == np.uint8 else None)
    else:
      writer.add_tensor(gname, w)
  for gname, w in overrides.items():
    if w is not None:
      writer.add_tensor(gname, w)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  return pathlib.Path(path)


if __name__ == "__main__":
  FIXTURES.mkdir(parents=True, exist_ok=True)
  make_tiny()
  make_smollm2()
  for f in sorted(FIXTURES.rglob("*")):
    if f.is_file() and ("tiny_" in str(f) or f.name.startswith("golden_")):
      print(f"{f.relative_to(FIXTURES.parent.parent)}: {f.stat().st_size} bytes")
