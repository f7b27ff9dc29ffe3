"""Tests of r1jax.evaluate, r1jax.eval_run and r1jax.analysis: the metrics, and runs end to end.

The end-to-end tests use a tiny random model on the `miniature` task with its tokenizer written
into tmp (no data files, no downloads) and share one sampling shape so the sampler compiles once.
"""

from __future__ import annotations

import dataclasses
import fractions
import json
import math
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from r1jax import analysis
from r1jax import cli
from r1jax import eval_run
from r1jax import evaluate as ev
from r1jax import sampler as sampler_lib
from r1jax.data import miniature
from r1jax.data.tasks import get_task
from r1jax.models import ModelConfig, transformer
from r1jax.sampler import SamplingConfig
from r1jax.tokenizer import load_tokenizer

# The tiny model used end to end: V covers the 20-symbol miniature vocabulary.
_CFG = ModelConfig(vocab_size=32)
_K, _BATCH, _NEW = 2, 4, 8  # One compiled sampler shape for every end-to-end test.


def _closed_form(n: int, c: int, k: int) -> float:
  """1 - C(n-c, k) / C(n, k), exactly (math.comb is 0 when n-c < k)."""
  return float(1 - fractions.Fraction(math.comb(n - c, k), math.comb(n, k)))


# --- pass@k ---------------------------------------------------------------------------------

def test_pass_at_k_equals_the_closed_form_on_hand_cases():
  assert ev.pass_at_k(5, 2, 2) == pytest.approx(0.7, abs=1e-12)  # 1 - 3/10
  assert ev.pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=1e-12)  # pass@1 = c/n
  assert ev.pass_at_k(100, 1, 50) == pytest.approx(0.5, abs=1e-12)  # 1 - C(99,50)/C(100,50)
  assert ev.pass_at_k(4, 0, 2) == 0.0
  assert ev.pass_at_k(4, 4, 4) == 1.0


def test_pass_at_k_is_one_when_fewer_than_k_samples_are_wrong():
  assert ev.pass_at_k(4, 3, 2) == 1.0  # n - c = 1 < k
  assert ev.pass_at_k(16, 10, 7) == 1.0  # n - c = 6 < k
  assert ev.pass_at_k(16, 10, 6) < 1.0  # n - c = 6 = k: one all-wrong subset


def test_pass_at_k_matches_exact_binomials_over_a_grid_and_at_large_n():
  for n in range(1, 13):
    for c in range(n + 1):
      for k in range(1, n + 1):
        assert ev.pass_at_k(n, c, k) == pytest.approx(_closed_form(n, c, k), abs=1e-12)
  # C(2000, 300) overflows a float; the product form does not.
  assert ev.pass_at_k(2000, 7, 300) == pytest.approx(_closed_form(2000, 7, 300), abs=1e-12)


