"""Config discovery: field comments read from the source, `r1jax train --print-config` and
`--help`, one key of a dict field from `--set`, `r1jax eval --experiment`, and chat-template
keyword arguments from the config and the command line."""

import dataclasses
import json
import os
import textwrap

import jax
import pytest

from r1jax import cli, config as config_lib, config_doc, eval_run, train
from r1jax.data import miniature, templates
from r1jax.models import ModelConfig, transformer
from r1jax.run_config import Config
from r1jax.tokenizer import byte_tokenizer

_MINIATURE = os.path.join(os.path.dirname(__file__), "..", "experiments", "miniature.py")


@dataclasses.dataclass(frozen=True)
class _Base:
  alpha: int = 1  # Trailing comment.
  # A comment block above,
  # two lines long.
  beta: str = "x"


@dataclasses.dataclass(frozen=True)
class _Child(_Base):
  gamma: float = 0.5  # The child's own field.
  delta: tuple[int, ...] = (1, 2)
  inner: _Base = _Base()  # A nested section.


def test_field_comments_come_from_the_source_with_bases_and_blocks():
  assert config_doc.field_comments(_Child) == {
      "alpha": "Trailing comment.", "beta": "A comment block above, two lines long.",
      "gamma": "The child's own field.", "inner": "A nested section."}
  keys = [(k, c, s) for k, _, c, s in config_doc.describe(_Child())]
  assert keys == [("alpha", "Trailing comment.", False),
                  ("beta", "A comment block above, two lines long.", False),
                  ("gamma", "The child's own field.", False), ("delta", "", False),
                  ("inner", "A nested section.", True),
                  ("inner.alpha", "Trailing comment.", False),
                  ("inner.beta", "A comment block above, two lines long.", False)]


def test_every_config_field_carries_a_comment():
  """The design asks for a comment on every field; --print-config and --help show them."""
  described = list(config_doc.describe(Config()))
  assert [k for k, _, _, section in described if not section] == config_lib.flat_keys(Config())
  assert [k for k, _, comment, _ in described if not comment] == []


def test_print_config_shows_resolved_values_with_comments(capsys):
  code = cli.main(["train", _MINIATURE, "--debug", "--print-config", "--set", "optim.lr=3e-6",
                   "--set", "task_args.seed=5", "--set",
                   "chat_template_kwargs.enable_thinking=false"])
  assert code == 0
  out = capsys.readouterr().out.splitlines()
  lines = {l.split(" = ")[0]: l for l in out if " = " in l}
  assert set(lines) == set(config_lib.flat_keys(Config()))  # every key, once
  assert lines["optim.lr"].split("#")[0].split(" = ")[1].strip() == "3e-06"
  assert lines["optim.lr"].endswith("# Peak learning rate (R1-Zero: 3e-6).")
  assert '"seed": 5' in lines["task_args"] and '"digits": 4' in lines["task_args"]
  assert '{"enable_thinking": false}' in lines["chat_template_kwargs"]
  assert lines["sft.steps"].startswith("sft.steps = 5 ")  # the debug config's value
  assert "# grpo: The objective (num_samples is R)." in out


def test_train_help_lists_every_override_key(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["train", "--help"])
  assert exit_info.value.code == 0
  out = capsys.readouterr().out
  assert "--print-config" in out
  listed = [l.split()[0] for l in out.split("config keys (")[1].splitlines()[1:] if l.strip()]
  assert listed == config_lib.flat_keys(Config())
  assert "grpo.kl_coef" in out and "chat_template_kwargs" in out


def test_set_one_key_of_a_dict_field_keeps_the_others():
  cfg = Config(task_args={"digits": 3, "fields": {"question": "q"}})
  cfg = config_lib.apply_overrides(cfg, config_lib.parse_set_args([
      "task_args.path=/data/train.parquet", "task_args.fields.answer=gold",
      "task_args.levels=[4, 5]", "task_args.shuffle=false", "task_args.digits=4",
      "eval_task_args.seed=1"]))
  assert cfg.task_args == {"digits": 4, "fields": {"question": "q", "answer": "gold"},
                           "path": "/data/train.parquet", "levels": [4, 5], "shuffle": False}
  assert cfg.eval_task_args == {"seed": 1}
  with pytest.raises(config_lib.ConfigError, match="inside 'digits', which holds 4"):
    config_lib.override(cfg, "task_args.digits.x", "1")
  with pytest.raises(config_lib.ConfigError, match="unknown config key 'task_argz.path'"):
    config_lib.override(cfg, "task_argz.path", "x")


def test_set_share_prompts_and_minibatch_size_in_either_order():
  # 4 prompts x 8 samples in micro-batches of 4 rows: not whole groups, so share_prompts
  # alone is refused; with minibatch_size 8 it holds, whichever --set comes first.
  base = Config(prompts_per_step=4, minibatch_size=4,
                grpo=dataclasses.replace(Config().grpo, num_samples=8))
  with pytest.raises(ValueError, match="share_prompts needs whole groups"):
    config_lib.override(base, "share_prompts", "true")
  pairs = [("share_prompts", "true"), ("minibatch_size", "8")]
  for order in (pairs, pairs[::-1]):
    cfg = config_lib.apply_overrides(base, config_lib.parse_set_args(f"{k}={v}" for k, v in order))
    assert (cfg.share_prompts, cfg.minibatch_size) == (True, 8)


