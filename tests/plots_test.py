"""r1jax.plots and `r1jax plot`: PNGs from metrics.jsonl, tolerant of missing metrics."""

import json
import pathlib
import sys

import pytest

from r1jax import cli, metrics, plots

pytest.importorskip("matplotlib")

_PNG = b"\x89PNG\r\n\x1a\n"


def _write_metrics(workdir, records):
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / "metrics.jsonl", "w") as f:
    for r in records:
      f.write(json.dumps(r) + "\n")


def _full_run(steps=12):
  records = []
  for s in range(1, steps + 1):
    r = {"step": s, "reward/mean": s / steps, "reward/accuracy": s / steps, "reward/std": 0.1,
         "accuracy/strict": s / steps, "accuracy/lenient": min(1.0, 1.2 * s / steps),
         "length/mean": 10.0 + s, "length/correct_mean": 12.0 + 2 * s,
         "length/wrong_mean": 9.0}
    if s % 4 == 0:
      r["eval/greedy_accuracy"] = s / steps
    records.append(r)
  records[3]["length/wrong_mean"] = "NaN"  # no wrong answers that step
  return records


_ALL = (plots.ACCURACY_FILE, plots.LENGTH_FILE, plots.SLIDE_FILE)


def test_plot_run_writes_accuracy_reward_length_and_slide_pngs(tmp_path):
  _write_metrics(tmp_path, _full_run())
  paths = plots.plot_run(tmp_path)
  assert paths == [str(tmp_path / name) for name in _ALL]
  assert metrics.plot_run(tmp_path) == paths  # the trainer's entry point
  for p in paths:
    with open(p, "rb") as f:
      assert f.read(8) == _PNG


def test_writing_plots_leaves_the_callers_backend_and_figures_alone(tmp_path):
  # A notebook's inline backend must survive a training run, which writes these PNGs.
  import matplotlib  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from r1jax import analysis  # pylint: disable=g-import-not-at-top
  before = matplotlib.get_backend()
  matplotlib.use("svg")
  try:
    open_figures = plt.get_fignums()
    _write_metrics(tmp_path, _full_run())
    plots.plot_run(tmp_path)
    lengths = analysis.r1_analysis(["a b", "wait"], [2, 1], [True, False], [True, True],
                                   max_new_tokens=4)
    assert len(analysis.plot(lengths, tmp_path)) == 2
    assert matplotlib.get_backend() == "svg"
    assert plt.get_fignums() == open_figures  # Nothing was left open in pyplot.
  finally:
    matplotlib.use(before)


def test_missing_keys_are_skipped_not_fatal(tmp_path):
  # Only lengths, and only some of them: one figure.
  _write_metrics(tmp_path, [{"step": 1, "length/mean": 5.0}, {"step": 2, "length/mean": 7.0}])
  assert plots.plot_run(tmp_path) == [str(tmp_path / plots.LENGTH_FILE)]
  # Reward without accuracy or lengths: the accuracy/reward figure alone.
  run = tmp_path / "reward_only"
  _write_metrics(run, [{"step": 1, "reward/mean": 0.1}, {"step": 2, "kl": 0.0}])
  assert plots.plot_run(run, out_dir=tmp_path / "out") == [
      str(tmp_path / "out" / plots.ACCURACY_FILE)]


def test_nothing_to_plot_and_no_metrics_file_are_clear_errors(tmp_path):
  _write_metrics(tmp_path, [{"step": 1, "kl": 0.0}])
  with pytest.raises(ValueError, match="no accuracy/\\*, reward/\\* or length/\\* metrics"):
    plots.plot_run(tmp_path)
  with pytest.raises(FileNotFoundError, match="No metrics file"):
    plots.plot_run(tmp_path / "missing")


def test_cli_plot_prints_the_written_paths(tmp_path, capsys):
  _write_metrics(tmp_path, _full_run(5))
  assert cli.main(["plot", str(tmp_path)]) == 0
  out = capsys.readouterr().out.split()
  assert out == [str(tmp_path / name) for name in _ALL]
  assert cli.main(["plot", str(tmp_path / "missing")]) == 2
  assert "No metrics file" in capsys.readouterr().err


def test_missing_matplotlib_is_an_import_error_with_the_install_command(tmp_path, monkeypatch,
                                                                        capsys):
  _write_metrics(tmp_path, _full_run(5))
  # A None entry makes `import` fail, as if matplotlib were not installed.
  for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"] + ["matplotlib"]:
    monkeypatch.setitem(sys.modules, name, None)
  with pytest.raises(ImportError, match="pip install matplotlib"):
    plots.plot_run(tmp_path)
  assert cli.main(["plot", str(tmp_path)]) == 2
  assert "pip install matplotlib" in capsys.readouterr().err