@pytest.mark.parametrize("n,c,k", [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5), (0, 0, 1),
                                   (4.0, 2, 1), (True, 1, 1)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
  with pytest.raises(ValueError, match="pass_at_k"):
    ev.pass_at_k(n, c, k)


# --- cons@k ---------------------------------------------------------------------------------

def test_majority_vote_groups_equivalent_answers():
  # 1/2, 0.5 and \frac{1}{2} are one answer with three votes; 3 has two.
  answers = ["3", "1/2", "0.5", "3", "\\frac{1}{2}"]
  assert ev.majority_vote(answers) == (1, 3)


def test_majority_vote_breaks_ties_by_first_appearance_and_is_deterministic():
  assert ev.majority_vote(["3", "4", "4", "3"]) == (0, 2)
  assert ev.majority_vote(["4", "3", "3", "4"]) == (0, 2)
  assert ev.majority_vote(["5", "4", "3"]) == (0, 1)
  results = {ev.majority_vote(["7", "8", "8", "7", None]) for _ in range(20)}
  assert results == {(0, 2)}


def test_majority_vote_abstentions_do_not_vote():
  assert ev.majority_vote([None, None, "7"]) == (2, 1)
  assert ev.majority_vote([None, None]) == (None, 0)


# --- bootstrap ------------------------------------------------------------------------------

def test_bootstrap_interval_is_reproducible_by_seed():
  # Continuous values: with 0/1 values the quantiles fall on multiples of 1/Q for any seed.
  values = np.random.default_rng(1).random(30)
  a = ev.bootstrap_ci(values, seed=3)
  assert a == ev.bootstrap_ci(values, seed=3)
  assert a != ev.bootstrap_ci(values, seed=4)
  assert a[0] < values.mean() < a[1]


def test_bootstrap_interval_of_a_constant_is_that_constant_and_widens_with_confidence():
  assert ev.bootstrap_ci(np.ones(10)) == (1.0, 1.0)
  values = np.random.default_rng(2).random(50)
  lo90, hi90 = ev.bootstrap_ci(values, confidence=0.9)
  lo99, hi99 = ev.bootstrap_ci(values, confidence=0.99)
  assert lo99 < lo90 < hi90 < hi99


def test_summarize_on_a_hand_made_correctness_matrix():
  correct = {"strict": np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])}
  m = ev.summarize(correct, {"strict": np.array([0.0, 1.0, 0.0])})["strict"]
  assert m["pass@1"] == pytest.approx((0.25 + 1 + 0) / 3)
  assert m["pass@2"] == pytest.approx((0.5 + 1 + 0) / 3)  # 1 - C(3,2)/C(4,2) = 0.5
  assert m["pass@4"] == pytest.approx(2 / 3)
  assert m["cons@4"] == pytest.approx(1 / 3)
  assert set(m) == {"pass@1", "pass@1_ci", "pass@2", "pass@2_ci", "pass@4", "pass@4_ci",
                    "cons@4", "cons@4_ci"}


def test_only_full_credit_counts_as_correct_and_partial_credit_has_its_own_key():
  scores = np.array([[0.1, 1.0], [0.1, 0.1]])  # TinyZero's format score 0.1 is not correct.
  np.testing.assert_array_equal(ev.full_credit(scores), [[0, 1], [0, 0]])
  m = ev.summarize({"accuracy": scores}, {})["accuracy"]
  assert m["pass@1"] == pytest.approx(0.25) and m["pass@2"] == pytest.approx(0.5)
  records = [{"samples": [{"grades": {"accuracy": float(g)}, "scores": {"accuracy": float(x)},
                           "completion": "x", "length": 1, "finished": True}
                          for g, x in zip(ev.full_credit(row), row)], "cons": {}}
             for row in scores]
  metrics, _, _ = ev.summarize_records(records, max_new_tokens=4)
  assert metrics["accuracy"]["pass@1"] == pytest.approx(0.25)
  assert metrics["accuracy"]["mean_score"] == pytest.approx(0.325)


def test_countdown_cons_votes_on_the_equation_value():
  equations = ["3+5+3", "(3+5)*3", "3*(5+3)", "5*3+3*3", "3 + 5 + 3"]
  values = [ev.countdown_value(f"<answer>{e}</answer>") for e in equations]
  assert values == ["11", "24", "24", "24", "11"]
  # By text, "3+5+3" would win with 2 votes; by value 24 wins with 3.
  assert ev.majority_vote(values, same=lambda a, b: a == b) == (1, 3)
  assert ev.countdown_value("<answer>1/0</answer>") is None
  assert ev.countdown_value("<answer>import os</answer>") is None
  assert ev.countdown_value("no answer") is None
  assert ev.countdown_value("<answer>7/2</answer>") == "7/2"


def test_maths_votes_use_the_accuracy_backend():
  pytest.importorskip("math_verify")
  task = get_task("arithmetic")
  accuracy = dict(task.accuracy_fns)
  accuracy["strict"] = dataclasses.replace(accuracy["strict"], backend="math_verify")
  voters = ev.voters_for(dataclasses.replace(task, accuracy_fns=accuracy))
  # math-verify reads 50\% as 0.5; r1jax drops the percent sign (tests/rewards_math_backends).
  assert voters["strict"].same("50\\%", "0.5")
  assert not voters["lenient"].same("50\\%", "0.5")


# --- R1 analyses ----------------------------------------------------------------------------

def test_reflective_words_count_whole_words_in_any_case_per_1k_tokens():
  texts = ["Wait, but I should check. Butter is not a word here; checkpoint neither.",
           "WAIT! However it is wrong"]
  counts = analysis.reflective_word_counts(texts)
  assert counts["wait"] == 2 and counts["but"] == 1 and counts["check"] == 1
  assert counts["however"] == 1 and counts["wrong"] == 1 and counts["verify"] == 0
  rates = analysis.reflective_word_rates(texts, 500)
  assert rates["wait"] == pytest.approx(4.0) and rates["total"] == pytest.approx(12.0)


