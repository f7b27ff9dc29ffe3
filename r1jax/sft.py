"""Cold-start supervised fine-tuning: R1's stage 1, built from the same pieces as RL.

Place in the pipeline: optional, before the RL loop (`Config.sft`). It trains the policy on
prompt/completion text with next-token cross-entropy on the completion tokens only. The data
is a JSONL file (fields `prompt`, `completion`, optional `style`) or the built-in miniature
cold-start text. Rows of one `style` are batched together so short completions are not padded
to the length of long ones; the sub-batches' gradients add up to the whole batch's.

The stage ends after `SFTConfig.steps` steps, or earlier on a measured criterion: the share of
held-out rows of one style that greedy decoding would write exactly, given the style's first
token (teacher forced, one forward pass). Seeds differ in when a style "clicks" (by ~100 steps
of the miniature's stage 1), so a fixed count is too short for some and wasted on others.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from r1jax import metrics as metrics_lib
from r1jax import train_step
from r1jax.data import sources
from r1jax.data.sources import ExampleStream, Source
from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.run_config import SFTConfig

__all__ = ["sft_source", "run_sft", "encode_pairs", "heldout_rows", "make_exact_match",
           "heldout_accuracy"]

_BUCKET = 8  # Sequence lengths are rounded up to a multiple of this (fewer compilations).
# Held-out miniature text is drawn with the run's seed plus this: no training stream uses it.
_HELDOUT_SEED_OFFSET = 7919


# Built-in cold-start texts: cfg.data -> the module with their ColdStartSource.
_BUILTIN = {"miniature": "r1jax.data.miniature", "aha_miniature": "r1jax.data.aha_miniature"}


def _builtin(name: str):
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(_BUILTIN[name])  # Local: the built-in tasks are optional.


def sft_source(cfg: SFTConfig, *, seed: int) -> Source:
  """The stage-1 data named by cfg.data."""
  if cfg.data in _BUILTIN:
    return _builtin(cfg.data).ColdStartSource(seed=seed, **cfg.data_args)
  if not cfg.data:
    raise ValueError("SFTConfig.data is empty; give a JSONL file with prompt and completion "
                     f"fields, or one of {sorted(_BUILTIN)}")
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


def heldout_rows(cfg: SFTConfig, *, seed: int) -> list[dict[str, Any]]:
  """The held-out rows of the stopping criterion: cfg.heldout_rows rows of cfg.stop_style.

  From cfg.heldout_data when set; else the built-in miniature text drawn with a seed no
  training stream uses, so the rows are problems the model has not been trained on.
  """
  if cfg.heldout_data:
    fields = {"prompt": "prompt", "completion": "completion", **cfg.data_args.get("fields", {})}
    source = sources.read_jsonl(cfg.heldout_data, fields)
  elif cfg.data in _BUILTIN:
    # Miniature: every held-out row starts its completion with its style token, which the
    # criterion skips; a row with `<think>` already in its prompt would have a digit skipped
    # instead. A built-in text may name its own criterion rows (HELDOUT_ARGS).
    args = getattr(_builtin(cfg.data), "HELDOUT_ARGS", {"think_in_prompt": 0.0})
    plain = dataclasses.replace(cfg, data_args={**cfg.data_args, **args})
    source = sft_source(plain, seed=seed + _HELDOUT_SEED_OFFSET)
  else:
    raise ValueError(f"SFTConfig.stop_accuracy = {cfg.stop_accuracy} needs held-out rows: set "
                     f"SFTConfig.heldout_data to a JSONL file (only the built-in texts "
                     f"{sorted(_BUILTIN)} draw their own), got data={cfg.data!r}")
  rows = []
  limit = source.size if source.size is not None else 100 * cfg.heldout_rows
  for i in range(limit):
    row = source[i]
    if not cfg.stop_style or row.get("style", "") == cfg.stop_style:
      rows.append(row)
      if len(rows) == cfg.heldout_rows:
        break
  if not rows:
    raise ValueError(f"the held-out data has no rows of style {cfg.stop_style!r} "
                     f"(SFTConfig.stop_style); use a style its rows carry, or ''")
  return rows


def make_exact_match(model_cfg: ModelConfig) -> Callable:
  """jit(params, tokens, attn_mask, loss_mask) -> bool [B]: greedy would write the completion.

  Under teacher forcing, a row counts when every completion token after the first is the
  model's argmax. The first completion token is left out because it chooses the style (e.g.
  `<think>` or `A:`) and the criterion asks how well a style is done, not how often it is
  picked; given that token, greedy decoding then reproduces exactly these tokens. Rows with
  no learned token (batch padding) count as matches: callers slice them off.
  """
  @jax.jit
  def exact(params, tokens, attn_mask, loss_mask):
    logits, _ = transformer.forward(params, tokens[:, :-1], cfg=model_cfg,
                                    attention_mask=attn_mask[:, :-1])
    learned = loss_mask[:, 1:] > 0  # Position t predicts token t + 1.
    first = learned & ~jnp.pad(learned, ((0, 0), (1, 0)))[:, :-1]
    checked = learned & ~first
    return jnp.all((jnp.argmax(logits, -1) == tokens[:, 1:]) | ~checked, axis=-1)

  return exact


def heldout_accuracy(exact: Callable, params, rows: list[dict[str, Any]], tokenizer: Any,
                     batch_size: int = 256) -> float:
  """The share of `rows` that `exact` (from make_exact_match) counts as right."""
  right = 0
  for i in range(0, len(rows), batch_size):
    chunk = rows[i:i + batch_size]
    ok = exact(params, *encode_pairs(chunk, tokenizer, batch_size))
    right += int(np.asarray(ok)[:len(chunk)].sum())
  return right / len(rows)


def run_sft(params, opt_state, *, model_cfg: ModelConfig, tokenizer: Any, cfg: SFTConfig,
            apply_update: Callable, stream: ExampleStream,
            log: Callable[[int, dict[str, float]], None] | None = None,
            log_every: int = 50, progress: bool | None = None,
            heldout: list[dict[str, Any]] | None = None):
  """SFT updates until the stopping criterion holds or cfg.steps; (params, opt_state, metrics).

  Args:
    params, opt_state: the policy and its optimizer state (both donated to `apply_update`).
    model_cfg, tokenizer: the policy's architecture and tokenizer.
    cfg: the stage's config; with cfg.stop_accuracy > 0 it stops at the first check (every
      cfg.check_every steps from cfg.min_steps) where the held-out teacher-forced accuracy
      (`make_exact_match`) reaches it, and at cfg.steps otherwise.
    apply_update: from train_step.make_apply_update.
    stream: the training rows.
    log: called as log(step, metrics) every `log_every` steps, at each check and at the end
      (not every step: a console line per step buries everything else).
    log_every: see `log`.
    progress: show a console bar over cfg.steps; None = on in process 0 only.
    heldout: the criterion's rows; None = `heldout_rows(cfg, seed=stream.seed)`.

  Returns:
    (params, opt_state, the last metrics): `sft/loss`, `sft/grad_norm`, `sft/step_s`,
    `sft/steps` (steps run) and, with a criterion, `sft/heldout_accuracy` (its last check).
  """
  grad_fn = train_step.make_sft_grad(model_cfg)
  if cfg.stop_accuracy > 0:
    exact = make_exact_match(model_cfg)
    heldout = heldout if heldout is not None else heldout_rows(cfg, seed=stream.seed)
  if progress is None:
    progress = jax.process_index() == 0
  bar = metrics_lib.Progress(cfg.steps, enabled=progress, desc="sft",
                             keys=(("sft/loss", "loss"), ("sft/heldout_accuracy", "held-out")))
  metrics: dict[str, float] = {}
  last_check: dict[str, float] = {}
  with bar:
    for step in range(1, cfg.steps + 1):
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
                 "sft/step_s": time.perf_counter() - t0, "sft/steps": step, **last_check}
      if not np.isfinite(metrics["sft/loss"]):
        raise FloatingPointError(f"SFT loss is {metrics['sft/loss']} at SFT step {step}")
      stop = False
      if (cfg.stop_accuracy > 0 and step >= cfg.min_steps and
          (step - cfg.min_steps) % cfg.check_every == 0):
        last_check = {"sft/heldout_accuracy": heldout_accuracy(exact, params, heldout,
                                                               tokenizer)}
        metrics.update(last_check)
        stop = last_check["sft/heldout_accuracy"] >= cfg.stop_accuracy
      bar.update(step, metrics)
      if log is not None and (step % log_every == 0 or step == cfg.steps or stop):
        with bar.external_write():
          log(step, metrics)
      if stop:
        break
  return params, opt_state, metrics
