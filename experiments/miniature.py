""""R1 in miniature": reasoning that pays, learned by GRPO from rule rewards, on a laptop CPU.

Command (the README's main job; no download):

  r1jax train experiments/miniature.py --workdir workdirs/miniature

What happens:
  1. Stage 1 (cold start, R1's SFT stage): a 3-layer decoder (~330k params, 20-symbol
     vocabulary) is trained from scratch on 4-digit + 4-digit additions where 30% of the
     completions work the sum column by column inside <think>...</think> and 70% answer
     directly. The model learns both styles; the direct style is rarely right.
  2. Stage 2 (R1-Zero's RL): GRPO, 32 prompts x 8 samples at temperature 1, reward 1 for the
     right answer and nothing else — no reward for thinking, no KL.

Measured (seed 0, this config; experiments/results/miniature/): after stage 1 the greedy
answers are direct (8 tokens) and 0.4% right on 256 held-out sums, sampled answers 21% right
with 28% thinking. After 30 GRPO steps: greedy 99.6% right, 100% thinking, 33 tokens (+99
points, 4.1x length); sampled 55% right (+34 points), 58% thinking, 22.6 tokens (1.5x). Wall
time 19 min on 2 CPU cores that were shared with other jobs (load ~6); the unloaded time was
not measured yet. The training rollouts' thinking share was still rising (0.26 -> 0.65) when
the run ended.
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
                        max_position_embeddings=64, rope_theta=10000.0),
      tokenizer_path="miniature",
      task="miniature",
      task_args={"seed": 0, "digits": 4},
      eval_task_args={"seed": 1},
      grpo=GRPOConfig(num_samples=8, kl_coef=0.0, clip_low=0.2, clip_high=0.2,
                      loss_agg="token_mean"),
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=40, prompt_multiple=16),
      prompts_per_step=32,
      num_steps=30,
      optim=OptimConfig(lr=1e-4, max_grad_norm=1.0),
      sft=SFTConfig(steps=600, data="miniature", data_args={"worked_frac": 0.3, "digits": 4},
                    batch_size=128,
                    optim=OptimConfig(lr=3e-3, warmup_steps=30, max_grad_norm=1.0)),
      eval=EvalConfig(every=10, num_examples=256, num_samples=1, batch_size=256),
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