def test_correct_vs_wrong_counts_lengths_and_reflective_rates():
  out = analysis.correct_vs_wrong(["wait, yes", "no", "but wait"], np.array([10, 30, 20]),
                                  np.array([True, False, True]))
  assert out["correct"] == {"count": 2, "mean_length": 15.0,
                            "reflective_per_1k_tokens": pytest.approx(3 * 1000 / 30)}
  assert out["wrong"] == {"count": 1, "mean_length": 30.0, "reflective_per_1k_tokens": 0.0}
  none = analysis.correct_vs_wrong(["a"], np.array([4]), np.array([False]))
  assert none["correct"] == {"count": 0, "mean_length": None, "reflective_per_1k_tokens": None}


def test_length_analysis_splits_correct_and_wrong():
  out = analysis.r1_analysis(["a", "b wait", "c"], np.array([10, 30, 50]),
                             np.array([True, False, False]), np.array([True, True, False]),
                             max_new_tokens=50)
  assert out["length"]["correct_mean"] == 10 and out["length"]["wrong_mean"] == 40
  assert out["length"]["truncated_frac"] == pytest.approx(1 / 3)
  assert sum(out["length"]["histogram"]["wrong"]) == 2
  assert out["reflective_per_1k_tokens"]["wrong"]["wait"] == pytest.approx(1000 / 80)


# --- end to end -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """A tiny random model saved as an HF folder holding the miniature tokenizer."""
  from r1jax.models import weights
  folder = tmp_path_factory.mktemp("tiny_model")
  params = jax.jit(lambda k: transformer.init(_CFG, k))(jax.random.key(0))
  weights.save_hf(_CFG, params, folder)
  miniature.write_tokenizer(folder)
  return folder, params, load_tokenizer(folder)


def _sampling(tokenizer, temperature=1.0):
  return SamplingConfig(temperature=temperature, top_p=1.0, max_new_tokens=_NEW,
                        eos_ids=tuple(tokenizer.eos_ids), pad_id=tokenizer.pad_id)


def test_evaluate_report_agrees_with_its_own_samples(tiny):
  _, params, tok = tiny
  task = get_task("miniature", size=5)
  examples = eval_run.load_examples(task)
  report = ev.evaluate(params, examples, task=task, tokenizer=tok, model_cfg=_CFG,
                       sampling=_sampling(tok), k=_K, key=jax.random.key(0),
                       batch_size=_BATCH, progress=False, num_resamples=200)
  assert report.num_questions == 5 and len(report.questions) == 5
  grades = np.array([[s["grades"]["strict"] for s in q["samples"]] for q in report.questions])
  assert grades.shape == (5, _K)
  assert report.metrics["strict"]["pass@1"] == pytest.approx(grades.mean())
  assert report.metrics["strict"][f"pass@{_K}"] == pytest.approx(grades.max(1).mean())
  assert "cons@2" in report.metrics["strict"] and "cons@2" not in report.metrics["worked"]
  for q, ex in zip(report.questions, examples):
    assert q["gold"] == ex["answer"]
    for s in q["samples"]:
      assert 1 <= s["length"] <= _NEW
      assert s["answers"]["strict"] == ev._miniature_answer(s["completion"])
  lengths = [s["length"] for q in report.questions for s in q["samples"]]
  assert report.analysis["length"]["mean"] == pytest.approx(np.mean(lengths))
  for name in ("strict", "worked"):
    graded = np.array([[s["grades"][name] for s in q["samples"]] for q in report.questions])
    split = report.analysis["by_accuracy"][name]
    assert split["correct"]["count"] == graded.sum()
    assert split["correct"]["count"] + split["wrong"]["count"] == len(lengths)
  assert report.timing["generated_tokens"] == sum(lengths)


