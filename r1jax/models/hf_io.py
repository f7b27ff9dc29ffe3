"""Hugging Face checkpoints: config.json <-> ModelConfig, and safetensors files in and out.

Place in the pipeline: `weights.load` reads an HF folder through `config_from_hf` and
`read_safetensors`; `weights.save_hf` writes one through `config_to_hf` and
`write_safetensors`. Tensors here keep HF's names and layout ([out, in] weights, one tensor
per layer); the rename, transpose and layer stacking happen in `weights.py`, shared with GGUF.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Callable, Mapping

import numpy as np

from r1jax.models.config import ModelConfig

__all__ = ["SUPPORTED_ARCHITECTURES", "TensorEntry", "TensorSource", "config_from_hf",
           "config_to_hf", "read_safetensors", "write_safetensors"]

# HF model_type -> the causal-LM class name transformers registers for it.
SUPPORTED_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma": "GemmaForCausalLM",
}
_ROPE_TYPES = ("default", "llama3", "linear")
# Gemma's own config.json says "gelu", but the checkpoints were trained with the tanh
# approximation (transformers overrides it the same way), so every gelu name maps to it.
_GEMMA_ACTIVATIONS = ("gelu_pytorch_tanh", "gelu_tanh", "gelu_new", "gelu")


@dataclasses.dataclass(frozen=True)
class TensorEntry:
  """One tensor of a checkpoint, in HF's name and layout, read on demand."""
  shape: tuple[int, ...]  # HF layout, e.g. [out, in] for a projection weight.
  read: Callable[[], np.ndarray]  # Returns the array (float or the file's dtype).
  label: str  # How error messages name it (the file's own tensor name).


@dataclasses.dataclass(frozen=True)
class TensorSource:
  """All tensors of a checkpoint keyed by HF name; `path` names the checkpoint in errors."""
  path: str
  entries: dict[str, TensorEntry]
  # Maps an HF name to the file's own name, for tensors that are missing.
  label_of: Callable[[str], str] = lambda name: name


def supported_list() -> str:
  return ", ".join(f"{k} ({v})" for k, v in SUPPORTED_ARCHITECTURES.items())


def _family(hf: Mapping[str, Any], source: str) -> str:
  model_type = hf.get("model_type")
  archs = list(hf.get("architectures") or [])
  if model_type in SUPPORTED_ARCHITECTURES:
    return model_type
  by_arch = {v: k for k, v in SUPPORTED_ARCHITECTURES.items()}
  for arch in archs:
    if model_type is None and arch in by_arch:
      return by_arch[arch]
  shown = model_type if model_type is not None else (archs or None)
  raise ValueError(f"{source}: architecture {shown!r} is not supported by r1jax; supported "
                   f"model types: {supported_list()}")


def _rope(hf: Mapping[str, Any], source: str) -> dict[str, Any]:
  """RoPE fields of ModelConfig from `rope_parameters` (transformers 5) or `rope_scaling`."""
  params = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
  theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
  kind = params.get("rope_type", params.get("type")) or "default"
  if kind not in _ROPE_TYPES:
    raise ValueError(f"{source}: rope type {kind!r} is not supported; supported: "
                     f"{', '.join(_ROPE_TYPES)}")
  out: dict[str, Any] = {"rope_theta": float(theta)}
  if kind == "linear":
    out.update(rope_scaling="linear", rope_factor=float(params["factor"]))
  elif kind == "llama3":
    out.update(rope_scaling="llama3", rope_factor=float(params["factor"]),
               rope_low_freq_factor=float(params["low_freq_factor"]),
               rope_high_freq_factor=float(params["high_freq_factor"]),
               rope_original_max_position=int(params["original_max_position_embeddings"]))
  return out


