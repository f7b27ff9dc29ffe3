"""The `r1jax` command line: `r1jax fetch | sample | train | eval | export | plot`.

Each subcommand parses its flags here and calls library functions; no maths lives here.
"""

from __future__ import annotations

import argparse
import os
import sys


def _path_or_name(text: str) -> str:
  """An existing file or folder as an absolute path; anything else (a known name, a hub id)
  unchanged.

  Every command that takes a model or a run's workdir reads it through this, once, here: the
  libraries below (orbax among them) then never see a path relative to the shell's directory.
  """
  return os.path.abspath(text) if os.path.exists(text) else text


def _cmd_fetch(args: argparse.Namespace) -> int:
  from r1jax import fetch
  path = fetch.fetch(args.name)
  print(path)
  return 0


def _add_fetch(sub) -> None:
  p = sub.add_parser("fetch", help="download a known model into the cache and print its path")
  p.add_argument("name", help="a known model name, e.g. smollm2-135m")
  p.set_defaults(func=_cmd_fetch)


def _add_chat_template_kwarg(p: argparse.ArgumentParser) -> None:
  p.add_argument("--chat-template-kwarg", type=_task_arg, action="append", default=[],
                 metavar="KEY=VALUE", help="a chat-template variable, e.g. "
                 "--chat-template-kwarg enable_thinking=false (Qwen3); repeatable; over a "
                 "workdir's Config.chat_template_kwargs")


# --- eval: owned by the evaluator (r1jax/evaluate.py, r1jax/eval_run.py) ------------------
def _task_arg(text: str) -> tuple[str, object]:
  """KEY=VALUE; VALUE is read as JSON (numbers, lists, true/false) or else kept as text."""
  import json
  key, sep, value = text.partition("=")
  if not sep or not key:
    raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
  try:
    return key, json.loads(value)
  except json.JSONDecodeError:
    return key, value


def _cmd_eval(args: argparse.Namespace) -> int:
  from r1jax import eval_run
  if args.rebuild:
    from r1jax import evaluate
    print(evaluate.rebuild(args.rebuild).format())
    print(f"report: {args.rebuild}")
    return 0
  if not args.model:
    raise SystemExit("r1jax eval: --model is required (or --rebuild DIR to recompute a "
                     "written report)")
  task, task_args, chat = args.task, dict(args.task_arg), args.chat
  chat_kwargs = dict(args.chat_template_kwarg)
  if args.experiment:
    from r1jax import experiment
    # Importing the file registers the tasks it defines; its config gives the defaults: its
    # task with the held-out options (eval_task_args), chat setting and chat-template kwargs.
    exp = experiment.resolve_config(experiment.load_experiment(args.experiment))
    if task is None:
      task, task_args = exp.task, {**exp.task_args, **exp.eval_task_args, **task_args}
    chat = exp.chat if chat is None else chat
    chat_kwargs = {**exp.chat_template_kwargs, **chat_kwargs}
  report = eval_run.run(
      args.model, task=task, data=args.data, task_args=task_args,
      template=args.template, k=args.k, temperature=args.temperature, top_p=args.top_p,
      max_new_tokens=args.max_new_tokens, limit=args.limit, batch_size=args.batch_size,
      waves=args.waves, chat=chat, seed=args.seed, out=args.out, progress=not args.no_progress,
      num_resamples=args.bootstrap, chat_template_kwargs=chat_kwargs)
  print(report.format())
  if args.out:
    print(f"report: {args.out}")
  return 0


