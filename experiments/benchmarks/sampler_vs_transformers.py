"""r1jax's sampler vs transformers' `generate`: SmolLM2-135M-Instruct, float32, on CPU.

The work is a GRPO rollout: batch 16 as 1 prompt x 16 samples and as 16 distinct prompts,
each a 43-token chat prompt, 128 new tokens, temperature 1 with no truncation, and no early
stop (eos is ignored on both sides, so every row generates exactly 128 tokens). Both engines
run in the same process, one repetition of each in turn, so they share the machine's load;
the ratio is of medians. r1jax's compile time is reported separately (its first call minus
a steady call). CPU seconds per 1000 tokens are printed too: on a machine shared with other
jobs they move less than wall time (but OpenMP threads that spin while waiting for a core
inflate torch's).

Run:
  python experiments/benchmarks/sampler_vs_transformers.py [--reps 3] [--new-tokens 128]
      [--modes 1x16,16x1] [--threads 2] [--skip-hf]

`--threads N` pins the process to N cores (and torch to N threads) before either engine
starts: `--threads 1` is the comparison to make when the machine's cores are busy with other
work, where torch's spinning OpenMP threads otherwise collapse (see the figures below).

Needs torch and transformers (`pip install -e .[parity]`) and the SmolLM2 GGUF
(`r1jax fetch smollm2-135m`). The peer's speed moves with its versions: on the idle 2-core
development machine transformers decoded these 16 rows at 107-113 tokens/s on an earlier
torch and at 159-170 on torch 2.14.1 / transformers 5.25. Measured results are in the
README ("How a rollout is decoded").
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

PROMPT_TOKENS = 43


def chat_prompts(tok, n: int) -> list[list[int]]:
  """n distinct chat prompts of exactly PROMPT_TOKENS tokens (single-digit products)."""
  out = []
  for a in range(2, 10):
    for b in range(2, 10):
      ids = tok.apply_chat_template(
          [{"role": "user", "content": f"What is {a} times {b}? Think step by step."}],
          tokenize=True)
      if len(ids) == PROMPT_TOKENS:
        out.append(ids)
      if len(out) == n:
        return out
  raise RuntimeError(f"found only {len(out)} chat prompts of {PROMPT_TOKENS} tokens")


def load_hf(path: pathlib.Path):
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  model = transformers.AutoModelForCausalLM.from_pretrained(
      str(path.parent), gguf_file=path.name, dtype=torch.float32)
  return model.eval()


def hf_generate(model, rows: list[list[int]], new_tokens: int, seed: int) -> int:
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  ids = torch.tensor(rows, dtype=torch.long)
  with torch.inference_mode():
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                         temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, pad_token_id=2)
  return int(out.shape[0] * (out.shape[1] - ids.shape[1]))


def timed(fn):
  """Runs fn() -> tokens; returns (tokens, wall seconds, process CPU seconds)."""
  t0, c0 = time.perf_counter(), time.process_time()
  n = fn()
  return n, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--new-tokens", type=int, default=128)
  parser.add_argument("--modes", default="1x16,16x1", help="PxR pairs: prompts x samples")
  parser.add_argument("--threads", type=int, default=0,
                      help="pin the process to this many cores (default: all)")
  parser.add_argument("--skip-hf", action="store_true", help="time r1jax only")
  args = parser.parse_args()
  if args.threads:  # Before jax and torch start their thread pools.
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.threads]))

  import jax  # pylint: disable=g-import-not-at-top
  from r1jax import fetch, models, sampler  # pylint: disable=g-import-not-at-top
  from r1jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top

  path = pathlib.Path(fetch.resolve_model_path("smollm2-135m"))
  tok = load_tokenizer(path)
  cfg, params = models.load(path)
  hf = None if args.skip_hf else load_hf(path)
  if hf is not None:
    import torch  # pylint: disable=g-import-not-at-top
    if args.threads:
      torch.set_num_threads(args.threads)
    print(f"cores {len(os.sched_getaffinity(0))}, torch threads {torch.get_num_threads()}")
  sampling = sampler.SamplingConfig(temperature=1.0, max_new_tokens=args.new_tokens,
                                    eos_ids=())  # No early stop: fixed work on both sides.
  print(f"load average at start {os.getloadavg()}", flush=True)
  for mode in args.modes.split(","):
    p, r = (int(x) for x in mode.split("x"))
    prompts = chat_prompts(tok, p)
    rows = [x for x in prompts for _ in range(r)]

    def r1jax_run(seed):
      out = sampler.generate(params, prompts, cfg=cfg, sampling=sampling,
                             key=jax.random.key(seed), num_samples=r)
      return int(jax.device_get(out.lengths).sum())

    _, first, _ = timed(lambda: r1jax_run(0))
    ours, theirs = [], []
    for rep in range(args.reps):
      ours.append(timed(lambda: r1jax_run(rep + 1)))
      print(f"  {mode} r1jax run {rep}: {ours[-1][0] / ours[-1][1]:.1f} tok/s", file=sys.stderr,
            flush=True)
      if hf is not None:
        theirs.append(timed(lambda: hf_generate(hf, rows, args.new_tokens, rep)))
        print(f"  {mode} transformers run {rep}: {theirs[-1][0] / theirs[-1][1]:.1f} tok/s",
              file=sys.stderr, flush=True)
    rate = lambda runs: statistics.median(n / w for n, w, _ in runs)
    cpu_per_k = lambda runs: statistics.median(1000 * c / n for n, _, c in runs)
    steady = statistics.median(w for _, w, _ in ours)
    line = (f"{p} prompt(s) x {r} samples, {PROMPT_TOKENS}-token prompt, {args.new_tokens} new: "
            f"r1jax {rate(ours):.1f} tok/s ({cpu_per_k(ours):.1f} CPU-s / 1k tok; first call "
            f"{first:.1f} s, compile ~{first - steady:.1f} s)")
    if theirs:
      line += (f"; transformers {rate(theirs):.1f} tok/s ({cpu_per_k(theirs):.1f} CPU-s / 1k "
               f"tok); ratio {rate(ours) / rate(theirs):.2f}x")
    print(line, flush=True)
  print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
  main()
