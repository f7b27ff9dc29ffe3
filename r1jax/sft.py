"""Cold-start supervised fine-tuning: R1's stage 1, built from the same pieces as RL.

Place in the pipeline: optional, before the RL loop (`Config.sft`). It trains the policy on
prompt/completion text with next-token cross-entropy on the completion tokens only. The data
is a JSONL file (fields `prompt`, `completion`, optional `style`) or the built-in miniature
cold-start text. Rows of one `style` are batched together so short completions are not padded
to the length of long ones; the sub-batches' gradients add up to the whole batch's.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np

from r1jax import train_step
from r1jax.data import sources
from r1jax.data.sources import ExampleStream, Source
from r1jax.models.config import ModelConfig
from r1jax.run_config import SFTConfig

__all__ = ["sft_source", "run_sft", "encode_pairs"]

_BUCKET = 8  # Sequence lengths are rounded up to a multiple of this (fewer compilations).


def sft_source(cfg: SFTConfig, *, seed: int) -> Source:
  """The stage-1 data named by cfg.data."""
  if cfg.data == "miniature":
    from r1jax.data import miniature  # Local: the built-in task is optional.
    return miniature.ColdStartSource(seed=seed, **cfg.data_args)
  if not cfg.data:
    raise ValueError("SFTConfig.data is empty; give a JSONL file with prompt and completion "
                     "fields, or 'miniature'")
  fields = {"prompt": "prompt", "completion": "completion", **cfg.data_args.get("fields", {})}
  return sources.read_jsonl(cfg.data, fields)


def encode_pairs(rows: list[dict[str, Any]], tokenizer: Any,
                 rows_multiple: int = 1) -> tuple[np.ndarray, ...]:
  """Right-padded tokens, attention mask and loss mask [B, T] for prompt+completion rows.

  T is rounded up to a multiple of 8 and B to a multiple of `rows_multiple` (extra rows are
  all padding with loss mask 0), so a run meets few distinct shapes and compiles few times.
  """
  eos = tokenizer.eos_ids[0] if tokenizer.eos_ids else None
  seqs, starts = [], []
  for row in rows:
    p = tokenizer.encode(row["prompt"], add_special_tokens=True)
    c = tokenizer.encode(row["completion"])
    if eos is not None and (not c or c[-1] not in tokenizer.eos_ids):
      c = c + [eos]  # The model must learn to stop.
    seqs.append(p + c)
    starts.append(len(p))
  t = -(-max(len(s) for s in seqs) // _BUCKET) * _BUCKET
  b = -(-len(seqs) // rows_multiple) * rows_multiple
  tokens = np.full((b, t), tokenizer.pad_id, np.int32)
  attn = np.zeros((b, t), bool)
  loss = np.zeros((b, t), np.float32)
  for i, (s, start) in enumerate(zip(seqs, starts)):
    tokens[i, :len(s)] = s
    attn[i, :len(s)] = True
    loss[i, start:len(s)] = 1.0
  return tokens, attn, loss


def run_sft(params, opt_state, *, model_cfg: ModelConfig, tokenizer: Any, cfg: SFTConfig,
            apply_update: Callable, stream: ExampleStream,
            log: Callable[[int, dict[str, float]], None] | None = None):
  """cfg.steps SFT updates; returns (params, opt_state, last metrics)."""
  grad_fn = train_step.make_sft_grad(model_cfg)
  metrics: dict[str, float] = {}
  for step in range(cfg.steps):
    t0 = time.perf_counter()
    rows = stream.next_batch(cfg.batch_size)
    groups: dict[str, list] = {}
    for row in rows:
      groups.setdefault(row.get("style", "") if cfg.split_by_style else "", []).append(row)
    total_loss, total_tokens, grads = 0.0, 0.0, None
    for name in sorted(groups):
      # Style groups vary in size from step to step: round rows up to an eighth of the batch.
      loss, count, g = grad_fn(params, *encode_pairs(groups[name], tokenizer,
                                                     max(1, cfg.batch_size // 8)))
      total_loss += float(loss)
      total_tokens += float(count)
      grads = g if grads is None else jax.tree.map(lambda a, b: a + b, grads, g)
    params, opt_state, gnorm = apply_update(params, opt_state, grads,
                                            np.float32(1.0 / max(total_tokens, 1.0)))
    metrics = {"sft/loss": total_loss / max(total_tokens, 1.0), "sft/grad_norm": float(gnorm),
               "sft/step_s": time.perf_counter() - t0}
    if not np.isfinite(metrics["sft/loss"]):
      raise FloatingPointError(f"SFT loss is {metrics['sft/loss']} at SFT step {step + 1}")
    if log is not None:
      log(step + 1, metrics)
  return params, opt_state, metrics
