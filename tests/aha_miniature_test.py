"""The aha-moment miniature's text, reward and metrics (r1jax/data/aha_miniature.py).

The experiment itself (experiments/aha_miniature.py) trains one step of its debug variant in
tests/experiments_test.py; here: the three styles are what the module docstring says, a slip
makes the first pass wrong and the check catches it, the metrics count what they name, and
the stage-1 mix picks checking rarely while teaching it from many rows.
"""

import dataclasses
import tempfile

import numpy as np
import pytest

from r1jax import sft
from r1jax.data import aha_miniature as aha
from r1jax.data import get_task
from r1jax.run_config import SFTConfig
from r1jax.tokenizer import load_tokenizer

_EXAMPLE = {"question": "7139+2197", "answer": "9336", "a": 7139, "b": 2197, "digits": 4}
_SLIP = (False, True, False, False)  # The tens column's carry in is flipped (forgotten).


def _metrics(response):
  task = get_task("aha_miniature")
  return {name: fn(response, _EXAMPLE) for name, fn in task.accuracy_fns.items()}


def test_a_slip_makes_the_first_pass_wrong_and_the_check_says_wait_and_corrects_it():
  right = aha.verify_solution(7139, 2197)
  assert right == "<think>97016|39113|11103|72009?79016|93113|11103|27009|</think>A:09336"
  slipped = aha.verify_solution(7139, 2197, flips=_SLIP)
  # The tens column's check has carry 1 where the first pass wrote 0: wait, then go on.
  assert slipped == ("<think>97016|39012|11103|72009?79016|93113<wait>11103|27009|"
                     "</think>A:09336")
  assert aha.worked_solution(7139, 2197, flips=_SLIP).endswith("A:09326")  # Uncaught: wrong.
  assert _metrics(right) == {"strict": 1.0, "worked": 1.0, "verify": 1.0, "wait": 0.0,
                             "false_wait": 0.0, "slip": 0.0}
  assert _metrics(slipped + "<eos>") == {"strict": 1.0, "worked": 1.0, "verify": 1.0,
                                         "wait": 1.0, "false_wait": 0.0, "slip": 1.0}
  assert _metrics(aha.worked_solution(7139, 2197, flips=_SLIP)) == {
      "strict": 0.0, "worked": 1.0, "verify": 0.0, "wait": 0.0, "false_wait": 0.0,
      "slip": 1.0}
  assert _metrics("A:09336") == {"strict": 1.0, "worked": 0.0, "verify": 0.0, "wait": 0.0,
                                 "false_wait": 0.0, "slip": 0.0}
  # Read by structure: a second pass is a check even where RL turned `?` into `|` (seen in
  # seed 1), and a `<wait>` after agreeing carries flags nothing.
  drifted = right.replace("?", "|")
  assert _metrics(drifted)["verify"] == 1.0 and _metrics(drifted)["slip"] == 0.0
  spurious = right.replace("93113|", "93113<wait>")
  assert _metrics(spurious)["wait"] == 1.0 and _metrics(spurious)["false_wait"] == 1.0


def test_the_reward_reads_only_the_final_answer_of_a_well_formed_response():
  reward = aha.answer_reward
  assert reward("<think>x<wait><wait></think>A:09336", _EXAMPLE) == 1.0
  assert reward("<think>97016</think>A:09326", _EXAMPLE) == 0.0
  assert reward("A:09336A:09336", _EXAMPLE) == 0.0  # Trailing text is not an answer.
  assert reward("<think>97016A:09336", _EXAMPLE) == 0.0  # Unclosed thinking.
  # Each `<wait>` counts: the rate per response is the mean count.
  assert aha.wait_count("<think><wait>?<wait></think>A:1", _EXAMPLE) == 2.0


def test_every_slip_pattern_gives_a_wrong_first_pass_the_check_catches():
  rng = np.random.default_rng(0)
  for _ in range(200):
    a, b = (int(x) for x in rng.integers(1000, 10000, size=2))
    flips = tuple(bool(x) for x in rng.random(4) < 0.5)
    _, result = aha.first_pass(a, b, 4, flips)
    assert (result == a + b) == (not any(flips))
    text = aha.verify_solution(a, b, 4, flips)
    assert text.endswith(f"A:{a + b:05d}") and (aha.WAIT in text) == any(flips)
    # Each check column (6 symbols with its verdict) is 24 symbols after the first pass's.
    body = text[len("<think>"):text.index("</think>")].replace(aha.WAIT, "!")
    first, check = body[:23], body[24:]
    for i in range(4):
      assert (check[6 * i + 5] == "!") == (check[6 * i + 2] != first[6 * i + 2])