def _add_eval(sub) -> None:
  p = sub.add_parser("eval", help="pass@1 over k samples, cons@k, pass@k with 95%% intervals, "
                     "and the R1 length / reflective-word analyses")
  p.add_argument("--model", type=_path_or_name, help="a GGUF file, HF folder, hub id, known "
                 "name (smollm2-135m) or the workdir of an `r1jax train` run (its newest "
                 "checkpoint, tokenizer and chat setting)")
  p.add_argument("--task", help="gsm8k, math, aime, countdown, arithmetic, miniature, "
                 "humaneval, mbpp, code, code_functions, knights_knaves, or hf (any data set "
                 "`datasets` reads, e.g. --task hf --data test.parquet --task-arg "
                 "'fields={\"question\": \"problem\", \"answer\": \"answer\"}'); default: "
                 "the workdir's task")
  p.add_argument("--data", help="the task's data file (.jsonl or .parquet)")
  p.add_argument("--experiment", metavar="FILE", help="an experiment file: tasks it registers "
                 "become known, and its task (with its held-out eval_task_args), chat setting "
                 "and chat_template_kwargs are the defaults")
  p.add_argument("--task-arg", type=_task_arg, action="append", default=[],
                 metavar="KEY=VALUE", help="a task option, e.g. --task-arg levels=[4,5] "
                 "(repeatable)")
  p.add_argument("--template", help="prompt template: r1_zero, chat or qwen_math (default: "
                 "chat when --chat is on, else the task's)")
  p.add_argument("--k", type=int, help="samples per question (default 16; 1 when greedy)")
  p.add_argument("--temperature", type=float, default=0.6,
                 help="sampling temperature, 0 = greedy (default 0.6, as R1)")
  p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling (default 0.95)")
  p.add_argument("--max-new-tokens", type=int,
                 help="completion budget (default: the workdir's, else 512)")
  p.add_argument("--limit", type=int, help="evaluate only the first N questions")
  p.add_argument("--batch-size", type=int,
                 help="prompts decoded at once (default: about 64 rows, 64 // k)")
  p.add_argument("--waves", type=int, default=4,
                 help="prompts per sampler call in units of --batch-size, decoded with "
                 "continuous batching (default 4; 1 = one batch per call)")
  p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                 help="render prompts with the tokenizer's chat template (default: on when it "
                 "has one; a workdir's own setting)")
  _add_chat_template_kwarg(p)
  p.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed (default 0)")
  p.add_argument("--bootstrap", type=int, default=1000,
                 help="bootstrap resamples of the 95%% intervals (default 1000)")
  p.add_argument("--out", help="write report.json, samples.jsonl and the plots into this "
                 "folder; finished batches are kept there as they come, and the same command "
                 "resumes an evaluation that stopped")
  p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  p.add_argument("--rebuild", metavar="DIR", help="recompute DIR's report.json and plots from "
                 "its samples.jsonl with this version's analyses (no sampling, no re-grading)")
  p.set_defaults(func=_cmd_eval)
# --- end eval -----------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace) -> int:
  from r1jax import export
  max_shard = int(args.max_shard_gb * 10**9) if args.max_shard_gb else export.DEFAULT_SHARD_BYTES
  files = export.export(args.source, args.out, step=args.step, dtype=args.dtype,
                        max_shard_bytes=max_shard)
  print(f"wrote {args.out}: {', '.join(files)}")
  return 0


def _add_export(sub) -> None:
  p = sub.add_parser("export", help="write a workdir's policy (or any model r1jax loads) as a "
                     "Hugging Face folder that transformers and vLLM load")
  p.add_argument("source", type=_path_or_name, help="a training workdir (its newest "
                 "checkpoint; LoRA adapters are merged), WORKDIR/checkpoints/N, or a model: "
                 "HF folder, GGUF file, hub id or known name (smollm2-135m)")
  p.add_argument("out", help="the folder to write (config.json, safetensors, tokenizer, chat "
                 "template, generation_config.json)")
  p.add_argument("--step", type=int, help="a workdir's checkpoint step (default: the newest)")
  p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                 help="tensor dtype (default: the params' own)")
  p.add_argument("--max-shard-gb", type=float, help="split the weights into shards of at "
                 "most this many GB with an index, as transformers does (default 5)")
  p.set_defaults(func=_cmd_export)


def _cmd_plot(args: argparse.Namespace) -> int:
  from r1jax import plots
  try:
    paths = plots.plot_run(args.workdir)
  except ImportError as e:  # matplotlib missing: a one-line error with the install command.
    raise RuntimeError(str(e)) from None
  for path in paths:
    print(path)
  return 0


def _add_plot(sub) -> None:
  p = sub.add_parser("plot", help="draw a run's accuracy, reward and length curves as PNGs")
  p.add_argument("workdir", type=_path_or_name,
                 help="the run's directory (holds metrics.jsonl); PNGs go there")
  p.set_defaults(func=_cmd_plot)


# --- sample: owned by the sampler (r1jax/sampler.py) -------------------------------------
_DEFAULT_MAX_NEW_TOKENS = 256


