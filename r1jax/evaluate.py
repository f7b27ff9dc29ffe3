"""Evaluation the way the R1 papers report it: pass@1 over k samples, cons@k, pass@k, intervals.

Place in the pipeline: after (or, through `r1jax.train`, during) training; `r1jax eval` runs it.
For each question the model samples k completions (temperature 0.6, top-p 0.95 in R1) through
the same `rollout.collect` the trainer uses, so prompts, decoding and grading are the training
ones. A sample is correct only at full credit (score 1; partial-credit scores are averaged
under their own key, `mean_score`). From the [Q, k] correctness matrix of each accuracy
(strict and lenient for maths tasks):
  * pass@1 = the mean correctness of the k samples, averaged over questions;
  * pass@j for j <= k, unbiased: mean over questions of 1 - C(n-c, j) / C(n, j) (Chen et al.
    2021), with n = k samples of which c are correct (`pass_at_k`);
  * cons@k = the correctness of the majority answer: final answers are extracted the way the
    grader extracts them, equivalent answers vote together, abstentions (no answer) do not vote,
    ties go to the answer that appeared first (`majority_vote`); Countdown votes on the value
    of each equation, so different right equations vote together;
  * 95% bootstrap intervals, resampling questions (AIME has 30: one question is 3.3 points),
    reproducible by seed (`bootstrap_ci`);
  * the same per difficulty level when the examples carry a `level` (MATH);
  * the R1 analyses of lengths and reflective words (`r1jax.analysis`).
Temperature 0 is greedy decoding: k must then be 1. With a `journal` file each finished batch
is kept, and an evaluation that stopped resumes where it was, with the same samples. Loading a
model, a training workdir's latest checkpoint, and writing the report files live in
`r1jax.eval_run`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from r1jax import analysis as analysis_lib
from r1jax import eval_journal
from r1jax import rollout as rollout_lib
from r1jax import sampler as sampler_lib
from r1jax.data.sources import Example
from r1jax.data.tasks import Task
from r1jax.grpo_config import GRPOConfig
from r1jax.models.config import ModelConfig
from r1jax.rewards import countdown as countdown_lib
from r1jax.rewards import math as math_lib
from r1jax.rewards import math_normalize

__all__ = ["FULL_CREDIT", "Report", "Voter", "bootstrap_ci", "countdown_value", "evaluate",
           "full_credit", "majority_vote", "pass_at_k", "rebuild", "summarize",
           "summarize_records", "voters_for"]

REPORT_FILE = "report.json"
SAMPLES_FILE = "samples.jsonl"
# `r1jax eval --out DIR` keeps finished batches here until the report is written.
JOURNAL_FILE = "samples.partial.jsonl"
_NO_SHAPING = GRPOConfig(kl_coef=0.0)  # Evaluation scores the task reward only.
_VOTE_TIMEOUT_S = 1.0  # Symbolic equivalence between two sampled answers; past it they differ.
FULL_CREDIT = 1.0  # The score at which a sample counts as correct (see `full_credit`).


def pass_at_k(n: int, c: int, k: int) -> float:
  """Unbiased pass@k of one question: 1 - C(n-c, k) / C(n, k) with n samples, c correct.

  Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), a product of factors in [0, 1], so it stays
  exact to float precision where the binomials themselves would overflow.
  """
  for name, v in (("n", n), ("c", c), ("k", k)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
      raise ValueError(f"pass_at_k needs integer n, c and k, got {name}={v!r}")
  if not (n >= 1 and 0 <= c <= n and 1 <= k <= n):
    raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
  if n - c < k:  # Every k-subset holds a correct sample.
    return 1.0
  return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def bootstrap_ci(values: np.ndarray, *, num_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
  """Percentile bootstrap interval of the mean of per-question `values` [Q].

  Questions are resampled with replacement `num_resamples` times with numpy's generator seeded
  by `seed`, so the same seed gives the same interval.
  """
  values = np.asarray(values, np.float64).reshape(-1)
  if values.size == 0:
    raise ValueError("bootstrap_ci needs at least one question, got none")
  if not (isinstance(num_resamples, int) and num_resamples >= 1):
    raise ValueError(f"num_resamples must be a positive integer, got {num_resamples!r}")
  if not 0 < confidence < 1:
    raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
  rng = np.random.default_rng(seed)
  means = np.empty(num_resamples)
  chunk = max(1, 2_000_000 // values.size)  # Bounded memory for large Q.
  for start in range(0, num_resamples, chunk):
    n = min(chunk, num_resamples - start)
    means[start:start + n] = values[rng.integers(0, values.size, (n, values.size))].mean(1)
  alpha = (1.0 - confidence) / 2
  lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
  return float(lo), float(hi)


def _same_math(a: str, b: str) -> bool:
  return math_lib.is_equivalent(a, b, timeout_s=_VOTE_TIMEOUT_S)


def _same_math_backend(a: str, b: str, *, backend: str) -> bool:
  return math_lib.is_equivalent(a, b, timeout_s=_VOTE_TIMEOUT_S, backend=backend)


def _same_text(a: str, b: str) -> bool:
  return " ".join(a.split()) == " ".join(b.split())


def majority_vote(answers: Sequence[str | None], *,
                  same: Callable[[str, str], bool] = _same_math) -> tuple[int | None, int]:
  """The majority answer among k samples: (index of its first sample, its votes).

  Answers with the same normalized text vote together; an answer also joins the first earlier
  answer group that `same` (by default maths equivalence) says it equals. None (no answer)
  abstains. Ties go to the group whose first sample came first, so the result is deterministic.
  Returns (None, 0) when every sample abstains.
  """
  groups: list[list[int]] = []  # [first index, votes] per answer group, in order of appearance.
  reps: list[str] = []
  by_key: dict[str, int] = {}
  for i, answer in enumerate(answers):
    if answer is None:
      continue
    key = math_normalize.normalize(answer)
    g = by_key.get(key)
    if g is None:
      g = next((j for j, rep in enumerate(reps) if same(answer, rep)), None)
    if g is None:
      g = len(groups)
      groups.append([i, 0])
      reps.append(answer)
    by_key[key] = g
    groups[g][1] += 1
  if not groups:
    return None, 0
  first, votes = min(groups, key=lambda fv: (-fv[1], fv[0]))
  return first, votes


@dataclasses.dataclass(frozen=True)
class Voter:
  """How cons@k reads one accuracy's answers: the grader's extraction and its equality."""

  extract: Callable[[str], str | None]  # Response text -> final answer, or None.
  same: Callable[[str, str], bool]  # Whether two extracted answers are the same answer.


# miniature.answer_reward's rule: (optional worked steps) then A:<digits>, nothing else.
_MINIATURE_ANSWER = re.compile(r"(?:<think>[^<]*</think>)?A:(\d+)")


def _miniature_answer(response: str) -> str | None:
  m = _MINIATURE_ANSWER.fullmatch(response.replace("<eos>", "").strip())
  return m.group(1) if m else None


def countdown_value(response: str) -> str | None:
  """The value of a Countdown response's equation (exact, as a fraction's text), or None.

  cons@k votes on values, not equation texts: `(3+5)*3` and `3*(5+3)` are one answer.
  """
  equation = countdown_lib.extract_equation(response)
  if equation is None:
    return None
  try:
    value, _ = countdown_lib.evaluate_equation(equation)
  except (ValueError, ZeroDivisionError, ArithmeticError):
    return None
  return str(value)


def voters_for(task: Task) -> dict[str, Voter]:
  """A Voter for each accuracy of `task` whose answer can be extracted (others get no cons@k).

  Extraction follows the grading function, so every sample of the winning answer group is
  graded alike and cons@k is the majority answer's grade.
  """
  out = {}
  for name, fn in task.accuracy_fns.items():
    if isinstance(fn, math_lib.MathAccuracy):
      # Answers vote together when the accuracy's own backend calls them equal.
      same = _same_math if fn.backend == "r1jax" else functools.partial(
          _same_math_backend, backend=fn.backend)
      out[name] = Voter(functools.partial(math_lib.extract_answer, strict=fn.strict), same)
    elif isinstance(fn, countdown_lib.CountdownAccuracy):
      out[name] = Voter(countdown_value, _same_text)
    elif task.name == "miniature":
      from r1jax.data import miniature  # pylint: disable=g-import-not-at-top
      if fn is miniature.answer_reward:
        out[name] = Voter(_miniature_answer, _same_text)
  return out


def summarize(correct: Mapping[str, np.ndarray], cons: Mapping[str, np.ndarray], *,
              num_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
  """pass@1, pass@j (j = 1, 2, 4, ..., k), cons@k and their bootstrap intervals per accuracy.

  Args:
    correct: accuracy name -> [Q, k] 0/1 correctness of every sample.
    cons: accuracy name -> [Q] 0/1 correctness of each question's majority answer.
  """
  out = {}
  for name, c in correct.items():
    c = np.asarray(c, np.float64)
    q, k = c.shape
    ks = sorted({2 ** i for i in range(int(math.log2(k)) + 1)} | {k})
    counts = (c >= FULL_CREDIT).sum(1)
    m: dict[str, Any] = {}
    for j in ks:
      per_q = np.array([pass_at_k(k, int(n), j) for n in counts])
      m[f"pass@{j}"] = float(per_q.mean())
      m[f"pass@{j}_ci"] = list(bootstrap_ci(per_q, num_resamples=num_resamples, seed=seed,
                                            confidence=confidence))
    if name in cons:
      per_q = np.asarray(cons[name], np.float64)
      m[f"cons@{k}"] = float(per_q.mean())
      m[f"cons@{k}_ci"] = list(bootstrap_ci(per_q, num_resamples=num_resamples, seed=seed,
                                            confidence=confidence))
    out[name] = m
  return out


@dataclasses.dataclass
class Report:
  """An evaluation: summary metrics, R1 analyses, timing, and every sample of every question."""

  task: str
  num_questions: int
  k: int
  sampling: dict[str, Any]
  metrics: dict[str, dict[str, Any]]  # accuracy name -> {"pass@1", "pass@1_ci", "cons@k", ...}
  levels: dict[str, dict[str, Any]]  # level -> {"num_questions", accuracy name -> metrics}
  analysis: dict[str, Any]  # r1jax.analysis.r1_analysis of all samples (by `main` accuracy)
  timing: dict[str, float]
  questions: list[dict[str, Any]]  # per question: gold, samples (text, length, grades), cons
  info: dict[str, Any] = dataclasses.field(default_factory=dict)  # model, data, seed, ...

  def summary(self) -> dict[str, Any]:
    """Everything but the per-question samples, JSON-able."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
            if f.name != "questions"}

  def format(self) -> str:
    """A short human-readable table of the headline numbers."""
    lines = [f"{self.task}: {self.num_questions} questions, k={self.k}, "
             f"temperature {self.sampling.get('temperature')}"]
    for name, m in self.metrics.items():
      parts = [f"{key} {100 * v:.1f} [{100 * m[key + '_ci'][0]:.1f}, "
               f"{100 * m[key + '_ci'][1]:.1f}]"
               for key, v in m.items() if not key.endswith("_ci")]
      lines.append(f"  {name:8s} " + "  ".join(parts))
    for level, m in self.levels.items():
      accs = "  ".join(f"{n} pass@1 {100 * v['pass@1']:.1f}" for n, v in m.items()
                       if isinstance(v, dict))
      lines.append(f"  level {level} ({m['num_questions']} q): {accs}")
    length = self.analysis["length"]
    fmt = lambda v: "-" if v is None else f"{v:.0f}"
    split = ", ".join(
        f"{name} correct {fmt(c['correct']['mean_length'])} / wrong "
        f"{fmt(c['wrong']['mean_length'])}"
        for name, c in self.analysis.get("by_accuracy", {}).items())
    lines.append(f"  length mean {fmt(length['mean'])} ({split}), truncated "
                 f"{100 * (length['truncated_frac'] or 0):.0f}%; reflective words "
                 f"{(self.analysis['reflective_per_1k_tokens']['all'] or {}).get('total', 0):.2f}"
                 " per 1k tokens")
    lines.append(f"  {self.timing['wall_s']:.1f} s, {self.timing['per_question_s']:.2f} s per "
                 f"question, {self.timing['tokens_per_s']:.1f} generated tokens/s")
    return "\n".join(lines)

  def write(self, out_dir: str | os.PathLike, *, plots: bool = True) -> list[str]:
    """Writes report.json, samples.jsonl (one question a line) and the R1 plots; their paths.

    Plots are skipped with a message when matplotlib is missing.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(os.fspath(out_dir), REPORT_FILE),
             os.path.join(os.fspath(out_dir), SAMPLES_FILE)]
    # Each file is written beside its place and renamed over it: a crash leaves old or new.
    with open(paths[0] + ".tmp", "w", encoding="utf-8") as f:
      json.dump(_finite(self.summary()), f, indent=2, default=_jsonable)
    with open(paths[1] + ".tmp", "w", encoding="utf-8") as f:
      for record in self.questions:
        f.write(json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n")
    for path in paths:
      os.replace(path + ".tmp", path)
    if plots:
      try:
        paths += analysis_lib.plot(self.analysis, out_dir, title=self.task)
      except ImportError as e:
        print(f"plots skipped: {e}")
    return paths


def _finite(x: Any) -> Any:
  """x with NaN and infinities replaced by None: strict JSON has no NaN."""
  if isinstance(x, dict):
    return {k: _finite(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_finite(v) for v in x]
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def _jsonable(x: Any) -> Any:
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  return str(x)


def _scores(ro: rollout_lib.Rollouts) -> dict[str, np.ndarray]:
  """accuracy name -> [P, R] raw scores; tasks without accuracy functions use their accuracy
  reward."""
  if ro.accuracy:
    return {k: np.asarray(v, np.float64) for k, v in ro.accuracy.items()}
  return {"accuracy": np.asarray(ro.rewards["accuracy"], np.float64)}


def full_credit(scores: np.ndarray) -> np.ndarray:
  """0/1 correctness: a sample is correct only at full credit (score >= 1). Partial credit
  (TinyZero's 0.1 format score, a fraction of code tests passed) is not a correct answer; its
  mean is reported on its own, as `mean_score`."""
  return (np.asarray(scores, np.float64) >= FULL_CREDIT).astype(np.float64)


def evaluate(params, examples: Sequence[Example], *, task: Task, tokenizer: Any,
             model_cfg: ModelConfig, sampling: sampler_lib.SamplingConfig, k: int,
             key: jax.Array, chat: bool = False, batch_size: int = 8, waves: int = 1,
             progress: bool = True, num_resamples: int = 1000, seed: int = 0,
             confidence: float = 0.95,
             journal: str | os.PathLike | None = None,
             journal_info: Mapping[str, Any] | None = None) -> Report:
  """Samples k completions per example, grades them with the task, and reports as R1 does.

  Args:
    params: the policy's params.
    examples: the Q questions (e.g. `task.stream(shuffle=False).next_batch(n)`).
    task: grades with `task.accuracy` (and its rewards); renders prompts with its template.
    tokenizer: encodes prompts, decodes completions.
    model_cfg: the model's config.
    sampling: temperature (0 = greedy), top-p, max_new_tokens, eos ids.
    k: samples per question (1 when greedy).
    key: sampling key; batch b uses fold_in(key, b), so results depend on `batch_size`.
    chat: render prompts through the tokenizer's chat template.
    batch_size: prompts decoded at once (B = batch_size * k rows). The last batch is padded
      with copies of its last prompt so that the sampler compiles once per prompt bucket;
      the copies get a budget of one token, so that with waves > 1 their slots go at once to
      the real questions (they are still prefilled).
    waves: prompts per sampler call, in units of batch_size: with waves > 1 a call holds
      waves * batch_size prompts and decodes B rows at a time, a finished row's slot taking
      the next question at once (continuous batching), so a long answer holds up no batch.
    progress: show a progress bar with ETA (tqdm).
    num_resamples, seed, confidence: the bootstrap intervals.
    journal: a file recording each finished batch (see `r1jax.eval_journal`). When it already
      holds batches of an evaluation with the same settings, those are read back instead of
      sampled again, and the result is the same as an uninterrupted run's.
    journal_info: more JSON-able settings that must match to resume (e.g. the model's path
      and checkpoint step, the task options); the questions, rendered prompts, k, sampling,
      key and batch size are always part of them.
  """
  q = len(examples)
  if q == 0:
    raise ValueError("evaluate needs at least one example, got none")
  if isinstance(k, bool) or not isinstance(k, int) or k < 1:
    raise ValueError(f"k (samples per question) must be a positive integer, got {k!r}")
  if sampling.temperature == 0 and k != 1:
    raise ValueError(f"temperature 0 is greedy decoding, whose k samples are identical; use "
                     f"k=1 (got k={k}) or a temperature > 0")
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  voters = voters_for(task)
  if isinstance(waves, bool) or not isinstance(waves, int) or waves < 1:
    raise ValueError(f"waves must be a positive integer, got {waves!r}")
  if waves > 1:  # Slots for batch_size questions' k samples; the call holds more questions.
    sampling = dataclasses.replace(sampling, max_rows=min(batch_size, q) * k)
  width = min(batch_size * waves, q)
  records: list[dict[str, Any]] = []
  sampling_info = {f.name: getattr(sampling, f.name) for f in dataclasses.fields(sampling)}
  log = None
  if journal is not None:
    settings = {"task": task.name, "k": k, "sampling": sampling_info, "chat": chat,
                "batch_size": width, "num_questions": q,
                "key": np.asarray(jax.random.key_data(key)).tolist(),
                "questions_sha256": _questions_digest(examples, task, tokenizer, chat),
                **dict(journal_info or {})}
    log = eval_journal.Journal.open(journal, settings, default=_jsonable)
    records += log.records
    if log.records:
      print(f"resuming {os.fspath(journal)}: {len(log.records)} of {q} questions done",
            file=sys.stderr)
  done, before = len(records), (log.elapsed_s if log else 0.0)
  t0 = time.perf_counter() - before  # Time already spent in earlier sessions counts.
  first_batch_s = None
  bar = tqdm(total=q, initial=done, unit="q", desc=f"eval {task.name}", disable=not progress,
             dynamic_ncols=True, smoothing=0.1)
  running: dict[str, float] = {}
  for b, start in enumerate(range(0, q, width)):
    if start < done:
      continue  # Read back from the journal.
    chunk = list(examples[start:start + width])
    n = len(chunk)
    ro = rollout_lib.collect(params, chunk + [chunk[-1]] * (width - n), task=task,
                             tokenizer=tokenizer, model_cfg=model_cfg, sampling=sampling,
                             grpo_cfg=_NO_SHAPING, key=jax.random.fold_in(key, b),
                             num_samples=k, chat=chat,
                             budgets=[sampling.max_new_tokens] * n + [1] * (width - n))
    ro = ro.select_groups(np.arange(width) < n)
    raw = _scores(ro)
    g = {name: full_credit(v) for name, v in raw.items()}
    batch = [_question_record(start + p, ex, ro, p, g, voters, task, raw)
             for p, ex in enumerate(chunk)]
    records += batch
    if log is not None:
      log.append(batch, elapsed_s=time.perf_counter() - t0)
    if first_batch_s is None:  # Includes compiling the sampler.
      first_batch_s = time.perf_counter() - t0 - before
    bar.update(n)
    main = "strict" if "strict" in g else next(iter(g))
    running[main] = running.get(main, 0.0) + float(g[main].sum())
    new_pass1 = running[main] / ((len(records) - done) * k)
    bar.set_postfix({f"{main} pass@1 (new)": f"{new_pass1:.3f}"}, refresh=False)
  bar.close()
  wall = time.perf_counter() - t0
  info = {"seed": seed, "chat": chat, "batch_size": width, "confidence": confidence,
          "num_resamples": num_resamples}
  metrics, levels, analysis = summarize_records(
      records, max_new_tokens=sampling.max_new_tokens, num_resamples=num_resamples, seed=seed,
      confidence=confidence)
  timing = _timing(records, wall, first_batch_s=first_batch_s, resumed=done)
  return Report(task.name, q, k, sampling_info, metrics, levels, analysis, timing, records, info)


def _timing(records: Sequence[Mapping[str, Any]], wall: float, *, first_batch_s: float | None,
            resumed: int) -> dict[str, Any]:
  """The report's timing block: wall time per question and generated tokens per second."""
  tokens = sum(s["length"] for r in records for s in r["samples"])
  return {"wall_s": wall, "per_question_s": wall / len(records), "first_batch_s": first_batch_s,
          "generated_tokens": tokens, "tokens_per_s": tokens / max(wall, 1e-9),
          "resumed_questions": resumed}


def summarize_records(records: Sequence[Mapping[str, Any]], *, max_new_tokens: int,
                      num_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
                      ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
  """(metrics, levels, analysis) of an evaluation from its per-question records alone.

  The records (the lines of samples.jsonl) hold every sample's grades, length and text and each
  question's vote, so the report's numbers are a function of them: `evaluate` computes its
  report here, and `rebuild` recomputes a written one with the current analyses.
  """
  names = list(records[0]["samples"][0]["grades"])
  correct = {n: np.array([[s["grades"][n] for s in r["samples"]] for r in records], np.float64)
             for n in names}
  cons = {n: np.array([r["cons"][n]["correct"] for r in records], np.float64)
          for n in names if n in records[0].get("cons", {})}
  stats = dict(num_resamples=num_resamples, seed=seed, confidence=confidence)
  metrics = summarize(correct, cons, **stats)
  if all("scores" in s for r in records for s in r["samples"]):
    for n in names:  # Partial credit, on its own key: never part of pass@k or cons@k.
      per_q = np.array([np.mean([s["scores"][n] for s in r["samples"]]) for r in records])
      metrics[n]["mean_score"] = float(per_q.mean())
      metrics[n]["mean_score_ci"] = list(bootstrap_ci(per_q, **stats))
  levels = {}
  level_of = [r.get("level") for r in records]
  for level in sorted({lv for lv in level_of if lv is not None}, key=str):
    keep = np.array([lv == level for lv in level_of])
    levels[str(level)] = {"num_questions": int(keep.sum()), **summarize(
        {n: c[keep] for n, c in correct.items()}, {n: c[keep] for n, c in cons.items()},
        **stats)}
  samples = [s for r in records for s in r["samples"]]
  completions = [s["completion"] for s in samples]
  lengths = np.array([s["length"] for s in samples], np.int64)
  finished = np.array([s["finished"] for s in samples], bool)
  main = "strict" if "strict" in correct else names[0]
  analysis = analysis_lib.r1_analysis(completions, lengths, correct[main].reshape(-1) >= FULL_CREDIT,
                                      finished, max_new_tokens=max_new_tokens)
  analysis["correct_by"] = main
  # The correct-vs-wrong split by every accuracy: a model that ignores the answer format has
  # no strict-correct answers, and its lenient split is the informative one.
  analysis["by_accuracy"] = {n: analysis_lib.correct_vs_wrong(
      completions, lengths, correct[n].reshape(-1) >= FULL_CREDIT) for n in names}
  return metrics, levels, analysis


def rebuild(out_dir: str | os.PathLike, *, plots: bool = True) -> Report:
  """Recomputes a written report (report.json, plots) from its samples.jsonl; returns it.

  Grades are read, not re-graded; metrics, intervals and the R1 analyses are recomputed with
  the bootstrap settings the report was written with, so reports written by older versions get
  the current analyses without sampling again. A folder whose evaluation has not finished
  (only its journal, JOURNAL_FILE, is there) gets a report of the questions finished so far,
  marked `info["partial"]`; rerunning the evaluation still resumes and replaces it.
  """
  out_dir = os.fspath(out_dir)
  report_path = os.path.join(out_dir, REPORT_FILE)
  journal_path = os.path.join(out_dir, JOURNAL_FILE)
  if os.path.exists(journal_path):  # Removed when an evaluation finishes: this one has not.
    return _rebuild_partial(out_dir, journal_path, plots=plots)
  try:
    with open(report_path, encoding="utf-8") as f:
      old = json.load(f)
    with open(os.path.join(out_dir, SAMPLES_FILE), encoding="utf-8") as f:
      records = [json.loads(line) for line in f if line.strip()]
  except FileNotFoundError as e:
    raise FileNotFoundError(f"{out_dir!r} holds no evaluation ({e.filename} is missing); "
                            f"`r1jax eval --out DIR` writes {REPORT_FILE} and "
                            f"{SAMPLES_FILE}") from None
  if len(records) != old["num_questions"]:
    raise ValueError(f"{out_dir!r}: {SAMPLES_FILE} has {len(records)} questions but "
                     f"{REPORT_FILE} says {old['num_questions']}")
  info = old.get("info", {})
  metrics, levels, analysis = summarize_records(
      records, max_new_tokens=old["sampling"]["max_new_tokens"],
      num_resamples=info.get("num_resamples", 1000), seed=info.get("seed", 0),
      confidence=info.get("confidence", 0.95))
  report = Report(old["task"], old["num_questions"], old["k"], old["sampling"], metrics, levels,
                  analysis, old["timing"], records, info)
  report.write(out_dir, plots=plots)
  return report


def _rebuild_partial(out_dir: str, journal_path: str, *, plots: bool) -> Report:
  """The report of an unfinished evaluation's completed batches.

  Its intervals use the default bootstrap (1000 resamples, seed 0, 95%); `info["key"]` is the
  sampling key the journal was written with.
  """
  settings, records, elapsed = eval_journal.Journal.read(journal_path)
  if not records:
    raise ValueError(f"{journal_path!r} has no finished batch yet; nothing to report")
  metrics, levels, analysis = summarize_records(
      records, max_new_tokens=settings["sampling"]["max_new_tokens"])
  q = len(records)
  timing = _timing(records, elapsed, first_batch_s=None, resumed=0)
  keys = ("model", "checkpoint_step", "task_args", "limit", "chat", "batch_size")
  info = {k: settings[k] for k in keys if k in settings}
  info.update({"seed": 0, "key": settings.get("key"), "num_resamples": 1000, "confidence": 0.95,
               "partial": {"questions_done": q, "num_questions": settings.get("num_questions")}})
  report = Report(settings["task"], q, settings["k"], settings["sampling"], metrics, levels,
                  analysis, timing, records, info)
  report.write(out_dir, plots=plots)
  return report


def _questions_digest(examples: Sequence[Example], task: Task, tokenizer: Any,
                      chat: bool) -> str:
  """sha256 of the questions as the model sees them and as they are graded."""
  h = hashlib.sha256()
  for ex in examples:
    text = task.render(ex, tokenizer if chat else None)
    h.update(json.dumps([text, ex.get("answer")], default=_jsonable).encode())
  return h.hexdigest()


def _question_record(index: int, ex: Example, ro: rollout_lib.Rollouts, p: int,
                     grades: Mapping[str, np.ndarray], voters: Mapping[str, Voter],
                     task: Task, scores: Mapping[str, np.ndarray] | None = None
                     ) -> dict[str, Any]:
  """One line of samples.jsonl: the question, its gold, every sample, and the majority vote."""
  r = ro.num_samples
  samples, answers = [], {name: [] for name in voters}
  for j in range(r):
    row = p * r + j
    text = ro.completions[row]
    sample = {"completion": text, "length": int(ro.lengths[row]),
              "finished": bool(ro.finished[row]),
              "grades": {name: float(v[p, j]) for name, v in grades.items()}, "answers": {}}
    if scores is not None:
      sample["scores"] = {name: float(v[p, j]) for name, v in scores.items()}
    for name, voter in voters.items():
      answers[name].append(voter.extract(task.response(text)))
      sample["answers"][name] = answers[name][-1]
    samples.append(sample)
  cons = {}
  for name, voter in voters.items():
    if name not in grades:
      continue
    first, votes = majority_vote(answers[name], same=voter.same)
    cons[name] = {"answer": None if first is None else answers[name][first], "votes": votes,
                  "correct": 0.0 if first is None else float(grades[name][p, first])}
  record = {"index": index, "id": ex.get("id"), "question": ex.get("question"),
            "gold": ex.get("answer"), "prompt_tokens": len(ro.prompt_ids[p]),
            "pass@1": {name: float(v[p].mean()) for name, v in grades.items()},
            "cons": cons, "samples": samples}
  if ex.get("level") is not None:
    record["level"] = ex["level"]
  return record
