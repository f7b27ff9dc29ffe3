"""The end-of-run summary: held-out before -> after, files, next commands, from the workdir."""

import json

import pytest

from r1jax import run_summary


def _workdir(tmp_path, with_evals=True):
  wd = tmp_path / "runs" / "mini"
  wd.mkdir(parents=True)
  records = []
  for step in range(0, 31):
    r = {"step": step}
    if step:
      r["reward/mean"] = step / 30
    if with_evals and step % 15 == 0:
      frac = step / 30
      r.update({"eval/greedy/strict": 0.004 + 0.98 * frac, "eval/sampled/strict": 0.07 + 0.6 * frac,
                "eval/greedy/length": 8.0 + 25 * frac, "eval/sampled/length": 13.5 + 18 * frac,
                "eval/greedy/worked": frac, "eval/sampled/worked": 0.22 + 0.7 * frac})
    records.append(r)
  (wd / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  (wd / "config.json").write_text(json.dumps({"chat": False, "eval": {"num_examples": 256}}))
  (wd / "samples.jsonl").write_text(json.dumps({"step": 1, "prompt": "Q:1234+5678=",
                                                "completion": "A:06912"}) + "\n")
  (wd / "accuracy_reward.png").write_bytes(b"")
  (wd / "tensorboard").mkdir()
  return wd


def test_summary_states_held_out_before_and_after_and_the_next_commands(tmp_path, monkeypatch):
  _workdir(tmp_path)
  monkeypatch.chdir(tmp_path)
  text = run_summary.summarize("runs/mini", wall_s=205.4)
  lines = text.splitlines()
  assert lines[0] == "finished in 3 min 25 s: 30 RL steps in runs/mini"
  assert lines[1] == "256 held-out questions, before RL (step 0) -> after (step 30):"
  assert "  greedy accuracy            0.4% -> 98.4%" in lines
  assert "  sampled accuracy           7.0% -> 67.0%" in lines
  assert "  greedy length              8.0 tokens -> 33.0 tokens" in lines
  assert "  sampled answers that think 22.0% -> 92.0%" in lines
  assert "plots: runs/mini/accuracy_reward.png" in lines
  assert "metrics: runs/mini/metrics.jsonl" in lines
  assert "  tensorboard --logdir runs/mini/tensorboard" in lines
  assert lines[-4:] == ["next:", "  r1jax eval --model runs/mini --limit 256 --k 1 --temperature 0",
                        "  r1jax sample --model runs/mini --prompt Q:1234+5678= --temperature 0",
                        "  r1jax plot runs/mini"]


def test_a_run_without_evaluations_says_so_and_paths_are_quoted(tmp_path):
  wd = _workdir(tmp_path, with_evals=False)
  spaced = tmp_path / "my runs"
  wd.rename(spaced)
  text = run_summary.summarize(spaced)
  assert text.splitlines()[0].startswith("finished: 30 RL steps")
  assert "no held-out evaluation" in text
  assert f"r1jax plot '{spaced}'" in text


def test_no_metrics_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="No metrics file"):
    run_summary.summarize(tmp_path)


@pytest.mark.parametrize("seconds, text", [(42.4, "42 s"), (60, "1 min 0 s"), (254, "4 min 14 s")])
def test_format_duration(seconds, text):
  assert run_summary.format_duration(seconds) == text


def test_stage_one_is_reported_when_the_trainer_recorded_it(tmp_path):
  wd = _workdir(tmp_path)
  records = (wd / "metrics.jsonl").read_text().splitlines()
  first = json.loads(records[0])
  first.update({"sft/steps": 325, "sft/heldout_accuracy": 0.875, "sft/loss": 0.2})
  (wd / "metrics.jsonl").write_text("\n".join([json.dumps(first)] + records[1:]) + "\n")
  assert run_summary.summarize(wd).splitlines()[1] == (
      "stage 1 (SFT): 325 steps, held-out criterion 87.5%")
  assert "stage 1" not in run_summary.summarize(_workdir(tmp_path / "other"))


def test_prose_answers_report_lenient_accuracy_and_the_working_share(tmp_path):
  wd = tmp_path / "words"
  wd.mkdir()
  records = [{"step": s, "eval/greedy/strict": 0.0, "eval/greedy/lenient": 0.35 + 0.05 * s,
              "eval/sampled/strict": 0.0, "eval/sampled/lenient": 0.15 + 0.06 * s,
              "eval/greedy/working": 0.875 + s / 100} for s in (0, 10)]
  (wd / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  lines = run_summary.summarize(wd).splitlines()
  # Strict is 0 in every evaluation (no <answer> tags): the lenient grades are the result.
  assert "  greedy accuracy (lenient)  35.0% -> 85.0%" in lines
  assert "  sampled accuracy (lenient) 15.0% -> 75.0%" in lines
  assert "  greedy answers that work   87.5% -> 97.5%" in lines
