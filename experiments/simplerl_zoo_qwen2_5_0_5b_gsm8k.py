"""SimpleRL-Zoo's zero-RL recipe for the smallest model: Qwen2.5-0.5B on GSM8K.

Paper: Weihao Zeng, Yuzhen Huang, Qian Liu, Wei Liu, Keqing He, Zejun Ma, Junxian He,
"SimpleRL-Zoo: Investigating and Taming Zero Reinforcement Learning for Open Base Models in the
Wild", arXiv:2503.18892 (COLM 2025). Code: github.com/hkust-nlp/simpleRL-reason (on verl).

What the paper did: GRPO from ten base models (0.5B to 32B), no SFT, a correctness-only rule
reward (the format reward was dropped because a rigid one hurt some models), and training data
matched to the model's strength: the easy split (GSM8K + MATH level 1, about 8K questions) for
the small models. The repository's commands: prompt batch 1,024, 8 rollouts per prompt,
responses up to 8,192 tokens, KL loss coefficient 1e-4 for models from 0.5B to 14B (the
"low_var_kl" estimator, k3), entropy bonus 0.001; its training script's defaults: prompts up to
1,024 tokens, PPO mini-batch 256 prompts (4 updates a rollout), clip ratio 0.2, temperature
1.0, lr 5e-7 (train_grpo_math_tune_ray.sh; the README commands leave it unchanged). About 100
steps (README: "approximately 100 steps over 15 hours" for the 7B and 14B models).

Reported (README, Qwen-2.5-0.5B -> + SimpleRL-Zoo): GSM8K 36.7 -> 49.5, MATH500 15.8 -> 34.4,
Minerva Math 4.8 -> 10.3, OlympiadBench 2.8 -> 8.9, AIME 2024 0.0 -> 0.0, AMC23 12.5 -> 22.5,
average 12.1 -> 20.9 (the trained model sampled at temperature 1.0, top-p 0.95). Hardware: a
single 80 GB H100/A100 is the stated minimum for the 0.5B model; 2 x 8 H100 for 7B and 14B.

Here:
  * GSM8K train alone (7,473 questions, the data at hand) instead of GSM8K + MATH level 1.
  * the prompt is the Qwen boxed template ("qwen-boxed" in their evaluation command); the paper
    gives weaker models a simpler step-by-step prompt that r1jax has no template for.
  * one r1jax step = one of the repository's rollouts: 1,024 prompts x 8 = 8,192 responses,
    then 4 optimizer steps on mini-batches of 256 prompts (`updates_per_rollout=4`), pi_old
    fixed on the rollout's params; the sampler decodes 256 prompts at a time
    (`rollout_chunk`); 100 steps. The loss is verl's token-level mean.
  * lengths unscaled (Qwen2.5-0.5B has a 32,768-token context).
  * the dry run plans the paper's 2 x 8 GPUs of 80 GB: r1jax decodes 2,048 rows at once, and
    their KV cache and prefill do not fit one GPU (vLLM in verl pages them).

Data: $R1JAX_DATA (default ./data) must hold gsm8k/train.jsonl and gsm8k/test.jsonl (the
original GSM8K files).

Commands:
  r1jax train experiments/simplerl_zoo_qwen2_5_0_5b_gsm8k.py --dry-run --num-devices 16 \\
      --device-memory-gb 80            # the memory plan on 2 x 8 x 80 GB: it fits
  r1jax train experiments/simplerl_zoo_qwen2_5_0_5b_gsm8k.py --workdir workdirs/simplerl_0.5b
  r1jax train experiments/simplerl_zoo_qwen2_5_0_5b_gsm8k.py --debug   # tiny model, CPU

Expected: not measured with r1jax yet (no accelerator was available).
"""

import os

from r1jax import experiment
from r1jax.grpo_config import GRPOConfig
from r1jax.models import presets
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig
from r1jax.sampler import SamplingConfig

DATA = os.environ.get("R1JAX_DATA", "data")
# The hardware of the dry run in the docstring (and of tests/experiments_test.py).
HARDWARE = {"num_devices": 16, "device_memory_gb": 80.0}
UPDATES_PER_ROLLOUT = 4  # 1,024 prompts a rollout, mini-batches of 256 prompts.


def get_config() -> Config:
  return Config(
      model=presets.get_preset("qwen2.5-0.5b", dtype="bfloat16", remat="full"),
      model_path="Qwen/Qwen2.5-0.5B",
      task="gsm8k",
      task_args={"path": f"{DATA}/gsm8k/train.jsonl", "template": "qwen_math"},
      eval_task_args={"path": f"{DATA}/gsm8k/test.jsonl"},
      grpo=GRPOConfig(num_samples=8, clip_low=0.2, clip_high=0.2, kl_coef=1e-4,
                      kl_estimator="k3", entropy_coef=0.001, loss_agg="token_mean",
                      num_iterations=1),
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=8192),
      max_prompt_len=1024,
      prompts_per_step=1024,
      updates_per_rollout=UPDATES_PER_ROLLOUT,
      minibatch_size=8,
      rollout_chunk=256,
      num_steps=100,
      optim=OptimConfig(lr=5e-7, max_grad_norm=1.0),
      eval=EvalConfig(every=5, num_examples=1319, num_samples=1, temperature=1.0,
                      batch_size=256),
      checkpoint=CheckpointConfig(every=5, keep=3),
      seed=0,
  )


def get_debug_config() -> Config:
  """The same objective (KL 1e-4, entropy bonus) and grader at toy sizes: seconds on CPU.

  A tiny random Qwen2-family decoder with the byte tokenizer; generated additions replace
  the GSM8K file (the same maths grader and boxed template).
  """
  return experiment.debug_variant(
      get_config(), task_args={"seed": 0, "digits": 2, "template": "qwen_math"})
