"""R1's language-consistency reward: the share of the chain of thought in the target language.

Place in the pipeline: an optional named term of a task's combined reward. DeepSeek-R1 saw
its chain of thought mix languages during RL and added a reward equal to the proportion of
target-language words in the CoT. Here the CoT is the text inside `<think>...</think>` (the
whole completion when there is no such block), and a word's language is judged by its script:
this catches the mixing R1 reported (Chinese inside English reasoning) without a dictionary, but
cannot tell English from French, which share the Latin script.

Counting: LaTeX commands, `$...$` maths, code spans and digits are removed first; Han, kana and
Hangul characters count one word each (those scripts do not separate words with spaces); in other
scripts a word is a run of letters of length >= 2 (single letters are mostly variables). The
reward is target words / all words, and 0.0 for a CoT with no words.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

__all__ = ["LANGUAGE_SCRIPTS", "LanguageConsistency", "language_consistency"]

# Language code -> the scripts its words are written in.
LANGUAGE_SCRIPTS = {
    **{code: ("latin",) for code in ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da",
                                       "no", "fi", "pl", "cs", "tr", "id", "vi", "ro", "hu")},
    "zh": ("han",), "ja": ("han", "kana"), "ko": ("hangul", "han"),
    "ru": ("cyrillic",), "uk": ("cyrillic",), "bg": ("cyrillic",), "el": ("greek",),
    "ar": ("arabic",), "fa": ("arabic",), "he": ("hebrew",), "hi": ("devanagari",),
    "th": ("thai",),
}

_STRIP = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|\\[A-Za-z]+|\d+", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+")
_SINGLE_CHAR_SCRIPTS = ("han", "kana", "hangul")


def _script(ch: str) -> str:
  cp = ord(ch)
  if cp < 0x250 or 0x1E00 <= cp <= 0x1EFF:
    return "latin"
  if 0x370 <= cp <= 0x3FF or 0x1F00 <= cp <= 0x1FFF:
    return "greek"
  if 0x400 <= cp <= 0x52F:
    return "cyrillic"
  if 0x590 <= cp <= 0x5FF:
    return "hebrew"
  if 0x600 <= cp <= 0x6FF or 0x750 <= cp <= 0x77F:
    return "arabic"
  if 0x900 <= cp <= 0x97F:
    return "devanagari"
  if 0xE00 <= cp <= 0xE7F:
    return "thai"
  if 0x3040 <= cp <= 0x30FF:
    return "kana"
  if 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF:
    return "hangul"
  if 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FFFF:
    return "han"
  return "other"


def chain_of_thought(text: str) -> str:
  """The `<think>...</think>` content, else the text before `<answer>`, else all of it."""
  start = text.find("<think>")
  end = text.find("</think>")
  if end >= 0:
    return text[start + len("<think>") if 0 <= start < end else 0:end]
  answer = text.find("<answer>")
  return text[:answer] if answer >= 0 else text


def language_consistency(text: str, lang: str = "en") -> float:
  """The share of the chain of thought's words written in `lang`'s script (docstring)."""
  if lang not in LANGUAGE_SCRIPTS:
    raise ValueError(f"language {lang!r} is not supported; accepted: "
                     f"{', '.join(sorted(LANGUAGE_SCRIPTS))}.")
  target = LANGUAGE_SCRIPTS[lang]
  cot = _STRIP.sub(" ", chain_of_thought(str(text)))
  total = hits = 0
  for m in _WORD.finditer(cot):
    word = m.group()
    # Split a run at script changes ("the答案" is two words) and count CJK per character.
    run_start = 0
    for k in range(1, len(word) + 1):
      if k < len(word) and _script(word[k]) == _script(word[run_start]):
        continue
      script = _script(word[run_start])
      n = k - run_start
      count = n if script in _SINGLE_CHAR_SCRIPTS else (1 if n >= 2 else 0)
      total += count
      if script in target:
        hits += count
      run_start = k
  return hits / total if total else 0.0


@dataclasses.dataclass(frozen=True)
class LanguageConsistency:
  """A RewardFn: `language_consistency` of the completion in `lang` (or example[lang_key])."""
  lang: str = "en"
  lang_key: str | None = None

  def __call__(self, completion: str, example: Mapping[str, Any]) -> float:
    lang = example.get(self.lang_key, self.lang) if self.lang_key else self.lang
    return language_consistency(completion, lang)
