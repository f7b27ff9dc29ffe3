"""The command line as a new user runs it: train, then eval, sample and plot on the workdir.

Each command is the installed `r1jax` entry point in its own process, started from a folder
other than the repository, with the workdir given by a relative path (and once by an absolute
one), so path handling is tested where users meet it: orbax wants absolute checkpoint paths,
the workdir holds the tokenizer, and the shell's directory is not the package's.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _r1jax(cwd, *args, timeout=600) -> subprocess.CompletedProcess:
  """Runs `r1jax ARGS` in `cwd` as a shell would; asserts it succeeded."""
  exe = shutil.which("r1jax") or os.path.join(os.path.dirname(sys.executable), "r1jax")
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, env=env,
                        timeout=timeout, check=False)
  assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-4000:])
  return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A debug miniature trained from `home` into the relative workdir `runs/mini`."""
  home = tmp_path_factory.mktemp("home")
  shutil.copy(_ROOT / "experiments" / "miniature.py", home / "miniature.py")
  proc = _r1jax(home, "train", "miniature.py", "--debug", "--workdir", "runs/mini")
  return home, proc


def test_train_leaves_plots_event_files_and_ends_with_the_summary(trained):
  home, proc = trained
  workdir = home / "runs" / "mini"
  for name in ("accuracy_reward.png", "length.png", "accuracy_length.png", "metrics.jsonl"):
    assert (workdir / name).is_file(), name
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert "TensorBoard is not installed" not in proc.stderr
  last = proc.stdout.strip().splitlines()
  text = "\n".join(last)
  assert "greedy accuracy" in text and "sampled accuracy" in text and " -> " in text
  # The next commands name the workdir as the user typed it.
  assert "r1jax eval --model runs/mini" in text
  assert "r1jax plot runs/mini" in text
  assert last[-1] == "  r1jax plot runs/mini"
  # SFT reports through a bar and a few lines, not one line per step.
  assert proc.stderr.count("sft 1/") == 0


def test_eval_takes_the_relative_workdir(trained):
  home, _ = trained
  proc = _r1jax(home, "eval", "--model", "runs/mini", "--limit", "4", "--k", "1",
                "--temperature", "0", "--no-progress", "--bootstrap", "10")
  assert "pass@1" in proc.stdout
  assert "Checkpoint path should be absolute" not in proc.stderr
  assert "never awaited" not in proc.stderr


def test_sample_takes_the_relative_workdir_and_its_tokenizer(trained):
  home, _ = trained
  proc = _r1jax(home, "sample", "--model", "runs/mini", "--prompt", "Q:1234+5678=",
                "--temperature", "0", "--max-new-tokens", "8", "--no-progress")
  # The workdir's 20-symbol tokenizer decodes the completion: only its symbols come back.
  allowed = set("0123456789+=QA:|<>/thinkeospad")
  assert proc.stdout.strip() and set(proc.stdout.strip()) <= allowed, proc.stdout


def test_plot_takes_relative_and_absolute_workdirs(trained):
  home, _ = trained
  workdir = home / "runs" / "mini"
  for png in workdir.glob("*.png"):
    png.unlink()
  proc = _r1jax(home, "plot", "runs/mini")
  assert [pathlib.Path(p).name for p in proc.stdout.split()] == [
      "accuracy_reward.png", "length.png", "accuracy_length.png"]
  assert (workdir / "accuracy_length.png").is_file()
  proc = _r1jax(home.parent, "plot", str(workdir))
  assert pathlib.Path(proc.stdout.split()[0]).parent == workdir
