"""r1jax: DeepSeek-R1-style reinforcement learning of language models in JAX.

The pipeline, in the order data flows: `r1jax.models` (transformer, weights) ->
`r1jax.sampler` (rollouts) -> `r1jax.rewards` (rule rewards) -> `r1jax.grpo` (objective) ->
`r1jax.train` (the loop) -> `r1jax.evaluate`.
"""

__version__ = "0.1.0"