def test_greedy_evaluation_is_deterministic_and_needs_k_1(tiny):
  _, params, tok = tiny
  task = get_task("miniature", size=3)
  examples = eval_run.load_examples(task)
  kwargs = dict(task=task, tokenizer=tok, model_cfg=_CFG, sampling=_sampling(tok, 0.0),
                batch_size=_BATCH * _K, progress=False, num_resamples=10)
  a = ev.evaluate(params, examples, k=1, key=jax.random.key(0), **kwargs)
  b = ev.evaluate(params, examples, k=1, key=jax.random.key(1), **kwargs)
  assert [q["samples"] for q in a.questions] == [q["samples"] for q in b.questions]
  with pytest.raises(ValueError, match="greedy"):
    ev.evaluate(params, examples, k=2, key=jax.random.key(0), **kwargs)


def test_greedy_evaluation_with_continuous_batching_waves_gives_the_same_answers(tiny):
  # waves > 1: a sampler call holds several batches' questions and decodes one batch's rows at
  # a time, refilling finished slots; greedy answers do not depend on the schedule.
  _, params, tok = tiny
  task = get_task("miniature", size=7)
  examples = eval_run.load_examples(task)
  kwargs = dict(task=task, tokenizer=tok, model_cfg=_CFG, sampling=_sampling(tok, 0.0), k=1,
                key=jax.random.key(0), batch_size=2, progress=False, num_resamples=10)
  one, waves = ev.evaluate(params, examples, **kwargs), ev.evaluate(params, examples, waves=3,
                                                                    **kwargs)
  assert [q["samples"] for q in waves.questions] == [q["samples"] for q in one.questions]
  with pytest.raises(ValueError, match="waves must be a positive integer"):
    ev.evaluate(params, examples, waves=0, **kwargs)


def test_the_copies_that_pad_the_last_call_generate_one_token(tiny, monkeypatch):
  # 7 questions in calls of 6: the second call holds 1 question and 5 copies of it. The copies
  # only keep the compiled shape; with a budget of one token their slots go to real rows.
  _, params, tok = tiny
  task = get_task("miniature", size=7)
  examples = eval_run.load_examples(task)
  calls, generate = [], sampler_lib.generate

  def spy(*args, **kw):
    out = generate(*args, **kw)
    calls.append(np.asarray(out.lengths))
    return out
  monkeypatch.setattr(sampler_lib, "generate", spy)
  report = ev.evaluate(params, examples, task=task, tokenizer=tok, model_cfg=_CFG,
                       sampling=_sampling(tok, 0.0), k=1, key=jax.random.key(0), batch_size=2,
                       waves=3, progress=False, num_resamples=10)
  assert [len(c) for c in calls] == [6, 6]
  np.testing.assert_array_equal(calls[1][1:], 1)
  assert calls[1][0] == report.questions[6]["samples"][0]["length"]


def test_per_level_breakdown_when_examples_have_levels(tiny):
  _, params, tok = tiny
  task = get_task("miniature", size=4)
  examples = [dict(e, level=1 + i % 2) for i, e in enumerate(eval_run.load_examples(task))]
  report = ev.evaluate(params, examples, task=task, tokenizer=tok, model_cfg=_CFG,
                       sampling=_sampling(tok), k=_K, key=jax.random.key(0),
                       batch_size=_BATCH, progress=False, num_resamples=10)
  assert sorted(report.levels) == ["1", "2"]
  for level in ("1", "2"):
    qs = [q for q in report.questions if str(q["level"]) == level]
    assert report.levels[level]["num_questions"] == len(qs) == 2
    mean = np.mean([q["pass@1"]["strict"] for q in qs])
    assert report.levels[level]["strict"]["pass@1"] == pytest.approx(mean)


