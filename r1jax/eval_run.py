"""`r1jax eval` end to end: load a model or a training workdir, build the task, evaluate, write.

Place in the pipeline: what the command line (and a notebook) calls after training. `--model`
takes anything `r1jax.models.load` takes (GGUF file, HF folder, hub id in the local cache, a
known name such as `smollm2-135m`) or the workdir of an `r1jax train` run: its
model_config.json, config.json (tokenizer, task, chat and sampling defaults) and the params of
its newest complete orbax checkpoint are read directly, with no conversion step. Reading is
read-only, so a workdir can be evaluated while its run is still training. With an output
folder the evaluation keeps a journal of finished batches there (`samples.partial.jsonl`): run
the same command again after a crash or Ctrl-C and it resumes, with the same samples.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import pathlib
from typing import Any, Mapping

import jax
import orbax.checkpoint as ocp

from r1jax import config as config_lib
from r1jax import evaluate as evaluate_lib
from r1jax import lora as lora_lib
from r1jax.data import miniature  # noqa: F401  pylint: disable=unused-import (registers the task)
from r1jax.data import tasks as tasks_lib
from r1jax.data.sources import Example
from r1jax.models import transformer
from r1jax.models.config import ModelConfig
from r1jax.run_config import Config
from r1jax.sampler import SamplingConfig
from r1jax.tokenizer import Tokenizer, load_tokenizer

__all__ = ["LoadedModel", "is_workdir", "load_examples", "load_model", "restore_params", "run"]

# checkpoint.Checkpointer saves the array pytrees (params, opt_state, ...) under this item.
_ARRAYS_ITEM = "arrays"
DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_K = 16
# With --out, finished batches are kept here until the report is written; a rerun resumes.
JOURNAL_FILE = evaluate_lib.JOURNAL_FILE


@dataclasses.dataclass
class LoadedModel:
  """A policy ready to sample: config, params, tokenizer, and its training run if any."""

  model_cfg: ModelConfig
  params: Any
  tokenizer: Tokenizer
  run_config: Config | None = None  # The training run's config (workdirs only).
  step: int | None = None  # The checkpoint's step (workdirs only).


def is_workdir(path: str | os.PathLike) -> bool:
  """Whether `path` is the workdir of an `r1jax train` run (not a weights folder)."""
  p = pathlib.Path(path)
  return p.is_dir() and (p / "model_config.json").is_file() and (p / "config.json").is_file()


def restore_params(workdir: str | os.PathLike, model_cfg: ModelConfig,
                   step: int | None = None, run_cfg: Config | None = None) -> tuple[int, Any]:
  """(step, params) from the newest (or the given) complete checkpoint of a workdir.

  Only the "params" entry is read (not the optimizer state or the reference params), into a
  single local device, in the dtypes of `model_cfg`. A LoRA run's (`run_cfg.lora.rank` > 0)
  checkpoints hold adapters: they are merged into its base (the workdir's `base_params`, or
  the run's model_path), so the result is the full policy either way.
  """
  # Absolute: orbax refuses relative checkpoint paths ("Checkpoint path should be absolute").
  root = pathlib.Path(workdir).absolute() / "checkpoints"
  # Complete steps are integer-named folders; orbax writes unfinished ones under tmp names.
  steps = sorted(int(p.name) for p in root.iterdir()
                 if p.name.isdigit() and (p / _ARRAYS_ITEM).is_dir()) if root.is_dir() else []
  if not steps:
    raise FileNotFoundError(f"workdir {os.fspath(workdir)!r} has no complete checkpoint under "
                            f"{root}; train first (r1jax train) or pass a weights file")
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise FileNotFoundError(f"workdir {os.fspath(workdir)!r} has no checkpoint for step {step}; "
                            f"its steps are {steps}")
  lora = run_cfg.lora if run_cfg is not None and run_cfg.lora.enabled else None
  entry = "params" if lora is None else "adapters"
  abstract = (transformer.abstract_params(model_cfg) if lora is None else
              lora_lib.abstract_adapters(model_cfg, lora))
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=device, dtype=x.dtype),
                              abstract)
  with ocp.PyTreeCheckpointer() as reader:
    out = reader.restore(root / str(step) / _ARRAYS_ITEM, args=ocp.args.PyTreeRestore(
        item={entry: abstract}, restore_args={entry: restore_args},
        partial_restore=True))
  if lora is None:
    return step, out["params"]
  return step, jax.jit(lambda b, a: lora_lib.merge(b, a, lora))(
      _lora_base(pathlib.Path(workdir).absolute(), run_cfg, model_cfg), out["adapters"])


def _lora_base(workdir: pathlib.Path, run_cfg: Config, model_cfg: ModelConfig) -> Any:
  """The frozen weights of a LoRA run: its own copy (after SFT / random init) or model_path."""
  from r1jax import train  # pylint: disable=g-import-not-at-top  (BASE_DIR; heavy imports)
  base_dir = workdir / train.BASE_DIR
  if base_dir.is_dir():
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          transformer.abstract_params(model_cfg))
    with ocp.StandardCheckpointer() as reader:
      return reader.restore(base_dir, target)
  if not run_cfg.model_path:
    raise FileNotFoundError(f"LoRA workdir {os.fspath(workdir)!r} has no {train.BASE_DIR} "
                            "folder and its config names no model_path: the base weights the "
                            "adapters belong to are missing")
  from r1jax.models import weights  # pylint: disable=g-import-not-at-top
  _, params = weights.load(run_cfg.model_path, model_cfg.param_dtype)
  return params


def load_model(spec: str | os.PathLike, step: int | None = None) -> LoadedModel:
  """A model by path, hub id, known name, or training workdir (its newest checkpoint, or the
  checkpoint of `step`, which only a workdir accepts)."""
  if is_workdir(spec):
    workdir = pathlib.Path(spec).absolute()
    run_cfg = config_lib.from_json(Config, (workdir / "config.json").read_text())
    model_cfg = config_lib.from_json(ModelConfig, (workdir / "model_config.json").read_text())
    tok_path = run_cfg.tokenizer_path or run_cfg.model_path
    if tok_path == "miniature" or (workdir / "tokenizer").is_dir():
      tok_path = workdir / "tokenizer"  # Written there by the trainer for built-in tasks.
    if not tok_path:
      raise ValueError(f"workdir {os.fspath(spec)!r} names no tokenizer (config.json has empty "
                       f"tokenizer_path and model_path)")
    tokenizer = load_tokenizer(tok_path)
    step, params = restore_params(workdir, model_cfg, step, run_cfg=run_cfg)
    return LoadedModel(model_cfg, params, tokenizer, run_cfg, step)
  if step is not None:
    raise ValueError(f"a step ({step}) selects a checkpoint of a training workdir, but "
                     f"{os.fspath(spec)!r} is a weights file or folder")
  from r1jax.models import weights  # pylint: disable=g-import-not-at-top  (gguf, safetensors)
  model_cfg, params = weights.load(spec)
  return LoadedModel(model_cfg, params, load_tokenizer(spec))


def load_examples(task: tasks_lib.Task, limit: int | None = None) -> list[Example]:
  """The task's first `limit` examples (all of a file when None), in file order."""
  if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
    raise ValueError(f"limit must be a positive integer, got {limit!r}")
  size = task.source.size
  if size is None and limit is None:
    raise ValueError(f"task {task.name!r} generates questions without end; pass a limit "
                     f"(--limit N) or a size (--task-arg size=N)")
  n = size if limit is None else (limit if size is None else min(limit, size))
  return task.stream(shuffle=False, num_epochs=1).next_batch(n)


def _task_accepts(name: str, option: str) -> bool:
  factory = tasks_lib.TASKS.get(name)
  return factory is not None and option in inspect.signature(factory).parameters


def run(model: str | os.PathLike, *, task: str | None = None, data: str | None = None,
        task_args: Mapping[str, Any] | None = None, template: str | None = None,
        k: int | None = None, temperature: float = 0.6, top_p: float = 0.95,
        max_new_tokens: int | None = None, limit: int | None = None,
        batch_size: int | None = None, waves: int = 4, chat: bool | None = None, seed: int = 0,
        out: str | os.PathLike | None = None, progress: bool = True,
        num_resamples: int = 1000, loaded: LoadedModel | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None) -> evaluate_lib.Report:
  """Evaluates `model` on a task's questions; writes the report into `out` when given.

  Defaults come from the training run when `model` is a workdir (its task and task options,
  chat setting, sampling config and max_new_tokens); otherwise chat is on when the tokenizer
  has a chat template, and a maths task then uses the "chat" template (R1's instruction as a
  system message). k defaults to 16, or 1 when greedy (temperature 0). `batch_size` (prompts
  decoded at once) defaults to about 64 rows; a sampler call holds `waves` times as many
  questions, decoded with continuous batching. `loaded` skips loading (a model in memory).
  With `out`, finished batches are journaled there and an unfinished evaluation with the same
  settings resumes (a different one is an error naming the difference).
  `chat_template_kwargs` (e.g. {"enable_thinking": False}) go to the chat template, over a
  workdir's own `Config.chat_template_kwargs`.
  """
  if task is not None and task not in tasks_lib.TASKS:  # Fail before the slow model load.
    raise ValueError(f"unknown task {task!r}; known tasks are {sorted(tasks_lib.TASKS)}")
  loaded = loaded or load_model(model)
  rc = loaded.run_config
  loaded.tokenizer.chat_template_kwargs = {**(rc.chat_template_kwargs if rc else {}),
                                           **(chat_template_kwargs or {})}
  name = task or (rc.task if rc else None)
  if not name:
    raise ValueError("pass a task (--task), e.g. gsm8k, math, aime, countdown, arithmetic or "
                     "miniature")
  args = dict(rc.task_args) | dict(rc.eval_task_args) if rc and name == rc.task else {}
  args.update(task_args or {})
  if data is not None:
    args["path"] = data
  if chat is None:
    chat = rc.chat if rc else loaded.tokenizer.chat_template is not None
  if template is not None:
    args["template"] = template
  elif chat and "template" not in args and _task_accepts(name, "template"):
    args["template"] = "chat"
  task_obj = tasks_lib.get_task(name, **args)
  examples = load_examples(task_obj, limit)
  base = rc.sampling if rc else SamplingConfig()
  budget = max_new_tokens or (base.max_new_tokens if rc else DEFAULT_MAX_NEW_TOKENS)
  sampling = dataclasses.replace(
      base, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
      max_new_tokens=budget, eos_ids=base.eos_ids or tuple(loaded.tokenizer.eos_ids),
      pad_id=loaded.tokenizer.pad_id if base.pad_id == 0 else base.pad_id)
  if k is None:
    k = 1 if temperature == 0 else DEFAULT_K
  batch_size = batch_size or max(1, 64 // max(k, 1))
  info = {"model": os.fspath(model), "checkpoint_step": loaded.step,
          "task_args": {a: v for a, v in args.items()}, "limit": limit}
  if loaded.tokenizer.chat_template_kwargs:
    info["chat_template_kwargs"] = dict(loaded.tokenizer.chat_template_kwargs)
  journal = None if out is None else os.path.join(os.fspath(out), JOURNAL_FILE)
  report = evaluate_lib.evaluate(
      loaded.params, examples, task=task_obj, tokenizer=loaded.tokenizer,
      model_cfg=loaded.model_cfg, sampling=sampling, k=k, key=jax.random.key(seed), chat=chat,
      batch_size=batch_size, waves=waves, progress=progress, num_resamples=num_resamples, seed=seed,
      journal=journal, journal_info=info)
  report.info.update(info)
  if out is not None:
    report.write(out)
    os.remove(journal)  # The finished report holds everything it had.
  return report
