"""Rollouts on the host: prompts -> sampler -> text -> rewards -> the static-shape train batch.

Place in the pipeline: steps 1-4 of a GRPO step (r1jax/__init__.py). `collect` tokenizes P prompts,
samples R completions each with `sampler.generate`, decodes them, scores every named reward
(host Python; a reward function that raises scores 0 and is counted, never crashes the step),
and `to_batch` lays prompt and completion side by side with explicit masks for the update.
On several processes every process samples the same global prompts (one SPMD program; its
rows are split over the devices), grades only its share of the rows, and all see every score.
DAPO's dynamic sampling is `collect_filtered`: groups whose rewards are all equal carry no
signal and are replaced by fresh prompts, up to a number of sampling rounds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import numpy as np

from r1jax import grpo
from r1jax import sampler as sampler_lib
from r1jax import sharding
from r1jax.data.sources import Example, ExampleStream
from r1jax.data.tasks import Task
from r1jax.grpo_config import GRPOConfig
from r1jax.models.config import ModelConfig

__all__ = ["Rollouts", "collect", "collect_filtered", "encode_prompts", "rollout_metrics",
           "to_batch_arrays"]


@dataclasses.dataclass
class Rollouts:
  """P prompts x R completions, host-side (numpy), rows grouped by prompt."""

  examples: list[Example]  # [P]
  prompt_ids: list[list[int]]  # [P] unpadded prompt token ids
  tokens: np.ndarray  # int32 [B, Tn]
  logprobs: np.ndarray  # float32 [B, Tn] sampler logprobs
  lengths: np.ndarray  # int32 [B]
  finished: np.ndarray  # bool [B]
  completions: list[str]  # [B] decoded text (the stopping eos token removed)
  rewards: dict[str, np.ndarray]  # name -> [P, R], unweighted
  total_reward: np.ndarray  # [P, R] weighted sum (+ overlong shaping)
  accuracy: dict[str, np.ndarray]  # name -> [P, R]
  reward_errors: int  # reward-function calls that raised

  @property
  def num_samples(self) -> int:
    return self.total_reward.shape[1]

  def select_groups(self, keep: np.ndarray) -> "Rollouts":
    """The rollouts of the prompts where keep [P] is True (in order)."""
    idx = np.flatnonzero(keep)
    r = self.num_samples
    rows = (idx[:, None] * r + np.arange(r)).reshape(-1)
    return Rollouts(
        [self.examples[i] for i in idx], [self.prompt_ids[i] for i in idx], self.tokens[rows],
        self.logprobs[rows], self.lengths[rows], self.finished[rows],
        [self.completions[i] for i in rows], {k: v[idx] for k, v in self.rewards.items()},
        self.total_reward[idx], {k: v[idx] for k, v in self.accuracy.items()},
        self.reward_errors)

  @staticmethod
  def concat(parts: Sequence["Rollouts"]) -> "Rollouts":
    first = parts[0]
    cat = lambda f: np.concatenate([getattr(p, f) for p in parts])
    return Rollouts(
        sum((p.examples for p in parts), []), sum((p.prompt_ids for p in parts), []),
        cat("tokens"), cat("logprobs"), cat("lengths"), cat("finished"),
        sum((p.completions for p in parts), []),
        {k: np.concatenate([p.rewards[k] for p in parts]) for k in first.rewards},
        cat("total_reward"),
        {k: np.concatenate([p.accuracy[k] for p in parts]) for k in first.accuracy},
        sum(p.reward_errors for p in parts))


def encode_prompts(task: Task, examples: Sequence[Example], tokenizer: Any, *,
                   chat: bool, max_len: int | None = None) -> list[list[int]]:
  """Token ids of each rendered prompt (chat: through the tokenizer's chat template)."""
  out = []
  for ex in examples:
    text = task.render(ex, tokenizer if chat else None)
    # A chat template writes its own special tokens; a plain template gets the model's BOS.
    ids = tokenizer.encode(text, add_special_tokens=not chat)
    if max_len is not None and len(ids) > max_len:
      raise ValueError(f"the prompt of example {ex.get('id')!r} has {len(ids)} tokens, more "
                       f"than max_prompt_len={max_len}; raise max_prompt_len or drop it")
    out.append(ids)
  return out


def _decode(tokenizer: Any, tokens: np.ndarray, length: int, finished: bool,
            eos_ids: Sequence[int]) -> str:
  ids = tokens[:length].tolist()
  if finished and ids and ids[-1] in eos_ids:
    ids = ids[:-1]  # The stop token is not part of the answer; stop sequences (text) are.
  return tokenizer.decode(ids)


def collect(params, examples: Sequence[Example], *, task: Task, tokenizer: Any,
            model_cfg: ModelConfig, sampling: sampler_lib.SamplingConfig, grpo_cfg: GRPOConfig,
            key: jax.Array, num_samples: int, chat: bool = False,
            max_prompt_len: int | None = None, chunk: int = 0,
            budgets: Sequence[int] | None = None) -> Rollouts:
  """Samples `num_samples` completions for each example and scores them.

  `chunk` > 0 samples that many prompts per sampler call (chunk c with key fold_in(key, c)),
  so a rollout that feeds many optimizer steps need not hold all its KV caches at once.
  `budgets` gives each example its own new-token budget (`sampler.generate`).
  """
  prompt_ids = encode_prompts(task, examples, tokenizer, chat=chat, max_len=max_prompt_len)
  step = chunk if 0 < chunk < len(prompt_ids) else len(prompt_ids)
  parts = []
  for c, i in enumerate(range(0, len(prompt_ids), step)):
    out = sampler_lib.generate(params, prompt_ids[i:i + step], cfg=model_cfg,
                               sampling=sampling, num_samples=num_samples,
                               key=key if step == len(prompt_ids) else jax.random.fold_in(key, c),
                               budgets=None if budgets is None else budgets[i:i + step])
    # Every process gets every row (an all-gather when rows live on other hosts' devices).
    parts.append(sharding.to_host(tuple(out)))
  tokens, logprobs, lengths, finished = (np.concatenate(x) for x in zip(*parts))
  p, r = len(examples), num_samples
  completions = [_decode(tokenizer, tokens[row], int(lengths[row]), bool(finished[row]),
                         sampling.eos_ids) for row in range(p * r)]
  row_examples = [examples[row // r] for row in range(p * r)]
  scores = _score(task, completions, row_examples)
  rewards = {name: v.reshape(p, r) for name, v in scores["per_term"].items()}
  total = scores["total"].reshape(p, r).astype(np.float32)
  accuracy = {name: v.reshape(p, r) for name, v in scores["accuracy"].items()}
  if grpo_cfg.overlong_buffer:  # DAPO's soft overlong punishment, on top of the task reward.
    total += np.asarray(grpo.overlong_penalty(
        lengths, sampling.max_new_tokens, grpo_cfg.overlong_buffer,
        grpo_cfg.overlong_penalty_factor)).reshape(p, r)
  return Rollouts(list(examples), prompt_ids, tokens, logprobs, lengths, finished, completions,
                  rewards, total, accuracy, int(scores["errors"].sum()))


def _score(task: Task, completions: list[str], row_examples: list[Example]) -> dict[str, Any]:
  """Rewards and accuracies of every row; each process grades only its share of the rows.

  Host-side grading (sympy under timeouts, code sandboxes) is the part of a step that does not
  shard itself over devices, so on several hosts each scores `sharding.process_rows` and the
  scores are all-gathered. A reward function that raises scores 0 and is counted.
  """
  mine = sharding.process_rows(len(completions))
  scores = task.score(completions[mine], row_examples[mine])
  local = {"total": scores.total, "per_term": scores.per_term,
           "accuracy": task.accuracy(completions[mine], row_examples[mine]),
           "errors": np.array([sum(scores.errors.values())], np.int64)}
  return sharding.allgather_rows(local)


def collect_filtered(params, stream: ExampleStream, num_prompts: int, *, max_rounds: int,
                     key: jax.Array, **kwargs) -> tuple[Rollouts, dict[str, float]]:
  """DAPO dynamic sampling: keep groups with reward variance, sample more until P are kept.

  After `max_rounds` the batch is topped up with zero-variance groups (zero advantage, so no
  gradient) to keep its static shape. Returns the rollouts and metrics.
  """
  kept, spare, drawn, rounds, zero_groups, errors = [], [], 0, 0, 0, 0
  while rounds < max_rounds and sum(len(k.examples) for k in kept) < num_prompts:
    examples = stream.next_batch(num_prompts)
    got = collect(params, examples, key=jax.random.fold_in(key, rounds), **kwargs)
    zero = np.asarray(grpo.zero_variance_groups(got.total_reward))
    zero_groups += int(zero.sum())
    errors += got.reward_errors
    kept.append(got.select_groups(~zero))
    spare.append(got.select_groups(zero))
    drawn += len(examples)
    rounds += 1
  batch = Rollouts.concat(kept + spare).select_groups(
      np.arange(sum(len(k.examples) for k in kept + spare)) < num_prompts)
  # Every sampled completion was graded once, whichever part of the batch it landed in.
  batch.reward_errors = errors
  metrics = {"sampling/rounds": float(rounds), "sampling/prompts_drawn": float(drawn),
             # Before the filter; `groups/zero_var_frac` is of the batch that is trained on.
             "groups/zero_var_frac_prefilter": zero_groups / max(drawn, 1)}
  return batch, metrics


def rollout_metrics(ro: Rollouts, adv: np.ndarray) -> dict[str, float]:
  """A step's rollout statistics: rewards, accuracies, lengths, truncation, thinking, groups."""
  m = {"reward/mean": float(ro.total_reward.mean()), "reward/std": float(ro.total_reward.std())}
  for name, v in ro.rewards.items():
    m[f"reward/{name}"] = float(v.mean())
  for name, v in ro.accuracy.items():
    m[f"accuracy/{name}"] = float(v.mean())
  lengths = ro.lengths.astype(np.float64)
  m["length/mean"] = float(lengths.mean())
  m["length/max"] = float(lengths.max())
  correct = (ro.accuracy.get("strict", ro.total_reward) > 0).reshape(-1)
  m["length/correct_mean"] = float(lengths[correct].mean()) if correct.any() else float("nan")
  m["length/wrong_mean"] = float(lengths[~correct].mean()) if (~correct).any() else float("nan")
  m["truncated_frac"] = float(1.0 - ro.finished.mean())
  m["think_frac"] = float(np.mean(["</think>" in c for c in ro.completions]))
  m["reward/errors"] = float(ro.reward_errors)
  m.update({k: float(v) for k, v in grpo.group_metrics(ro.total_reward).items()})
  m["adv/abs_mean"] = float(np.abs(adv).mean())
  return m


def to_batch_arrays(ro: Rollouts, *, t_prompt: int, pad_id: int,
                    mask_truncated: bool) -> dict[str, np.ndarray]:
  """The update's arrays: left-padded prompt then completion, with masks (see train_step)."""
  b, t_new = ro.tokens.shape
  r = ro.num_samples
  prompt = np.full((b, t_prompt), pad_id, np.int32)
  prompt_mask = np.zeros((b, t_prompt), bool)
  for row in range(b):
    ids = ro.prompt_ids[row // r]
    prompt[row, t_prompt - len(ids):] = ids
    prompt_mask[row, t_prompt - len(ids):] = True
  gen_mask = np.arange(t_new)[None, :] < ro.lengths[:, None]
  loss_mask = gen_mask.astype(np.float32)
  if mask_truncated:  # DAPO overlong filtering: truncated completions teach nothing.
    loss_mask *= ro.finished[:, None]
  return {"tokens": np.concatenate([prompt, ro.tokens], axis=1),
          "attn_mask": np.concatenate([prompt_mask, gen_mask], axis=1),
          "loss_mask": loss_mask}