def test_cold_start_mix_teaches_checking_but_rarely_picks_it():
  src = aha.ColdStartSource(seed=0, worked_frac=0.5, think_in_prompt=0.67, verify_frac=0.4,
                            check_in_prompt=0.6, slip_rate=0.2)
  rows = [src[i] for i in range(4000)]
  styles = [r["style"] for r in rows]
  assert 0.18 < styles.count("verify") / len(rows) < 0.22  # Many rows teach checking...
  # ...but the choice to check (after a first pass whose `=` or `</think>` is learned) is in
  # few of them: ~20% of the rows that learn that choice.
  learned_check = sum(r["style"] == "verify" and "|" not in r["prompt"] for r in rows)
  learned_stop = sum(r["style"] == "worked" for r in rows)
  assert 0.15 < learned_check / (learned_check + learned_stop) < 0.25
  # The first pass slips on 1 - 0.8^4 = 59% of thinking rows.
  verify = [r for r in rows if r["style"] == "verify"]
  with_wait = np.mean([aha.WAIT in r["completion"] for r in verify])
  assert abs(with_wait - (1 - 0.8 ** 4)) < 0.06
  for r in rows:  # Prompt + completion is always a whole text of its style.
    text = r["prompt"] + r["completion"]
    a, b = (int(x) for x in text[2:text.index("=")].split("+"))
    ex = {"answer": str(a + b), "a": a, "b": b, "digits": 4}
    right = aha.answer_reward(text[text.index("=") + 1:], ex)
    assert right == 1.0 or (r["style"] == "worked" and aha.slip_metric(
        text[text.index("=") + 1:], ex) == 1.0)


def test_criterion_rows_check_a_given_first_pass():
  cfg = SFTConfig(data="aha_miniature", stop_style="verify", heldout_rows=32,
                  data_args={"worked_frac": 0.5, "verify_frac": 0.05})
  rows = sft.heldout_rows(cfg, seed=0)
  assert len(rows) == 32 and {r["style"] for r in rows} == {"verify"}
  for r in rows:
    assert r["prompt"].startswith("Q:") and r["prompt"].endswith("?")
    assert "<think>" in r["prompt"] and r["completion"].endswith("<eos>")


def test_tokenizer_has_one_token_per_symbol_and_round_trips():
  tok = load_tokenizer(aha.write_tokenizer(tempfile.mkdtemp()))
  text = aha.verify_solution(7139, 2197, flips=_SLIP) + "<eos>"
  ids = tok.encode(text)
  assert tok.decode(ids) == text
  assert len(ids) == 58 and ids.count(aha.VOCAB.index(aha.WAIT)) == 1
  assert tok.vocab_size == len(aha.VOCAB) == 22


@pytest.mark.parametrize("kwargs, word", [({"verify_frac": 1.5}, "verify_frac"),
                                          ({"slip_rate": -0.1}, "slip_rate"),
                                          ({"think_in_prompt": 1.0}, "think_in_prompt")])
def test_bad_mix_names_the_bad_value(kwargs, word):
  with pytest.raises(ValueError, match=word):
    aha.ColdStartSource(**kwargs)


def test_bad_style_is_refused():
  with pytest.raises(ValueError, match="style must be"):
    aha.sft_example(_EXAMPLE, style="reflect")
  with pytest.raises(ValueError, match="check_in_prompt"):
    aha.sft_example(_EXAMPLE, style="worked", check_in_prompt=True)


def test_the_notebook_runs_the_experiments_config():
  pytest.importorskip("nbformat")
  import importlib.util  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  import textwrap  # pylint: disable=g-import-not-at-top
  from r1jax import experiment  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parents[1]
  spec = importlib.util.spec_from_file_location("make_notebooks",
                                                root / "notebooks" / "_make_notebooks.py")
  generator = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(generator)
  namespace = {"SMOKE": False}
  exec("import dataclasses\n"  # pylint: disable=exec-used
       "from r1jax.grpo_config import GRPOConfig\n"
       "from r1jax.models.config import ModelConfig\n"
       "from r1jax.run_config import (CheckpointConfig, Config, EvalConfig, OptimConfig,\n"
       "                              SFTConfig)\n"
       "from r1jax.sampler import SamplingConfig\n" + textwrap.dedent(generator.AHA_CONFIG),
       namespace)
  module = experiment.load_experiment(root / "experiments" / "aha_miniature.py")
  assert namespace["CONFIGS"][0] == module.get_config()
  assert namespace["CONFIGS"][1] == dataclasses.replace(module.get_config(), seed=1)
  smoke = namespace["smoke"](module.get_config())
  assert smoke == dataclasses.replace(module.get_debug_config(), tensorboard=False)


def test_the_end_of_run_summary_reports_checking_and_wait(tmp_path):
  from r1jax import run_summary  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  rows = [{"step": s, "eval/sampled/strict": 0.3 + s / 100, "eval/sampled/verify": v,
           "eval/sampled/wait": w} for s, v, w in ((0, 0.05, 0.03), (60, 0.8, 0.41))]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  lines = run_summary.summarize(tmp_path).splitlines()
  assert "  sampled answers that check 5.0% -> 80.0%" in lines
  assert "  sampled <wait> per answer  0.03 -> 0.41" in lines


def test_the_blind_spot_forgets_carries_out_of_big_digit_columns_only():
  assert aha.blind_spot(7139, 2197) == (False, True, False, False)  # 9 + 7: units carry lost.
  assert aha.blind_spot(9999, 5555) == (False, True, True, True)  # The last carry is kept.
  assert aha.blind_spot(1234, 4321) == (False, False, False, False)
  src = aha.ColdStartSource(seed=0, worked_frac=1.0, verify_frac=0.0, slip_rate=0.0,
                            blind_spot=True)
  rows = [src[i] for i in range(2000)]
  # 1 - 0.75^3: a wrong first pass whenever one of the three lower columns has two big digits.
  share = np.mean([not r["completion"].endswith(
      f"A:{sum(map(int, r['prompt'][2:-1].split('+'))):05d}<eos>") for r in rows])
  assert abs(share - (1 - 0.75 ** 3)) < 0.04
  with pytest.raises(ValueError, match="blind_spot"):
    aha.ColdStartSource(blind_spot="yes")
