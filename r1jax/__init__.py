"""r1jax: DeepSeek-R1-style reinforcement learning of language models in JAX.

The pipeline, in the order data flows: `r1jax.models` (transformer, weights) ->
`r1jax.sampler` (rollouts) -> `r1jax.rewards` (rule rewards) -> `r1jax.grpo` (objective) ->
`r1jax.train` (the loop) -> `r1jax.evaluate`.

One GRPO step, the numbering the modules' docstrings use:
  1. data: the task yields P prompts and their gold answers (`r1jax.data`);
  2. sampler: R completions per prompt, with their logprobs and lengths (`r1jax.sampler`);
  3. rewards: each completion scored on the host (`r1jax.rewards`);
  4. advantages: [P, R] rewards -> group-relative advantages (`r1jax.grpo`);
  5. update: U optimizer steps over the rollout (`r1jax.policy_update`, `r1jax.train_step`);
  6. metrics and checkpoint (`r1jax.metrics`, `r1jax.checkpoint`).
"""

__version__ = "0.1.0"
