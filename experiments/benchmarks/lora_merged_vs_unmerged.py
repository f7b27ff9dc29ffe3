"""LoRA sampling: merge the adapters into the weights first, or decode with them unmerged?

r1jax samples a LoRA policy with merged adapters (`lora.merge` once per rollout, then the
sampler runs the plain model). The alternative keeps W and the adapters apart and computes
every targeted projection as x W + (alpha / r) (x A) B on every generated token. This script
times both on SmolLM2-135M in one process, interleaved repetition by repetition so they share
the machine's load:

  merged    jit(lora.merge)(base, adapters), then sampler.generate (merge time included)
  unmerged  sampler.generate on the base with the adapters alongside, every targeted
            projection (prefill and decode) adding (alpha / r) (x A) B

Work: 16 distinct chat prompts x 1 sample, 64 new tokens, temperature 1, no early stop (eos
ignored, so every row generates exactly 64 tokens); all seven projections targeted (PEFT's
"all-linear"), ranks 8 and 64, B random (not zero) so both paths compute a real update. The
base model's generate without adapters is timed too, as the floor. Compilation is excluded (a
first call per variant); medians of --reps repetitions.

The unmerged forward is the benchmark's own, not a package path: within `unmerged_adapters()`
(a context manager that restores both on exit) `transformer.dense` adds the low-rank branch
when a projection carries adapters, and `decode_layout.layer_params` attaches each layer's
adapters to the sampler's fused decode weights (q/k/v: one x [A_q A_k A_v] product, then
the three B's laid out as the fused qkv kernel's grouped columns; gate/up likewise). Before
timing, the script checks that the unmerged forward gives the merged model's logits.

Run:
  nice -n 10 python experiments/benchmarks/lora_merged_vs_unmerged.py [--reps 3]
      [--ranks 8,64] [--new-tokens 64]

Needs the SmolLM2 GGUF (`r1jax fetch smollm2-135m`). Figures: README, "Export to transformers
and vLLM, and LoRA".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from r1jax import decode_layout, lora, models, sampler
from r1jax.models import transformer
from r1jax.tokenizer import load_tokenizer


def chat_prompts(tok, n: int) -> list[list[int]]:
  """n distinct short chat prompts (single-digit products)."""
  out = []
  for a in range(2, 10):
    for b in range(2, 10):
      out.append(tok.apply_chat_template(
          [{"role": "user", "content": f"What is {a} times {b}? Think step by step."}],
          tokenize=True, add_generation_prompt=True))
      if len(out) == n:
        return out
  raise RuntimeError(f"only {len(out)} prompts")


def with_adapters(params: transformer.Params, adapters: dict[str, Any]) -> transformer.Params:
  """The base params with each targeted projection's lora_a / lora_b beside its kernel."""
  layers = dict(params["model"]["layers"])
  for module, projections in adapters["model"]["layers"].items():
    group = dict(layers[module])
    for name, ad in projections.items():
      group[name] = {**group[name], **ad}
    layers[module] = group
  return {**params, "model": {**params["model"], "layers": layers}}


def _low_rank(x: jax.Array, a: jax.Array, bs: tuple[jax.Array, ...], scale: float,
              dt) -> list[jax.Array]:
  """(x a) split into len(bs) rank-r slices, each times its B and the scale."""
  h = jnp.tensordot(x.astype(dt), a.astype(dt), axes=1)  # [..., n r]
  r = a.shape[-1] // len(bs)
  return [scale * jnp.tensordot(h[..., i * r:(i + 1) * r], b.astype(dt), axes=1)
          for i, b in enumerate(bs)]


@contextlib.contextmanager
def unmerged_adapters(lc: lora.LoRAConfig, cfg) -> Iterator[None]:
  """Within: projections that carry adapters compute x W + scale (x A) B (see the docstring)."""
  if tuple(sorted(lc.targets)) != tuple(sorted(lora.ALL_TARGETS)):
    raise ValueError("the benchmark's fused decode path expects all seven projections")
  dense, layer_params = transformer.dense, decode_layout.layer_params
  k, g, hd = cfg.num_kv_heads, cfg.num_groups, cfg.head_dim

  def unmerged_dense(p, x, cfg):
    y = dense(p, x, cfg)
    dt = jnp.dtype(cfg.dtype)
    if "lora_a" in p:  # Stored layout (forward): one projection, per-layer slices.
      return y + _low_rank(x, p["lora_a"], (p["lora_b"],), lc.scale, dt)[0]
    if "lora" not in p:
      return y
    kind, a, bs = p["lora"]
    parts = _low_rank(x, a, bs, lc.scale, dt)
    if kind == "qkv":  # -> [..., K, (G + 2) H], each kv head's G query heads, its k, its v.
      q, kk, v = parts
      lead = q.shape[:-1]
      delta = jnp.concatenate([q.reshape(*lead, k, g * hd), kk.reshape(*lead, k, hd),
                               v.reshape(*lead, k, hd)], axis=-1)
    elif kind == "gate_up":  # -> [..., 2, F]
      delta = jnp.stack(parts, axis=-2)
    else:
      delta = parts[0]
    return y + delta

  def unmerged_layer_params(params, cfg):
    layers = layer_params(params, cfg)
    stack = params["model"]["layers"]
    attn, mlp = stack["self_attn"], stack["mlp"]

    def fused(group, names, i):
      a = jnp.concatenate([group[n]["lora_a"][i] for n in names], axis=-1)
      return a, tuple(group[n]["lora_b"][i] for n in names)

    out = []
    for i, layer in enumerate(layers):
      sa, m = dict(layer["self_attn"]), dict(layer["mlp"])
      sa["qkv"] = {**sa["qkv"], "lora": ("qkv", *fused(attn, ("q_proj", "k_proj", "v_proj"), i))}
      sa["o_proj"] = {**sa["o_proj"], "lora": ("one", *fused(attn, ("o_proj",), i))}
      m["gate_up"] = {**m["gate_up"], "lora": ("gate_up", *fused(mlp, ("gate_proj", "up_proj"), i))}
      m["down_proj"] = {**m["down_proj"], "lora": ("one", *fused(mlp, ("down_proj",), i))}
      out.append({**layer, "self_attn": sa, "mlp": m})
    return tuple(out)

  transformer.dense, decode_layout.layer_params = unmerged_dense, unmerged_layer_params
  try:
    yield
  finally:
    transformer.dense, decode_layout.layer_params = dense, layer_params


