"""Dr. GRPO's minimalist R1-Zero recipe (Oat-Zero-7B): Qwen2.5-Math-7B on MATH levels 3-5.

Paper: Zichen Liu, Changyu Chen, Wenjun Li, Penghui Qi, Tianyu Pang, Chao Du, Wee Sun Lee,
Min Lin, "Understanding R1-Zero-Like Training: A Critical Perspective", arXiv:2503.20783
(COLM 2025). Code: github.com/sail-sg/understand-r1-zero (on the Oat framework).

What the paper did: Dr. GRPO ("GRPO done right"): advantages r - mean(r) with no division by
the group std, and each response's token sum divided by a constant (the generation budget,
3,000) instead of by its own length; no KL term (beta = 0); clip eps 0.2; 8 responses per
question, temperature 1, top-p 1; responses up to 3,000 tokens, prompts up to 1,024; AdamW
(0.9, 0.95), no weight decay, gradient clip 1.0, constant lr 1e-6, one pass per rollout
(App. G, Table 6); MATH level 3-5 questions with the Qwen-Math template (answer in \\boxed{});
reward 1 for a right final answer, else 0. The released script (examples/qwen2.5-math-7b.sh)
samples 128 questions a rollout and updates on 128 responses at a time. The paper does not
report the number of policy steps.

Reported (Table 4, greedy decoding, 3k-token budget): Oat-Zero-7B scores AIME 2024 43.3,
AMC 62.7, MATH500 80.0, Minerva Math 30.1, OlympiadBench 41.0, average 51.4; the base model
averages 26.5 with the Qwen-Math template (38.2 with no template). Under GRPO the length of
wrong responses keeps growing; Dr. GRPO keeps it lower at equal or better accuracy (Sec. 3.2,
Fig. 5, Qwen2.5-1.5B). Hardware: 8 x A100, about 27 hours.

Here: every setting above; nothing is scaled (the 3,000-token budget already fits Qwen2.5-Math's
4,096-token context). One r1jax step = one of the released script's rollouts: 128 questions x
8 responses = 1,024 responses, then 8 optimizer steps on mini-batches of 128 responses
(`updates_per_rollout=8`), pi_old fixed on the rollout's params; the sampler decodes 16
questions at a time (`rollout_chunk`). num_steps = 400 rollouts (3,200 optimizer steps) is our
choice, as the paper does not give it. Data: $R1JAX_DATA (default ./data) must hold math/train.jsonl (MATH train:
problem, answer or solution, level) and math500/test.jsonl.

Commands:
  r1jax train experiments/dr_grpo_oat_zero_qwen2_5_math_7b.py --dry-run --num-devices 8 \\
      --device-memory-gb 80            # the memory plan on the paper's 8 x A100 80 GB: it fits
  r1jax train experiments/dr_grpo_oat_zero_qwen2_5_math_7b.py --workdir workdirs/oat_zero_7b
  r1jax train experiments/dr_grpo_oat_zero_qwen2_5_math_7b.py --debug   # tiny model, CPU

Expected: not measured with r1jax yet (no accelerator was available). In miniature, the length
claim is measured in notebooks/ablate_loss_aggregation.ipynb.
"""

import os

from r1jax import experiment
from r1jax.grpo_config import dr_grpo
from r1jax.models import presets
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig
from r1jax.sampler import SamplingConfig

DATA = os.environ.get("R1JAX_DATA", "data")
# The hardware of the dry run in the docstring (and of tests/experiments_test.py).
HARDWARE = {"num_devices": 8, "device_memory_gb": 80.0}
UPDATES_PER_ROLLOUT = 8  # 128 questions x 8 responses a rollout, 128 responses an update.


def get_config() -> Config:
  return Config(
      model=presets.get_preset("qwen2.5-math-7b", dtype="bfloat16", remat="full"),
      model_path="Qwen/Qwen2.5-Math-7B",
      task="math",
      task_args={"path": f"{DATA}/math/train.jsonl", "levels": (3, 4, 5),
                 "template": "qwen_math"},  # \boxed{} answers; no format reward.
      eval_task_args={"path": f"{DATA}/math500/test.jsonl", "levels": None},
      # R = 8, beta = 0, no std, token sums / 3,000 (the budget), eps 0.2, one pass.
      grpo=dr_grpo(),
      sampling=SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=3000),
      max_prompt_len=1024,
      prompts_per_step=128,
      updates_per_rollout=UPDATES_PER_ROLLOUT,  # Mini-batches of 128 responses.
      minibatch_size=32,
      rollout_chunk=16,
      num_steps=400,
      optim=OptimConfig(lr=1e-6, schedule="constant", b1=0.9, b2=0.95, weight_decay=0.0,
                        max_grad_norm=1.0),
      eval=EvalConfig(every=16, num_examples=500, num_samples=1, temperature=1.0,
                      batch_size=100),
      checkpoint=CheckpointConfig(every=16, keep=3),
      seed=0,
  )


def get_debug_config() -> Config:
  """The same objective, template and grader at toy sizes: seconds on CPU.

  A tiny random Qwen2-family decoder with the byte tokenizer; generated additions replace the
  MATH file (the same maths grader and Qwen-Math template).
  """
  return experiment.debug_variant(
      get_config(), task_args={"seed": 0, "digits": 2, "template": "qwen_math"})
