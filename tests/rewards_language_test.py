"""Tests for r1jax.rewards.language: R1's language-consistency reward."""

import pytest

from r1jax.rewards.language import (LanguageConsistency, chain_of_thought,
                                    language_consistency)


def test_pure_english_reasoning_scores_one():
  text = "<think>First add the two numbers, then divide by x.</think><answer>4</answer>"
  assert language_consistency(text, "en") == 1.0


def test_mixed_reasoning_scores_the_share_of_target_words():
  # 4 English words and 4 Han characters.
  text = "<think>we need the answer 答案是四</think><answer>4</answer>"
  assert language_consistency(text, "en") == pytest.approx(4 / 8)
  assert language_consistency(text, "zh") == pytest.approx(4 / 8)


def test_words_glued_across_scripts_are_split():
  assert language_consistency("<think>the答案</think>", "en") == pytest.approx(1 / 3)


def test_maths_code_numbers_and_single_letters_are_not_words():
  text = ("<think>Let $\\alpha + \\beta = 3$ and x = 2, so `print(sum)` gives 12 "
          "\\frac{1}{2}</think>")
  # Counted: Let, and, so, gives.
  assert language_consistency(text, "en") == 1.0
  assert language_consistency(text, "ru") == 0.0


def test_other_languages_by_script():
  assert language_consistency("<think>Сначала сложим числа</think>", "ru") == 1.0
  assert language_consistency("<think>まず数を足す</think>", "ja") == 1.0
  assert language_consistency("<think>먼저 더하기</think>", "ko") == 1.0
  assert language_consistency("<think>Сначала сложим числа</think>", "en") == 0.0


def test_answer_text_is_not_part_of_the_chain_of_thought():
  text = "<think>add them up</think><answer>答案是四</answer>"
  assert chain_of_thought(text) == "add them up"
  assert language_consistency(text, "en") == 1.0
  assert chain_of_thought("no tags, answer follows <answer>4</answer>") == (
      "no tags, answer follows ")
  assert chain_of_thought("prompt ended with think. reasoning</think><answer>") == (
      "prompt ended with think. reasoning")


def test_no_words_scores_zero():
  assert language_consistency("<think>1 + 2 = 3</think>", "en") == 0.0
  assert language_consistency("", "en") == 0.0


def test_unknown_language_is_a_clear_error():
  with pytest.raises(ValueError, match="'xx' is not supported; accepted: .*en"):
    language_consistency("hello", "xx")


def test_reward_fn_takes_the_language_from_the_example():
  fn = LanguageConsistency(lang_key="lang")
  text = "<think>Сначала сложим</think>"
  assert fn(text, {"lang": "ru"}) == 1.0
  assert fn(text, {}) == 0.0  # Falls back to English.
  assert LanguageConsistency("ru")(text, {}) == 1.0
