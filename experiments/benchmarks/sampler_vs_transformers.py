"""r1jax's sampler vs transformers' `generate`: SmolLM2-135M-Instruct, float32, on CPU.

The work is a GRPO rollout: batch 16 as 1 prompt x 16 samples and as 16 distinct prompts,
each a 43-token chat prompt, 128 new tokens, temperature 1 with no truncation, and no early
stop (eos is ignored on both sides, so every row generates exactly 128 tokens). Both engines
run in the same process, one repetition of each in turn, so they share the machine's load;
the ratio is of medians. r1jax's compile time is reported separately (the first call).

Run:
  python experiments/benchmarks/sampler_vs_transformers.py [--reps 3] [--new-tokens 128]
      [--modes 1x16,16x1] [--skip-hf]

Needs torch and transformers (`pip install -e .[parity]`) and the SmolLM2 GGUF
(`r1jax fetch smollm2-135m`). Results on the 2-core development machine are in the module's
report in the issue tracker (issue 3); the figure to compare against is DESIGN.md's
107.5 tokens/s for transformers alone.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import time

import jax
import numpy as np

from r1jax import fetch, models, sampler
from r1jax.tokenizer import load_tokenizer

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


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--new-tokens", type=int, default=128)
  parser.add_argument("--modes", default="1x16,16x1", help="PxR pairs: prompts x samples")
  parser.add_argument("--skip-hf", action="store_true", help="time r1jax only")
  args = parser.parse_args()

  path = pathlib.Path(fetch.resolve_model_path("smollm2-135m"))
  tok = load_tokenizer(path)
  cfg, params = models.load(path)
  hf = None if args.skip_hf else load_hf(path)
  if hf is not None:
    import torch  # pylint: disable=g-import-not-at-top
    print(f"torch threads {torch.get_num_threads()}, jax devices {jax.devices()}")
  sampling = sampler.SamplingConfig(temperature=1.0, max_new_tokens=args.new_tokens,
                                    eos_ids=())  # No early stop: fixed work on both sides.
  print(f"load average at start {os.getloadavg()}")
  for mode in args.modes.split(","):
    p, r = (int(x) for x in mode.split("x"))
    prompts = chat_prompts(tok, p)
    rows = [x for x in prompts for _ in range(r)]

    def r1jax_run(seed):
      t0 = time.perf_counter()
      out = sampler.generate(params, prompts, cfg=cfg, sampling=sampling,
                             key=jax.random.key(seed), num_samples=r)
      n = int(jax.device_get(out.lengths).sum())
      return n, time.perf_counter() - t0

    n, first = r1jax_run(0)
    ours, theirs = [], []
    for rep in range(args.reps):
      n, dt = r1jax_run(rep + 1)
      ours.append(n / dt)
      if hf is not None:
        t0 = time.perf_counter()
        m = hf_generate(hf, rows, args.new_tokens, rep)
        theirs.append(m / (time.perf_counter() - t0))
    compile_s = first - n / statistics.median(ours)
    line = (f"{p} prompt(s) x {r} samples, {PROMPT_TOKENS}-token prompt, {args.new_tokens} new: "
            f"r1jax {statistics.median(ours):.1f} tok/s (runs {', '.join(f'{x:.1f}' for x in ours)}; "
            f"first call {first:.1f} s, of which compile ~{compile_s:.1f} s)")
    if theirs:
      hf_med = statistics.median(theirs)
      line += (f"; transformers {hf_med:.1f} tok/s (runs {', '.join(f'{x:.1f}' for x in theirs)})"
               f"; ratio {statistics.median(ours) / hf_med:.2f}x")
    print(line, flush=True)
  print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
  main()