def test_cli_eval_writes_report_samples_and_plots(tiny, tmp_path, capsys):
  folder, _, _ = tiny
  out = tmp_path / "out"
  rc = cli.main(["eval", "--model", str(folder), "--task", "miniature", "--task-arg",
                 f"size={_BATCH}", "--k", str(_K), "--temperature", "1.0", "--top-p", "1.0",
                 "--max-new-tokens", str(_NEW), "--batch-size", str(_BATCH), "--out",
                 str(out), "--no-progress", "--bootstrap", "50"])
  assert rc == 0
  assert f"miniature: {_BATCH} questions, k={_K}" in capsys.readouterr().out
  summary = json.loads((out / ev.REPORT_FILE).read_text())
  assert summary["k"] == _K and summary["num_questions"] == _BATCH
  assert summary["info"]["chat"] is False  # The miniature tokenizer has no chat template.
  lo, hi = summary["metrics"]["strict"]["pass@1_ci"]
  assert lo <= summary["metrics"]["strict"]["pass@1"] <= hi
  lines = (out / ev.SAMPLES_FILE).read_text().splitlines()
  assert len(lines) == _BATCH and all(len(json.loads(l)["samples"]) == _K for l in lines)
  assert not (out / eval_run.JOURNAL_FILE).exists()  # Removed once the report is written.
  pytest.importorskip("matplotlib")
  assert (out / analysis.LENGTH_PLOT).stat().st_size > 0
  assert (out / analysis.REFLECTION_PLOT).stat().st_size > 0
  # --rebuild recomputes the same report from samples.jsonl alone.
  written = (out / ev.REPORT_FILE).read_text()
  (out / ev.REPORT_FILE).write_text(written.replace('"by_accuracy"', '"old_field"'))
  assert cli.main(["eval", "--rebuild", str(out)]) == 0
  assert json.loads((out / ev.REPORT_FILE).read_text()) == json.loads(written)


def _stop_after(monkeypatch, calls: int):
  """Makes the sampler raise on its (calls + 1)-th batch, as a crash would; the batches asked."""
  real, asked = ev.rollout_lib.collect, []

  def collect(params, examples, **kwargs):
    asked.append(examples)
    if len(asked) > calls:
      raise KeyboardInterrupt("stopped")
    return real(params, examples, **kwargs)
  monkeypatch.setattr(ev.rollout_lib, "collect", collect)
  return asked


def test_an_interrupted_evaluation_resumes_to_the_same_samples_and_metrics(tiny, tmp_path,
                                                                         monkeypatch):
  _, params, tok = tiny
  task = get_task("miniature", size=3 * _BATCH - 1)  # 3 batches, the last one short.
  examples = eval_run.load_examples(task)
  kwargs = dict(task=task, tokenizer=tok, model_cfg=_CFG, sampling=_sampling(tok), k=_K,
                key=jax.random.key(3), batch_size=_BATCH, progress=False, num_resamples=50)
  whole = ev.evaluate(params, examples, **kwargs)
  journal = tmp_path / "journal.jsonl"
  with monkeypatch.context() as m:
    _stop_after(m, 1)
    with pytest.raises(KeyboardInterrupt):
      ev.evaluate(params, examples, journal=journal, **kwargs)
  lines = journal.read_text().splitlines()
  assert len(lines) == 1 + _BATCH + 1  # The header, batch 0's records, its marker.
  # The finished part can be reported before the evaluation is resumed.
  (tmp_path / ev.JOURNAL_FILE).write_text(journal.read_text())
  partial = ev.rebuild(tmp_path, plots=False)
  assert partial.num_questions == _BATCH
  assert partial.info["partial"] == {"questions_done": _BATCH, "num_questions": 3 * _BATCH - 1}
  assert partial.metrics == ev.summarize_records(whole.questions[:_BATCH], max_new_tokens=_NEW,
                                                 num_resamples=1000)[0]
  resumed = ev.evaluate(params, examples, journal=journal, **kwargs)
  assert resumed.timing["resumed_questions"] == _BATCH
  dump = lambda r: json.dumps(r.questions, sort_keys=True)
  assert dump(resumed) == dump(whole)
  assert resumed.metrics == whole.metrics
  assert resumed.analysis == whole.analysis


