"""HumanEval through the task's reward and evaluation grading: canonical 1, empty 0, and speed.

Command (the data file is HumanEval's test.jsonl: 164 problems):

  python experiments/benchmarks/humaneval_task_grading.py PATH/TO/humaneval/test.jsonl

What it checks, on every problem, through `get_task("humaneval")` exactly as training
(`task.score`) and `r1jax eval` (`task.accuracy`, then `evaluate.summarize`) grade:
  * the canonical solution scores 1: in R1 style (the whole function in a ```python block
    inside <answer>) and in completion style (the body continuing the prompt);
  * the same function with an empty body (`pass`) scores 0;
  * a response without a code block scores 0 with reason "no_code", and an unparsable one 0
    with reason "syntax_error".
And how long grading takes: the 164 canonical responses on the task's thread pool
(max_workers=8) against one at a time (max_workers=1); each response is a fresh program
(the verdict cache is cleared between the two runs).

Measured on the shared 2-core CPU (2026-12-05): see the README's code tasks section.
"""

import argparse
import json
import sys
import time

import numpy as np

from r1jax import evaluate
from r1jax.data import code_grading
from r1jax.data import tasks as tasks_lib


def _r1(code: str) -> str:
  return f"<think>Here is the function.</think>\n<answer>\n```python\n{code}```\n</answer>"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("path", help="HumanEval test.jsonl")
  args = parser.parse_args(argv)
  rows = [json.loads(line) for line in open(args.path, encoding="utf-8") if line.strip()]
  task = tasks_lib.get_task("humaneval", path=args.path)
  completion = tasks_lib.get_task("humaneval", path=args.path, style="completion")
  examples = task.stream(shuffle=False, num_epochs=1).next_batch(len(rows))
  q = len(examples)
  cases = {
      "canonical, R1 style": (task, [_r1(r["prompt"] + r["canonical_solution"]) for r in rows]),
      "canonical, completion style": (completion, [r["canonical_solution"] for r in rows]),
      "empty body, R1 style": (task, [_r1(r["prompt"] + "    pass\n") for r in rows]),
      "empty body, completion style": (completion, ["    pass\n"] * q),
      "no code block": (task, ["<think>easy</think><answer>it returns the sum</answer>"] * q),
      "unparsable code": (task, [_r1(r["prompt"] + "    return (\n") for r in rows]),
  }
  ok = True
  for name, (t, responses) in cases.items():
    scores = t.score(responses, examples)
    acc = t.accuracy(responses, examples)
    metrics = evaluate.summarize({"strict": acc["strict"].reshape(q, 1)}, {})
    reasons = {r: int(acc[r].sum()) for r in ("no_code", "syntax_error")}
    print(f"{name:30s} reward accuracy {scores.per_term['accuracy'].sum():5.0f}/{q}  "
          f"eval pass@1 {100 * metrics['strict']['pass@1']:5.1f}%  reasons {reasons}")
    want = 1.0 if name.startswith("canonical") else 0.0
    ok &= bool(np.all(scores.per_term["accuracy"] == want) and np.all(acc["strict"] == want))
  responses = cases["canonical, R1 style"][1]
  for workers in (8, 1):
    code_grading._cache.clear()  # pylint: disable=protected-access
    start = time.perf_counter()
    task.score(responses, examples, max_workers=workers)
    print(f"grading {q} canonical responses, max_workers={workers}: "
          f"{time.perf_counter() - start:.1f} s")
  print("OK" if ok else "MISMATCH")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