def config_from_hf(hf: Mapping[str, Any], *, source: str = "config.json",
                   dtype: str = "float32") -> ModelConfig:
  """Builds a ModelConfig from an HF config.json dict (transformers 4 or 5 format).

  Args:
    hf: the parsed config.json.
    source: how errors name the file.
    dtype: param and compute dtype of the returned config ("float32" or "bfloat16").

  Raises:
    ValueError: the architecture or one of its options has no r1jax equivalent.
  """
  family = _family(hf, source)
  d, n = int(hf["hidden_size"]), int(hf["num_attention_heads"])
  activation = hf.get("hidden_activation") or hf.get("hidden_act", "silu")
  fields: dict[str, Any] = dict(
      family=family,
      vocab_size=int(hf["vocab_size"]),
      hidden_size=d,
      num_layers=int(hf["num_hidden_layers"]),
      num_heads=n,
      num_kv_heads=int(hf.get("num_key_value_heads") or n),
      head_dim=int(hf.get("head_dim") or d // n),
      intermediate_size=int(hf["intermediate_size"]),
      max_position_embeddings=int(hf.get("max_position_embeddings") or 2048),
      rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
      tie_embeddings=bool(hf.get("tie_word_embeddings", family == "gemma")),
      dtype=dtype, param_dtype=dtype, **_rope(hf, source))
  if hf.get("mlp_bias"):
    raise ValueError(f"{source}: mlp_bias=true is not supported (r1jax's MLP has no biases)")
  if family in ("qwen2", "qwen3") and hf.get("use_sliding_window"):
    raise ValueError(f"{source}: use_sliding_window=true is not supported (r1jax attends to "
                     "the whole context)")
  if family == "gemma":
    if activation not in _GEMMA_ACTIVATIONS:
      raise ValueError(f"{source}: Gemma activation {activation!r} is not supported; supported: "
                       f"{', '.join(_GEMMA_ACTIVATIONS)}")
    fields.update(mlp_activation="gelu_tanh", embed_scale=True, norm_plus_one=True,
                  qkv_bias=bool(hf.get("attention_bias", False)))
  else:
    if activation != "silu":
      raise ValueError(f"{source}: hidden_act {activation!r} is not supported for {family}; "
                       "supported: 'silu'")
    # Qwen2 always has q/k/v biases; Llama and Qwen3 have them (and an o_proj bias, which
    # must then be zero: weights.py checks) when attention_bias is set.
    fields.update(qkv_bias=family == "qwen2" or bool(hf.get("attention_bias", False)),
                  qk_norm=family == "qwen3")
  return ModelConfig(**fields)


def config_to_hf(cfg: ModelConfig) -> dict[str, Any]:
  """The config.json transformers needs to rebuild `cfg` (see `config_from_hf`).

  Raises:
    ValueError: `cfg` has a flag that its family's HF class cannot express.
  """
  family = cfg.family
  expected = {"llama": dict(qk_norm=False, mlp_activation="silu", embed_scale=False,
                            norm_plus_one=False),
              "qwen2": dict(qk_norm=False, mlp_activation="silu", embed_scale=False,
                            norm_plus_one=False),
              "qwen3": dict(qk_norm=True, mlp_activation="silu", embed_scale=False,
                            norm_plus_one=False),
              "gemma": dict(qk_norm=False, mlp_activation="gelu_tanh", embed_scale=True,
                            norm_plus_one=True)}
  if family not in expected:
    raise ValueError(f"ModelConfig.family {family!r} cannot be saved; supported: "
                     f"{', '.join(expected)}")
  for name, want in expected[family].items():
    if getattr(cfg, name) != want:
      raise ValueError(f"ModelConfig.{name}={getattr(cfg, name)!r} cannot be saved as "
                       f"{SUPPORTED_ARCHITECTURES[family]}, which requires {name}={want!r}")
  hf: dict[str, Any] = {
      "architectures": [SUPPORTED_ARCHITECTURES[family]],
      "model_type": family,
      "vocab_size": cfg.vocab_size,
      "hidden_size": cfg.hidden_size,
      "intermediate_size": cfg.intermediate_size,
      "num_hidden_layers": cfg.num_layers,
      "num_attention_heads": cfg.num_heads,
      "num_key_value_heads": cfg.num_kv_heads,
      "head_dim": cfg.head_dim,
      "max_position_embeddings": cfg.max_position_embeddings,
      "rms_norm_eps": cfg.rms_norm_eps,
      "rope_theta": cfg.rope_theta,
      "tie_word_embeddings": cfg.tie_embeddings,
      "hidden_act": "gelu_pytorch_tanh" if family == "gemma" else "silu",
      "torch_dtype": cfg.param_dtype,
  }
  if family == "gemma":
    hf["hidden_activation"] = "gelu_pytorch_tanh"
  if family != "qwen2":  # Qwen2's q/k/v biases are unconditional.
    hf["attention_bias"] = cfg.qkv_bias
  if cfg.rope_scaling == "linear":
    hf["rope_scaling"] = {"rope_type": "linear", "factor": cfg.rope_factor}
  elif cfg.rope_scaling == "llama3":
    hf["rope_scaling"] = {"rope_type": "llama3", "factor": cfg.rope_factor,
                          "low_freq_factor": cfg.rope_low_freq_factor,
                          "high_freq_factor": cfg.rope_high_freq_factor,
                          "original_max_position_embeddings": cfg.rope_original_max_position}
  return hf


def read_safetensors(folder: str | os.PathLike) -> TensorSource:
  """Indexes model.safetensors, a sharded model.safetensors.index.json, or any *.safetensors.

  Raises:
    FileNotFoundError: no safetensors file, or a shard named by the index is missing.
  """
  import safetensors  # pylint: disable=g-import-not-at-top

  folder = pathlib.Path(folder)
  index = folder / "model.safetensors.index.json"
  if index.exists():
    weight_map = json.loads(index.read_text())["weight_map"]
    files = sorted({folder / f for f in weight_map.values()})
  elif (folder / "model.safetensors").exists():
    files = [folder / "model.safetensors"]
  else:
    files = sorted(folder.glob("*.safetensors"))
  if not files:
    other = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in
                                                                  folder.glob("*.pt*"))
    hint = f" (found {', '.join(other)}; convert them to safetensors)" if other else ""
    raise FileNotFoundError(f"no model.safetensors or model.safetensors.index.json in "
                            f"{folder}{hint}")
  entries: dict[str, TensorEntry] = {}
  for file in files:
    if not file.exists():
      raise FileNotFoundError(f"shard {file} named by {index} does not exist")
    try:
      with safetensors.safe_open(str(file), framework="numpy") as f:
        for name in f.keys():
          shape = tuple(f.get_slice(name).get_shape())
          entries[name] = TensorEntry(shape, _reader(file, name), f"{name} in {file}")
    except safetensors.SafetensorError as e:  # A cut-short or corrupt file: name it.
      raise ValueError(f"{file} is not a readable safetensors file (truncated or corrupt?): "
                       f"{e}") from None
  return TensorSource(str(folder), entries)


