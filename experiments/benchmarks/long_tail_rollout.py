"""A heavy-tailed rollout: continuous batching and filled-cache attention vs static batches.

Rollout lengths are heavy-tailed (most answers are short, a few run long), so a static batch
spends most of its decode steps on a few rows while the others wait, and every step attends
over the whole cache budget. This benchmark decodes 64 rows of SmolLM2-135M-Instruct
(float32, CPU) whose lengths follow a log-normal: each row is its own chat prompt with a
per-prompt token budget drawn from the log-normal (eos ignored), so every mode generates the
same number of tokens. With `--slots` S rows decoding at once (what fits in memory), it times,
in the same process, one after another:

  static-whole   the rows in static batches of S (each runs until its longest row ends),
                 attention over the whole cache: the baseline, r1jax's sampler before
                 continuous batching;
  static-filled  the same batches, attention over the filled part of the cache;
  continuous     one call, S slots, a finished row's slot taking the next prompt at once,
                 attention over the filled part, the last S / 4 rows finishing in a batch of
                 S / 4 slots (`SamplingConfig.tail_slots`);
  continuous-wide  the same, every step at S slots (for reference: what the narrow tail gives);
  all-at-once    all 64 rows in one static batch (filled part), for reference: on a CPU a
                 wider batch costs more per step, so it is not free as on an accelerator;

The continuous and all-at-once rows are the same tokens (each row draws from its own key;
the script checks it).

and prints useful tokens/s (tokens of the rows' own lengths, not padding steps) and each
mode's ratio to static-whole.

Run:
  python experiments/benchmarks/long_tail_rollout.py [--rows 64] [--slots 16]
      [--new-tokens 256] [--median 24] [--sigma 1.0] [--reps 1] [--prompt-multiple 64]
      [--shared-prefix-multiple 8]

`--prompt-multiple` pads the 43-token prompts to a multiple of it (the sampler's default,
64, pads them to 64; 16 pads them to 48), in every mode alike. `--shared-prefix-multiple`
sets how the prompts' common first tokens (the chat template's system turn, 27 tokens) are
prefilled once (r1jax/prefill.py; default 8: 24 of them; 0 = each prompt prefilled whole), in
every mode alike.

Needs the SmolLM2 GGUF (`r1jax fetch smollm2-135m`). Figures measured are in the README
("How a rollout is decoded").
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from sampler_vs_transformers import chat_prompts  # pylint: disable=g-import-not-at-top,wrong-import-position


def lognormal_budgets(rows: int, new_tokens: int, median: float, sigma: float,
                      seed: int) -> list[int]:
  """Per-row lengths from a log-normal, clipped to [4, new_tokens]."""
  draws = np.random.default_rng(seed).lognormal(np.log(median), sigma, rows)
  return [int(x) for x in np.clip(np.round(draws), 4, new_tokens)]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", type=int, default=64)
  parser.add_argument("--slots", type=int, default=16)
  parser.add_argument("--new-tokens", type=int, default=256)
  parser.add_argument("--median", type=float, default=24.0)
  parser.add_argument("--sigma", type=float, default=1.0)
  parser.add_argument("--reps", type=int, default=1)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--prompt-multiple", type=int, default=None,
                      help="pad prompts to a multiple of this (default: the sampler's)")
  parser.add_argument("--shared-prefix-multiple", type=int, default=None,
                      help="prefill the prompts' shared prefix rounded to this (0 = off)")
  args = parser.parse_args()

  import jax  # pylint: disable=g-import-not-at-top
  from r1jax import fetch, models, sampler  # pylint: disable=g-import-not-at-top
  from r1jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top

  path = pathlib.Path(fetch.resolve_model_path("smollm2-135m"))
  tok = load_tokenizer(path)
  cfg, params = models.load(path)
  prompts = chat_prompts(tok, args.rows)
  budgets = lognormal_budgets(args.rows, args.new_tokens, args.median, args.sigma, args.seed)
  useful = sum(budgets)
  print(f"{args.rows} rows, budget {args.new_tokens}: lengths median "
        f"{statistics.median(budgets):.0f}, mean {useful / args.rows:.1f}, max {max(budgets)} "
        f"(log-normal, median {args.median}, sigma {args.sigma}); {useful} useful tokens")
  base = sampler.SamplingConfig(temperature=1.0, max_new_tokens=args.new_tokens)
  if args.prompt_multiple:
    base = dataclasses.replace(base, prompt_multiple=args.prompt_multiple)
  if args.shared_prefix_multiple is not None:
    base = dataclasses.replace(base, shared_prefix_multiple=args.shared_prefix_multiple)
  s = args.slots
  modes = {  # name: (sampling, prompts per call)
      "static-whole": (dataclasses.replace(base, cache_blocks=1), s),
      "static-filled": (base, s),
      "continuous": (dataclasses.replace(base, max_rows=s), args.rows),
      "continuous-wide": (dataclasses.replace(base, max_rows=s, tail_slots=s), args.rows),
      "all-at-once": (base, args.rows),
  }

  def run(mode, seed):
    sc, per_call = mode
    outs = [sampler.generate(params, prompts[i:i + per_call], cfg=cfg, sampling=sc,
                             key=jax.random.fold_in(jax.random.key(seed), i),
                             budgets=budgets[i:i + per_call])
            for i in range(0, args.rows, per_call)]
    return np.concatenate([np.asarray(jax.block_until_ready(o).tokens) for o in outs])

  print(f"load average at start {os.getloadavg()}", flush=True)
  times = {name: [] for name in modes}
  rows = {}
  for name, mode in modes.items():  # Compile (and check) each mode once.
    t0 = time.perf_counter()
    rows[name] = run(mode, 0)
    print(f"{name}: first call (compile + run) {time.perf_counter() - t0:.1f} s", flush=True)
  print("continuous == all-at-once, row for row: "
        f"{np.array_equal(rows['continuous'], rows['all-at-once'])}; continuous-wide == "
        f"all-at-once: {np.array_equal(rows['continuous-wide'], rows['all-at-once'])}")
  for rep in range(args.reps):
    for name, mode in modes.items():
      t0, c0 = time.perf_counter(), time.process_time()
      run(mode, rep + 1)
      times[name].append((time.perf_counter() - t0, time.process_time() - c0))
  print(f"load average at end {os.getloadavg()}")
  base_wall = statistics.median(t for t, _ in times["static-whole"])
  base_cpu = statistics.median(c for _, c in times["static-whole"])
  for name in modes:
    wall = statistics.median(t for t, _ in times[name])
    cpu = statistics.median(c for _, c in times[name])
    print(f"{name:15s} {useful / wall:7.1f} useful tokens/s ({wall:6.1f} s wall, {cpu:6.1f} s "
          f"cpu)  x{base_wall / wall:.2f} wall, x{base_cpu / cpu:.2f} cpu vs static-whole")


if __name__ == "__main__":
  main()
