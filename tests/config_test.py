"""`--set` overrides are typed by the field, unknown keys are explained, JSON round-trips."""

import dataclasses
from typing import Literal

import pytest

from r1jax import config
from r1jax.models import ModelConfig


@dataclasses.dataclass(frozen=True)
class Optim:
  lr: float = 1e-3  # Learning rate.
  warmup_steps: int = 10  # Linear warmup.
  betas: tuple[float, float] = (0.9, 0.999)  # Adam betas.
  schedule: Literal["constant", "cosine"] = "constant"  # LR schedule.


@dataclasses.dataclass(frozen=True)
class Experiment:
  model: ModelConfig = ModelConfig()  # The policy's architecture.
  optim: Optim = Optim()  # Optimizer.
  seed: int = 0  # Root seed.
  name: str = "run"  # Run name.
  stop_ids: tuple[int, ...] = (2,)  # Ragged tuple.
  max_steps: int | None = None  # None: run forever.
  use_kl: bool = True  # Keep a reference model.


def test_overrides_parse_by_field_type():
  cfg = config.apply_overrides(Experiment(), config.parse_set_args([
      "optim.lr=3e-6", "optim.warmup_steps=100", "optim.betas=0.9,0.95", "seed=7",
      "name=abc", "stop_ids=(2, 5, 9)", "max_steps=50", "use_kl=false",
      "model.rope_theta=1e5", "model.dtype=bfloat16", "optim.schedule=cosine"]))
  assert cfg.optim.lr == 3e-6 and isinstance(cfg.optim.lr, float)
  assert cfg.optim.warmup_steps == 100 and cfg.optim.betas == (0.9, 0.95)
  assert cfg.seed == 7 and cfg.name == "abc" and cfg.stop_ids == (2, 5, 9)
  assert cfg.max_steps == 50 and cfg.use_kl is False
  assert cfg.model.rope_theta == 1e5 and cfg.model.dtype == "bfloat16"
  assert cfg.optim.schedule == "cosine"
  assert config.override(cfg, "max_steps", "None").max_steps is None
  assert config.override(cfg, "stop_ids", "[]").stop_ids == ()
  assert config.override(cfg, "stop_ids", "4").stop_ids == (4,)


def test_unknown_key_lists_the_nearest_valid_keys():
  with pytest.raises(config.ConfigError, match=r"unknown config key 'optim\.learning_rate'.*optim\."):
    config.override(Experiment(), "optim.learning_rate", "1")
  with pytest.raises(config.ConfigError, match=r"did you mean .*model\.rope_theta"):
    config.override(Experiment(), "model.rope_tehta", "1")
  with pytest.raises(config.ConfigError, match=r"unknown config key 'seed\.x'"):
    config.override(Experiment(), "seed.x", "1")


@pytest.mark.parametrize("key,value,match", [
    ("seed", "1.5", "expected an integer"),
    ("optim.lr", "fast", "expected a number"),
    ("use_kl", "maybe", "expected true or false"),
    ("optim.schedule", "linear", "accepted values: 'constant', 'cosine'"),
    ("optim.betas", "0.9", "got 1 items; expected 2"),
    ("seed", "None", "does not accept None"),
    ("optim", "3", "is a section"),
])
def test_bad_values_give_one_clear_error_naming_the_key(key, value, match):
  with pytest.raises(config.ConfigError, match=match) as err:
    config.override(Experiment(), key, value)
  assert repr(key) in str(err.value) or key in str(err.value)


def test_post_init_invariants_still_run_after_override():
  with pytest.raises(ValueError, match="num_kv_heads"):
    config.override(Experiment(), "model.num_kv_heads", "3")


@dataclasses.dataclass(frozen=True)
class _Batching:
  rows: int = 16
  group: int = 4

  def __post_init__(self):
    if self.rows % self.group:
      raise ValueError(f"_Batching.rows ({self.rows}) must be a multiple of group ({self.group})")


@dataclasses.dataclass(frozen=True)
class _Run:
  batching: _Batching = _Batching()
  steps: tuple[int, ...] = (1,)


@pytest.mark.parametrize("order", [0, 1])
def test_overrides_of_related_fields_are_checked_together_in_either_order(order):
  # Each value alone breaks the invariant (16 % 6, 18 % 4); the pair holds it.
  pairs = [("batching.group", "6"), ("batching.rows", "18")]
  cfg = config.apply_overrides(_Run(), pairs if order else pairs[::-1])
  assert cfg.batching == _Batching(rows=18, group=6)
  with pytest.raises(ValueError, match=r"_Batching.rows \(20\) must be a multiple of group \(6\)"):
    config.apply_overrides(_Run(), pairs + [("batching.rows", "20")])
  for key, value in pairs:  # One value alone: checked at once.
    with pytest.raises(ValueError, match="must be a multiple"):
      config.override(_Run(), key, value)


def test_overrides_run_post_init_normalization_on_the_final_config():
  cfg = config.apply_overrides(_Run(), [("steps", "[3, 4]"), ("batching.rows", "8")])
  assert cfg.steps == (3, 4) and cfg.batching.rows == 8
  assert cfg == _Run(batching=_Batching(rows=8), steps=(3, 4))


def test_json_round_trip_is_exact():
  cfg = config.apply_overrides(Experiment(), {"optim.betas": "0.8,0.9", "max_steps": "3",
                                              "stop_ids": "1,2,3"})
  text = config.to_json(cfg)
  again = config.from_json(Experiment, text)
  assert again == cfg and config.to_json(again) == text


def test_from_dict_rejects_unknown_keys():
  with pytest.raises(config.ConfigError, match="unknown keys \\['bogus'\\]"):
    config.from_dict(Experiment, {"bogus": 1})


def test_set_arg_without_equals_is_an_error():
  with pytest.raises(config.ConfigError, match="--set expects key=value, got 'seed'"):
    config.parse_set_args(["seed"])


def test_flat_keys_lists_every_leaf():
  keys = config.flat_keys(Experiment())
  assert "optim.lr" in keys and "model.hidden_size" in keys and "optim" not in keys
