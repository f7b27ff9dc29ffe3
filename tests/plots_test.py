"""r1jax.plots and `r1jax plot`: PNGs from metrics.jsonl, tolerant of missing metrics."""

import json
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


def test_plot_run_writes_accuracy_reward_and_length_pngs(tmp_path):
  _write_metrics(tmp_path, _full_run())
  paths = plots.plot_run(tmp_path)
  assert paths == [str(tmp_path / plots.ACCURACY_FILE), str(tmp_path / plots.LENGTH_FILE)]
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
  assert out == [str(tmp_path / plots.ACCURACY_FILE), str(tmp_path / plots.LENGTH_FILE)]
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