def _miniature_run():
  """Records shaped like the main job's: held-out evaluations at steps 0, 2 and 4."""
  records = []
  for s in range(5):
    r = {"step": s}
    if s:
      r.update({"accuracy/strict": 0.1 * s, "accuracy/worked": 0.2 * s, "think_frac": 0.2 * s,
                "reward/mean": 0.1 * s, "length/mean": 10.0 + 5 * s})
    if s % 2 == 0:
      for mode in ("greedy", "sampled"):
        r.update({f"eval/{mode}/strict": 0.2 * s, f"eval/{mode}/worked": 0.25 * s,
                  f"eval/{mode}/reward": 0.2 * s, f"eval/{mode}/length": 8.0 + 6 * s})
    records.append(r)
  return records


def _axes_of(monkeypatch):
  """Captures every Axes drawn by plot_run (the figures themselves go to PNG files)."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  saved = []
  original = Figure.savefig

  def savefig(fig, path, **kwargs):
    saved.append((path, fig.axes))
    return original(fig, path, **kwargs)
  monkeypatch.setattr(Figure, "savefig", savefig)
  return saved


def test_held_out_curves_are_drawn_beside_training_ones_with_measured_labels(tmp_path,
                                                                             monkeypatch):
  _write_metrics(tmp_path, _miniature_run())
  saved = _axes_of(monkeypatch)
  plots.plot_run(tmp_path)
  figures = {pathlib.Path(path).name: axes for path, axes in saved}
  accuracy, thinking, reward = figures[plots.ACCURACY_FILE]
  labels = [line.get_label() for line in accuracy.get_lines()]
  assert labels == ["training rollouts (strict)", "held-out, greedy (strict)",
                    "held-out, sampled (strict)"]
  assert accuracy.get_ylabel() == "share of answers correct"
  # The share that works the sum is not a share correct: its own panel and label.
  assert "think" in thinking.get_ylabel()
  assert {line.get_label() for line in thinking.get_lines()} == {
      "training rollouts (worked)", "held-out, greedy (worked)", "held-out, sampled (worked)",
      "training rollouts (</think> anywhere)"}
  greedy = accuracy.get_lines()[1]
  assert list(greedy.get_xdata()) == [0, 2, 4] and list(greedy.get_ydata()) == [0.0, 0.4, 0.8]
  (length,) = figures[plots.LENGTH_FILE]
  assert [line.get_label() for line in length.get_lines()] == [
      "training rollouts, all", "held-out, greedy", "held-out, sampled"]
  assert "tokens" in length.get_ylabel()
  # The slide: accuracy and length side by side, training and held-out, short labels.
  slide_acc, slide_len = figures[plots.SLIDE_FILE]
  for ax in (slide_acc, slide_len):
    assert [line.get_label() for line in ax.get_lines()] == [
        "training rollouts", "held-out, greedy", "held-out, sampled"]
  assert list(slide_len.get_lines()[1].get_ydata()) == [8.0, 20.0, 32.0]


def test_prose_answers_plot_lenient_accuracy_on_the_slide_and_a_behaviour_figure(
    tmp_path, monkeypatch):
  records = []
  for s in range(0, 5, 2):
    r = {"step": s}
    if s:
      r.update({"accuracy/strict": 0.0, "accuracy/lenient": 0.1 * s, "length/mean": 40.0})
    for mode in ("greedy", "sampled"):
      r.update({f"eval/{mode}/strict": 0.0, f"eval/{mode}/lenient": 0.2 * s,
                f"eval/{mode}/length": 30.0, f"eval/{mode}/working": 0.1 * s,
                f"eval/{mode}/reflective_per_1k": 1.0})
    records.append(r)
  _write_metrics(tmp_path, records)
  saved = _axes_of(monkeypatch)
  paths = plots.plot_run(tmp_path)
  assert paths[-1] == str(tmp_path / plots.BEHAVIOUR_FILE)
  figures = {pathlib.Path(path).name: axes for path, axes in saved}
  # Strict is 0 throughout (no tags), so the slide shows the lenient accuracy.
  slide_acc, _ = figures[plots.SLIDE_FILE]
  assert list(slide_acc.get_lines()[1].get_ydata()) == [0.0, 0.4, 0.8]
  working, reflective = figures[plots.BEHAVIOUR_FILE]
  assert [line.get_label() for line in working.get_lines()] == [
      "held-out, greedy (working)", "held-out, sampled (working)"]
  assert "1,000" in reflective.get_ylabel()
  # The slide's titles say which way the held-out greedy curves went.
  assert slide_acc.get_title() == "accuracy rises"
  assert figures[plots.SLIDE_FILE][1].get_title() == "response length"
