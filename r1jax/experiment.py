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
import types
from typing import Sequence

from r1jax import config as config_lib
from r1jax.run_config import Config

__all__ = ["load_experiment", "resolve_config", "default_workdir"]


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
