"""Tasks: a prompt template + a source + weighted rewards, and the registry of named tasks.

Place in the pipeline: what the trainer and evaluator hold. A Task streams Examples (resumable,
sharded), renders them as prompt text, and scores completions with its named reward functions
(each logged separately, summed with weights); maths tasks also report strict and lenient
accuracy. `get_task(name, **kwargs)` builds the registered tasks:

- `gsm8k`: the original GSM8K JSONL (question; answer = worked solution ending "#### N"), or
  TFDS `gsm8k` when prepared locally;
- `math`: MATH / MATH-500 JSONL (problem; answer, or the last \\boxed{} of solution; level);
- `aime`: AIME JSONL (problem or question; answer; id);
- `countdown`, `arithmetic`: generated (generators.py).

A task's reward is a `rewards.combine` of named terms: "accuracy" (weight 1) and, for
templates that ask for <think>/<answer> tags, "format" (weight `format_weight`, 0.1 by default
so that a well-formatted wrong answer never outweighs a right one).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import re
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from r1jax import rewards as rewards_lib
from r1jax.rewards import math_boxed
from r1jax.data import generators
from r1jax.data import sources
from r1jax.data import templates as templates_lib
from r1jax.data.sources import Example, ExampleStream, Source

__all__ = [
    "PromptBatch",
    "TASKS",
    "Task",
    "aime_fields",
    "check_eval_split",
    "get_task",
    "gsm8k_fields",
    "gsm8k_gold",
    "last_boxed",
    "math_fields",
    "register_task",
]


@dataclasses.dataclass(frozen=True)
class PromptBatch:
  """P rendered prompts and the Examples they came from (same order)."""

  prompts: list[str]
  examples: list[Example]


@dataclasses.dataclass(frozen=True)
class Task:
  """A prompt template, a source of Examples, and the rewards that grade completions.

  Reward and accuracy functions are `rewards.RewardFn`s, called as fn(response, example) where
  response = `task.response(completion)`: the text the template prefilled for the answer (e.g.
  "<think>") followed by the completion, so a prefilled prompt still earns its format reward.
  `score`, `rewards` and `accuracy` do that for you, and never raise on a failing function
  (it scores 0 and is counted, through `rewards.score_batch`).
  """

  name: str
  source: Source
  template: templates_lib.Template
  # Reward name -> (RewardFn, weight); the reward is the weighted sum, each logged by name.
  reward_fns: Mapping[str, tuple[rewards_lib.RewardFn, float]]
  # Accuracy name ("strict", "lenient") -> 0/1 RewardFn; reported, never optimized.
  accuracy_fns: Mapping[str, rewards_lib.RewardFn] = dataclasses.field(default_factory=dict)

  @functools.cached_property
  def reward(self) -> rewards_lib.CombinedReward:
    """The reward terms as a `rewards.CombinedReward` (call it on responses, not completions)."""
    return rewards_lib.combine(**{k: tuple(v) for k, v in self.reward_fns.items()})

  def render(self, example: Example, tokenizer: Any = None) -> str:
    """The prompt text for one Example."""
    return self.template.render(example, tokenizer)

  def response(self, completion: str) -> str:
    """What rewards read: the text the prompt prefilled for the answer, then the completion."""
    return self.template.response_prefix + completion

  def stream(self, *, seed: int = 0, shuffle: bool = True, num_epochs: int | None = None,
             process_index: int = 0, process_count: int = 1) -> ExampleStream:
    """A resumable stream of this process's shard of the Examples (see ExampleStream)."""
    return ExampleStream(self.source, seed=seed, shuffle=shuffle, num_epochs=num_epochs,
                         process_index=process_index, process_count=process_count)

  def prompts(self, batch_size: int, *, tokenizer: Any = None,
              stream: ExampleStream | None = None, **stream_kwargs: Any) -> Iterator[PromptBatch]:
    """Batches of P = batch_size rendered prompts; the last may be short when epochs end.

    Pass a `stream` to own its position (save `stream.position` in checkpoints); after each
    yielded batch the stream stands exactly after that batch. Otherwise `stream_kwargs` build
    one (seed, shuffle, num_epochs, process_index, process_count).
    """
    stream = stream if stream is not None else self.stream(**stream_kwargs)
    while True:
      examples = stream.next_batch(batch_size)
      if not examples:
        return
      yield PromptBatch([self.render(e, tokenizer) for e in examples], examples)

  def score(self, completions: Sequence[str], examples: Sequence[Example], *,
            max_workers: int | None = 8) -> rewards_lib.BatchScores:
    """Total reward [B], each term's scores [B] and error counts, for B completions."""
    responses = [self.response(c) for c in completions]
    return rewards_lib.score_batch(self.reward, responses, examples, max_workers=max_workers)

  def rewards(self, completion: str, example: Example) -> dict[str, float]:
    """Each named reward of one completion (unweighted; a failing term scores 0)."""
    scores = self.score([completion], [example], max_workers=None)
    return {name: float(values[0]) for name, values in scores.per_term.items()}

  def accuracy(self, completions: Sequence[str], examples: Sequence[Example], *,
               max_workers: int | None = 8) -> dict[str, np.ndarray]:
    """Each accuracy (e.g. strict and lenient maths grading) of B completions: name -> [B]."""
    if not self.accuracy_fns:
      return {}
    responses = [self.response(c) for c in completions]
    scores = rewards_lib.score_batch(rewards_lib.combine(**self.accuracy_fns), responses,
                                     examples, max_workers=max_workers)
    return scores.per_term


