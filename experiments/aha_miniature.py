""""The aha moment" in miniature: GRPO with a right-answer reward makes checking more frequent.

Command (no download):

  r1jax train experiments/aha_miniature.py --workdir workdirs/aha_miniature

What happens:
  1. Stage 1 (cold start): the "R1 in miniature" decoder (3 layers, ~330k params; two more
     symbols, `?` and `<wait>`) learns 4-digit additions in three styles
     (r1jax/data/aha_miniature.py): answer directly; work the sum column by column; work it,
     then check it a second way (b + a), each check column followed by `|` when it agrees
     with the first pass and `<wait>` when it does not, and answer the checked sum. The first
     pass has a blind spot: it forgets the carry out of a column whose two digits are both 5
     or more, so ~58% of first passes are wrong and checking pays. Prompt-side choices (as in
     the miniature) make the model pick thinking on ~25% of its answers and checking on ~20%
     of those (~5% of answers) while learning both styles from many rows. The stage ends when
     the check is right on 85% of 256 held-out rows (teacher forced, given a first pass), at
     most 800 steps.
  2. Stage 2 (R1-Zero's RL): GRPO, 32 prompts x 8 samples at temperature 1, reward 1 for the
     right answer and nothing else: no reward for length, checking or `<wait>`, no KL.
     Logged over steps (held-out greedy and sampled, and in training rollouts): accuracy,
     mean response length, the share that thinks (`worked`), that checks (`verify`), the
     `<wait>` count per response (`wait`) and the share whose first pass is wrong (`slip`).

Measured (seeds 0 and 1, 256 held-out sums, shared 2-core CPU; README "The aha moment in
miniature", experiments/results/aha_miniature/): the sampled share that checks rises from
1.2% / 2.7% to 97.7% / 98.8% in 60 steps, `<wait>` per answer from 0.00 / 0.04 to 0.79 / 0.82
(at most 0.01 of it after a column that agrees), greedy accuracy 0% -> 93% / 97%, and the
greedy length goes 8 (direct) -> 35-39 (working, step 10) -> 58 tokens (checking, step 20 on).

What was tried first (measured, seed 0, same model and RL): random slips instead of the blind
spot (`slip_rate=0.2, blind_spot=False`: each first-pass carry flips with probability 0.2) and
a check that wrote both results and one `<wait>` at the end when they differed. Stage 1 never
learned when to say `<wait>` (teacher forced it was right on 54% of rows, chance; every other
token of the check was right on 100%) and ran its 800 steps. In RL the sampled share that
checks rose from 4.7% (step 0) to 31% (step 10) and 38% (step 20) of held-out answers, but
GRPO simply sharpened the random slips away: of the held-out answers that think, 61% had a
wrong first pass at step 0, 7% at step 10 and 6% at step 20, so checking stopped paying
(accuracy 8.6% -> 89%, the run was stopped at step 20). Hence the per-column verdict
(a comparison at a fixed distance) and a systematic mistake that sampling cannot remove.
"""

import dataclasses

from r1jax.grpo_config import GRPOConfig
from r1jax.models.config import ModelConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig, SFTConfig
from r1jax.sampler import SamplingConfig


def get_config() -> Config:
  return Config(
      model=ModelConfig(family="llama", vocab_size=22, hidden_size=96, num_layers=3,
                        num_heads=4, num_kv_heads=4, head_dim=24, intermediate_size=256,
                        max_position_embeddings=80, rope_theta=10000.0, scan_unroll=3),
      tokenizer_path="aha_miniature",
      task="aha_miniature",
      task_args={"seed": 0, "digits": 4},
      eval_task_args={"seed": 1000},  # Held-out sums: a generator seed no training run uses.
      grpo=GRPOConfig(num_samples=8, kl_coef=0.0, clip_low=0.2, clip_high=0.2,
                      loss_agg="token_mean"),
      # A checked answer is 58 tokens (a worked one 33, a direct one 8).
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=64, prompt_multiple=16),
      max_prompt_len=16,  # "Q:1234+5678=" is 13 tokens; 16 + 64 fill the 80-token context.
      prompts_per_step=32,
      num_steps=60,
      optim=OptimConfig(lr=3e-4, max_grad_norm=1.0),
      sft=SFTConfig(steps=800, data="aha_miniature",
                    data_args={"worked_frac": 0.5, "think_in_prompt": 0.67,
                               "verify_frac": 0.4, "check_in_prompt": 0.6,
                               "slip_rate": 0.0, "blind_spot": True, "digits": 4},
                    batch_size=128,
                    optim=OptimConfig(lr=3e-3, warmup_steps=30, max_grad_norm=1.0,
                                      schedule="cosine", min_lr_ratio=0.1),
                    stop_accuracy=0.85, stop_style="verify", min_steps=200, check_every=25),
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
      sft=dataclasses.replace(cfg.sft, steps=5, batch_size=16, min_steps=0, check_every=5,
                              heldout_rows=16),
      eval=EvalConfig(every=1, num_examples=8, batch_size=8),
      checkpoint=CheckpointConfig(every=1, keep=2))
