"""HumanEval through the code sandbox: correctness of the parent-side verdict, and its speed.

Usage:
  python experiments/benchmarks/sandbox_humaneval.py PATH/TO/humaneval/test.jsonl \
      [--threads 2] [--baseline-commit a59b388] [--repeats 2]

For the 164 problems it checks that every canonical solution passes as a `CheckTest`, that an
empty body (the prompt alone) and `return None` fail every problem, and counts the `check`
functions that reduce entirely to parent-side comparisons (the rest run their leftover
statements in a fresh child, `weak`). Then it times all 164 canonical checks on `--threads`
threads with the isolated, parent-judged sandbox and with the previous sandbox (one child per
problem, the harness judging `check(candidate)` itself, taken from git at
`--baseline-commit`), alternating `--repeats` times in the same process, and prints the
ratio of the medians.

Measured on the 2-core CI machine while other jobs loaded it (load average 8-10), --repeats 3:
new 10.78 / 9.25 / 8.96 s, old 6.72 / 6.93 / 6.22 s, 1.37x; 164/164 pass, 156 checks reduce
entirely (see README).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from r1jax.rewards import code as rcode

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_baseline(commit: str):
  """The sandbox module as of `commit` (code.py + code_harness.py), imported from a temp dir."""
  tmp = tempfile.mkdtemp(prefix="r1jax_old_sandbox_")
  for name in ("code.py", "code_harness.py"):
    text = subprocess.run(["git", "show", f"{commit}:r1jax/rewards/{name}"], cwd=_REPO,
                          check=True, capture_output=True, text=True).stdout
    with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
      f.write(text)
  spec = importlib.util.spec_from_file_location("r1jax_old_sandbox", os.path.join(tmp, "code.py"))
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses looks its module up there.
  spec.loader.exec_module(module)
  return module


def _timed(fn, rows, threads: int) -> float:
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    results = list(pool.map(fn, rows))
  wall = time.perf_counter() - start
  assert all(results), "a canonical solution failed while timing"
  return wall


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("path")
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--baseline-commit", default="a59b388")
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  with open(args.path, encoding="utf-8") as f:
    rows = [json.loads(line) for line in f if line.strip()]
  print(f"{len(rows)} problems; isolation: {rcode.sandbox_capabilities()}")

  def new(row, code=None):
    code = row["canonical_solution"] if code is None else code
    return rcode.run_program(code, [rcode.humaneval_test(row)], timeout_s=10.0)

  with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
    canonical = list(pool.map(new, rows))
    empty = list(pool.map(lambda r: new(r, ""), rows))
    none = list(pool.map(lambda r: new(r, "    return None\n"), rows))
  failed = [r["task_id"] for r, res in zip(rows, canonical) if not res.passed[0]]
  weak = [r["task_id"] for r, res in zip(rows, canonical) if res.weak[0]]
  print(f"canonical solutions passing: {len(rows) - len(failed)}/{len(rows)} {failed or ''}")
  print(f"empty body passing: {sum(r.passed[0] for r in empty)}; "
        f"`return None` passing: {sum(r.passed[0] for r in none)}")
  print(f"checks reduced entirely to parent-side comparisons: {len(rows) - len(weak)}/"
        f"{len(rows)}; with a weak residual: {weak}")

  old = _load_baseline(args.baseline_commit)

  def old_fn(row):
    test = row["test"] + f"\ncheck({row['entry_point']})\n"
    return old.run_tests(row["prompt"] + row["canonical_solution"], [test],
                         timeout_s=10.0) == 1.0

  def new_fn(row):
    return new(row).passed[0]

  old_s, new_s = [], []
  for _ in range(args.repeats):
    old_s.append(_timed(old_fn, rows, args.threads))
    new_s.append(_timed(new_fn, rows, args.threads))
  o, n = statistics.median(old_s), statistics.median(new_s)
  print(f"old sandbox ({args.baseline_commit}): {[round(t, 2) for t in old_s]} s; "
        f"new: {[round(t, 2) for t in new_s]} s; {args.threads} threads")
  print(f"ratio new/old (medians): {n / o:.2f}x")
  sys.exit(0 if not failed and not any(r.passed[0] for r in empty + none) else 1)


if __name__ == "__main__":
  main()
