"""Counts XLA compilations of a whole small training run; run by compile_count_test.py.

Runs in its own process so that no other test has warmed jit caches. Prints a JSON object:
the compilations before the first rollout (set-up, stage 1), in each rollout call's span
(sampling, update, evaluation) and in total, by function name.
"""

import collections
import json
import os
import sys
import tempfile

os.environ["JAX_PLATFORMS"] = "cpu"
# Nor a warm disk cache: the suite's persistent compilation cache (tests/conftest.py) is
# left off here, so every program this run needs is compiled, and counted, in this process.
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from r1jax import rollout as rollout_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from r1jax import train  # pylint: disable=g-import-not-at-top,wrong-import-position
from r1jax.run_config import EvalConfig  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests.train_test import tiny_config  # pylint: disable=g-import-not-at-top,wrong-import-position

_COMPILE = "/jax/core/compile/backend_compile_duration"


def main() -> None:
  names = []
  jax.monitoring.register_event_duration_secs_listener(
      lambda event, duration, **kw: names.append(kw.get("fun_name")) if event == _COMPILE
      else None)
  marks = []  # Compilations so far at each rollout call (training and evaluation rollouts).
  collect = rollout_lib.collect

  def counted(*args, **kwargs):
    marks.append(len(names))
    return collect(*args, **kwargs)

  rollout_lib.collect = counted
  cfg = tiny_config(num_steps=6, eval=EvalConfig(every=2, num_examples=4, batch_size=4))
  with tempfile.TemporaryDirectory() as workdir:
    train.run(cfg, workdir)
  marks.append(len(names))
  print(json.dumps({
      "total": len(names),
      "by_name": collections.Counter(names),
      "per_rollout_call": [b - a for a, b in zip(marks, marks[1:])],
  }))


if __name__ == "__main__":
  main()
