"""The experiment config: everything `r1jax train` needs, as one nested frozen dataclass.

Place in the pipeline: experiment files return a `Config` from `get_config()` (and a tiny one
from `get_debug_config()`); the CLI applies `--set a.b=v` overrides (r1jax.config); the trainer
writes the resolved config as JSON into the workdir.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from r1jax.grpo_config import GRPOConfig
from r1jax.lora import LoRAConfig
from r1jax.models.config import ModelConfig
from r1jax.sampler import SamplingConfig
from r1jax.sharding import MeshConfig
from r1jax.tracking import TRACKERS, WandbConfig

__all__ = ["CheckpointConfig", "Config", "EvalConfig", "OptimConfig", "SFTConfig"]


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """AdamW with warmup, a schedule and global-norm clipping."""

  lr: float = 1e-6  # Peak learning rate (R1-Zero: 3e-6).
  warmup_steps: int = 0  # Linear warmup from 0 to lr over this many optimizer updates.
  schedule: Literal["constant", "cosine", "linear"] = "constant"  # Decay after warmup.
  min_lr_ratio: float = 0.0  # Final lr / peak lr for cosine and linear decay.
  decay_steps: int = 0  # Updates over which to decay; 0 = the whole run.
  b1: float = 0.9  # Adam beta1.
  b2: float = 0.99  # Adam beta2.
  eps: float = 1e-8  # Adam epsilon.
  weight_decay: float = 0.0  # Decoupled weight decay (AdamW).
  max_grad_norm: float = 1.0  # Clip gradients to this global norm; 0 = no clipping.

  def __post_init__(self):
    if not self.lr > 0:
      raise ValueError(f"OptimConfig.lr must be > 0, got {self.lr!r}")
    if self.warmup_steps < 0 or self.decay_steps < 0:
      raise ValueError("OptimConfig.warmup_steps and decay_steps must be >= 0, got "
                       f"{self.warmup_steps!r} and {self.decay_steps!r}")
    if not 0 <= self.min_lr_ratio <= 1:
      raise ValueError(f"OptimConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
    if self.max_grad_norm < 0:
      raise ValueError(f"OptimConfig.max_grad_norm must be >= 0, got {self.max_grad_norm!r}")


@dataclasses.dataclass(frozen=True)
class SFTConfig:
  """R1's stage 1 (cold start): supervised fine-tuning on prompt/completion text before RL."""

  steps: int = 0  # Optimizer steps of SFT (the cap when stop_accuracy is set); 0 skips it.
  data: str = ""  # A JSONL file with prompt and completion fields, or "miniature".
  data_args: dict[str, Any] = dataclasses.field(default_factory=dict)  # Args of the data source.
  batch_size: int = 64  # Rows per SFT step.
  optim: OptimConfig = OptimConfig(lr=1e-5)  # Its own optimizer (fresh for the RL stage).
  split_by_style: bool = True  # Batch rows of one "style" together so short rows are not padded.
  # Stop early once held-out rows of `stop_style` are right this often under teacher forcing
  # (every completion token after the first, which picks the style, is the argmax); 0 = never.
  stop_accuracy: float = 0.0
  stop_style: str = ""  # The style the criterion measures ("" = all held-out rows).
  min_steps: int = 0  # Never stop before this step (the criterion is not checked earlier).
  check_every: int = 25  # Check the criterion every this many steps.
  heldout_rows: int = 256  # Held-out rows of the criterion (of `stop_style` when set).
  heldout_data: str = ""  # Held-out JSONL file; "" = the miniature text drawn with another seed.

  def __post_init__(self):
    if not 0 <= self.stop_accuracy <= 1:
      raise ValueError(f"SFTConfig.stop_accuracy must be in [0, 1], got {self.stop_accuracy!r}")
    if self.check_every < 1 or self.heldout_rows < 1:
      raise ValueError(f"SFTConfig.check_every and heldout_rows must be >= 1, got "
                       f"{self.check_every!r} and {self.heldout_rows!r}")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """Held-out evaluation inside training, written into metrics.jsonl as `eval/...`."""

  every: int = 0  # Evaluate every this many RL steps (and before the first); 0 = never.
  num_examples: int = 64  # Held-out examples (the task built with `eval_task_args`).
  num_samples: int = 1  # Sampled completions per example for the sampled accuracy.
  temperature: float = 1.0  # Temperature of the sampled evaluation (greedy is always run).
  batch_size: int = 64  # Prompts per sampler call.


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  """Orbax checkpoints in WORKDIR/checkpoints."""

  every: int = 50  # Save every this many steps (also at the end and on SIGTERM/SIGINT).
  keep: int = 3  # Keep the last K checkpoints.
  # Write in a background thread: training goes on once the arrays are copied to the host; a
  # crash during a write leaves the previous checkpoint as the latest (exact resume holds).
  async_save: bool = False