def _make_task(name: str, source: Source, template: str | templates_lib.Template,
               accuracy: rewards_lib.RewardFn, *, format_weight: float,
               accuracy_fns: Mapping[str, rewards_lib.RewardFn],
               format_kind: str = "strict") -> Task:
  template = templates_lib.get_template(template)
  reward_fns = {"accuracy": (accuracy, 1.0)}
  # The format reward asks for <think>/<answer> tags; a \boxed{} template never asks for them.
  # It reads responses, which already start with any prefilled "<think>".
  kinds = {"strict": rewards_lib.R1Format, "tags": rewards_lib.TagCount}
  if format_kind not in kinds:
    raise ValueError(f"format_kind must be one of {sorted(kinds)}, got {format_kind!r}")
  if template.uses_tags and format_weight:
    reward_fns["format"] = (kinds[format_kind](), float(format_weight))
  return Task(name, source, template, reward_fns, dict(accuracy_fns))


_REWARD_GRADINGS = ("strict", "lenient")


def _math_task(name: str, source: Source, template, format_weight: float,
               format_kind: str = "strict", reward_grading: str = "strict") -> Task:
  """A maths task; its accuracy reward grades the `reward_grading` way (both are reported).

  "lenient" also takes the last number of a response as its answer: the reward for instruct
  models that answer in prose and never write <answer> tags (SmolLM2-135M), where the strict
  reward is 0 for every sample and a group has no signal.
  """
  if reward_grading not in _REWARD_GRADINGS:
    raise ValueError(f"reward_grading must be one of {_REWARD_GRADINGS}, got "
                     f"{reward_grading!r}")
  strict = rewards_lib.MathAccuracy(strict=True)
  lenient = rewards_lib.MathAccuracy(strict=False)
  return _make_task(name, source, template, strict if reward_grading == "strict" else lenient,
                    format_weight=format_weight,
                    accuracy_fns={"strict": strict, "lenient": lenient},
                    format_kind=format_kind)


# --- field maps for the real file formats ------------------------------------------------------


def gsm8k_gold(solution: str) -> str:
  """The gold of a GSM8K answer: the text after the last "####", thousands commas removed."""
  if "####" not in solution:
    raise ValueError("answer has no '#### N' final line")
  gold = solution.rsplit("####", 1)[1].strip().replace(",", "")
  if not gold:
    raise ValueError("answer has nothing after '####'")
  return gold


# The one boxed extractor (rules in rewards.math_boxed), re-exported for data users.
last_boxed = math_boxed.last_boxed


# Field functions are module-level (not lambdas) so that sources holding them pickle.


def _problem(record: Mapping[str, Any]) -> Any:
  """MATH and AIME files name the question "problem"; some redistributions say "question"."""
  for name in ("problem", "question"):
    if record.get(name) not in (None, ""):
      return record[name]
  raise ValueError(f"record has neither 'problem' nor 'question'; its fields are "
                   f"{sorted(record)}")