def timed(fn) -> tuple[float, float]:
  """(wall seconds, process CPU seconds) of fn(), waited for."""
  t0, c0 = time.perf_counter(), time.process_time()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--ranks", default="8,64")
  parser.add_argument("--new-tokens", type=int, default=64)
  parser.add_argument("--rows", type=int, default=16)
  args = parser.parse_args()

  cfg, base = models.load("smollm2-135m")
  tok = load_tokenizer("smollm2-135m")
  prompts = chat_prompts(tok, args.rows)
  sampling = sampler.SamplingConfig(temperature=1.0, max_new_tokens=args.new_tokens,
                                    eos_ids=())  # No early stop: the same work every call.
  n_tokens = args.rows * args.new_tokens
  gen = lambda params, seed: sampler.generate(params, prompts, cfg=cfg, sampling=sampling,
                                              key=jax.random.key(seed))
  print(f"SmolLM2-135M, {args.rows} rows x {args.new_tokens} new tokens, float32, "
        f"{jax.default_backend()}, {os.cpu_count()} cores, load average {os.getloadavg()}",
        flush=True)
  timed(lambda: gen(base, 0))  # Compile the plain (and merged: same tree) sampler.
  tokens = jnp.asarray([prompts[0]])
  for rank in (int(r) for r in args.ranks.split(",")):
    lc = lora.LoRAConfig(rank=rank, alpha=2.0 * rank)
    adapters = lora.init_adapters(cfg, lc, jax.random.key(rank))
    # A trained-looking B (nonzero), so the update is real on both paths.
    adapters = jax.tree_util.tree_map_with_path(
        lambda path, x: (0.01 * jax.random.normal(jax.random.key(1), x.shape, x.dtype)
                         if path[-1].key == "lora_b" else x), adapters)
    merge = jax.jit(lambda b, a, lc=lc: lora.merge(b, a, lc))
    unmerged_params = with_adapters(base, adapters)

    # Correctness: the unmerged forward is the merged model's (float32 rounding apart).
    merged = merge(base, adapters)
    ref = transformer.forward(merged, tokens, cfg=cfg)[0]
    with unmerged_adapters(lc, cfg):
      got = jax.jit(lambda p, t: transformer.forward(p, t, cfg=cfg)[0])(unmerged_params, tokens)
      rollout_u = gen(unmerged_params, 7)  # Also compiles the unmerged sampler.
    rollout_m = gen(merged, 7)
    same = float(np.mean(np.asarray(rollout_u.tokens) == np.asarray(rollout_m.tokens)))
    print(f"rank {rank}: unmerged vs merged forward max |logit diff| "
          f"{float(jnp.abs(got - ref).max()):.2g}; same sampled tokens (same key) {same:.1%}",
          flush=True)
    del merged
    timed(lambda: merge(base, adapters))  # Compiled above; one more warm call.

    runs = {"merge": [], "merged": [], "unmerged": [], "base": []}
    for rep in range(args.reps):
      seed = 100 + rep
      runs["merge"].append(timed(lambda: merge(base, adapters)))
      runs["merged"].append(timed(lambda: gen(merge(base, adapters), seed)))
      with unmerged_adapters(lc, cfg):
        runs["unmerged"].append(timed(lambda: gen(unmerged_params, seed)))
      runs["base"].append(timed(lambda: gen(base, seed)))
      print(f"  rank {rank} rep {rep}: " + ", ".join(
          f"{k} {w:.2f} s ({c:.2f} CPU-s)" for k, (w, c) in
          ((k, v[-1]) for k, v in runs.items())), flush=True)
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    m, u, b = wall["merged"], wall["unmerged"], wall["base"]
    print(f"rank {rank}: merged {m:.2f} s ({n_tokens / m:.1f} tok/s; merge alone "
          f"{wall['merge'] * 1e3:.0f} ms), unmerged {u:.2f} s ({n_tokens / u:.1f} tok/s), base "
          f"{b:.2f} s ({n_tokens / b:.1f} tok/s); unmerged / merged: wall {u / m:.2f}, CPU "
          f"{cpu['unmerged'] / cpu['merged']:.2f}", flush=True)
  print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
  main()
