"""Models: the transformer (pure init/apply), presets, and weights import/export.

Shape letters are defined in `r1jax.models.transformer`'s docstring.
"""

from r1jax.models.config import ModelConfig
from r1jax.models.transformer import (Params, abstract_params, count_params, forward, init,
                                      param_logical_axes)
from r1jax.models.weights import config_from_hf, load, save_hf
