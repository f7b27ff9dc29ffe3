"""A bf16 GRPO update step's MFU and decode tokens/s against the HBM roofline, random weights.

On a GPU or TPU: Qwen2.5-0.5B- and 1.5B-sized models (presets, random weights, no download)
in bf16 with remat "full"; one optimizer step over `--rows` rows of `--prompt-len` +
`--new-tokens` tokens (the real `train_step.make_grpo_update`, off-policy, chunked logits),
and the real sampler (`sampler.generate`) decoding `--new-tokens` tokens for `--rows` rows.
It prints, per model:

  update  MFU = 6 N_mm tokens (+ attention) / step time / (devices x peak bf16 FLOP/s)
  decode  tokens/s, and its ratio to the HBM roofline: every decode step reads every weight
          once, so tokens/s <= rows x bandwidth / weight bytes (the KV cache adds to the reads;
          this bound leaves it out, so the ratio is an upper estimate of the efficiency).

Peak figures per chip are looked up from `jax.devices()[0].device_kind` (dense bf16, from the
vendors' data sheets); an unknown chip prints absolute figures only. On CPU it runs the `tiny`
preset at toy sizes and says so: the point there is that the script works, not the numbers.

Run:
  python experiments/benchmarks/accelerator_step.py [--models qwen2.5-0.5b,qwen2.5-1.5b]
      [--rows 8] [--prompt-len 256] [--new-tokens 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from r1jax import grpo, sampler, train_step
from r1jax.models import presets, transformer
from r1jax.run_config import OptimConfig

# device_kind substring -> (peak dense bf16 FLOP/s, HBM bytes/s), per chip.
CHIPS = {
    "H200": (989e12, 4.8e12), "H100": (989e12, 3.35e12), "A100": (312e12, 2.0e12),
    "L4": (121e12, 0.3e12), "TPU v6": (918e12, 1.64e12), "TPU v5p": (459e12, 2.76e12),
    "TPU v5": (197e12, 0.82e12), "TPU v4": (275e12, 1.2e12),
}


def _chip() -> tuple[str, tuple[float, float] | None]:
  kind = jax.devices()[0].device_kind
  for name, peaks in CHIPS.items():
    if name.lower() in kind.lower():
      return kind, peaks
  return kind, None


def _time(fn, repeats: int) -> float:
  jax.block_until_ready(fn())  # Compile and warm up.
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def bench(name: str, *, rows: int, prompt_len: int, new_tokens: int, repeats: int,
          toy: bool) -> dict[str, float]:
  """Times one update step and one rollout of `name` (a preset) with random weights."""
  dtype = "float32" if toy else "bfloat16"
  cfg = presets.get_preset(name, dtype=dtype, param_dtype=dtype, remat="none" if toy else "full")
  params = jax.jit(lambda k: transformer.init(cfg, k))(jax.random.key(0))
  t = prompt_len + new_tokens
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, cfg.vocab_size, (rows, t)), jnp.int32)
  zeros = jnp.zeros((rows, new_tokens), jnp.float32) - 5.0
  batch = train_step.Batch(tokens, jnp.ones((rows, t), bool), jnp.ones((rows, new_tokens)),
                           jnp.asarray(rng.normal(size=rows), jnp.float32), zeros, zeros, zeros)
  grpo_cfg = dataclasses.replace(grpo.dapo(), tis_cap=None)  # Token-mean loss, clip-higher.
  tx, _ = train_step.make_optimizer(OptimConfig(lr=1e-6), 10)
  update = train_step.make_grpo_update(cfg, grpo_cfg, tx, t_new=new_tokens, num_microbatches=1)
  state = {"params": params, "opt": tx.init(params)}

  def step():
    state["params"], state["opt"], metrics, _ = update(state["params"], state["opt"], batch, False)
    return metrics

  update_s = _time(step, repeats)
  prompts = [list(rng.integers(0, cfg.vocab_size, prompt_len)) for _ in range(rows)]
  sampling = sampler.SamplingConfig(temperature=1.0, max_new_tokens=new_tokens,
                                    prompt_multiple=prompt_len)
  decode_s = _time(lambda: sampler.generate(state["params"], prompts, cfg=cfg, sampling=sampling,
                                            key=jax.random.key(1)), repeats)
  n_mm = transformer.count_params(transformer.abstract_params(cfg))
  lnh = cfg.num_layers * cfg.num_heads * cfg.head_dim
  flops = rows * t * (6 * n_mm + 12 * lnh * t) + rows * t * (2 * n_mm + 4 * lnh * t)  # + remat.
  weight_bytes = n_mm * jnp.dtype(dtype).itemsize
  return {"update_s": update_s, "update_flops": flops, "decode_s": decode_s,
          "tokens_per_s": rows * new_tokens / decode_s, "weight_bytes": weight_bytes}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b")
  parser.add_argument("--rows", type=int, default=8)
  parser.add_argument("--prompt-len", type=int, default=256)
  parser.add_argument("--new-tokens", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  backend = jax.default_backend()
  kind, peaks = _chip()
  toy = backend == "cpu"
  models = ["tiny"] if toy else args.models.split(",")
  sizes = dict(rows=4, prompt_len=16, new_tokens=16) if toy else dict(
      rows=args.rows, prompt_len=args.prompt_len, new_tokens=args.new_tokens)
  n = jax.device_count()
  print(f"{n} x {kind} ({backend})" + ("  -- CPU: toy sizes (the tiny preset, float32); the "
                                       "figures say the script works, not what a chip does"
                                       if toy else ""))
  for name in models:
    r = bench(name, repeats=args.repeats, toy=toy, **sizes)
    line = (f"{name}: update {r['update_s'] * 1e3:.1f} ms "
            f"({r['update_flops'] / r['update_s'] / n / 1e12:.2f} TFLOP/s a device), decode "
            f"{r['tokens_per_s']:.0f} tokens/s")
    if peaks is not None:
      flops_peak, hbm = peaks
      mfu = r["update_flops"] / r["update_s"] / (n * flops_peak)
      roofline = sizes["rows"] * n * hbm / r["weight_bytes"]  # Each device reads its copy.
      line += f"; MFU {mfu:.1%}; decode at {r['tokens_per_s'] / roofline:.1%} of the HBM roofline"
    print(line)


if __name__ == "__main__":
  main()