# --- chat-template keyword arguments ---------------------------------------------------------

_THINK_TEMPLATE = ("{% for m in messages %}Q:{{ m['content'] }}={% endfor %}"
                   "{% if enable_thinking is defined and not enable_thinking %}<think></think>"
                   "{% endif %}")


def test_chat_template_kwargs_reach_every_render_and_calls_win():
  tok = byte_tokenizer()
  tok.chat_template = _THINK_TEMPLATE
  chat = templates.ChatTemplate(system_in_user=False)
  example = {"question": "1+1", "answer": "2",
             "messages": [{"role": "user", "content": "1+1"}]}
  assert chat.render(example, tok) == "Q:1+1="
  tok.chat_template_kwargs = {"enable_thinking": False}
  assert chat.render(example, tok) == "Q:1+1=<think></think>"
  assert tok.apply_chat_template(example["messages"], enable_thinking=True) == "Q:1+1="


def test_train_takes_chat_template_kwargs_from_the_config(tmp_path):
  cfg = Config(tokenizer_path="bytes", model=ModelConfig(vocab_size=264),
               chat_template_kwargs={"enable_thinking": False})
  _, _, tok = train.load_policy(cfg, tmp_path, jax.random.key(0))
  assert tok.chat_template_kwargs == {"enable_thinking": False}


_EXPERIMENT = '''
import dataclasses

from r1jax.data import tasks, templates
from r1jax.run_config import Config


@dataclasses.dataclass(frozen=True)
class TurnTemplate(templates.Template):
  name: str = "turn"

  def render(self, example, tokenizer=None):
    return templates.apply_chat_template(tokenizer, [{"role": "user",
                                                      "content": example["question"]}])


@tasks.register_task("sums_in_turns")
def sums_in_turns(*, seed: int = 0, size: int | None = None):
  base = tasks.get_task("miniature", seed=seed, size=size)
  return dataclasses.replace(base, name="sums_in_turns", template=TurnTemplate())


def get_config():
  return Config(task="sums_in_turns", task_args={"seed": 0},
                eval_task_args={"seed": 1, "size": 4}, chat=True%s)
'''


def test_eval_experiment_registers_its_tasks_and_passes_chat_template_kwargs(tmp_path, capsys):
  model_cfg = ModelConfig(vocab_size=32)
  folder = tmp_path / "model"
  from r1jax.models import weights
  weights.save_hf(model_cfg, jax.jit(lambda k: transformer.init(model_cfg, k))(
      jax.random.key(0)), folder)
  miniature.write_tokenizer(folder)
  (folder / "chat_template.jinja").write_text(_THINK_TEMPLATE)
  plain = tmp_path / "plain_experiment.py"
  plain.write_text(textwrap.dedent(_EXPERIMENT % ""))
  no_think = tmp_path / "no_think_experiment.py"
  no_think.write_text(textwrap.dedent(
      _EXPERIMENT % ', chat_template_kwargs={"enable_thinking": False}'))
  common = ["--model", str(folder), "--k", "1", "--temperature", "0", "--max-new-tokens", "4",
            "--batch-size", "4", "--no-progress", "--bootstrap", "10"]

  # Without --experiment the task is unknown (refused before the model loads).
  assert cli.main(["eval", "--task", "sums_in_turns", *common]) == 2
  assert "unknown task 'sums_in_turns'" in capsys.readouterr().err

  def evaluate(experiment, *extra):
    out = tmp_path / f"out{len(os.listdir(tmp_path))}"
    assert cli.main(["eval", "--experiment", str(experiment), *common, "--out", str(out),
                     *extra]) == 0
    report = json.loads((out / "report.json").read_text())
    completions = [[s["completion"] for s in json.loads(line)["samples"]]
                   for line in (out / "samples.jsonl").read_text().splitlines()]
    return report, completions

  base, base_out = evaluate(plain)
  assert base["task"] == "sums_in_turns" and base["num_questions"] == 4
  assert base["info"]["task_args"] == {"seed": 1, "size": 4}  # the held-out options
  assert "chat_template_kwargs" not in base["info"]
  from_cli, cli_out = evaluate(plain, "--chat-template-kwarg", "enable_thinking=false")
  from_cfg, cfg_out = evaluate(no_think)
  on, on_out = evaluate(no_think, "--chat-template-kwarg", "enable_thinking=true")
  assert from_cli["info"]["chat_template_kwargs"] == {"enable_thinking": False}
  assert from_cfg["info"]["chat_template_kwargs"] == {"enable_thinking": False}
  assert on["info"]["chat_template_kwargs"] == {"enable_thinking": True}  # the CLI wins
  # Greedy continuations of the same random model: the prompts ending in <think></think>
  # continue otherwise than the plain ones.
  assert cli_out == cfg_out and base_out == on_out and cli_out != base_out