def test_a_journal_drops_a_torn_batch_and_refuses_other_settings(tiny, tmp_path,
                                                                 monkeypatch):
  _, params, tok = tiny
  task = get_task("miniature", size=2 * _BATCH)
  examples = eval_run.load_examples(task)
  kwargs = dict(task=task, tokenizer=tok, model_cfg=_CFG, sampling=_sampling(tok), k=_K,
                batch_size=_BATCH, progress=False, num_resamples=20)
  journal = tmp_path / "journal.jsonl"
  with monkeypatch.context() as m:
    _stop_after(m, 1)
    with pytest.raises(KeyboardInterrupt):
      ev.evaluate(params, examples, key=jax.random.key(0), journal=journal, **kwargs)
  good = journal.read_text()
  # A crash in the middle of batch 1's write: one whole record, then half of the next.
  first = good.splitlines()[1]
  with open(journal, "a", encoding="utf-8") as f:
    f.write(first.replace('"index": 0', '"index": 4') + "\n" + first[:40])
  with pytest.raises(ValueError, match=r"other settings \(key: "):
    ev.evaluate(params, examples, key=jax.random.key(1), journal=journal, **kwargs)
  with pytest.raises(ValueError, match="other settings"):
    ev.evaluate(params, examples[:-1], key=jax.random.key(0), journal=journal, **kwargs)
  with monkeypatch.context() as m:
    asked = _stop_after(m, 0)
    with pytest.raises(KeyboardInterrupt):
      ev.evaluate(params, examples, key=jax.random.key(0), journal=journal, **kwargs)
  assert asked == [examples[_BATCH:]]  # Batch 0 was read back, not sampled again.
  assert journal.read_text() == good  # The torn batch was cut off.
  report = ev.evaluate(params, examples, key=jax.random.key(0), journal=journal, **kwargs)
  assert [q["index"] for q in report.questions] == list(range(2 * _BATCH))
  (tmp_path / "other.jsonl").write_text("not a journal\n")
  with pytest.raises(ValueError, match="not an r1jax evaluation journal"):
    ev.evaluate(params, examples, key=jax.random.key(0), journal=tmp_path / "other.jsonl",
                **kwargs)


def test_a_training_workdir_evaluates_from_its_checkpoint(tmp_path):
  from r1jax import train
  from r1jax.run_config import CheckpointConfig, Config
  from r1jax.grpo_config import GRPOConfig
  # Rollouts of P = _BATCH prompts x R = _K samples: the evaluations' compiled sampler.
  cfg = Config(model=_CFG, tokenizer_path="miniature", task="miniature",
               task_args={"digits": 2}, grpo=GRPOConfig(num_samples=_K, kl_coef=0.0),
               sampling=SamplingConfig(temperature=1.0, max_new_tokens=_NEW),
               prompts_per_step=_BATCH,
               num_steps=2, checkpoint=CheckpointConfig(every=1, keep=2), tensorboard=False)
  workdir = tmp_path / "run"
  train.run(cfg, workdir, max_steps=1)  # Stopped before the end: no end-of-run plots (slow).
  assert eval_run.is_workdir(workdir)
  loaded = eval_run.load_model(workdir)
  assert loaded.step == 1 and loaded.run_config.task == "miniature"
  # The params-only read equals the params of a full, untargeted read of the checkpoint.
  with ocp.PyTreeCheckpointer() as reader:
    full = reader.restore(workdir / "checkpoints" / "1" / "arrays")
  same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), loaded.params, full["params"])
  assert all(jax.tree.leaves(same))
  report = eval_run.run(workdir, limit=_BATCH, k=_K, temperature=1.0, top_p=1.0,
                        batch_size=_BATCH, progress=False, num_resamples=10, loaded=loaded)
  assert report.task == "miniature" and report.num_questions == _BATCH
  assert report.info["checkpoint_step"] == 1
  # The run's task options apply: 2-digit additions.
  assert all(len(q["question"]) == 5 and "+" in q["question"] for q in report.questions)


def test_bad_inputs_are_one_clear_error(tiny, tmp_path):
  _, params, tok = tiny
  task = get_task("miniature")
  with pytest.raises(ValueError, match="without end"):
    eval_run.load_examples(task)
  with pytest.raises(ValueError, match="limit"):
    eval_run.load_examples(task, 0)
  with pytest.raises(ValueError, match="positive integer"):
    ev.evaluate(params, eval_run.load_examples(task, 1), task=task, tokenizer=tok,
                model_cfg=_CFG, sampling=_sampling(tok), k=0, key=jax.random.key(0))
  with pytest.raises(SystemExit, match="--model is required"):
    cli.main(["eval", "--task", "miniature"])
  with pytest.raises(FileNotFoundError, match="holds no evaluation"):
    ev.rebuild(tmp_path)
  os.makedirs(tmp_path / "wd")
  (tmp_path / "wd" / "config.json").write_text("{}")
  (tmp_path / "wd" / "model_config.json").write_text("{}")
  with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
    eval_run.restore_params(tmp_path / "wd", _CFG)
