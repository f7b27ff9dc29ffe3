"""The experiment file that train_multiprocess_test.py runs through `r1jax train`.

A tiny GRPO run (no SFT, no eval: compiles are the cost) on a task whose reward varies
within every group, so advantages, gradients and updates are not zero. The reward also
appends this process's index to the file named by $R1JAX_TEST_SCORE_LOG, one line per
scored row, so the test can see which process graded how many rows.
"""

import dataclasses
import os
import sys
import threading

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from r1jax.data import tasks  # pylint: disable=g-import-not-at-top
from r1jax.grpo_config import GRPOConfig
from r1jax.run_config import Config, EvalConfig, SFTConfig
from r1jax.sharding import MeshConfig
from train_test import tiny_config

_LOCK = threading.Lock()  # Rewards are scored in a thread pool.


def _digit_share(response: str, example) -> float:
  """The share of digits in the response: differs between samples of one prompt."""
  del example
  path = os.environ.get("R1JAX_TEST_SCORE_LOG")
  if path:
    with _LOCK, open(path, "a") as f:
      f.write(f"{jax.process_index()}\n")
  return sum(c.isdigit() for c in response) / max(len(response), 1)


@tasks.register_task("test_digit_share")
def _task(seed: int = 0) -> tasks.Task:
  base = tasks.get_task("miniature", seed=seed)
  return dataclasses.replace(base, reward_fns={"digits": (_digit_share, 1.0)})


def get_config() -> Config:
  # Mesh (data 2, fsdp 2): on two processes of two devices, data spans the processes (the
  # gradient all-reduce crosses them) and fsdp splits the params inside each.
  return tiny_config(
      num_steps=3, task="test_digit_share", mesh=MeshConfig(data=2, fsdp=2), sft=SFTConfig(),
      eval=EvalConfig(), grpo=GRPOConfig(num_samples=4, kl_coef=0.01, loss_agg="token_mean"))
