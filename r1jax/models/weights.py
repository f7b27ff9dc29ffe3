"""Weights import/export: `load` a checkpoint into (ModelConfig, params), `save_hf` one out.

Place in the pipeline: the first step of every run. `load` accepts an HF folder (config.json +
safetensors, sharded or not), a GGUF file, a hub id already in the local Hugging Face cache, or
a known short name (`smollm2-135m`, via `r1jax.fetch`). Both formats arrive as HF-named
tensors (`hf_io.TensorSource`); this module renames them onto the param tree, transposes
[out, in] weights to [in, out] kernels, stacks layers on a leading L axis, and checks every
shape before anything is read, so a bad checkpoint fails fast with the tensor's name.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from r1jax.models import gguf_io, hf_io
from r1jax.models.config import ModelConfig
from r1jax.models.transformer import Params, abstract_params

__all__ = ["config_from_hf", "load", "save_hf"]

config_from_hf = hf_io.config_from_hf
_DTYPES = ("float32", "bfloat16", "float16")
# Buffers some checkpoints carry that are recomputed, not learned.
_IGNORED = re.compile(r".*rotary_emb\.inv_freq$")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _layout(cfg: ModelConfig) -> list[tuple[tuple[str, ...], str, bool, tuple[int, ...]]]:
  """(param path, HF name with {i} for the layer, transposed?, param shape without L)."""
  out = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(abstract_params(cfg))[0]:
    keys = tuple(k.key for k in path)
    last = keys[-1]
    transpose = last == "kernel"
    hf_last = "weight" if last in ("kernel", "embedding") else last
    if keys[:2] == ("model", "layers"):
      name = ".".join(("model.layers.{i}",) + keys[2:-1] + (hf_last,))
      shape = leaf.shape[1:]
    else:
      name = ".".join(keys[:-1] + (hf_last,))
      shape = leaf.shape
    out.append((keys, name, transpose, shape))
  return out


def _names(cfg: ModelConfig, template: str) -> list[str]:
  if "{i}" not in template:
    return [template]
  return [template.format(i=i) for i in range(cfg.num_layers)]


def _sharded_leaf(source: hf_io.TensorSource, names: list[str], layered: bool, transpose: bool,
                  shape: tuple[int, ...], dtype: Any, target: Any) -> jax.Array:
  """One param leaf assembled on its devices straight from the checkpoint's tensors.

  For each of this process's devices, the HF tensors its shard covers are read one at a time
  (a layer's tensor, transposed and cast), only the shard's slice is kept, and the shard is
  put on its device before the next one is built: the host holds about one tensor plus one
  device's shard, and no device ever holds the whole leaf unless its sharding says so.
  """
  last: dict[str, Any] = {}

  def tensor(name: str) -> np.ndarray:
    if last.get("name") != name:  # Consecutive slices of one tensor read it once.
      last.clear()
      w = source.entries[name].read()
      last.update(name=name, w=np.asarray(w.T if transpose else w).astype(dtype, copy=False))
    return last["w"]

  def shard(index: tuple[slice, ...]) -> np.ndarray:
    if not layered:
      return np.ascontiguousarray(tensor(names[0])[index])
    rows = range(*index[0].indices(len(names)))
    return np.stack([tensor(names[i])[index[1:]] for i in rows])

  full = (len(names), *shape) if layered else tuple(shape)
  # One device's shard at a time: `jax.make_array_from_callback` would first build every
  # device's shard on the host (the whole leaf, under FSDP).
  arrays = [jax.device_put(shard(index), device)
            for device, index in target.addressable_devices_indices_map(full).items()]
  last.clear()
  return jax.make_array_from_single_device_arrays(full, target, arrays)


def params_from_tensors(cfg: ModelConfig, source: hf_io.TensorSource,
                        shardings: Params | None = None) -> Params:
  """Builds the param tree of `cfg` (in cfg.param_dtype) from HF-named tensors.

  With `shardings` (a tree of jax.sharding.Sharding shaped like the params), each leaf is
  built on its devices shard by shard (`_sharded_leaf`); without, on the host then moved to
  the default device.

  Raises:
    ValueError: a tensor is missing, has the wrong shape, or has no place in the model.
  """
  layout = _layout(cfg)
  used = set()
  for _, template, transpose, shape in layout:  # Check everything before reading anything.
    want = tuple(reversed(shape)) if transpose else tuple(shape)
    for name in _names(cfg, template):
      entry = source.entries.get(name)
      if entry is None:
        raise ValueError(f"missing tensor {source.label_of(name)} (expected shape {want})")
      if tuple(entry.shape) != want:
        raise ValueError(f"tensor {entry.label} has shape {tuple(entry.shape)}, expected {want} "
                         "from the model config")
      used.add(name)
  _check_leftovers(cfg, source, used)
  dtype = jnp.dtype(cfg.param_dtype)
  params: dict[str, Any] = {}
  for keys, template, transpose, shape in layout:
    names = _names(cfg, template)
    if shardings is not None:
      target = shardings
      for k in keys:
        target = target[k]
      node = params
      for k in keys[:-1]:
        node = node.setdefault(k, {})
      node[keys[-1]] = _sharded_leaf(source, names, "{i}" in template, transpose, shape, dtype,
                                     target)
      continue
    stacked = np.empty((len(names), *shape) if "{i}" in template else shape, dtype)
    for i, name in enumerate(names):
      w = source.entries[name].read()
      w = w.T if transpose else w
      if "{i}" in template:
        stacked[i] = w
      else:
        stacked[...] = w
    node = params
    for k in keys[:-1]:
      node = node.setdefault(k, {})
    node[keys[-1]] = jnp.asarray(stacked)
  return params


def _check_leftovers(cfg: ModelConfig, source: hf_io.TensorSource, used: set[str]) -> None:
  """Unused tensors are errors (a silently dropped weight gives wrong logits), except these."""
  unused = []
  for name, entry in source.entries.items():
    if name in used or _IGNORED.match(name):
      continue
    if name == "lm_head.weight" and cfg.tie_embeddings:
      continue  # Some tied checkpoints store the head too; transformers ignores it as well.
    if name.endswith("self_attn.o_proj.bias"):
      # Llama/Qwen3 attention_bias adds an o_proj bias; r1jax supports it only when zero.
      if np.any(entry.read() != 0):
        raise ValueError(f"tensor {entry.label} is a nonzero output-projection bias, which "
                         "r1jax's attention does not have")
      continue
    unused.append(entry.label)
  if unused:
    more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
    raise ValueError(f"{source.path} has tensors r1jax's {cfg.family} model does not use: "
                     f"{', '.join(unused[:5])}{more}")


def _dtype_name(dtype: Any) -> str:
  name = jnp.dtype(dtype).name
  if name not in _DTYPES:
    raise ValueError(f"dtype {name!r} is not supported for params; use one of "
                     f"{', '.join(_DTYPES)}")
  return name


def _from_hub_cache(repo_id: str, cache_dir: str | os.PathLike | None) -> pathlib.Path:
  from huggingface_hub import snapshot_download  # pylint: disable=g-import-not-at-top
  from huggingface_hub.errors import (  # pylint: disable=g-import-not-at-top
      HFValidationError, LocalEntryNotFoundError)
  try:
    return pathlib.Path(snapshot_download(repo_id, local_files_only=True, cache_dir=cache_dir))
  except HFValidationError as e:
    raise ValueError(f"{repo_id!r} is not a local path and not a valid hub id: {e}") from None
  except LocalEntryNotFoundError:
    raise FileNotFoundError(
        f"model {repo_id!r} is neither a local path nor in the Hugging Face cache"
        f"{f' at {cache_dir}' if cache_dir else ''}; download it first (`hf download "
        f"{repo_id}`) or pass a folder or .gguf file") from None


def resolve(path_or_hub_id: str | os.PathLike, *,
            cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """Maps a path, known name or cached hub id to a local checkpoint file or folder."""
  from r1jax import fetch  # pylint: disable=g-import-not-at-top
  text = os.fspath(path_or_hub_id)
  path = pathlib.Path(text).expanduser()
  if path.exists():
    return path
  if text in fetch.KNOWN_MODELS:
    return pathlib.Path(fetch.resolve_model_path(text))
  if _HUB_ID.fullmatch(text):
    return _from_hub_cache(text, cache_dir)
  raise FileNotFoundError(
      f"model path {text!r} does not exist; pass an HF folder (config.json + safetensors), a "
      f".gguf file, a hub id in the local Hugging Face cache (org/name), or a known name "
      f"({', '.join(sorted(fetch.KNOWN_MODELS))})")


def _is_gguf(path: pathlib.Path) -> bool:
  with open(path, "rb") as f:
    return f.read(4) == b"GGUF"


def load(path_or_hub_id: str | os.PathLike, dtype: Any = jnp.float32, *,
         cache_dir: str | os.PathLike | None = None, mesh: jax.sharding.Mesh | None = None,
         rules: Any = None) -> tuple[ModelConfig, Params]:
  """Loads a checkpoint into (ModelConfig, params).

  Args:
    path_or_hub_id: an HF folder (config.json + model.safetensors or a sharded
      model.safetensors.index.json), a file inside one, a .gguf file (or a folder holding just
      one), a hub id ("org/name") in the local Hugging Face cache, or a known name such as
      "smollm2-135m".
    dtype: param dtype (float32, bfloat16 or float16); also the config's compute dtype.
    cache_dir: the Hugging Face cache to look hub ids up in (default: huggingface_hub's).
    mesh: load each param straight into its sharding on this mesh (`sharding.param_shardings`
      under `rules`, default `sharding.DEFAULT_RULES`), one tensor at a time on the host;
      without a mesh the params land whole on the default device.
    rules: the logical-axis rules of `mesh`.

  Returns:
    (cfg, params): params is the nested dict `r1jax.models.forward` takes, in `dtype`.

  Raises:
    FileNotFoundError: the path, hub id or a checkpoint file does not exist.
    ValueError: unsupported architecture or quant type, or a missing or misshapen tensor.
  """
  dtype_name = _dtype_name(dtype)
  path = resolve(path_or_hub_id, cache_dir=cache_dir)
  if path.is_file() and _is_gguf(path):
    return _load_gguf(path, dtype_name, mesh, rules)
  folder = path if path.is_dir() else path.parent
  config = folder / "config.json"
  if not config.exists():
    ggufs = sorted(folder.glob("*.gguf"))
    if path.is_dir() and len(ggufs) == 1:
      return _load_gguf(ggufs[0], dtype_name, mesh, rules)
    found = f" (it holds {len(ggufs)} .gguf files; pass one)" if len(ggufs) > 1 else ""
    raise FileNotFoundError(f"{config} does not exist: {path} is not an HF checkpoint folder "
                            f"or a GGUF file{found}")
  try:
    hf = json.loads(config.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{config} is not valid JSON: {e}") from None
  cfg = hf_io.config_from_hf(hf, source=str(config), dtype=dtype_name)
  return cfg, params_from_tensors(cfg, hf_io.read_safetensors(folder),
                                  _shardings(cfg, mesh, rules))


def _shardings(cfg: ModelConfig, mesh: jax.sharding.Mesh | None, rules: Any) -> Params | None:
  if mesh is None:
    return None
  from r1jax import sharding  # pylint: disable=g-import-not-at-top  (it imports models)
  return sharding.param_shardings(cfg, mesh, rules or sharding.DEFAULT_RULES)


def _load_gguf(path: pathlib.Path, dtype_name: str, mesh: jax.sharding.Mesh | None = None,
               rules: Any = None) -> tuple[ModelConfig, Params]:
  gf = gguf_io.read_gguf(path)
  cfg = gguf_io.config_from_gguf(gf, dtype=dtype_name)
  return cfg, params_from_tensors(cfg, gguf_io.tensors_from_gguf(gf, cfg),
                                  _shardings(cfg, mesh, rules))


def tensors_from_params(cfg: ModelConfig, params: Params) -> dict[str, np.ndarray]:
  """HF-named tensors ([out, in] weights, one per layer) of a param tree, in its dtypes."""
  out = {}
  for keys, template, transpose, shape in _layout(cfg):
    node = params
    for k in keys:
      if not isinstance(node, dict) or k not in node:
        raise ValueError(f"params have no entry {'/'.join(keys)} required by the config")
      node = node[k]
    array = np.asarray(jax.device_get(node))
    layered = "{i}" in template
    if array.shape != ((cfg.num_layers, *shape) if layered else shape):
      raise ValueError(f"param {'/'.join(keys)} has shape {array.shape}, expected "
                       f"{(cfg.num_layers, *shape) if layered else shape}")
    for i, name in enumerate(_names(cfg, template)):
      w = array[i] if layered else array
      out[name] = np.ascontiguousarray(w.T if transpose else w)
  # HF's attention_bias also creates an o_proj bias (and Qwen2 always has q/k/v biases):
  # zeros express r1jax's model exactly.
  first = out["model.embed_tokens.weight"]
  for i in range(cfg.num_layers):
    prefix = f"model.layers.{i}.self_attn."
    if cfg.qkv_bias and cfg.family != "qwen2":
      out[prefix + "o_proj.bias"] = np.zeros((cfg.hidden_size,), first.dtype)
    if cfg.family == "qwen2" and not cfg.qkv_bias:
      for proj, width in (("q", cfg.num_heads), ("k", cfg.num_kv_heads), ("v", cfg.num_kv_heads)):
        out[f"{prefix}{proj}_proj.bias"] = np.zeros((width * cfg.head_dim,), first.dtype)
  return out


def save_hf(cfg: ModelConfig, params: Params, directory: str | os.PathLike, *,
            max_shard_bytes: int = 5 * 2**30) -> pathlib.Path:
  """Writes config.json + safetensors (sharded above `max_shard_bytes`) that transformers loads.

  Tensors keep the params' dtypes; tied embeddings write no lm_head.

  Raises:
    ValueError: `cfg` cannot be expressed as its family's HF class, or params do not match it.
  """
  hf = hf_io.config_to_hf(cfg)
  tensors = tensors_from_params(cfg, params)
  dtypes = {a.dtype.name for a in tensors.values()}
  if len(dtypes) == 1:
    hf["torch_dtype"] = dtypes.pop()
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  for old in list(directory.glob("model*.safetensors")) + [
      directory / "model.safetensors.index.json"]:
    old.unlink(missing_ok=True)  # A stale shard would otherwise be read back by the glob.
  hf_io.write_safetensors(tensors, directory, max_shard_bytes=max_shard_bytes)
  (directory / "config.json").write_text(json.dumps(hf, indent=2) + "\n")
  return directory