@dataclasses.dataclass(frozen=True)
class Config:
  """A GRPO run: model, task, sampling, objective, optimizer, schedule of evals and saves."""

  model: ModelConfig = ModelConfig()  # Architecture for random init; numerics always apply.
  model_path: str = ""  # Weights: GGUF, HF folder, hub id or known name; "" = random init.
  tokenizer_path: str = ""  # "" = model_path (or the workdir's tokenizer for built-in tasks).
  task: str = "arithmetic"  # A registered task (r1jax.data.tasks.get_task).
  task_args: dict[str, Any] = dataclasses.field(default_factory=dict)  # Its keyword args.
  eval_task_args: dict[str, Any] = dataclasses.field(default_factory=dict)  # Held-out overrides.
  chat: bool = False  # Render prompts through the tokenizer's chat template (instruct models).
  # Variables of the chat template, e.g. {"enable_thinking": False} for Qwen3
  # (`--set chat_template_kwargs.enable_thinking=false`).
  chat_template_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
  grpo: GRPOConfig = GRPOConfig()  # The objective (num_samples is R).
  sampling: SamplingConfig = SamplingConfig()  # Rollout sampling; eos ids default to the tokenizer's.
  max_prompt_len: int = 512  # Longer prompts are an error; also the prompt length a dry run plans.
  prompts_per_step: int = 8  # P: prompts per step, i.e. per rollout (B = P * R rows).
  # U: optimizer steps per rollout. The B rows are shuffled (key from seed and step) and split
  # into U mini-batches of B / U rows, one optimizer step each (TRL: steps_per_generation;
  # veRL: train_batch_size / ppo_mini_batch_size). R1: 16.
  updates_per_rollout: int = 1
  # Rows per gradient-accumulation micro-batch inside one optimizer step; 0 = the whole
  # mini-batch at once (TRL: per_device_train_batch_size; veRL: ppo_micro_batch_size).
  minibatch_size: int = 0
  # Prompts per sampler call (their R samples decode together); 0 = the whole rollout at once.
  # Bounds the KV cache when a rollout feeds many optimizer steps.
  rollout_chunk: int = 0
  # The update trims the completion axis to the rollout's longest completion, rounded up to
  # one of this many equal fractions of the budget (one compile each): short rollouts do not
  # pay for the whole budget. 1 = always the whole budget.
  update_length_buckets: int = 4
  # Run each prompt once for its R samples in the update's forward and backward passes (and
  # the reference / pi_old passes) instead of once per row: each layer runs the group's prompt
  # once and its R completions, each attending to the prompt's keys and values and to itself
  # (r1jax/models/shared_prompt.py). Same values up to float rounding; the prompt's share of
  # the work drops R-fold. Every micro-batch must then hold whole groups, and with
  # updates_per_rollout > 1 the mini-batches are shuffled by group instead of by row.
  share_prompts: bool = False
  num_steps: int = 100  # RL steps.
  optim: OptimConfig = OptimConfig()  # The RL optimizer.
  # Low-rank adapters (rank > 0): RL trains only them, on the frozen loaded (or stage-1)
  # weights, which are also the KL reference; SFT, when configured, stays full fine-tuning.
  lora: LoRAConfig = LoRAConfig()
  ref_reset_every: int = 0  # Reset the reference to the policy every N steps (R1: 400); 0 never.
  # The frozen reference's storage dtype ("bfloat16" halves its memory; its logprobs are then
  # those of the rounded weights); "" = the policy's param dtype. Norm weights keep theirs.
  ref_dtype: Literal["", "float32", "bfloat16", "float16"] = ""
  max_sampling_rounds: int = 4  # DAPO dynamic sampling: at most this many rollouts per step.
  sft: SFTConfig = SFTConfig()  # Optional cold-start stage before RL.
  eval: EvalConfig = EvalConfig()  # Held-out evaluation during training.
  checkpoint: CheckpointConfig = CheckpointConfig()  # Saving and resuming.
  mesh: MeshConfig = MeshConfig()  # Devices as data x fsdp x tensor, and the logical-axis rules.
  samples_per_step: int = 4  # Completions written to samples.jsonl each step.
  tensorboard: bool = True  # Also write TensorBoard event files.
  # Experiment trackers fed every metric, a samples table and the plots (besides JSONL and
  # TensorBoard): () = none, ("wandb",) = Weights & Biases (the `wandb` extra).
  tracking: tuple[str, ...] = ()
  wandb: WandbConfig = WandbConfig()  # W&B project, name, group, tags and mode.
  seed: int = 0  # Root seed: params, data order, sampling keys all derive from it.

  def __post_init__(self):
    for name in ("prompts_per_step", "num_steps"):
      if getattr(self, name) < 1:
        raise ValueError(f"Config.{name} must be >= 1, got {getattr(self, name)!r}")
    rows = self.prompts_per_step * self.grpo.num_samples
    u = self.updates_per_rollout
    if not isinstance(u, int) or isinstance(u, bool) or u < 1 or rows % u:
      raise ValueError(f"Config.updates_per_rollout ({u!r}) must be a positive integer that "
                       f"divides the {rows} rows of a rollout (prompts_per_step x "
                       "grpo.num_samples)")
    per_update = rows // u
    if self.minibatch_size < 0 or (self.minibatch_size and per_update % self.minibatch_size):
      raise ValueError(f"Config.minibatch_size ({self.minibatch_size}) must divide the "
                       f"{per_update} rows of one optimizer step (prompts_per_step x "
                       f"grpo.num_samples / updates_per_rollout), or be 0")
    micro = self.minibatch_size or per_update
    if not isinstance(self.share_prompts, bool):
      raise ValueError(f"Config.share_prompts must be true or false, got {self.share_prompts!r}")
    if self.share_prompts and micro % self.grpo.num_samples:
      raise ValueError(f"Config.share_prompts needs whole groups in every micro-batch: its "
                       f"{micro} rows (minibatch_size, or prompts_per_step x grpo.num_samples / "
                       f"updates_per_rollout) must be a multiple of grpo.num_samples "
                       f"({self.grpo.num_samples})")
    if self.rollout_chunk < 0 or (self.rollout_chunk and
                                  self.prompts_per_step % self.rollout_chunk):
      raise ValueError(f"Config.rollout_chunk ({self.rollout_chunk}) must divide "
                       f"prompts_per_step ({self.prompts_per_step}), or be 0")
    b = self.update_length_buckets
    if isinstance(b, bool) or not isinstance(b, int) or b < 1:
      raise ValueError(f"Config.update_length_buckets must be a positive integer (1 = the "
                       f"whole budget), got {b!r}")
    if self.max_prompt_len < 1:
      raise ValueError(f"Config.max_prompt_len must be >= 1, got {self.max_prompt_len}")
    unknown = [t for t in self.tracking if t not in TRACKERS]
    if unknown:
      raise ValueError(f"Config.tracking has unknown tracker {unknown[0]!r}; accepted: "
                       f"{', '.join(TRACKERS)} (metrics.jsonl and TensorBoard are always on)")
    if self.ref_dtype not in ("", "float32", "bfloat16", "float16"):
      raise ValueError(f"Config.ref_dtype must be one of float32, bfloat16, float16 or \"\" (the "
                       f"params' dtype), got {self.ref_dtype!r}")
    if self.lora.enabled and (self.ref_reset_every or self.ref_dtype):
      raise ValueError(f"Config.ref_reset_every ({self.ref_reset_every}) and ref_dtype "
                       f"({self.ref_dtype!r}) must be 0 and \"\" with LoRA (lora.rank="
                       f"{self.lora.rank}): the reference is the frozen base model itself")
    if self.max_sampling_rounds < 1:
      raise ValueError(f"Config.max_sampling_rounds must be >= 1, got {self.max_sampling_rounds}")
