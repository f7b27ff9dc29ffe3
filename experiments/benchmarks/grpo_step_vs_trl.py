"""One GRPO step in r1jax vs TRL's GRPOTrainer: SmolLM2-135M-Instruct, float32, on CPU.

The work of one step, the same on both sides: 4 prompts (arithmetic word problems through the
chat template) x 4 samples at temperature 1, at most 64 new tokens (both stop at the model's
end-of-turn token), a rule reward (the answer's correctness), group advantages, and one
optimizer update over the 16 rows (num_iterations 1, no KL term, so neither side runs a
reference model). The update runs `--micro` rows at a time on both sides (gradient
accumulation: r1jax's `minibatch_size`, TRL's per_device_train_batch_size with
gradient_accumulation_steps = 16 / micro, generating once per optimizer step); on this CPU
r1jax's update is faster in 4-row micro-batches than with all 16 rows at once, and TRL's step
takes about the same time either way. r1jax runs each prompt once for
its 4 samples in the update (`Config.share_prompts`; `--no-share-prompts` runs every row
whole, as TRL does). Both run in the same process, one after the other, each for `--steps`
steps; the first `--warmup` steps (compilation, caches) are left out and the ratio is of the
median step times. r1jax's step time is its trainer's `time/step_s` (rollout, rewards,
advantages, update); TRL's is the time between its `on_step_begin` and `on_step_end`
callbacks (generation, rewards, advantages, update). Mean completion lengths are printed too,
since a side that samples longer answers does more work.

Run:
  python experiments/benchmarks/grpo_step_vs_trl.py [--steps 6] [--warmup 2] [--micro 4]
      [--no-share-prompts] [--skip-trl]

Needs torch, transformers and trl (only for benchmarks: `pip install -e .[parity]`) and the SmolLM2
GGUF (`r1jax fetch smollm2-135m`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

PROMPTS, SAMPLES, NEW_TOKENS, LR = 4, 4, 64, 1e-6


def _task():
  from r1jax.data import tasks  # pylint: disable=g-import-not-at-top
  return tasks.get_task("arithmetic", seed=0, digits=2, style="word", template="chat",
                        format_weight=0.0)


def r1jax_steps(steps: int, workdir: str, *, micro: int = PROMPTS * SAMPLES,
                share_prompts: bool = True) -> tuple[list[float], list[float]]:
  """Runs `steps` GRPO steps through `r1jax.train.run`; returns step seconds, mean lengths."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from r1jax import train  # pylint: disable=g-import-not-at-top
  from r1jax.grpo_config import GRPOConfig  # pylint: disable=g-import-not-at-top
  from r1jax.run_config import CheckpointConfig, Config, OptimConfig  # pylint: disable=g-import-not-at-top
  from r1jax.sampler import SamplingConfig  # pylint: disable=g-import-not-at-top
  cfg = Config(
      model_path="smollm2-135m", task="arithmetic",
      task_args={"seed": 0, "digits": 2, "style": "word", "template": "chat",
                 "format_weight": 0.0},
      chat=True, grpo=dataclasses.replace(GRPOConfig(), num_samples=SAMPLES, kl_coef=0.0),
      sampling=SamplingConfig(temperature=1.0, max_new_tokens=NEW_TOKENS),
      prompts_per_step=PROMPTS, num_steps=steps, optim=OptimConfig(lr=LR),
      minibatch_size=micro, share_prompts=share_prompts,
      checkpoint=CheckpointConfig(every=10_000, keep=1), tensorboard=False,
      samples_per_step=0)
  train.run(cfg, workdir)
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  rows = [r for r in rows if "time/step_s" in r]
  return [r["time/step_s"] for r in rows], [r["length/mean"] for r in rows]


