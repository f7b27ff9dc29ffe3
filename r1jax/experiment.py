"""Loading experiment files: `get_config()`, its debug variant, and `--set` overrides.

Place in the pipeline: what `r1jax train EXPERIMENT.py` (and tests, notebooks) call to turn an
experiment file into a resolved Config. An experiment file defines `get_config() -> Config`
and `get_debug_config() -> Config` (the same code at tiny sizes, seconds on CPU), and may
define `main(cfg, workdir)` when a study composes more than one `train.run`.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import dataclasses
import types
from typing import Any, Mapping, Sequence

from r1jax import config as config_lib
from r1jax.run_config import Config

__all__ = ["load_experiment", "resolve_config", "default_workdir", "debug_variant"]


def load_experiment(path: str | os.PathLike) -> types.ModuleType:
  """Imports an experiment file by path."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"experiment file {str(path)!r} does not exist")
  spec = importlib.util.spec_from_file_location(f"r1jax_experiment_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"experiment file {str(path)!r} defines no get_config()")
  return module


def resolve_config(module: types.ModuleType, *, debug: bool = False,
                   overrides: Sequence[str] = ()) -> Config:
  """The experiment's config (debug variant if asked) with `a.b=v` overrides applied."""
  if debug:
    if not hasattr(module, "get_debug_config"):
      raise ValueError(f"experiment {module.__file__!r} has no get_debug_config() for --debug")
    cfg = module.get_debug_config()
  else:
    cfg = module.get_config()
  if not isinstance(cfg, Config):
    raise ValueError(f"get_config() of {module.__file__!r} returned {type(cfg).__name__}, "
                     "expected r1jax.run_config.Config")
  return config_lib.apply_overrides(cfg, config_lib.parse_set_args(overrides))


def default_workdir(path: str | os.PathLike, debug: bool = False) -> str:
  return os.path.join("workdirs", pathlib.Path(path).stem + ("-debug" if debug else ""))


def debug_variant(cfg: Config, *, max_position_embeddings: int = 576,
                  task_args: Mapping[str, Any] | None = None,
                  grpo: Mapping[str, Any] | None = None, **fields: Any) -> Config:
  """A paper recipe's config at toy sizes, for its `get_debug_config()`: seconds on CPU.

  Keeps the recipe's objective, template and grader, and swaps in what a CPU without the
  weights or data can run: a tiny random Qwen2-family decoder (QKV bias, 264-id vocabulary)
  with the byte tokenizer, 2 prompts x 4 samples of 16 new tokens (sampled at once), 2 steps
  of at most 2 optimizer updates, a checkpoint every step and no evaluation or TensorBoard.

  Args:
    cfg: the recipe's full config.
    max_position_embeddings: the tiny model's context (prompts are bytes here).
    task_args: if given, the task becomes generated `arithmetic` with these args (and a
      held-out seed of 1): the stand-in for a data file the CPU does not have.
    grpo: GRPOConfig fields to change besides num_samples=4.
    **fields: other Config fields to set (they win over the defaults above).
  """
  from r1jax.models import presets  # Local: keeps this module light for the CLI.
  from r1jax.run_config import CheckpointConfig, EvalConfig
  changes: dict[str, Any] = dict(
      model=presets.get_preset("tiny", family="qwen2", qkv_bias=True, vocab_size=264,
                               max_position_embeddings=max_position_embeddings),
      model_path="", tokenizer_path="bytes",
      grpo=dataclasses.replace(cfg.grpo, **{"num_samples": 4, **(grpo or {})}),
      sampling=dataclasses.replace(cfg.sampling, max_new_tokens=16),
      # Several optimizer steps per rollout stay several (2), each over 2 micro-batches.
      updates_per_rollout=min(cfg.updates_per_rollout, 2),
      minibatch_size=4 // min(cfg.updates_per_rollout, 2), rollout_chunk=0,
      max_prompt_len=512, prompts_per_step=2, num_steps=2,
      eval=EvalConfig(), checkpoint=CheckpointConfig(every=1, keep=2), tensorboard=False)
  if task_args is not None:
    changes.update(task="arithmetic", task_args=dict(task_args), eval_task_args={"seed": 1})
  changes.update(fields)
  return dataclasses.replace(cfg, **changes)
