"""SimpleRL-Zoo's Qwen2.5-0.5B GSM8K recipe with LoRA: rank-32 adapters instead of all weights.

The recipe, data and hardware are experiments/simplerl_zoo_qwen2_5_0_5b_gsm8k.py's; the only
change is what GRPO trains: low-rank adapters on all seven projections of every layer (q, k,
v, o, gate, up, down; rank 32, alpha 64: 17.6M numbers against the model's 494M), on the
frozen base model, which is also the KL reference (kl_coef 1e-4), so no second copy of the
weights is kept. The sampler decodes with the adapters merged into a copy of the projection
weights once per rollout. The learning rate is 10x the full fine-tuning one (5e-6 against
5e-7), the usual ratio for LoRA (Schulman et al., "LoRA Without Regret", Thinking Machines
2025, found RL with LoRA matching full fine-tuning at that ratio even at low ranks).

Commands:
  r1jax train experiments/simplerl_zoo_qwen2_5_0_5b_gsm8k_lora.py --dry-run --num-devices 16 \\
      --device-memory-gb 80            # the memory plan: the adapters, their optimizer state
                                       # and the merged kernels replace the reference copy
  r1jax train experiments/simplerl_zoo_qwen2_5_0_5b_gsm8k_lora.py --workdir workdirs/simplerl_lora
  r1jax train experiments/simplerl_zoo_qwen2_5_0_5b_gsm8k_lora.py --debug   # tiny model, CPU
  r1jax export workdirs/simplerl_lora workdirs/simplerl_lora_hf   # merged, for transformers/vLLM

Expected: not measured with r1jax yet (no accelerator was available).
"""

import dataclasses
import pathlib

from r1jax import experiment
from r1jax.lora import LoRAConfig
from r1jax.run_config import Config

_BASE = experiment.load_experiment(
    pathlib.Path(__file__).with_name("simplerl_zoo_qwen2_5_0_5b_gsm8k.py"))
HARDWARE = _BASE.HARDWARE
LORA = LoRAConfig(rank=32, alpha=64.0)
LR = 5e-6


def _lora(cfg: Config) -> Config:
  return dataclasses.replace(cfg, lora=LORA, optim=dataclasses.replace(cfg.optim, lr=LR))


def get_config() -> Config:
  return _lora(_BASE.get_config())


def get_debug_config() -> Config:
  """The recipe's debug variant (tiny Qwen2-family model, byte tokenizer) with LoRA."""
  return _lora(_BASE.get_debug_config())