def _reader(file: pathlib.Path, name: str) -> Callable[[], np.ndarray]:
  def read() -> np.ndarray:
    import safetensors  # pylint: disable=g-import-not-at-top
    with safetensors.safe_open(str(file), framework="numpy") as f:
      return f.get_tensor(name)
  return read


def write_safetensors(tensors: Mapping[str, np.ndarray], folder: str | os.PathLike, *,
                      max_shard_bytes: int) -> list[str]:
  """Writes model.safetensors, or shards plus model.safetensors.index.json when larger.

  Returns the names of the files written.
  """
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top

  folder = pathlib.Path(folder)
  shards: list[dict[str, np.ndarray]] = [{}]
  size = 0
  for name, array in tensors.items():
    if shards[-1] and size + array.nbytes > max_shard_bytes:
      shards.append({})
      size = 0
    shards[-1][name] = array
    size += array.nbytes
  meta = {"format": "pt"}  # transformers refuses safetensors files without it.
  if len(shards) == 1:
    save_file(shards[0], str(folder / "model.safetensors"), metadata=meta)
    return ["model.safetensors"]
  names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
  weight_map = {}
  for file, shard in zip(names, shards):
    save_file(shard, str(folder / file), metadata=meta)
    weight_map.update({k: file for k in shard})
  total = sum(a.nbytes for a in tensors.values())
  (folder / "model.safetensors.index.json").write_text(json.dumps(
      {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
  return names + ["model.safetensors.index.json"]