def _cmd_sample(args: argparse.Namespace) -> int:
  import dataclasses
  import time
  import jax
  from r1jax import eval_run, fetch, sampler
  # Check the flags before the (slow) model load.
  sampling = sampler.SamplingConfig(
      temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
      max_new_tokens=(_DEFAULT_MAX_NEW_TOKENS if args.max_new_tokens is None
                      else args.max_new_tokens))
  if args.num_samples < 1:
    raise ValueError(f"--num-samples must be a positive integer, got {args.num_samples}")
  path = fetch.resolve_model_path(args.model)
  print(f"loading {path}", file=sys.stderr, flush=True)
  # A training workdir loads as eval loads it: newest checkpoint, its tokenizer, its chat setting.
  loaded = eval_run.load_model(path)
  tok, cfg, params = loaded.tokenizer, loaded.model_cfg, loaded.params
  chat = args.chat
  if chat is None:
    chat = loaded.run_config.chat if loaded.run_config is not None else False
  tok.chat_template_kwargs = {
      **(loaded.run_config.chat_template_kwargs if loaded.run_config is not None else {}),
      **dict(args.chat_template_kwarg)}
  if args.max_new_tokens is None and loaded.run_config is not None:
    # A training run's budget fits its model's context (the miniature's is 64 tokens).
    sampling = dataclasses.replace(
        sampling, max_new_tokens=loaded.run_config.sampling.max_new_tokens)
  if chat:
    prompt = tok.apply_chat_template([{"role": "user", "content": args.prompt}], tokenize=True)
  else:
    prompt = tok.encode(args.prompt, add_special_tokens=True)
  stops = tuple(tuple(tok.encode(s)) for s in args.stop if s)
  sampling = dataclasses.replace(sampling, eos_ids=tuple(tok.eos_ids), stop_sequences=stops,
                                pad_id=tok.pad_id)
  print(f"prompt: {len(prompt)} tokens; compiling, then decoding up to "
        f"{sampling.max_new_tokens} tokens x {args.num_samples} sample(s)", file=sys.stderr,
        flush=True)
  t0 = time.perf_counter()
  out = sampler.generate(params, [prompt], cfg=cfg, sampling=sampling,
                         key=jax.random.key(args.seed), num_samples=args.num_samples,
                         progress=not args.no_progress)
  tokens, lengths, finished = (jax.device_get(x) for x in (out.tokens, out.lengths, out.finished))
  print(f"{int(lengths.sum())} tokens in {time.perf_counter() - t0:.1f} s (compile included)",
        file=sys.stderr, flush=True)
  for i in range(args.num_samples):
    ids = tokens[i, :lengths[i]].tolist()
    if finished[i] and ids and ids[-1] in tok.eos_ids:
      ids = ids[:-1]  # The end-of-turn token is not part of the text.
    if args.num_samples > 1:
      end = "stopped" if finished[i] else "hit --max-new-tokens"
      print(f"=== sample {i + 1}/{args.num_samples} ({lengths[i]} tokens, {end}) ===")
    print(tok.decode(ids), flush=True)
  return 0


def _add_sample(sub) -> None:
  p = sub.add_parser("sample", help="generate completions for a prompt")
  p.add_argument("--model", required=True, type=_path_or_name,
                 help="a GGUF file, HF folder, hub id, known name (smollm2-135m) or the workdir "
                 "of an `r1jax train` run (its newest checkpoint and tokenizer)")
  p.add_argument("--prompt", required=True, help="the prompt text")
  p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                 help="wrap the prompt as a user turn in the model's chat template (default: "
                 "off; a workdir's own setting)")
  _add_chat_template_kwarg(p)
  p.add_argument("--max-new-tokens", type=int, help=f"completion budget (default: a workdir's "
                 f"own, else {_DEFAULT_MAX_NEW_TOKENS})")
  p.add_argument("--temperature", type=float, default=1.0,
                 help="sampling temperature; 0 = greedy (default 1)")
  p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1: off)")
  p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0: off)")
  p.add_argument("--min-p", type=float, default=0.0,
                 help="drop tokens below min-p times the top probability (0: off)")
  p.add_argument("--num-samples", type=int, default=1, help="completions to draw (default 1)")
  p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                 help="also stop a completion when it ends with TEXT's tokens (repeatable)")
  p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
  p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  p.set_defaults(func=_cmd_sample)
# --- end sample ---------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
  import time
  from r1jax import experiment
  t0 = time.perf_counter()
  module = experiment.load_experiment(args.experiment)
  cfg = experiment.resolve_config(module, debug=args.debug, overrides=args.set)
  if args.print_config:
    from r1jax import config_doc
    print(config_doc.format_config(cfg))
    return 0
  workdir = args.workdir or experiment.default_workdir(args.experiment, args.debug)
  if args.dry_run:
    from r1jax import dryrun
    import jax
    report = dryrun.dry_run_config(cfg, num_devices=args.num_devices or jax.device_count(),
                                   device_memory_gb=args.device_memory_gb)
    print(dryrun.format_report(report))
    if args.compile:  # The real steps, compiled on fake CPU devices in a process of their own.
      from r1jax import dryrun_compile
      compiled = dryrun_compile.run_subprocess(
          [args.experiment], report.num_devices, device_memory_gb=args.device_memory_gb,
          debug=args.debug, overrides=tuple(args.set))
      print(dryrun_compile.format_compiled(compiled[args.experiment]))
    return 0
  from r1jax import sharding
  # With no flags this starts nothing unless a TPU pod slice, SLURM job or MPI launch shows
  # in the environment (then jax.distributed reads the details itself).
  multi = sharding.initialize_distributed(args.coordinator, args.num_processes, args.process_id,
                                          heartbeat_timeout_s=args.heartbeat_timeout)
  try:
    if hasattr(module, "main"):
      module.main(cfg, workdir)
    else:
      from r1jax import train
      train.run(cfg, workdir)
  except Exception as e:  # pylint: disable=broad-except
    import jax
    if not (multi and isinstance(e, jax.errors.JaxRuntimeError)):
      raise
    _exit_multiprocess_failure(e)
  _print_summary(workdir, time.perf_counter() - t0)
  return 0