def trl_steps(steps: int, outdir: str, *,
              micro: int = PROMPTS * SAMPLES) -> tuple[list[float], list[float]]:
  """Runs `steps` steps of TRL's GRPOTrainer on the same model, prompts and reward."""
  import datasets  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  import trl  # pylint: disable=g-import-not-at-top
  from r1jax import fetch, models  # pylint: disable=g-import-not-at-top

  path = pathlib.Path(fetch.resolve_model_path("smollm2-135m"))
  tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
  # TRL refuses a model loaded from a GGUF (transformers marks it quantized, though the weights
  # are dequantized to float32): write the same weights as an HF folder and load that.
  folder = os.path.join(outdir, "smollm2-hf")
  models.save_hf(*models.load(path), folder)
  tok.save_pretrained(folder)
  model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
  task = _task()
  examples = [task.source[i] for i in range(PROMPTS * steps)]
  system = task.template.messages(examples[0])[0]["content"]
  data = datasets.Dataset.from_list([
      {"prompt": [{"role": "system", "content": system},
                  {"role": "user", "content": ex["question"]}],
       "index": i} for i, ex in enumerate(examples)])

  def accuracy(completions, index, **_):
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return task.score(texts, [examples[i] for i in index], max_workers=None).total.tolist()

  times, starts = [], []

  class Timer(transformers.TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
      starts.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
      times.append(time.perf_counter() - starts[-1])

  args = trl.GRPOConfig(
      output_dir=outdir, per_device_train_batch_size=micro,
      gradient_accumulation_steps=PROMPTS * SAMPLES // micro,
      num_generations=SAMPLES, max_completion_length=NEW_TOKENS, num_iterations=1, beta=0.0,
      temperature=1.0, top_p=1.0, top_k=0, learning_rate=LR, max_steps=steps, use_cpu=True,
      bf16=False, fp16=False, logging_steps=1, report_to=[], save_strategy="no",
      dataloader_num_workers=0, seed=0, shuffle_dataset=False)
  trainer = trl.GRPOTrainer(model=model, reward_funcs=accuracy, args=args, train_dataset=data,
                            processing_class=tok, callbacks=[Timer()])
  trainer.train()
  lengths = [h["completions/mean_length"] for h in trainer.state.log_history
             if "completions/mean_length" in h]
  return times, lengths


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=6)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--micro", type=int, default=4,
                      help="rows per gradient micro-batch, both sides (divides 16)")
  parser.add_argument("--no-share-prompts", action="store_true")
  parser.add_argument("--skip-trl", action="store_true")
  args = parser.parse_args()
  if (PROMPTS * SAMPLES) % args.micro:
    sys.exit(f"--micro ({args.micro}) must divide the {PROMPTS * SAMPLES} rows of a step")
  if args.steps <= args.warmup:
    sys.exit(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
  print(f"load average at start {os.getloadavg()}", flush=True)
  with tempfile.TemporaryDirectory() as tmp:
    ours, our_len = r1jax_steps(args.steps, os.path.join(tmp, "r1jax"), micro=args.micro,
                                share_prompts=not args.no_share_prompts)
    line = (f"r1jax: median step {statistics.median(ours[args.warmup:]):.2f} s after warm-up "
            f"(first step {ours[0]:.1f} s with compilation), mean completion "
            f"{statistics.mean(our_len):.1f} tokens")
    print(line, flush=True)
    if args.skip_trl:
      return
    theirs, their_len = trl_steps(args.steps, os.path.join(tmp, "trl"), micro=args.micro)
  mine, other = statistics.median(ours[args.warmup:]), statistics.median(theirs[args.warmup:])
  print(f"TRL: median step {other:.2f} s after warm-up (first step {theirs[0]:.1f} s), mean "
        f"completion {statistics.mean(their_len):.1f} tokens")
  print(f"{PROMPTS} prompts x {SAMPLES} samples, <= {NEW_TOKENS} new tokens, micro-batches "
        f"of {args.micro} rows, shared prompts {not args.no_share_prompts}: r1jax step "
        f"{mine:.2f} s vs TRL {other:.2f} s: r1jax {other / mine:.2f}x faster")
  print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
  main()
