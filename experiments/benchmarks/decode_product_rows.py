"""A decode step's weight products at 1 to 64 rows: how fast each row count reads the weights.

The sampler's decode step multiplies each layer's weights by the live rows' activations. On a
CPU such a product at few rows should be bound by reading the weights, so a step's cost should
barely grow with the rows. This measures that: 30 chained products [rows, D] x [D, F] with
SmolLM2-135M's D = 576, F = 3,072 (its MLP's gate, one 7 MB float32 weight a layer), in the
sampler's CPU layout (the weight held [F, D], the dot's left operand: r1jax/decode_layout.py).
The baseline is the same chain at one row, measured in the same run. Beside it, the
"[out, rows]" form (`transformer.out_major_product`): the dot's [F, rows] result held by an
optimization barrier (rows padded to 16), which XLA:CPU otherwise folds into x @ W.T
(`transformer.folded_product`, the chain's default). Padded so, both forms give a row the same
bits, and the sampler takes the [out, rows] form where this measures it faster
(`transformer.OUT_MAJOR_ROWS`, 3 to 48 rows) and the folded one elsewhere. With --torch,
torch's x @ W.T on the same arrays is timed too (only here: r1jax never imports torch), and
numpy's.

Run:
  python experiments/benchmarks/decode_product_rows.py [--rows 1,2,4,8,16,32,64] [--reps 20]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from r1jax.models import transformer

_LAYERS, _D, _F = 30, 576, 3072


def _chain(weights, x, out_major=False):
  """x [R, D] through each weight [F, D] in turn (the products depend on each other)."""
  product = transformer.out_major_product if out_major else transformer.folded_product
  acc = jnp.zeros((x.shape[0], _F), x.dtype)
  for w in weights:
    y = product(w, x)  # [R, F]
    acc = acc + y
    x = x + y[:, :_D] * 1e-3
  return acc


def _median(fn, reps: int) -> float:
  fn()
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", default="1,2,4,8,16,32,64")
  parser.add_argument("--reps", type=int, default=20)
  parser.add_argument("--torch", action="store_true", help="also time torch and numpy")
  args = parser.parse_args()
  rows = [int(r) for r in args.rows.split(",")]
  rng = np.random.default_rng(0)
  host = [rng.standard_normal((_F, _D), dtype=np.float32) for _ in range(_LAYERS)]
  weights = [jnp.asarray(w) for w in host]
  gb = _LAYERS * _F * _D * 4 / 1e9
  chain = jax.jit(_chain)
  out_major = jax.jit(lambda w, x: _chain(w, x, out_major=True))
  print(f"{_LAYERS} products [rows, {_D}] x [{_D}, {_F}], {gb * 1e3:.0f} MB of float32 "
        f"weights, {jax.devices()[0].device_kind}")
  base = None
  for r in rows:
    x = jnp.asarray(rng.standard_normal((r, _D), dtype=np.float32))
    t = _median(lambda: jax.block_until_ready(chain(weights, x)), args.reps)
    t_out = _median(lambda: jax.block_until_ready(out_major(weights, x)), args.reps)
    base = base or t / r  # Seconds a row at the first row count (1 by default).
    print(f"  {r:3d} rows: {t * 1e3:7.2f} ms  {gb / t:5.1f} GB/s  "
          f"{2 * r * gb / 4 / t:6.0f} GFLOP/s  x{base * r / t:5.2f} rows/s vs {rows[0]} row(s);"
          f"  [out, rows] {gb / t_out:5.1f} GB/s (x{t / t_out:4.2f} the folded form's speed)")
  if args.torch:
    import torch  # pylint: disable=g-import-not-at-top
    x = rng.standard_normal((16, _D), dtype=np.float32)
    tw, tx = [torch.from_numpy(w) for w in host], torch.from_numpy(x)
    t_torch = _median(lambda: [tx @ w.T for w in tw], args.reps)
    t_numpy = _median(lambda: [x @ w.T for w in host], args.reps)
    x16 = jnp.asarray(x)
    t_jax = _median(lambda: jax.block_until_ready(chain(weights, x16)), args.reps)
    print(f"16 rows: r1jax {gb / t_jax:.1f} GB/s, torch {gb / t_torch:.1f} GB/s "
          f"({torch.get_num_threads()} threads), numpy {gb / t_numpy:.1f} GB/s")


if __name__ == "__main__":
  main()
