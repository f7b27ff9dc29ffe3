"""GGUF (llama.cpp) checkpoints: a fast file reader, the ModelConfig, and HF-named tensors.

Place in the pipeline: `weights.load` turns a .gguf file into the same HF-named `TensorSource`
an HF folder gives, so one code path renames, checks and stacks both. What differs from HF is
undone here: tensor names (`blk.3.attn_q.weight`), reversed dimension order (GGUF lists ne[0],
the fastest axis, first), quantized blocks (dequantized with `gguf.quants`), the Q/K row
permutation llama.cpp applies to Llama for its interleaved RoPE, and Gemma's norms, which
llama.cpp stores as (1 + w).

The reader parses the header itself: `gguf.GGUFReader` builds a numpy memmap per metadata
element and takes ~6 s on SmolLM2's 49k-token vocabulary; this parser takes ~0.2 s.
`read_gguf` is public so the tokenizer can read the same metadata.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import os
import re
import struct
from typing import Any

import numpy as np

from r1jax.models.config import ModelConfig
from r1jax.models.hf_io import TensorEntry, TensorSource

__all__ = ["GGUF_ARCHITECTURES", "GGUFFile", "GGUFTensorInfo", "config_from_gguf", "read_gguf",
           "tensors_from_gguf"]

GGUF_ARCHITECTURES = ("llama", "qwen2", "qwen3", "gemma")
_MAGIC = b"GGUF"
_STRING, _ARRAY = 8, 9
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}
# llama.cpp tensor names (inside blk.{i}.) -> HF names (inside model.layers.{i}.).
_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL_NAMES = {"token_embd.weight": "model.embed_tokens.weight",
                 "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}


@dataclasses.dataclass(frozen=True)
class GGUFTensorInfo:
  name: str
  shape: tuple[int, ...]  # numpy order: GGUF's ne dimensions reversed ([out, in] for weights).
  ggml_type: int  # GGMLQuantizationType value.
  offset: int  # Absolute byte offset of the data in the file.


class GGUFFile:
  """A GGUF file's metadata (dict of Python values) and tensor index; data read on demand."""

  def __init__(self, path: str, metadata: dict[str, Any], tensors: dict[str, GGUFTensorInfo],
               buffer: mmap.mmap):
    self.path = path
    self.metadata = metadata
    self.tensors = tensors
    self._buffer = buffer

  def type_name(self, name: str) -> str:
    import gguf  # pylint: disable=g-import-not-at-top
    raw = self.tensors[name].ggml_type
    try:
      return gguf.GGMLQuantizationType(raw).name
    except ValueError:
      return f"type id {raw}"

  def check_readable(self) -> None:
    """Raises ValueError naming the first tensor whose type gguf cannot dequantize."""
    readable: dict[int, bool] = {}
    for info in self.tensors.values():
      if info.ggml_type not in readable:
        readable[info.ggml_type] = _can_dequantize(info.ggml_type)
      if not readable[info.ggml_type]:
        raise ValueError(f"{self.path}: tensor {info.name} is stored as "
                         f"{self.type_name(info.name)}, which the gguf package cannot "
                         "dequantize; re-quantize the model to F32, F16, BF16, Q8_0, Q4_0/1, "
                         "Q5_0/1 or a K-quant")

  def read(self, name: str) -> np.ndarray:
    """Tensor `name` dequantized to float32, in numpy order."""
    import gguf  # pylint: disable=g-import-not-at-top
    info = self.tensors[name]
    qtype = gguf.GGMLQuantizationType(info.ggml_type)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    cols = info.shape[-1]
    rows = math.prod(info.shape[:-1])
    row_bytes = cols // block * type_size
    raw = np.frombuffer(self._buffer, np.uint8, rows * row_bytes, info.offset)
    out = gguf.quants.dequantize(raw.reshape(rows, row_bytes), qtype)
    return np.asarray(out, np.float32).reshape(info.shape)


def _can_dequantize(raw_type: int) -> bool:
  import gguf  # pylint: disable=g-import-not-at-top
  try:
    qtype = gguf.GGMLQuantizationType(raw_type)
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    gguf.quants.dequantize(np.zeros((1, type_size), np.uint8), qtype)
  except (ValueError, KeyError, NotImplementedError):
    return False
  return True


class _Cursor:
  """Little-endian reads from a buffer at a moving offset."""

  def __init__(self, buffer, path: str):
    self.buffer, self.pos, self.path = buffer, 0, path

  def unpack(self, fmt: str):
    value = struct.unpack_from(fmt, self.buffer, self.pos)[0]
    self.pos += struct.calcsize(fmt)
    return value

  def string(self) -> str:
    n = self.unpack("<Q")
    raw = self.buffer[self.pos:self.pos + n]
    self.pos += n
    return raw.decode("utf-8", errors="surrogateescape")

  def value(self, kind: int):
    if kind == _STRING:
      return self.string()
    if kind == _ARRAY:
      item, count = self.unpack("<I"), self.unpack("<Q")
      if item == _STRING:
        return [self.string() for _ in range(count)]
      if item in _SCALARS:
        dtype = np.dtype(_SCALARS[item])
        out = np.frombuffer(self.buffer, dtype, count, self.pos).copy()
        self.pos += count * dtype.itemsize
        return out
      return [self.value(item) for _ in range(count)]
    if kind in _SCALARS:
      return self.unpack(_SCALARS[kind])
    raise ValueError(f"{self.path}: unknown GGUF metadata value type {kind} at byte {self.pos}")


