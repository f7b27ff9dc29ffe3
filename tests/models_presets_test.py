"""Every preset builds abstractly (jax.eval_shape) and has its published parameter count."""

import pytest

from r1jax.models import abstract_params, count_params
from r1jax.models.presets import PRESETS, PUBLISHED_PARAM_COUNTS, get_preset


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAM_COUNTS))
def test_preset_param_count_matches_published(name):
  assert count_params(abstract_params(get_preset(name))) == PUBLISHED_PARAM_COUNTS[name]


def test_every_preset_but_tiny_has_a_published_count():
  assert set(PRESETS) - {"tiny"} == set(PUBLISHED_PARAM_COUNTS)


def test_unknown_preset_names_the_known_ones():
  with pytest.raises(ValueError, match="unknown model preset 'qwen9'.*smollm2-135m"):
    get_preset("qwen9")


def test_preset_overrides_apply():
  cfg = get_preset("smollm2-135m", dtype="bfloat16")
  assert cfg.dtype == "bfloat16" and cfg.num_layers == 30
