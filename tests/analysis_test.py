"""Tests for r1jax.analysis: the share of answers that show their working."""

import numpy as np

from r1jax import analysis


def test_a_written_calculation_with_its_result_is_working():
  for text in ("Ben has 5 + 7 = 12 stickers now.", "3 x 4 = 12", "6 \u00f7 2 = 3",
               "(3 + 5) * 2 = 16", "12 - 4 - 3 = 5", "5*3=15", "so 9 - 2 = $7 left"):
    assert analysis.shows_working(text), text


def test_a_bare_number_a_date_or_an_equation_without_an_operator_is_not_working():
  for text in ("Ben has 12 stickers.", "The answer is 2 = 2", "2024-05-12", "",
               "Add 5 and 7 to get 12.", "5 + 7"):
    assert not analysis.shows_working(text), text


def test_working_share_counts_texts_and_r1_analysis_reports_it():
  texts = ["4 + 4 = 8", "It is 8.", "8", "2 + 6 = 8"]
  assert analysis.working_share(texts) == 0.5
  assert analysis.working_share([]) == 0.0
  report = analysis.r1_analysis(texts, np.array([5, 3, 1, 5]), np.ones(4, bool),
                                np.ones(4, bool), max_new_tokens=8)
  assert report["working_frac"] == 0.5
