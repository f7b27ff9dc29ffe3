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


# What `r1jax plot` writes for a miniature run: accuracy and reward, length, the slide of both,
# and the held-out working / reflective-word rates.
PLOTS = ["accuracy_reward.png", "length.png", "accuracy_length.png", "behaviour.png"]


def test_train_leaves_plots_event_files_and_ends_with_the_summary(trained):
  home, proc = trained
  workdir = home / "runs" / "mini"
  for name in PLOTS + ["metrics.jsonl"]:
    assert (workdir / name).is_file(), name
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert "tensorboardX is not installed" not in proc.stderr
  last = proc.stdout.strip().splitlines()
  text = "\n".join(last)
  assert "greedy accuracy" in text and "sampled accuracy" in text and " -> " in text
  # The next commands name the workdir as the user typed it.
  assert "r1jax eval --model runs/mini" in text
  assert "r1jax plot runs/mini" in text
  assert last[-1] == "  r1jax plot runs/mini"
  # SFT reports through a bar and a few lines, not one line per step.
  assert proc.stderr.count("sft 1/") == 0


def _next_commands(proc) -> list[list[str]]:
  """The `r1jax ...` lines the summary says to run next, as argument lists."""
  import shlex  # pylint: disable=g-import-not-at-top
  lines = proc.stdout.splitlines()
  start = lines.index("next:")
  return [shlex.split(line)[1:] for line in lines[start + 1:] if line.strip()]


def test_the_printed_next_commands_run_as_printed_from_the_same_folder(trained):
  home, proc = trained
  commands = _next_commands(proc)
  assert [c[0] for c in commands] == ["eval", "sample", "plot"]
  outputs = {c[0]: _r1jax(home, *c) for c in commands}
  assert "pass@1" in outputs["eval"].stdout
  assert "Checkpoint path should be absolute" not in outputs["eval"].stderr
  assert "never awaited" not in outputs["eval"].stderr
  # sample: the workdir's 20-symbol tokenizer decodes the completion, and its budget is the
  # run's (the model's context is 64 tokens; the command's own default of 256 would not fit).
  text = outputs["sample"].stdout.strip()
  assert text and set(text) <= set("0123456789+=QA:|<>/thinkeospad"), text
  assert "up to 40 tokens" in outputs["sample"].stderr
  assert [pathlib.Path(p).name for p in outputs["plot"].stdout.split()] == PLOTS


def test_eval_and_sample_take_the_relative_workdir_with_flags(trained):
  home, _ = trained
  proc = _r1jax(home, "eval", "--model", "runs/mini", "--limit", "4", "--k", "1",
                "--temperature", "0", "--no-progress", "--bootstrap", "10")
  assert "pass@1" in proc.stdout
  proc = _r1jax(home, "sample", "--model", "runs/mini", "--prompt", "Q:1234+5678=",
                "--temperature", "0", "--max-new-tokens", "8", "--no-progress")
  assert "up to 8 tokens" in proc.stderr


def test_plot_takes_relative_and_absolute_workdirs(trained):
  home, _ = trained
  workdir = home / "runs" / "mini"
  for png in workdir.glob("*.png"):
    png.unlink()
  proc = _r1jax(home, "plot", "runs/mini")
  assert [pathlib.Path(p).name for p in proc.stdout.split()] == PLOTS
  assert (workdir / "accuracy_length.png").is_file()
  proc = _r1jax(home.parent, "plot", str(workdir))
  assert pathlib.Path(proc.stdout.split()[0]).parent == workdir