def _gsm8k_answer(record: Mapping[str, Any]) -> str:
  return gsm8k_gold(record["answer"])


def _math_answer(record: Mapping[str, Any]) -> Any:
  if record.get("answer") not in (None, ""):
    return record["answer"]
  if isinstance(record.get("solution"), str):
    boxed = last_boxed(record["solution"])
    if boxed:
      return boxed
  raise ValueError(f"record has no 'answer' and no \\boxed{{}} answer in 'solution'; its "
                   f"fields are {sorted(record)}")


def _math_level(record: Mapping[str, Any]) -> int | None:
  """MATH levels: 3 (MATH-500) or "Level 3" (Hendrycks MATH); "Level ?" or absent -> None."""
  level = record.get("level")
  if isinstance(level, int) or level is None:
    return level
  match = re.fullmatch(r"\s*(?:Level\s*)?(\d+)\s*", str(level))
  return int(match.group(1)) if match else None


def _math_subject(record: Mapping[str, Any]) -> str | None:
  return record.get("subject", record.get("type"))  # MATH-500 "subject", MATH "type".


def _math_id(record: Mapping[str, Any]) -> str | None:
  return record.get("unique_id")


def _record_id(record: Mapping[str, Any]) -> Any:
  return record.get("id")


def gsm8k_fields() -> dict[str, Any]:
  """GSM8K (original JSONL or TFDS): gold after "####"; the worked answer kept as solution."""
  return {"question": "question", "answer": _gsm8k_answer, "solution": "answer"}


def math_fields() -> dict[str, Any]:
  """MATH / MATH-500: problem; answer (or the solution's last box); level; subject; id."""
  return {"question": _problem, "answer": _math_answer, "level": _math_level,
          "subject": _math_subject, "id": _math_id}


def aime_fields() -> dict[str, Any]:
  """AIME / AMC: problem (or question), answer (text or number), id."""
  return {"question": _problem, "answer": "answer", "id": _record_id}


def _read_file(path: Any, fields: Mapping[str, Any], task: str) -> sources.RecordSource:
  if path is None:
    raise ValueError(f"task {task!r} reads a data file; pass path= (a .jsonl or .parquet file, "
                     f"a glob, or a list)")
  first = os.fspath(path if isinstance(path, (str, os.PathLike)) else list(path)[0])
  reader = sources.read_parquet if first.endswith(".parquet") else sources.read_jsonl
  return reader(path, fields)


# --- the registry ----------------------------------------------------------------------------

TASKS: dict[str, Callable[..., Task]] = {}


def register_task(name: str) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
  """Decorator: registers a task factory under `name` for `get_task`."""
  def wrap(factory):
    TASKS[name] = factory
    return factory
  return wrap


def get_task(name: str, **kwargs: Any) -> Task:
  """Builds a registered task (gsm8k, math, aime, countdown, arithmetic) with its options."""
  if name not in TASKS:
    raise ValueError(f"unknown task {name!r}; known tasks are {sorted(TASKS)}")
  factory = TASKS[name]
  params = inspect.signature(factory).parameters
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise ValueError(f"task {name!r} has no option {unknown[0]!r}; its options are "
                     f"{sorted(params)}")
  return factory(**kwargs)


# Options that change how a task's examples are shown or scored, not which examples it holds;
# and `size`, which only cuts a generator's stream (its i-th example depends on the seed only).
_PRESENTATION_OPTIONS = frozenset({"template", "format_weight", "format_kind", "tfds_data_dir",
                                   "size", "reward_grading"})