def read_gguf(path: str | os.PathLike) -> GGUFFile:
  """Parses a GGUF (version 2 or 3, little-endian) header; tensor data stays memory-mapped.

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: the file is not a GGUF file r1jax can read.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"GGUF file {path} does not exist")
  with open(path, "rb") as f:
    buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
  if buffer[:4] != _MAGIC:
    raise ValueError(f"{path} is not a GGUF file (its first bytes are {buffer[:4]!r}, not "
                     f"{_MAGIC!r})")
  cur = _Cursor(buffer, path)
  cur.pos = 4
  version = cur.unpack("<I")
  if version not in (2, 3):
    raise ValueError(f"{path}: GGUF version {version} is not supported (versions 2 and 3, "
                     "little-endian, are)")
  n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
  metadata = {}
  for _ in range(n_kv):
    key = cur.string()
    metadata[key] = cur.value(cur.unpack("<I"))
  infos = []
  for _ in range(n_tensors):
    name = cur.string()
    dims = [cur.unpack("<Q") for _ in range(cur.unpack("<I"))]
    infos.append((name, tuple(reversed(dims)), cur.unpack("<I"), cur.unpack("<Q")))
  align = int(metadata.get("general.alignment", 32))
  data_start = -(-cur.pos // align) * align
  tensors = {name: GGUFTensorInfo(name, shape, kind, data_start + offset)
             for name, shape, kind, offset in infos}
  _check_extents(path, tensors, len(buffer))
  return GGUFFile(path, metadata, tensors, buffer)


def _check_extents(path: str, tensors: dict[str, GGUFTensorInfo], size: int) -> None:
  """A file cut short (an interrupted download) fails here, naming the file and the tensor."""
  import gguf  # pylint: disable=g-import-not-at-top
  for info in tensors.values():
    try:
      block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(info.ggml_type)]
    except (ValueError, KeyError):
      continue  # An unknown type is reported when (if) the tensor is read.
    end = info.offset + math.prod(info.shape[:-1]) * (info.shape[-1] // block) * type_size
    if end > size:
      raise ValueError(f"{path} is truncated or corrupt: tensor {info.name} needs bytes up to "
                       f"{end:,} but the file has {size:,}")


def _llama3_factors(cfg: dict[str, Any], head_dim: int, theta: float) -> np.ndarray:
  """llama.cpp's per-frequency divisors (rope_freqs.weight) for Llama-3.1 scaling."""
  inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
  wavelen = 2 * np.pi / inv_freq
  old, low, high, factor = (cfg["rope_original_max_position"], cfg["rope_low_freq_factor"],
                            cfg["rope_high_freq_factor"], cfg["rope_factor"])
  smooth = (old / wavelen - low) / (high - low)
  medium = 1 / ((1 - smooth) / factor + smooth)
  return np.where(wavelen < old / high, 1.0, np.where(wavelen > old / low, factor, medium))