def _print_summary(workdir: str, wall_s: float) -> None:
  """The run's last lines: held-out before -> after, wall time, files, next commands."""
  import jax
  from r1jax import run_summary
  if jax.process_index() != 0:
    return
  try:
    text = run_summary.summarize(workdir, wall_s)
  except FileNotFoundError:  # An experiment's own main() may write no metrics.jsonl.
    text = f"finished: {workdir}"
  sys.stderr.flush()  # After the progress bars, not interleaved with them.
  print(text, flush=True)


def _exit_multiprocess_failure(error: Exception) -> None:
  """Ends a process whose multi-process run broke (most often: a peer process died).

  A collective with a dead peer fails at once (its connection closes). A normal interpreter
  exit would then wait in jax.distributed's shutdown barrier for the dead process until the
  heartbeat timeout and abort with a fatal log; `os._exit` ends this process now, with one
  clear message and exit status 3.
  """
  import os
  import jax
  first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  print(f"r1jax train: error: process {jax.process_index()} of {jax.process_count()} stops: a "
        f"collective operation failed, most likely because another process of this run died "
        f"or was killed (its own log has the cause). The last checkpoint is kept; rerun the same "
        f"command on every host to resume. JAX said: {first}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(3)  # pylint: disable=protected-access


class _TrainHelp(argparse.Action):
  """`r1jax train --help`: the flags, then every override key with its comment.

  The keys come from the config classes (imported only here, so other commands start fast).
  """

  def __call__(self, parser, namespace, values, option_string=None):
    from r1jax import config_doc
    from r1jax.run_config import Config
    parser.print_help()
    print("\nconfig keys (--set KEY=VALUE; a dict field takes one key as KEY.SUBKEY=VALUE, e.g. "
          "task_args.path=train.parquet; `--print-config` shows an experiment's values):")
    print(config_doc.format_keys(Config()))
    parser.exit()


def _add_train(sub) -> None:
  p = sub.add_parser("train", help="run an experiment file (GRPO, optionally after SFT)",
                     add_help=False)
  p.add_argument("-h", "--help", action=_TrainHelp, nargs=0,
                 help="show this help and every config key --set takes, then exit")
  p.add_argument("experiment", help="path of an experiment file defining get_config()")
  p.add_argument("--print-config", action="store_true",
                 help="print the resolved config (after --debug and --set), each field with "
                 "its comment, and exit")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="override a config field, e.g. --set optim.lr=3e-6 (repeatable)")
  p.add_argument("--workdir", help="where checkpoints, metrics and plots go "
                 "(default workdirs/<experiment>); rerunning in it resumes")
  p.add_argument("--debug", action="store_true",
                 help="use the file's get_debug_config(): the same code at tiny sizes")
  p.add_argument("--dry-run", action="store_true",
                 help="print per-device memory and FLOPs of the config without allocating")
  p.add_argument("--device-memory-gb", type=float, default=80.0,
                 help="memory of one device for --dry-run (default 80)")
  p.add_argument("--num-devices", type=int,
                 help="devices to plan for with --dry-run (default: the devices present)")
  p.add_argument("--compile", action="store_true",
                 help="with --dry-run: also compile the update step and the sampler on that "
                 "many fake CPU devices and print XLA's memory per device beside the plan")
  p.add_argument("--coordinator", help="HOST:PORT of process 0 for multi-host runs, or 'auto' "
                 "(detect a TPU pod slice, SLURM or MPI launch; also done without the flag)")
  p.add_argument("--num-processes", type=int, help="processes in a multi-host run")
  p.add_argument("--process-id", type=int, help="this process's index in a multi-host run")
  p.add_argument("--heartbeat-timeout", type=int, default=100, metavar="SECONDS",
                 help="multi-host: a process silent this long counts as dead and the others "
                 "stop with an error instead of hanging (default 100)")
  p.set_defaults(func=_cmd_train)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="r1jax", description="DeepSeek-R1-style RL (GRPO and successors) in JAX")
  sub = parser.add_subparsers(dest="command", required=True)
  _add_fetch(sub)
  _add_eval(sub)
  _add_export(sub)
  _add_plot(sub)
  _add_sample(sub)
  _add_train(sub)
  return parser


def main(argv: list[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    return int(args.func(args) or 0)
  except (ValueError, FileNotFoundError, RuntimeError) as e:
    # User-facing errors are one clear sentence; tracebacks are for bugs.
    print(f"r1jax {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
