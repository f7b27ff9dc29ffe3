""""R1 in miniature": reasoning that pays, learned by GRPO from rule rewards, on a laptop CPU.

Command (the README's main job; no download):

  r1jax train experiments/miniature.py --workdir workdirs/miniature

What happens:
  1. Stage 1 (cold start, R1's SFT stage): a 3-layer decoder (~330k params, 20-symbol
     vocabulary) is trained from scratch on 4-digit + 4-digit additions where 25% of the
     completions work the sum column by column inside <think>...</think> and 75% answer
     directly. The model learns both styles; the direct style is rarely right.
  2. Stage 2 (R1-Zero's RL): GRPO, 32 prompts x 8 samples at temperature 1, reward 1 for the
     right answer and nothing else — no reward for thinking, no KL.

Measured (seed 0, this config, idle 2-core CPU; experiments/results/miniature/): see the
README's "R1 in miniature" table. In short, greedy accuracy on 256 held-out sums goes from
~0% (direct answers, 8 tokens) to ~99% (every answer works the sum, 33 tokens), sampled
accuracy rises by ~60 points, the sampled share of answers that think ends above 90% and the
sampled mean length more than doubles, in under 5 minutes in all.

Why these settings: stage 1 needs ~450 steps of 128 rows before the worked style is right
often enough to pay (300 steps, or 450 steps of 64 rows, leave it near 0%); a 25% worked share
starts sampling at ~22% thinking (30% started at 33%, which caps the length gain below 2x);
RL lr 3e-4 flips the greedy policy within 10 steps and carries the sampled share past 90% by
step 30 (1e-4 reached 58%).
"""

import dataclasses

from r1jax.grpo_config import GRPOConfig
from r1jax.models.config import ModelConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig, SFTConfig
from r1jax.sampler import SamplingConfig


def get_config() -> Config:
  return Config(
      model=ModelConfig(family="llama", vocab_size=20, hidden_size=96, num_layers=3,
                        num_heads=4, num_kv_heads=4, head_dim=24, intermediate_size=256,
                        max_position_embeddings=64, rope_theta=10000.0,
                        scan_unroll=3),  # Unrolled layers: ~15% faster SFT steps on CPU.
      tokenizer_path="miniature",
      task="miniature",
      task_args={"seed": 0, "digits": 4},
      eval_task_args={"seed": 1},
      grpo=GRPOConfig(num_samples=8, kl_coef=0.0, clip_low=0.2, clip_high=0.2,
                      loss_agg="token_mean"),
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=40, prompt_multiple=16),
      prompts_per_step=32,
      num_steps=30,
      optim=OptimConfig(lr=3e-4, max_grad_norm=1.0),
      sft=SFTConfig(steps=450, data="miniature", data_args={"worked_frac": 0.25, "digits": 4},
                    batch_size=128,
                    optim=OptimConfig(lr=3e-3, warmup_steps=30, max_grad_norm=1.0)),
      eval=EvalConfig(every=15, num_examples=256, num_samples=1, batch_size=256),
      checkpoint=CheckpointConfig(every=20, keep=2),
      seed=0,
  )


def get_debug_config() -> Config:
  """The same code at toy sizes: seconds on CPU."""
  cfg = get_config()
  return dataclasses.replace(
      cfg, num_steps=2, prompts_per_step=4,
      grpo=dataclasses.replace(cfg.grpo, num_samples=4),
      sft=dataclasses.replace(cfg.sft, steps=5, batch_size=16),
      eval=EvalConfig(every=1, num_examples=8, batch_size=8),
      checkpoint=CheckpointConfig(every=1, keep=2))