def config_from_gguf(gf: GGUFFile, *, dtype: str = "float32") -> ModelConfig:
  """Builds a ModelConfig from `general.architecture` and the `<arch>.*` metadata.

  Raises:
    ValueError: the architecture, its rope scaling or a hyperparameter is not supported.
  """
  meta = gf.metadata
  arch = meta.get("general.architecture")
  if arch not in GGUF_ARCHITECTURES:
    raise ValueError(f"{gf.path}: GGUF architecture {arch!r} is not supported by r1jax; "
                     f"supported: {', '.join(GGUF_ARCHITECTURES)}")

  def get(key: str, default: Any = None) -> Any:
    value = meta.get(f"{arch}.{key}", default)
    if value is None:
      raise ValueError(f"{gf.path}: GGUF metadata {arch}.{key} is missing")
    if isinstance(value, np.ndarray):  # Per-layer values: r1jax needs them uniform.
      if value.size == 0 or np.any(value != value.flat[0]):
        raise ValueError(f"{gf.path}: per-layer {arch}.{key} = {value.tolist()} is not "
                         "supported (every layer must be the same)")
      value = value.flat[0].item()
    return value

  d, n = int(get("embedding_length")), int(get("attention.head_count"))
  head_dim = int(get("attention.key_length", d // n))
  if int(get("attention.value_length", head_dim)) != head_dim:
    raise ValueError(f"{gf.path}: {arch}.attention.value_length differs from key_length; "
                     "r1jax needs equal key and value head sizes")
  if "token_embd.weight" not in gf.tensors:
    raise ValueError(f"{gf.path}: missing tensor token_embd.weight")
  theta = float(get("rope.freq_base", 10000.0))
  fields: dict[str, Any] = dict(
      family=arch, hidden_size=d, num_heads=n, head_dim=head_dim,
      vocab_size=int(get("vocab_size", gf.tensors["token_embd.weight"].shape[0])),
      num_layers=int(get("block_count")),
      num_kv_heads=int(get("attention.head_count_kv", n)),
      intermediate_size=int(get("feed_forward_length")),
      max_position_embeddings=int(get("context_length", 2048)),
      rope_theta=theta,
      rms_norm_eps=float(get("attention.layer_norm_rms_epsilon",
                             1e-6 if arch == "gemma" else 1e-5)),
      tie_embeddings="output.weight" not in gf.tensors,
      qkv_bias="blk.0.attn_q.bias" in gf.tensors,
      qk_norm="blk.0.attn_q_norm.weight" in gf.tensors,
      dtype=dtype, param_dtype=dtype)
  if arch == "gemma":
    fields.update(mlp_activation="gelu_tanh", embed_scale=True, norm_plus_one=True)
  scaling = get("rope.scaling.type", "none")
  if scaling == "linear":
    fields.update(rope_scaling="linear", rope_factor=float(get("rope.scaling.factor")))
  elif scaling != "none":
    raise ValueError(f"{gf.path}: rope scaling {scaling!r} is not supported; supported: none, "
                     "linear, llama3")
  if "rope_freqs.weight" in gf.tensors:
    fields.update(_fit_llama3(gf, head_dim, theta))
  return ModelConfig(**fields)


def _fit_llama3(gf: GGUFFile, head_dim: int, theta: float) -> dict[str, Any]:
  """Recovers llama3 rope scaling from llama.cpp's stored per-frequency divisors.

  llama.cpp stores only the divisors, not the settings; the released Llama 3.1/3.2 models
  all use low 1, high 4, original context 8192, so those are tried with factor = max divisor.
  """
  factors = gf.read("rope_freqs.weight").astype(np.float64)
  if np.allclose(factors, 1.0):
    return {}
  fit = dict(rope_scaling="llama3", rope_factor=float(factors.max()), rope_low_freq_factor=1.0,
             rope_high_freq_factor=4.0, rope_original_max_position=8192)
  if factors.shape != (head_dim // 2,) or not np.allclose(
      _llama3_factors(fit, head_dim, theta), factors, rtol=1e-4):
    raise ValueError(f"{gf.path}: tensor rope_freqs.weight does not match Llama-3 rope scaling "
                     "(low 1, high 4, original context 8192); other rope frequency factors "
                     "are not supported")
  return fit


def _unpermute(w: np.ndarray, n: int) -> np.ndarray:
  """Undoes llama.cpp's per-head row interleave of Q/K (rows, ...) for n heads."""
  # llama.cpp reorders each head's rows from [half 0 | half 1] to (h0[0], h1[0], h0[1], ...);
  # reading them as pairs and swapping the axes restores HF's rotate-half order.
  rows = w.shape[0]
  return w.reshape(n, rows // n // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_name(gguf_name: str) -> str | None:
  """HF name of a llama.cpp tensor name, or None when r1jax has no equivalent."""
  if gguf_name in _GLOBAL_NAMES:
    return _GLOBAL_NAMES[gguf_name]
  m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", gguf_name)
  if m and m.group(2) in _LAYER_NAMES:
    return f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}.{m.group(3)}"
  return None


def gguf_name(name: str) -> str:
  """llama.cpp name of an HF tensor name (for error messages)."""
  for g, h in _GLOBAL_NAMES.items():
    if h == name:
      return g
  m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
  if m:
    for g, h in _LAYER_NAMES.items():
      if h == m.group(2):
        return f"blk.{m.group(1)}.{g}.{m.group(3)}"
  return name


def tensors_from_gguf(gf: GGUFFile, cfg: ModelConfig) -> TensorSource:
  """The GGUF's tensors under HF names and in HF layout (dequantized lazily).

  Raises:
    ValueError: a tensor is stored in a type the gguf package cannot dequantize.
  """
  gf.check_readable()
  entries = {}
  for name, info in gf.tensors.items():
    if name == "rope_freqs.weight":  # Consumed by config_from_gguf.
      continue
    target = hf_name(name)
    label = f"{name} in {gf.path}"
    if target is None:  # Kept under its own name, so the loader reports it as unexpected.
      entries[name] = TensorEntry(info.shape, lambda n=name: gf.read(n), label)
      continue
    heads = None
    if cfg.family == "llama" and ".self_attn.q_proj." in target:
      heads = cfg.num_heads
    elif cfg.family == "llama" and ".self_attn.k_proj." in target:
      heads = cfg.num_kv_heads
    plus_one = cfg.norm_plus_one and name.endswith("norm.weight")
    entries[target] = TensorEntry(info.shape, _gguf_reader(gf, name, heads, plus_one), label)
  return TensorSource(gf.path, entries, label_of=lambda n: f"{gguf_name(n)} in {gf.path}")


def _gguf_reader(gf: GGUFFile, name: str, heads: int | None, plus_one: bool):
  def read() -> np.ndarray:
    w = gf.read(name)
    if heads is not None:
      w = _unpermute(w, heads)
    if plus_one:  # llama.cpp stores Gemma's norm scale as (1 + w); r1jax keeps w.
      w = w - 1.0
    return w
  return read
