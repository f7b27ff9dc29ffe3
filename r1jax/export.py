"""`r1jax export`: a trained policy as a Hugging Face folder that transformers and vLLM load.

Place in the pipeline: after training (or to convert any model r1jax reads, e.g. SmolLM2's
GGUF). The source is a training workdir (its newest checkpoint, or `--step N`), one of its
checkpoint folders (`WORKDIR/checkpoints/N`), or anything `r1jax.models.load` takes. A LoRA
run's adapters are merged into its base first (`eval_run.restore_params`), so the folder is a
plain model. The folder holds what transformers' own `save_pretrained` writes for the
architecture, with the same tensor names:

  config.json               architecture (LlamaForCausalLM, Qwen2ForCausalLM, ...) and the
                            bos / eos / pad ids
  generation_config.json    the ids generation stops on (every eos id, end of turn included)
  model.safetensors         or model-0000i-of-0000n.safetensors + model.safetensors.index.json
                            above the shard size (as transformers shards)
  tokenizer.json            the fast tokenizer (built-in, GGUF-rebuilt or loaded)
  tokenizer_config.json     its class and special tokens
  chat_template.jinja       the chat template, when the tokenizer has one
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp

from r1jax import eval_run
from r1jax.models import weights
from r1jax.tokenizer import Tokenizer

__all__ = ["DTYPES", "export", "resolve_source"]

DTYPES = ("float32", "bfloat16", "float16")
# transformers' default shard size ("5GB" in transformers 4; decimal gigabytes).
DEFAULT_SHARD_BYTES = 5 * 10**9


def resolve_source(source: str | os.PathLike, step: int | None) -> tuple[str, int | None]:
  """(model or workdir, step): a checkpoint folder WORKDIR/checkpoints/N names both.

  Raises:
    ValueError: a checkpoint folder and a different --step were both given.
  """
  path = pathlib.Path(source)
  if (path.name.isdigit() and path.parent.name == "checkpoints"
      and eval_run.is_workdir(path.parent.parent)):
    if step is not None and step != int(path.name):
      raise ValueError(f"{os.fspath(source)!r} is the checkpoint of step {path.name}, but "
                       f"--step {step} asks for another; pass the workdir with --step, or the "
                       "checkpoint folder alone")
    return os.fspath(path.parent.parent), int(path.name)
  return os.fspath(source), step


def _token(tok: Tokenizer, token_id: int | None) -> str | None:
  return None if token_id is None else tok.id_to_token(token_id)


def _write_tokenizer(tok: Tokenizer, out: pathlib.Path, max_length: int) -> list[str]:
  """tokenizer.json, tokenizer_config.json and chat_template.jinja (when there is one)."""
  to_json = getattr(tok, "to_tokenizer_json", None)
  if to_json is None:
    raise ValueError(f"the tokenizer {tok.source!r} is a SentencePiece model; r1jax export "
                     "writes fast tokenizers (tokenizer.json) only: copy the model's own "
                     "tokenizer files into the folder instead")
  (out / "tokenizer.json").write_text(to_json(), encoding="utf-8")
  config: dict[str, Any] = {
      # transformers 4 and 5 both load a bare tokenizer.json through this class.
      "tokenizer_class": "PreTrainedTokenizerFast",
      "model_max_length": max_length,
      "clean_up_tokenization_spaces": False,
  }
  for name, token_id in (("bos_token", tok.bos_id), ("eos_token", tok.eos_ids[0]),
                         ("pad_token", tok.pad_id)):
    if (text := _token(tok, token_id)) is not None:
      config[name] = text
  (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
  files = ["tokenizer.json", "tokenizer_config.json"]
  if tok.chat_template:
    (out / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
    files.append("chat_template.jinja")
  else:  # An earlier export's template would otherwise be read as this model's.
    (out / "chat_template.jinja").unlink(missing_ok=True)
  return files


def _special_ids(tok: Tokenizer) -> dict[str, Any]:
  eos = list(tok.eos_ids)
  return {"bos_token_id": tok.bos_id, "eos_token_id": eos[0] if len(eos) == 1 else eos,
          "pad_token_id": tok.pad_id}


def export(source: str | os.PathLike, out: str | os.PathLike, *, step: int | None = None,
           dtype: str | None = None, max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> list[str]:
  """Writes the model of `source` into the folder `out` as a Hugging Face checkpoint.

  Args:
    source: a training workdir, one of its `checkpoints/N` folders, or a model r1jax loads
      (HF folder, GGUF file, hub id in the local cache, known name such as smollm2-135m).
    out: the folder to write (created; files of an earlier export there are replaced).
    step: a workdir's checkpoint to export (default: the newest).
    dtype: the tensors' dtype, one of DTYPES (default: the params' own).
    max_shard_bytes: larger models are split into shards of at most this size plus an index.

  Returns:
    The names of the files written, sorted.

  Raises:
    ValueError: a bad dtype or step, a model its HF class cannot express, or a SentencePiece
      tokenizer.
    FileNotFoundError: the source or the checkpoint does not exist.
  """
  if dtype is not None and dtype not in DTYPES:
    raise ValueError(f"dtype {dtype!r} is not supported for export; use one of "
                     f"{', '.join(DTYPES)}")
  spec, step = resolve_source(source, step)
  loaded = eval_run.load_model(spec, step)
  cfg, params, tok = loaded.model_cfg, loaded.params, loaded.tokenizer
  if dtype is not None:
    params = jax.tree.map(lambda x: x.astype(jnp.dtype(dtype)), params)
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  weights.save_hf(cfg, params, out, max_shard_bytes=max_shard_bytes)
  ids = _special_ids(tok)
  hf = json.loads((out / "config.json").read_text())
  hf.update(ids)
  (out / "config.json").write_text(json.dumps(hf, indent=2) + "\n")
  (out / "generation_config.json").write_text(json.dumps(ids, indent=2) + "\n")
  _write_tokenizer(tok, out, cfg.max_position_embeddings)
  return sorted(p.name for p in out.iterdir() if p.is_file())
