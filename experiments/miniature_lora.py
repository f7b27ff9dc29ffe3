""""R1 in miniature" with LoRA: the same two stages, but GRPO trains rank-8 adapters only.

Command (no download; the stage-1 SFT is the full-fine-tuning miniature's, same seed):

  r1jax train experiments/miniature_lora.py --workdir workdirs/miniature_lora

What changes against experiments/miniature.py: stage 2 (GRPO) learns low-rank adapters on all
seven projections of every layer (q, k, v, o, gate, up, down; rank 8, alpha 16) on top of the
frozen stage-1 model, which the sampler sees with the adapters merged in once per rollout.
Stage 1 stays full fine-tuning (it trains the model from scratch). The adapters hold 43,776
numbers against the model's 334,368 (13%), and so do the optimizer state and each checkpoint;
the stage-1 model is written once into the workdir (`base_params`) as the adapters' base.
LoRA's learning rate is 10x the full run's (3e-3 against 3e-4), the usual LoRA ratio.

Measured (seed 0, 2-core CPU shared with other jobs, against experiments/miniature.py on the
same seed and stage 1): see the README's LoRA section.
"""

import dataclasses
import pathlib

from r1jax import experiment
from r1jax.lora import LoRAConfig
from r1jax.run_config import Config

_BASE = experiment.load_experiment(pathlib.Path(__file__).with_name("miniature.py"))
LORA = LoRAConfig(rank=8, alpha=16.0)
LR = 3e-3


def _lora(cfg: Config) -> Config:
  return dataclasses.replace(cfg, lora=LORA, optim=dataclasses.replace(cfg.optim, lr=LR))


def get_config() -> Config:
  return _lora(_BASE.get_config())


def get_debug_config() -> Config:
  """The same code at toy sizes: seconds on CPU."""
  return _lora(_BASE.get_debug_config())
