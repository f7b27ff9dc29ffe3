"""The R1 analyses of an evaluation: response lengths and reflective words, as numbers and plots.

Place in the pipeline: after `r1jax.evaluate` has sampled and graded every completion. The
DeepSeek-R1 papers track how RL changes *how* a model answers, not only how often it is right:
  * the response-length distribution, and the mean length of correct vs wrong answers (long
    wrong answers are often truncated or looping);
  * the rate of reflective words per 1,000 generated tokens (Nature paper, Fig. 9): "wait",
    "mistake", "however", "but", "retry", "error", "verify", "wrong", "evaluate", "check";
  * the share of answers that show their working: a calculation written out with its result
    ("8 + 5 = 13"), which tells a model that works a sum from one that only states a number.
Everything here is host-side numpy over the decoded completions. Plots need matplotlib (an
optional dependency, imported only when a plot is drawn; the Agg backend needs no display).
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

__all__ = ["LENGTH_PLOT", "REFLECTIVE_WORDS", "REFLECTION_PLOT", "correct_vs_wrong",
           "length_stats", "plot",
           "reflective_word_counts", "reflective_word_rates", "r1_analysis", "shows_working",
           "working_share"]

# The reflective words of the DeepSeek-R1 Nature paper, Fig. 9.
REFLECTIVE_WORDS = ("wait", "mistake", "however", "but", "retry", "error", "verify", "wrong",
                    "evaluate", "check")
LENGTH_PLOT = "lengths.png"
REFLECTION_PLOT = "reflective_words.png"

# Whole words only, any case: "But" counts, "butter" and "checkpoint" do not.
_WORD_RE = re.compile(r"\b(" + "|".join(REFLECTIVE_WORDS) + r")\b", re.IGNORECASE)
# A calculation with its result: number, operator, number (more terms allowed), "=", number.
# "x" and the Unicode signs count as operators: small models write "3 x 4 = 12" and "6 ÷ 2".
_WORKING_RE = re.compile(r"\d\s*[-+*/x\u00d7\u00f7]\s*\(?\s*\d"
                         r"[\d\s.,()+*/x\u00d7\u00f7-]*=\s*\$?-?\d")
_PERCENTILES = (10, 25, 50, 75, 90)
_BINS = 20


def reflective_word_counts(texts: Sequence[str]) -> dict[str, int]:
  """How often each reflective word occurs in `texts` (whole words, case-insensitive)."""
  counts = dict.fromkeys(REFLECTIVE_WORDS, 0)
  for text in texts:
    for match in _WORD_RE.finditer(text):
      counts[match.group(1).lower()] += 1
  return counts


def reflective_word_rates(texts: Sequence[str], num_tokens: int) -> dict[str, float]:
  """Occurrences per 1,000 generated tokens of each reflective word, and their "total".

  Args:
    texts: decoded completions.
    num_tokens: generated tokens of those completions together (the rate's denominator, > 0).
  """
  if num_tokens <= 0:
    raise ValueError(f"num_tokens must be positive (the rate is per 1k tokens), got {num_tokens}")
  counts = reflective_word_counts(texts)
  scale = 1000.0 / num_tokens
  rates = {w: c * scale for w, c in counts.items()}
  rates["total"] = sum(counts.values()) * scale
  return rates


def shows_working(text: str) -> bool:
  """Whether `text` writes out a calculation with its result, e.g. "8 + 5 = 13" or "3 x 4=12"."""
  return _WORKING_RE.search(text) is not None


def working_share(texts: Sequence[str]) -> float:
  """The share of `texts` that show their working (`shows_working`); 0 for no texts."""
  return float(np.mean([shows_working(t) for t in texts])) if len(texts) else 0.0


def _mean(x: np.ndarray) -> float | None:
  return float(x.mean()) if x.size else None  # None (JSON null) for an empty group.


def length_stats(lengths: np.ndarray, correct: np.ndarray, finished: np.ndarray, *,
                 max_new_tokens: int) -> dict:
  """The response-length distribution and the mean length of correct vs wrong answers.

  Args:
    lengths: int [N] generated tokens of each completion.
    correct: bool [N] whether each completion is correct.
    finished: bool [N] whether each completion stopped before `max_new_tokens`.
    max_new_tokens: the length budget (the histogram spans [0, max_new_tokens]).
  """
  lengths = np.asarray(lengths, np.float64).reshape(-1)
  correct = np.asarray(correct, bool).reshape(-1)
  finished = np.asarray(finished, bool).reshape(-1)
  edges = np.linspace(0, max_new_tokens, _BINS + 1)
  return {
      "mean": _mean(lengths),
      "max": float(lengths.max()) if lengths.size else None,
      "percentiles": {f"p{q}": float(np.percentile(lengths, q)) for q in _PERCENTILES}
                     if lengths.size else {},
      "correct_mean": _mean(lengths[correct]),
      "wrong_mean": _mean(lengths[~correct]),
      "truncated_frac": _mean(~finished),
      "histogram": {"edges": edges.tolist(),
                    "correct": np.histogram(lengths[correct], edges)[0].tolist(),
                    "wrong": np.histogram(lengths[~correct], edges)[0].tolist()},
  }


def correct_vs_wrong(completions: Sequence[str], lengths: np.ndarray,
                     correct: np.ndarray) -> dict:
  """Count, mean length and reflective-word rate of the correct and of the wrong completions.

  Args:
    completions: N decoded completions.
    lengths: int [N] generated tokens of each.
    correct: bool [N].
  """
  lengths = np.asarray(lengths, np.float64).reshape(-1)
  correct = np.asarray(correct, bool).reshape(-1)
  out = {}
  for group, keep in (("correct", correct), ("wrong", ~correct)):
    texts = [c for c, k in zip(completions, keep) if k]
    tokens = int(lengths[keep].sum())
    out[group] = {"count": int(keep.sum()), "mean_length": _mean(lengths[keep]),
                  "reflective_per_1k_tokens":
                      reflective_word_rates(texts, tokens)["total"] if tokens else None}
  return out


def r1_analysis(completions: Sequence[str], lengths: np.ndarray, correct: np.ndarray,
                finished: np.ndarray, *, max_new_tokens: int) -> dict:
  """Lengths and reflective-word rates (all, correct and wrong completions) as a JSON-able dict.

  Args:
    completions: N decoded completions.
    lengths: int [N] generated tokens of each.
    correct: bool [N].
    finished: bool [N].
    max_new_tokens: the length budget.
  """
  lengths = np.asarray(lengths).reshape(-1)
  correct = np.asarray(correct, bool).reshape(-1)
  if not len(completions) == lengths.size == correct.size:
    raise ValueError(f"completions, lengths and correct must have one entry per completion, "
                     f"got {len(completions)}, {lengths.size} and {correct.size}")
  rates = {}
  for group, keep in (("all", np.ones_like(correct)), ("correct", correct),
                      ("wrong", ~correct)):
    texts = [c for c, k in zip(completions, keep) if k]
    tokens = int(lengths[keep].sum())
    # None (JSON null) when the group generated no tokens: a rate of nothing is undefined.
    rates[group] = reflective_word_rates(texts, tokens) if tokens else None
  return {"length": length_stats(lengths, correct, finished, max_new_tokens=max_new_tokens),
          "reflective_per_1k_tokens": rates, "working_frac": working_share(completions)}


def _figure(**kwargs):
  """A matplotlib Figure outside pyplot: writing PNGs leaves the caller's backend alone.

  So a notebook's inline plots keep working after a run, and no display is needed.
  """
  try:
    from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("the evaluation plots need matplotlib, which is not installed; run "
                      "`pip install matplotlib` (or `pip install r1jax[plots]`)") from None
  return Figure(**kwargs)


def plot(analysis: dict, out_dir: str | os.PathLike, *, title: str = "") -> list[str]:
  """Draws `r1_analysis`'s output as lengths.png and reflective_words.png; returns the paths.

  Raises:
    ImportError: matplotlib is not installed (the message says how to install it).
  """
  _figure()  # Fails early, with the install hint, when matplotlib is missing.
  os.makedirs(out_dir, exist_ok=True)
  paths = []

  hist = analysis["length"]["histogram"]
  edges = np.asarray(hist["edges"])
  fig = _figure(figsize=(7, 4))
  ax = fig.subplots()
  ax.bar(edges[:-1], hist["correct"], width=np.diff(edges), align="edge", alpha=0.7,
         label="correct", color="tab:green")
  ax.bar(edges[:-1], hist["wrong"], width=np.diff(edges), align="edge", alpha=0.5,
         bottom=hist["correct"], label="wrong", color="tab:red")
  for key, color in (("correct_mean", "tab:green"), ("wrong_mean", "tab:red")):
    value = analysis["length"][key]
    if value is not None:
      ax.axvline(value, color=color, linestyle="--",
                 label=f"mean {key.split('_')[0]}: {value:.0f}")
  ax.set_xlabel("response length (tokens)")
  ax.set_ylabel("responses")
  ax.set_title(f"{title} response lengths".strip())
  ax.legend()
  fig.tight_layout()
  paths.append(os.path.join(os.fspath(out_dir), LENGTH_PLOT))
  fig.savefig(paths[-1], dpi=100)

  rates = analysis["reflective_per_1k_tokens"]
  y = np.arange(len(REFLECTIVE_WORDS))
  fig = _figure(figsize=(7, 4))
  ax = fig.subplots()
  height = 0.4
  for offset, group, color in ((-height / 2, "correct", "tab:green"),
                               (height / 2, "wrong", "tab:red")):
    if rates[group] is None:
      continue
    values = [rates[group][w] for w in REFLECTIVE_WORDS]
    ax.barh(y + offset, values, height=height, color=color,
            label=f"{group} (total {rates[group]['total']:.2f})")
  ax.set_yticks(y, REFLECTIVE_WORDS)
  ax.invert_yaxis()
  ax.set_xlim(left=0)
  ax.set_xlabel("occurrences per 1k generated tokens")
  ax.set_title(f"{title} reflective words".strip())
  ax.legend()
  fig.tight_layout()
  paths.append(os.path.join(os.fspath(out_dir), REFLECTION_PLOT))
  fig.savefig(paths[-1], dpi=100)
  return paths