def check_eval_split(task_name: str, task_args: Mapping[str, Any],
                     eval_task_args: Mapping[str, Any]) -> None:
  """Refuses an in-training evaluation that would run on the training examples themselves.

  The trainer evaluates `get_task(task_name, **{**task_args, **eval_task_args})`. That is
  the training data (or a part of it) when every option that selects examples (all but
  template, format_weight, format_kind, reward_grading, tfds_data_dir and size; defaults
  filled in from the task's signature; file paths compared after resolving links) is the same
  as in training: the same file, or a generator with the same seed. Options that select
  overlapping but different subsets (MATH `levels` [1, 2] vs [2]) are not detected.

  Raises:
    ValueError: the evaluation would reuse the training data, or `task_name` is unknown.
  """
  if task_name not in TASKS:
    raise ValueError(f"unknown task {task_name!r}; known tasks are {sorted(TASKS)}")
  defaults = {k: p.default for k, p in inspect.signature(TASKS[task_name]).parameters.items()
              if p.default is not inspect.Parameter.empty}

  def data_options(args: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in {**defaults, **args}.items():
      if k in _PRESENTATION_OPTIONS:
        continue
      if k == "path" and isinstance(v, (str, os.PathLike)):
        v = os.path.realpath(os.fspath(v))
      out[k] = v
    return out

  train = data_options(task_args)
  if data_options({**task_args, **eval_task_args}) == train:
    raise ValueError(
        f"in-training evaluation of task {task_name!r} would run on its training examples "
        f"(eval_task_args {dict(eval_task_args)!r} leave its data options {train!r} "
        f"unchanged); set eval_task_args to held-out data, e.g. {{'seed': 1}} for a generated "
        f"task or {{'path': <the test file>}} for a file task.")


@register_task("gsm8k")
def gsm8k(path: Any = None, *, tfds_split: str | None = None, tfds_data_dir: Any = None,
          template: Any = "r1_zero", format_weight: float = 0.1) -> Task:
  """GSM8K from the original JSONL (`path`), or from a prepared TFDS `gsm8k` (`tfds_split`)."""
  if tfds_split is not None:
    if path is not None:
      raise ValueError("gsm8k takes either path= or tfds_split=, not both")
    source = sources.TfdsSource("gsm8k", tfds_split, gsm8k_fields(), data_dir=tfds_data_dir)
  else:
    source = _read_file(path, gsm8k_fields(), "gsm8k")
  return _math_task("gsm8k", source, template, format_weight)


@register_task("math")
def math(path: Any = None, *, levels: Sequence[int] | None = None, template: Any = "r1_zero",
         format_weight: float = 0.1) -> Task:
  """MATH or MATH-500 JSONL/Parquet; `levels` keeps only those difficulty levels (1-5)."""
  source = _read_file(path, math_fields(), "math")
  if levels is not None:
    keep = set(levels)
    source = source.filter(lambda e: e.get("level") in keep)
  return _math_task("math", source, template, format_weight)


@register_task("aime")
def aime(path: Any = None, *, template: Any = "r1_zero", format_weight: float = 0.1) -> Task:
  """AIME (or AMC) JSONL/Parquet: problem (or question), answer, id."""
  return _math_task("aime", _read_file(path, aime_fields(), "aime"), template, format_weight)


@register_task("countdown")
def countdown(*, seed: int = 0, size: int | None = None, num_numbers: Sequence[int] = (3, 4),
              max_number: int = 99, min_target: int = 10, max_target: int = 100,
              template: Any = "r1_zero", format_weight: float = 0.1) -> Task:
  """TinyZero's Countdown, generated; reward 1 for a valid equation that hits the target."""
  source = generators.CountdownGenerator(seed=seed, size=size, num_numbers=num_numbers,
                                         max_number=max_number, min_target=min_target,
                                         max_target=max_target)
  accuracy = rewards_lib.CountdownAccuracy()
  return _make_task("countdown", source, template, accuracy, format_weight=format_weight,
                    accuracy_fns={"strict": accuracy})


@register_task("arithmetic")
def arithmetic(*, seed: int = 0, size: int | None = None, digits: int = 4,
               num_operands: int = 2, ops: Sequence[str] = ("+",), style: str = "plain",
               template: Any = "r1_zero", format_weight: float = 0.1,
               format_kind: str = "strict", reward_grading: str = "strict") -> Task:
  """Multi-digit arithmetic, generated; `digits` is the difficulty knob, style plain or word.

  format_kind "strict" rewards the whole R1 format (0 or 1); "tags" gives 0.25 per tag.
  reward_grading "lenient" rewards a right last number too (answers in prose).
  """
  source = generators.ArithmeticGenerator(seed=seed, size=size, digits=digits,
                                          num_operands=num_operands, ops=ops, style=style)
  return _math_task("arithmetic", source, template, format_weight, format_kind,
                    reward_grading)
