"""Tests for r1jax.data.tasks and templates: real file formats, prompts, rewards, registry."""

import json
import pickle

import pytest

from r1jax import config
from r1jax.data import tasks
from r1jax.data import templates
from tests import data_sources_test

# A small ChatML template (SmolLM2's shape) for the chat-template variant.
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _jsonl(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
  return path


def _answer(text, think="reasoning"):
  return f"<think> {think} </think> <answer> {text} </answer>"


@pytest.fixture
def gsm8k_file(tmp_path):
  # The original GSM8K shape: worked solution with <<calculator>> notes, gold after "####".
  return _jsonl(tmp_path / "gsm8k.jsonl", [
      {"question": "Tom has 1,000 apples and buys 234 more. How many?",
       "answer": "1000 + 234 = <<1000+234=1234>>1234\n#### 1,234"},
      {"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"},
      {"question": "What is 10 - 3?", "answer": "10 - 3 = 7\n#### 7"},
  ])


@pytest.fixture
def chat_tokenizer(tmp_path):
  tokenizers = pytest.importorskip("tokenizers")
  from r1jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top
  tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(
      {"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2}, unk_token="[UNK]"))
  tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
  folder = tmp_path / "tok"
  folder.mkdir()
  tok.save(str(folder / "tokenizer.json"))
  (folder / "tokenizer_config.json").write_text(json.dumps(
      {"chat_template": CHATML, "eos_token": "<|im_end|>"}), encoding="utf-8")
  return load_tokenizer(folder)


def test_gsm8k_reads_the_original_format_and_grades_answers(gsm8k_file):
  task = tasks.get_task("gsm8k", path=gsm8k_file)
  ex = task.source[0]
  assert ex["answer"] == "1234" and ex["question"].startswith("Tom has")
  prompt = task.render(ex)
  assert prompt.startswith(templates.R1_ZERO_INSTRUCTION)
  assert prompt.endswith(f"User: {ex['question']} Assistant:")
  assert set(task.reward_fns) == {"accuracy", "format"}
  assert task.rewards(_answer("1234"), ex) == {"accuracy": 1.0, "format": 1.0}
  assert task.rewards(_answer("1235"), ex) == {"accuracy": 0.0, "format": 1.0}
  assert task.rewards("the answer is 1234", ex)["format"] == 0.0
  assert task.reward(_answer("1234"), ex) == pytest.approx(1.0 + 0.1)
  assert task.reward_fns["format"][1] == 0.1


def test_task_scores_a_batch_with_each_term_logged(gsm8k_file):
  task = tasks.get_task("gsm8k", path=gsm8k_file, format_weight=0.5)
  examples = [task.source[i] for i in range(3)]
  completions = [_answer("1234"), _answer("6"), "7"]
  scores = task.score(completions, examples)
  assert scores.per_term["accuracy"].tolist() == [1.0, 0.0, 0.0]
  assert scores.per_term["format"].tolist() == [1.0, 1.0, 0.0]
  assert scores.total.tolist() == [1.5, 0.5, 0.0]
  assert scores.errors == {"accuracy": 0, "format": 0}


def test_gsm8k_from_prepared_tfds_matches_the_jsonl_task(gsm8k_file, tmp_path):
  data_sources_test.prepare_tfds_gsm8k(tmp_path / "tfds", gsm8k_file)
  from_tfds = tasks.get_task("gsm8k", tfds_split="train", tfds_data_dir=tmp_path / "tfds")
  from_jsonl = tasks.get_task("gsm8k", path=gsm8k_file)

  def triples(task):
    rows = [task.source[i] for i in range(len(task.source))]
    return sorted((e["question"], e["answer"], e["solution"]) for e in rows)

  assert triples(from_tfds) == triples(from_jsonl)
  # Field maps are plain functions, so even a TFDS-backed task pickles into worker processes.
  assert triples(pickle.loads(pickle.dumps(from_tfds))) == triples(from_jsonl)
  with pytest.raises(ValueError, match="either path= or tfds_split="):
    tasks.get_task("gsm8k", path=gsm8k_file, tfds_split="train")


def test_gsm8k_line_without_final_answer_is_reported(tmp_path):
  path = _jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "no marker here"}])
  with pytest.raises(ValueError, match=rf"{path}:1: cannot build 'answer'.*####"):
    tasks.get_task("gsm8k", path=path)


