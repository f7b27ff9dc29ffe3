"""DeepSeek-R1-Zero's RL recipe, applied to Qwen2.5-Math-7B on MATH.

Paper: DeepSeek-AI, "DeepSeek-R1 incentivizes reasoning in LLMs through reinforcement
learning", Nature 645, 633-638 (2025); arXiv:2501.12948 ("DeepSeek-R1: Incentivizing Reasoning
Capability in LLMs via Reinforcement Learning").

What the paper did (DeepSeek-R1-Zero, Methods): GRPO straight from DeepSeek-V3-Base (671B MoE),
no SFT; rule rewards Reward_acc + Reward_format with equal weights; the R1-Zero template
(reasoning in <think>...</think>, answer in <answer>...</answer>); lr 3e-6; KL coefficient 0.001
(k3 estimator); clip ratio eps = 10; 16 outputs per question; 32 questions per step (512 outputs
a step); temperature 1; the reference model replaced by the policy every 400 steps; maximum
length 32,768 tokens, 65,536 after step 8.2k; 10,400 steps (1.6 epochs of its undisclosed
question set). Each rollout of 8,192 outputs was split into 16 minibatches of 512 for one pass.

Reported: AIME 2024 pass@1 rose from 15.6% to 77.9% during training, 86.7% with
self-consistency (majority vote); the arXiv v1 reports 71.0% pass@1 and 86.7% cons@64.
Hardware: 64 x 8 H800 GPUs, about 198 hours for R1-Zero (Supplementary B.4.4).

This file runs the same objective and schedule on Qwen2.5-Math-7B (the base model of most
R1-Zero reproductions; DeepSeek-V3-Base cannot be trained on one node), on MATH training
questions (the R1-Zero question set is not public):
  * lengths are scaled down to Qwen2.5-Math's 4,096-token context: prompts up to 1,024 tokens
    and completions up to 3,072 (the paper: 32,768 then 65,536). No length switch at 8.2k.
  * one r1jax step = one of the paper's rollouts: 512 questions x 16 samples = 8,192 outputs,
    then 16 optimizer steps of 512 outputs each (`updates_per_rollout=16`, the paper's "16
    minibatches, a single inner epoch"), each gradient-accumulated in micro-batches of 32 rows;
    pi_old is the trainer's logprobs on the rollout's params, fixed before the first step. The
    sampler decodes 32 questions (512 rows) at a time (`rollout_chunk`). The paper's 10,400
    training steps are optimizer steps: 650 rollouts here; its reference reset every 400
    steps is every 25 rollouts.
  * AdamW betas, weight decay and warmup are not stated for R1-Zero; r1jax's defaults are used
    (b1 0.9, b2 0.99, no weight decay, no warmup, global-norm clip 1.0).

Data: $R1JAX_DATA (default ./data) must hold math/train.jsonl (MATH train, fields problem and
answer or solution) and math500/test.jsonl for the held-out evaluation.

Commands:
  r1jax train experiments/r1_zero_qwen2_5_math_7b.py --dry-run --num-devices 8 \\
      --device-memory-gb 80            # the memory plan on one 8 x 80 GB node: it fits
  r1jax train experiments/r1_zero_qwen2_5_math_7b.py --workdir workdirs/r1_zero_7b
  r1jax train experiments/r1_zero_qwen2_5_math_7b.py --debug   # tiny model, CPU, seconds

Expected: not measured with r1jax yet (no accelerator was available). For scale: the 77.9%
above is the 671B model's; on this base model with a 3k-token budget, Oat-Zero-7B (Dr. GRPO,
Qwen-Math template) reaches 43.3% AIME 2024 and the untrained base averages 26.5 over five
benchmarks with that template (Liu et al. 2025, arXiv:2503.20783, Table 4).
"""

import os

from r1jax import experiment
from r1jax.grpo_config import r1_zero
from r1jax.models import presets
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig
from r1jax.sampler import SamplingConfig

DATA = os.environ.get("R1JAX_DATA", "data")
# The hardware of the dry run in the docstring (and of tests/experiments_test.py).
HARDWARE = {"num_devices": 8, "device_memory_gb": 80.0}
UPDATES_PER_ROLLOUT = 16  # Methods: each rollout's outputs split into 16 mini-batches.


def get_config() -> Config:
  return Config(
      # Weights from the local Hugging Face cache; the preset sizes dry runs and numerics.
      model=presets.get_preset("qwen2.5-math-7b", dtype="bfloat16", remat="full"),
      model_path="Qwen/Qwen2.5-Math-7B",
      task="math",
      task_args={"path": f"{DATA}/math/train.jsonl", "template": "r1_zero",
                 "format_weight": 1.0},  # Reward_rule = Reward_acc + Reward_format.
      eval_task_args={"path": f"{DATA}/math500/test.jsonl"},
      grpo=r1_zero(),  # R = 16, kl 0.001 (k3), eps = 10, one pass.
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=3072),
      max_prompt_len=1024,
      prompts_per_step=32 * UPDATES_PER_ROLLOUT,  # 512 questions = 8,192 outputs a rollout.
      updates_per_rollout=UPDATES_PER_ROLLOUT,  # Mini-batches of 512 outputs (32 questions).
      minibatch_size=32,
      rollout_chunk=32,
      num_steps=10_400 // UPDATES_PER_ROLLOUT,  # 650 rollouts = 10,400 optimizer steps.
      optim=OptimConfig(lr=3e-6, max_grad_norm=1.0),
      ref_reset_every=400 // UPDATES_PER_ROLLOUT,  # Every 400 optimizer steps.
      eval=EvalConfig(every=6, num_examples=500, num_samples=1, temperature=1.0,
                      batch_size=100),
      checkpoint=CheckpointConfig(every=6, keep=3),
      seed=0,
  )


def get_debug_config() -> Config:
  """The same objective, schedule and reward code at toy sizes: one step in seconds on CPU.

  A tiny random Qwen2-family decoder with the byte tokenizer; generated additions replace the
  MATH file (the same maths grader, R1-Zero template and format reward).
  """
  return experiment.debug_variant(
      get_config(),
      task_args={"seed": 0, "digits": 2, "template": "r1_zero", "format_weight": 1.0},
      ref_reset_every=1)
