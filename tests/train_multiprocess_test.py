"""Multi-host training on one machine: two processes under jax.distributed, and a dead peer.

Two local processes (2 fake CPU devices each, coordinator on 127.0.0.1) run `r1jax train` for
3 GRPO steps of a tiny config (tests/_multiprocess_experiment.py) in one shared workdir; the
same command in one process with 4 devices (the same (data 2, fsdp 2) mesh) is the reference.
Then one process of a resumed two-process run is SIGKILLed and its peer must exit with a clear
error in bounded time. Every run is its own subprocess: the fake device count and
jax.distributed must be set up before jax is imported.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from r1jax import checkpoint, train
from r1jax.experiment import load_experiment
from r1jax.metrics import read_metrics

_HERE = os.path.dirname(os.path.abspath(__file__))
_EXPERIMENT = os.path.join(_HERE, "_multiprocess_experiment.py")
_TIMING = ("time/", "tokens_per_s")
ATOL = 1e-5  # float32; only the all-reduce's path (in-process vs gloo over TCP) differs.
HEARTBEAT_S = 10  # The runs' --heartbeat-timeout.
EXIT_BOUND_S = 90  # A survivor must be gone this long after its peer's death (load included).


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(tmp_path, num_devices: int, score_log: str) -> dict[str, str]:
  env = dict(os.environ)
  env.update({
      "JAX_PLATFORMS": "cpu", "R1JAX_TEST_SCORE_LOG": score_log,
      "XLA_FLAGS": f"--xla_force_host_platform_device_count={num_devices}"
                   " --xla_backend_optimization_level=0"
                   " --xla_llvm_disable_expensive_passes=true",
      # The killed run reuses the two-process run's executables instead of compiling again.
      "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
      "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
      "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"})
  return env


def _train_cmd(workdir, *flags: str) -> list[str]:
  return [sys.executable, "-m", "r1jax.cli", "train", _EXPERIMENT, "--workdir", str(workdir),
          *flags]


def _launch_pair(tmp_path, workdir, tag: str, *flags: str) -> list[subprocess.Popen]:
  """Two processes of one run; stdout+stderr of process i go to tmp_path/<tag>.<i>.log."""
  port = _free_port()
  procs = []
  for i in range(2):
    log = open(tmp_path / f"{tag}.{i}.log", "w")
    procs.append(subprocess.Popen(
        _train_cmd(workdir, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                   "--process-id", str(i), "--heartbeat-timeout", str(HEARTBEAT_S), *flags),
        stdout=log, stderr=subprocess.STDOUT,
        env=_env(tmp_path, 2, str(tmp_path / f"{tag}.scored")), cwd=_HERE))
  return procs


def _final_params(workdir):
  cfg = load_experiment(_EXPERIMENT).get_config()
  model_cfg, params, _ = train.load_policy(cfg, workdir, jax.random.key(0))
  del model_cfg
  from r1jax import train_step
  tx, _ = train_step.make_optimizer(cfg.optim, cfg.num_steps)
  target = train._state(params, tx.init(params), params, jax.random.key(0))
  with checkpoint.Checkpointer(workdir, save_every=1, keep=2) as ckpt:
    return ckpt.restore_latest(target)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """The single-process reference and the two-process run, side by side (2 CPU cores)."""
  tmp = tmp_path_factory.mktemp("multiprocess")
  t0 = time.time()
  single_log = open(tmp / "single.log", "w")
  single = subprocess.Popen(_train_cmd(tmp / "single"), stdout=single_log,
                            stderr=subprocess.STDOUT, cwd=_HERE,
                            env=_env(tmp, 4, str(tmp / "single.scored")))
  pair = _launch_pair(tmp, tmp / "multi", "multi")
  codes = [p.wait(timeout=900) for p in [single] + pair]
  logs = {name: (tmp / f"{name}.log").read_text() for name in ("single", "multi.0", "multi.1")}
  assert codes == [0, 0, 0], {k: v[-3000:] for k, v in logs.items()}
  print(f"runs: {time.time() - t0:.0f} s", file=sys.stderr)
  return tmp, logs


def test_two_processes_match_one_process_on_four_devices(runs):
  tmp, _ = runs
  single, multi = read_metrics(tmp / "single"), read_metrics(tmp / "multi")
  assert [r["step"] for r in multi] == [1, 2, 3] == [r["step"] for r in single]
  assert single[0]["reward/std"] > 0 and single[0]["grad_norm"] > 0  # Real updates.
  for a, b in zip(single, multi):
    assert set(a) == set(b)
    for key, value in a.items():
      if not key.startswith(_TIMING):
        assert b[key] == pytest.approx(value, abs=ATOL, nan_ok=True), (a["step"], key)
  (s1, st1), (s2, st2) = _final_params(tmp / "single"), _final_params(tmp / "multi")
  assert s1 == s2 == 3
  for name in ("params", "opt_state", "ref_params"):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(y), np.asarray(x),
                                                         rtol=0, atol=ATOL), st1[name], st2[name])
  assert st1["meta"]["data_position"] == st2["meta"]["data_position"]


def test_each_process_grades_its_half_of_the_rows_and_only_process_0_logs(runs):
  tmp, logs = runs
  rows = 3 * 4 * 4  # steps x prompts x samples
  scored = (tmp / "multi.scored").read_text().split()
  assert sorted(scored) == ["0"] * (rows // 2) + ["1"] * (rows // 2)
  assert (tmp / "single.scored").read_text().split() == ["0"] * rows
  # Process 0 alone writes metrics (one line a step), samples, plots and the progress bar.
  assert len((tmp / "multi" / "metrics.jsonl").read_text().splitlines()) == 3
  assert "train:" in logs["multi.0"] and "train:" not in logs["multi.1"]
  assert (tmp / "multi" / "length.png").exists()
  info = json.loads((tmp / "multi" / "run_info.json").read_text())
  assert len(info["devices"]) == 4  # Process 0 saw the global device list.


@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_process_makes_its_peer_exit_with_a_clear_error(runs, victim):
  """Resumes the finished run for more steps, SIGKILLs one process, times its peer's exit."""
  tmp, _ = runs
  workdir = tmp / f"killed{victim}"
  subprocess.run(["cp", "-r", str(tmp / "multi"), str(workdir)], check=True)
  tag = f"kill{victim}"
  procs = _launch_pair(tmp, workdir, tag, "--set", "num_steps=50")
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 600
  while time.time() < deadline and all(p.poll() is None for p in procs):
    if any('"step": 4' in line for line in metrics.read_text().splitlines()):
      break  # Both processes are past restore, compile and a collective step.
    time.sleep(0.1)
  assert all(p.poll() is None for p in procs), (tmp / f"{tag}.0.log").read_text()[-3000:]
  os.kill(procs[victim].pid, signal.SIGKILL)
  killed_at = time.time()
  survivor = procs[1 - victim]
  try:
    code = survivor.wait(timeout=EXIT_BOUND_S)
  except subprocess.TimeoutExpired:
    survivor.kill()
    pytest.fail(f"process {1 - victim} still runs {EXIT_BOUND_S} s after its peer died")
  elapsed = time.time() - killed_at
  procs[victim].wait()
  log = (tmp / f"{tag}.{1 - victim}.log").read_text()
  print(f"survivor {1 - victim} exited with {code} after {elapsed:.1f} s", file=sys.stderr)
  assert code != 0
  # Either r1jax's message (a collective failed at once) or JAX's own (the coordination
  # service noticed the missing heartbeats first): both say a peer process died.
  assert ("most likely because another process of this run died" in log or
          "This most likely indicates that another task died" in log), log[-3000:]