def test_gsm8k_needs_a_path_or_a_tfds_split():
  with pytest.raises(ValueError, match="pass path="):
    tasks.get_task("gsm8k")


def test_gsm8k_gold_and_last_boxed():
  assert tasks.gsm8k_gold("work\n#### 1,234,567") == "1234567"
  assert tasks.gsm8k_gold("a #### b\n#### -3") == "-3"
  assert tasks.last_boxed(r"so \boxed{1} or \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
  assert tasks.last_boxed(r"\boxed{\{1, 2\}} then \fbox{x^{2}}") == "x^{2}"
  # The last box decides: an unclosed one means no answer (rewards.math_boxed).
  assert tasks.last_boxed(r"\boxed{1} and \boxed{unclosed") is None
  assert tasks.last_boxed("no box") is None


def test_math_reads_answer_or_boxed_solution_and_levels(tmp_path):
  path = _jsonl(tmp_path / "math.jsonl", [
      {"problem": "Half of 1?", "solution": r"It is $\boxed{\frac{1}{2}}$.", "level": "Level 2",
       "type": "Algebra"},
      {"problem": "P2", "solution": "...", "answer": "7", "level": 4, "subject": "Geometry",
       "unique_id": "test/geometry/1.json"},
      {"problem": "P3", "solution": r"\boxed{3}", "level": "Level ?"},
  ])
  task = tasks.get_task("math", path=path)
  got = [(task.source[i]["answer"], task.source[i]["level"], task.source[i]["subject"])
         for i in range(3)]
  assert got == [(r"\frac{1}{2}", 2, "Algebra"), ("7", 4, "Geometry"), ("3", None, None)]
  assert task.source[1]["id"] == "test/geometry/1.json"
  assert task.source[0]["id"] == f"{path}:1"
  hard = tasks.get_task("math", path=path, levels=[4, 5])
  assert len(hard.source) == 1
  with pytest.raises(ValueError, match="is empty"):
    tasks.get_task("math", path=path, levels=[5])


def test_math_accuracy_reports_strict_and_lenient(tmp_path):
  path = _jsonl(tmp_path / "math.jsonl", [{"problem": "Half of 1?", "answer": r"\frac{1}{2}"}])
  task = tasks.get_task("math", path=path)
  ex = task.source[0]
  completions = [_answer("0.5"), r"so it is \boxed{\frac12}", "so it is 0.5", "it is 2"]
  acc = task.accuracy(completions, [ex] * 4)
  # Strict grading reads <answer> or \boxed{} only; lenient also takes the last number.
  assert acc["strict"].tolist() == [1.0, 1.0, 0.0, 0.0]
  assert acc["lenient"].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_math_record_without_any_answer_is_reported(tmp_path):
  path = _jsonl(tmp_path / "m.jsonl", [{"problem": "p", "solution": "no box"}])
  with pytest.raises(ValueError, match=rf"{path}:1: cannot build 'answer'.*no \\boxed"):
    tasks.get_task("math", path=path)


def test_aime_reads_problem_or_question_and_integer_answers(tmp_path):
  path = _jsonl(tmp_path / "aime.jsonl", [
      {"id": 60, "problem": "Find x.", "question": "Find x.", "answer": "204"},
      {"id": 61, "question": "Find y.", "answer": 33},
  ])
  task = tasks.get_task("aime", path=path)
  assert [(task.source[i]["question"], task.source[i]["answer"], task.source[i]["id"])
          for i in range(2)] == [("Find x.", "204", 60), ("Find y.", "33", 61)]
  assert task.rewards(_answer("33"), task.source[1])["accuracy"] == 1.0


def test_parquet_files_are_read_by_extension(tmp_path):
  pa = pytest.importorskip("pyarrow")
  pq = pytest.importorskip("pyarrow.parquet")
  rows = [{"problem": f"P{i}", "answer": str(i), "level": 3} for i in range(3)]
  pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
  task = tasks.get_task("math", path=tmp_path / "m.parquet")
  assert [task.source[i]["answer"] for i in range(3)] == ["0", "1", "2"]


def test_countdown_task_rewards_the_reference_equation():
  task = tasks.get_task("countdown", seed=3)
  for i in range(10):
    ex = task.source[i]
    assert task.rewards(_answer(ex["answer"]), ex) == {"accuracy": 1.0, "format": 1.0}
    wrong = f"{ex['answer']} + {ex['numbers'][0]}"  # Reuses a number and misses the target.
    assert task.rewards(_answer(wrong), ex)["accuracy"] == 0.0
    assert task.accuracy([_answer(ex["answer"])], [ex])["strict"].tolist() == [1.0]


def test_arithmetic_task_grades_the_exact_sum():
  task = tasks.get_task("arithmetic", digits=6, seed=1)
  ex = task.source[0]
  assert task.rewards(_answer(ex["answer"]), ex)["accuracy"] == 1.0
  assert task.rewards(_answer(str(int(ex["answer"]) + 1)), ex)["accuracy"] == 0.0


def test_lenient_reward_grading_rewards_a_right_last_number_in_prose():
  strict = tasks.get_task("arithmetic", digits=1, seed=1)
  lenient = tasks.get_task("arithmetic", digits=1, seed=1, reward_grading="lenient")
  ex = strict.source[0]
  prose = f"I add them: the total is {ex['answer']}."
  assert strict.rewards(prose, ex)["accuracy"] == 0.0
  assert lenient.rewards(prose, ex)["accuracy"] == 1.0
  assert lenient.rewards(f"It is {int(ex['answer']) + 1}.", ex)["accuracy"] == 0.0
  # Both gradings are still reported, whichever one the reward uses.
  graded = lenient.accuracy([prose], [ex])
  assert {k: v.tolist() for k, v in graded.items()} == {"strict": [0.0], "lenient": [1.0]}
  with pytest.raises(ValueError, match="reward_grading must be one of"):
    tasks.get_task("arithmetic", reward_grading="loose")
  # Grading is presentation: a held-out split must still change the seed.
  with pytest.raises(ValueError, match="training examples"):
    tasks.check_eval_split("arithmetic", {"seed": 0}, {"reward_grading": "lenient"})


def test_lenient_reward_pays_only_the_last_number_so_lists_and_echoes_earn_nothing():
  # Attacks a policy could find against "the last number is the answer": copy the prompt, or
  # list every candidate so the right one appears somewhere, or state it and trail on.
  lenient = tasks.get_task("arithmetic", digits=1, seed=1, reward_grading="lenient")
  ex = next(lenient.source[i] for i in range(64)
            if lenient.source[i]["answer"] not in map(str, lenient.source[i]["operands"]))
  answer = int(ex["answer"])
  assert lenient.rewards(lenient.render(ex), ex)["accuracy"] == 0.0  # The prompt echoed.
  every = ", ".join(str(n) for n in range(answer + 5)) + f", or {answer + 5}"
  assert answer in range(answer + 5) and lenient.rewards(every, ex)["accuracy"] == 0.0
  assert lenient.rewards(f"It is {answer}, found in 2 steps.", ex)["accuracy"] == 0.0
  assert lenient.rewards(f"It is {answer}, found in two steps.", ex)["accuracy"] == 1.0


def test_qwen_math_template_asks_for_boxed_and_drops_the_format_reward(gsm8k_file):
  task = tasks.get_task("gsm8k", path=gsm8k_file, template="qwen_math")
  ex = task.source[1]
  prompt = task.render(ex)
  assert prompt == ("<|im_start|>system\nPlease reason step by step, and put your final answer "
                    "within \\boxed{}.<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"
                    "<|im_start|>assistant\n")
  assert set(task.reward_fns) == {"accuracy"}
  assert task.rewards(r"2 + 3 = 5, so \boxed{5}", ex) == {"accuracy": 1.0}


def test_think_prefill_counts_toward_the_format_reward(gsm8k_file):
  template = templates.get_template("r1_zero", think_prefill=True)
  task = tasks.get_task("gsm8k", path=gsm8k_file, template=template)
  ex = task.source[1]
  assert task.render(ex).endswith("Assistant: <think>")
  completion = " 2 plus 3 </think> <answer> 5 </answer>"  # The model continues after <think>.
  assert task.rewards(completion, ex) == {"accuracy": 1.0, "format": 1.0}


def test_a_template_given_as_a_mapping_survives_a_json_round_trip():
  # Config task_args are JSON: the mapping form, and a dumped Template, name the same template.
  spec = {"name": "r1_zero", "think_prefill": True}
  dumped = json.loads(json.dumps(config.to_dict(templates.get_template(spec))))
  for form in (spec, dumped):
    task = tasks.get_task("countdown", template=form)
    assert task.render(task.source[0]).endswith("Assistant: <think>")
    assert task.template.response_prefix == "<think>"
  with pytest.raises(ValueError, match="needs a 'name'"):
    templates.get_template({"think_prefill": True})
  with pytest.raises(ValueError, match="template 'qwen_math' has no option 'think_prefill'"):
    templates.get_template({"name": "qwen_math", "think_prefill": True})


def test_chat_template_renders_through_the_tokenizer(gsm8k_file, chat_tokenizer):
  task = tasks.get_task("gsm8k", path=gsm8k_file, template="chat")
  ex = task.source[1]
  assert task.render(ex, chat_tokenizer) == (
      f"<|im_start|>system\n{templates.R1_ZERO_INSTRUCTION}<|im_end|>\n"
      "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n")
  merged = templates.get_template("chat", system_in_user=True)
  assert merged.render(ex, chat_tokenizer).startswith(
      f"<|im_start|>user\n{templates.R1_ZERO_INSTRUCTION}\n\nWhat is 2 + 3?")
  with pytest.raises(ValueError, match="pass tokenizer="):
    task.render(ex)


def test_chat_think_prefill_opens_the_assistant_turn_and_is_graded_as_response(
    gsm8k_file, chat_tokenizer):
  task = tasks.get_task("gsm8k", path=gsm8k_file,
                        template={"name": "chat", "think_prefill": True})
  ex = task.source[1]
  assert task.render(ex, chat_tokenizer).endswith("<|im_start|>assistant\n<think>")
  # Rewards see the prefilled tag: the completion alone lacks it.
  assert task.response(" 2 + 3 = 5 </think> <answer>5</answer>").startswith(
      "<think> 2 + 3")


def test_example_messages_are_used_as_given(chat_tokenizer):
  ex = {"messages": [{"role": "user", "content": "Hi?"}], "answer": "1"}
  assert templates.get_template("chat").render(ex, chat_tokenizer) == (
      "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n")
  assert templates.get_template("r1_zero").render(ex).endswith("User: Hi? Assistant:")


def test_prompt_batches_resume_from_a_saved_position(gsm8k_file):
  task = tasks.get_task("gsm8k", path=gsm8k_file)
  stream = task.stream(seed=11)
  batches = task.prompts(2, stream=stream)
  next(batches)
  saved = json.loads(json.dumps(stream.position))
  expected = [next(batches) for _ in range(3)]
  resumed = task.stream(seed=11)
  resumed.restore(saved)
  again = task.prompts(2, stream=resumed)
  for want in expected:
    got = next(again)
    assert got.prompts == want.prompts and got.examples == want.examples
  assert all(len(b.prompts) == 2 for b in expected)


def test_single_pass_prompts_cover_the_data_once(gsm8k_file):
  task = tasks.get_task("gsm8k", path=gsm8k_file)
  batches = list(task.prompts(2, shuffle=False, num_epochs=1))
  assert [len(b.prompts) for b in batches] == [2, 1]
  assert [e["answer"] for b in batches for e in b.examples] == ["1234", "5", "7"]


def test_registry_errors_name_the_bad_value():
  assert {"gsm8k", "math", "aime", "countdown", "arithmetic"} <= set(tasks.TASKS)
  with pytest.raises(ValueError, match="unknown task 'gsm9k'; known tasks are"):
    tasks.get_task("gsm9k")
  with pytest.raises(ValueError, match="task 'countdown' has no option 'digits'"):
    tasks.get_task("countdown", digits=3)
  with pytest.raises(ValueError, match="unknown template 'r2'"):
    tasks.get_task("arithmetic", template="r2")
  with pytest.raises(ValueError, match="template 'r1_zero' has no option 'system'"):
    templates.get_template("r1_zero", system="x")
