"""Top-p sampling of one decode step: nucleus among top-k candidates vs a full vocabulary sort.

R1's evaluation samples at temperature 0.6 with top-p 0.95. Over SmolLM2's 49,152-token
vocabulary the straightforward nucleus sorts every row's logits at every decode step. r1jax's
`sampling.sample_token` looks for the nucleus among the 1,024 most likely tokens (lax.top_k)
and sorts only when some row's nucleus is wider. Both are timed here in the same run, on the
same logits: the baseline is the full-sort form, `_draw(key, truncate_logits(...))`, which
`sample_token` used before and still uses as its fallback. The logits are drawn to look like
a small model's (normal, scaled so that the 0.95 nucleus at T=0.6 holds tens of tokens), and
the printed nucleus sizes say how wide they were.

Run:
  python experiments/benchmarks/top_p_sampling.py [--rows 64] [--vocab 49152] [--reps 20]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from r1jax import sampling


def _time(fn, key, logits, reps: int) -> float:
  """Median seconds of one call, after a compile-and-warm call."""
  jax.block_until_ready(fn(key, logits))
  times = []
  for i in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.fold_in(key, i), logits))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", type=int, default=64, help="rows sampled per step (B)")
  parser.add_argument("--vocab", type=int, default=49152, help="vocabulary size (V)")
  parser.add_argument("--reps", type=int, default=20, help="timed calls of each form")
  parser.add_argument("--temperature", type=float, default=0.6)
  parser.add_argument("--top-p", type=float, default=0.95)
  parser.add_argument("--scale", type=float, default=3.0,
                      help="logits are normal * scale; larger is more peaked")
  args = parser.parse_args()
  kw = dict(temperature=args.temperature, top_p=args.top_p)
  logits = jax.random.normal(jax.random.key(0), (args.rows, args.vocab)) * args.scale
  sizes = np.asarray(jnp.isfinite(sampling.truncate_logits(logits, **kw)).sum(-1))
  draw = sampling._draw  # pylint: disable=protected-access  (the full-sort form's draw)
  baseline = jax.jit(lambda k, x: draw(k, sampling.truncate_logits(x, **kw)))
  candidates = jax.jit(lambda k, x: sampling.sample_token(k, x, **kw))
  key = jax.random.key(1)
  t_base = _time(baseline, key, logits, args.reps)
  t_new = _time(candidates, key, logits, args.reps)
  print(f"B={args.rows} V={args.vocab} T={args.temperature} top-p={args.top_p}: nucleus "
        f"{int(sizes.min())}-{int(sizes.max())} tokens (median {int(np.median(sizes))}); "
        f"candidates {sampling._TOP_P_CANDIDATES}")  # pylint: disable=protected-access
  print(f"full sort (baseline): {1e3 * t_base:.1f} ms/step")
  print(f"nucleus among candidates: {1e3 * t_new:.1f} ms/step")
  print(f"speed-up: {t_base / t_new:.1f}x")


if __name__ == "__main__":
  main()
