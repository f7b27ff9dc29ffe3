"""Writes the ablation notebooks (nbformat); not part of the r1jax package.

Each notebook installs r1jax in Colab, builds "R1 in miniature" configs, trains stage 1 (SFT)
once, runs one GRPO variant after another from that checkpoint, and plots. They define no
library code: configs, a loop over variants, and matplotlib. R1JAX_SMOKE=1 shrinks every
size so that CI (tests/notebooks_test.py) executes them end to end in seconds.

  python notebooks/_make_notebooks.py            # rewrites the three .ipynb files (no outputs)
  R1JAX_SMOKE=0 jupyter nbconvert --to notebook --execute --inplace notebooks/ablate_*.ipynb
  python notebooks/_make_notebooks.py --strip-logs notebooks/ablate_*.ipynb

The last line drops the stderr streams of an executed notebook (the trainer's per-step log and
progress bars, hundreds of lines a run) and keeps what the cells print and plot.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap

import nbformat
from nbformat import v4

HERE = pathlib.Path(__file__).parent


def _code(src: str) -> nbformat.NotebookNode:
  return v4.new_code_cell(textwrap.dedent(src).strip("\n"))


def _md(src: str) -> nbformat.NotebookNode:
  return v4.new_markdown_cell(textwrap.dedent(src).strip("\n"))


SETUP = _code('''
    # Setup: installs r1jax unless it already imports. Opened inside a checkout (this notebook
    # in its notebooks/ folder) it installs that checkout; elsewhere (Colab) the repository at
    # R1JAX_REPO. R1JAX_SOURCE, if set, names another pip source (a path, a wheel, a git URL).
    import importlib
    import importlib.util
    import os
    import pathlib
    import subprocess
    import sys

    R1JAX_REPO = "git+https://github.com/OWNER/r1jax.git"


    def r1jax_source():
      if os.environ.get("R1JAX_SOURCE"):
        return os.environ["R1JAX_SOURCE"]
      for folder in (pathlib.Path.cwd(), *pathlib.Path.cwd().parents):
        if (folder / "setup.py").is_file() and (folder / "r1jax" / "__init__.py").is_file():
          return str(folder)
      return R1JAX_REPO


    if importlib.util.find_spec("r1jax") is None:
      print(f"installing r1jax from {r1jax_source()}")
      subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", r1jax_source()],
                            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
      importlib.invalidate_caches()  # The new package imports in this same kernel.

    # R1JAX_SMOKE=1 shrinks every size: CI runs the whole notebook that way in about a minute.
    SMOKE = os.environ.get("R1JAX_SMOKE", "0") == "1"
    print("smoke run" if SMOKE else "full run")
''')

IMPORTS = _code('''
    import dataclasses
    import pathlib
    import tempfile
    import time

    import jax
    import matplotlib.pyplot as plt
    import numpy as np

    from r1jax import eval_run, models, train
    from r1jax.grpo_config import GRPOConfig, dr_grpo
    from r1jax.metrics import read_metrics
    from r1jax.models.config import ModelConfig
    from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig, SFTConfig
    from r1jax.sampler import SamplingConfig

    WORK = pathlib.Path(tempfile.mkdtemp(prefix="r1jax_ablation_"))
    # Variants share compiled programs (sampler, evaluation) through JAX's on-disk cache.
    jax.config.update("jax_compilation_cache_dir", str(WORK / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    T_START = time.time()
''')


def _base_config(rl_steps: str, prompts: str, extra: str = "") -> nbformat.NotebookNode:
  return _code(f'''
    # "R1 in miniature" (experiments/miniature.py: 4-digit additions, a 3-layer decoder, a reward
    # for the right answer only), shortened for a notebook: stage 1 (SFT) runs once and every
    # variant starts from its checkpoint; the RL stage is shorter than the experiment's 30 steps.
    SFT_STEPS = 0 if SMOKE else 400  # Smoke: no SFT, the random init stands in for stage 1.
    RL_STEPS = {rl_steps}
    PROMPTS = {prompts}
    EVAL_QUESTIONS = 8 if SMOKE else 256  # Held-out sums (another seed than training's).
    EVAL_SAMPLES = 2 if SMOKE else 4  # Sampled answers per held-out sum in the final evaluation.
    {extra}
    base = Config(
        model=ModelConfig(family="llama", vocab_size=20, hidden_size=96, num_layers=3,
                          num_heads=4, num_kv_heads=4, head_dim=24, intermediate_size=256,
                          max_position_embeddings=64),
        tokenizer_path="miniature", task="miniature", task_args={{"seed": 0, "digits": 4}},
        eval_task_args={{"seed": 1}},
        grpo=GRPOConfig(num_samples=8, kl_coef=0.0),
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=40, prompt_multiple=16),
        prompts_per_step=PROMPTS, num_steps=RL_STEPS, optim=OptimConfig(lr=1e-4),
        sft=SFTConfig(steps=SFT_STEPS, data="miniature",
                      data_args={{"worked_frac": 0.3, "digits": 4}},
                      batch_size=8 if SMOKE else 128,
                      optim=OptimConfig(lr=3e-3, warmup_steps=30)),
        eval=EvalConfig(),  # Held-out evaluation runs after training (eval_run below).
        checkpoint=CheckpointConfig(every=1000, keep=1), tensorboard=False, seed=0)
''')


STAGE1 = _code('''
    def evaluate(workdir):
      """Held-out sums: greedy, then EVAL_SAMPLES sampled answers each (temperature 1)."""
      greedy = eval_run.run(workdir, k=1, temperature=0.0, limit=EVAL_QUESTIONS,
                            progress=False, num_resamples=200)
      sampled = eval_run.run(workdir, k=EVAL_SAMPLES, temperature=1.0, top_p=1.0,
                             limit=EVAL_QUESTIONS, progress=False, num_resamples=200)
      length = sampled.analysis["length"]
      return {"greedy": greedy.metrics["strict"]["pass@1"],
              "sampled": sampled.metrics["strict"]["pass@1"],
              "thinks": sampled.metrics["worked"]["pass@1"],
              "len right": length["correct_mean"] if length["correct_mean"] else np.nan,
              "len wrong": length["wrong_mean"] if length["wrong_mean"] else np.nan}


    def describe(name, ev, seconds):
      print(f"{name}: {seconds:.0f} s. Held out: greedy {ev['greedy']:.1%}, sampled "
            f"{ev['sampled']:.1%}, thinks {ev['thinks']:.1%}, length right "
            f"{ev['len right']:.1f} / wrong {ev['len wrong']:.1f} tokens")


    # Stage 1 once: SFT, then stop before the first RL step (max_steps=0). Its weights are
    # saved as a Hugging Face folder that every variant loads as its starting point.
    t0 = time.time()
    train.run(base, WORK / "stage1_run", max_steps=0)
    stage1 = eval_run.load_model(WORK / "stage1_run")
    STAGE1 = models.save_hf(stage1.model_cfg, stage1.params, WORK / "stage1")
    after_sft = evaluate(WORK / "stage1_run")
    describe("stage 1 (SFT)", after_sft, time.time() - t0)
    rl_base = dataclasses.replace(base, model_path=str(STAGE1), sft=SFTConfig())
''')

RUN_VARIANT = '''
    def run_variant(name, cfg):
      """Trains one variant from stage 1: its per-step metrics and the held-out evaluation."""
      workdir = WORK / name.translate(str.maketrans(" .,()=", "______"))
      t0 = time.time()
      train.run(cfg, workdir)
      ev = evaluate(workdir)
      describe(name, ev, time.time() - t0)
      return {"rows": read_metrics(workdir), "eval": ev}


    def series(rows, key):
      return [r["step"] for r in rows if key in r], [r[key] for r in rows if key in r]
'''

TIMING = _code('''
    print(f"whole notebook: {(time.time() - T_START) / 60:.1f} min")
''')


def loss_aggregation() -> nbformat.NotebookNode:
  cells = [
      _md('''
          # Loss aggregation: GRPO vs Dr. GRPO vs DAPO's token mean, in miniature

          **The claim** (Liu et al. 2025, *Understanding R1-Zero-Like Training*,
          arXiv:2503.20783, Sec. 3.1-3.2): GRPO divides each response's token losses by its
          own length, so a long wrong answer is penalised less per token than a short one, and
          it divides advantages by the group's std. Wrong answers then drift longer during
          training. Dr. GRPO sums token losses, divides by a constant (the budget) and drops
          the std; wrong answers stay short at equal accuracy. DAPO (arXiv:2503.14476,
          Sec. 3.3) averages over all tokens of the batch, which also weighs every token alike.

          **The run**: "R1 in miniature" (a 3-layer decoder learns 4-digit addition; stage 1
          teaches two styles, direct answers and worked sums inside `<think>`; the reward is
          only "is the answer right"). One stage 1 is shared; three objectives then train
          from it, two RL seeds each:

          | variant | token losses | advantage |
          |---|---|---|
          | GRPO (DeepSeekMath) | mean per response, then over responses | (r - mean) / std |
          | Dr. GRPO | sum per response / 40 (the budget), mean over responses | r - mean |
          | DAPO token-mean | mean over every token of the batch | (r - mean) / std |

          Everything else is equal: 30 RL steps of 32 prompts x 8 samples, lr 1e-4, clip 0.2,
          no KL. We measure held-out accuracy and the length of right and wrong answers.
          It takes 10-20 minutes on a 2-core CPU (the last cell prints this run's time;
          R1JAX_SMOKE=1: 1-2 minutes).
      '''),
      SETUP, IMPORTS,
      _base_config("1 if SMOKE else 30", "2 if SMOKE else 32",
                   "SEEDS = [0] if SMOKE else [0, 1]  # RL seeds (sampling and prompt order)."),
      STAGE1,
      _code(RUN_VARIANT + '''

    VARIANTS = {
        "GRPO": GRPOConfig(num_samples=8, kl_coef=0.0, adv_scale="group_std",
                           loss_agg="seq_mean_token_mean"),
        "Dr. GRPO": dr_grpo(),  # adv_scale="none", loss_agg="seq_mean_token_sum_norm".
        "DAPO token-mean": GRPOConfig(num_samples=8, kl_coef=0.0, adv_scale="group_std",
                                      loss_agg="token_mean"),
    }
    runs = {}
    for name, objective in VARIANTS.items():
      for seed in SEEDS:
        runs[name, seed] = run_variant(f"{name} seed {seed}",
                                       dataclasses.replace(rl_base, grpo=objective, seed=seed))
      '''),
      _code('''
    colors = dict(zip(VARIANTS, ["tab:red", "tab:blue", "tab:green"]))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for (name, seed), run in runs.items():
      style = dict(color=colors[name], alpha=0.9 if seed == SEEDS[0] else 0.45,
                   label=name if seed == SEEDS[0] else None)
      axes[0].plot(*series(run["rows"], "accuracy/strict"), **style)
      axes[1].plot(*series(run["rows"], "length/wrong_mean"), **style)
      axes[2].plot(*series(run["rows"], "length/correct_mean"), **style)
    for ax, title in zip(axes, ["training accuracy (sampled)", "length of wrong answers",
                                "length of right answers"]):
      ax.set_title(title)
      ax.set_xlabel("RL step")
      ax.legend()
    axes[1].set_ylabel("tokens")
    plt.tight_layout()
    plt.show()
      '''),
      _code('''
    # Held-out sums after RL: the mean over seeds of each variant.
    def mean_over_seeds(name, fn):
      return float(np.mean([fn(runs[name, s]) for s in SEEDS]))

    table = {}
    for name in VARIANTS:
      table[name] = {
          **{k: mean_over_seeds(name, lambda r, k=k: r["eval"][k])
             for k in ("greedy", "sampled", "thinks", "len right", "len wrong")},
          # Training rollouts over the last third of the steps.
          "train len wrong": mean_over_seeds(name, lambda r: np.nanmean(
              series(r["rows"], "length/wrong_mean")[1][-max(1, RL_STEPS // 3):])),
      }
    print(f"{'':18s}" + "".join(f"{k:>16s}" for k in next(iter(table.values()))))
    for name, row in table.items():
      print(f"{name:18s}" + "".join(f"{v:16.3f}" for v in row.values()))

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    names = list(table)
    axes[0].bar(names, [table[n]["sampled"] for n in names],
                color=[colors[n] for n in names])
    axes[0].set_title("held-out accuracy, sampled (temperature 1)")
    x = np.arange(len(names))
    axes[1].bar(x - 0.2, [table[n]["len right"] for n in names], 0.4, label="right")
    axes[1].bar(x + 0.2, [table[n]["len wrong"] for n in names], 0.4, label="wrong")
    axes[1].set_xticks(x, names)
    axes[1].set_title("held-out answer length (tokens)")
    axes[1].legend()
    plt.tight_layout()
    plt.show()

    gap = table["GRPO"]["len wrong"] - table["Dr. GRPO"]["len wrong"]
    print(f"Wrong held-out answers are {gap:+.1f} tokens longer under GRPO than under Dr. GRPO "
          f"({table['GRPO']['len wrong']:.1f} vs {table['Dr. GRPO']['len wrong']:.1f}); "
          f"sampled accuracy {table['GRPO']['sampled']:.1%} vs {table['Dr. GRPO']['sampled']:.1%}.")
      '''),
      TIMING,
  ]
  return v4.new_notebook(cells=cells, metadata=_metadata())


def group_size_and_kl() -> nbformat.NotebookNode:
  cells = [
      _md('''
          # Group size and KL coefficient, in miniature

          GRPO's baseline is the mean reward of the R samples of one prompt, so R sets how good
          that baseline is and how often a group carries no signal at all (every sample right,
          or every sample wrong: zero advantage, zero gradient). The papers use R = 64
          (DeepSeekMath), 16 (DeepSeek-R1-Zero, DAPO) and 8 (Dr. GRPO, SimpleRL-Zoo). Their KL
          coefficients to the reference span 0.04 (DeepSeekMath), 0.001 (R1-Zero) and 0 (Dr. GRPO;
          DAPO: in long-CoT RL the policy must drift far, so the restriction "is not
          necessary").

          **The run**: "R1 in miniature" (stage 1 shared, then GRPO with the right-answer reward
          only). Two sweeps from the same stage 1:
          * R in {2, 4, 8, 16} at KL 0, with 128 samples every step for every R (P = 128 / R
            prompts), so each variant draws the same number of samples;
          * KL coefficient in {0, 0.001, 0.04} (k3 estimator) at R = 8.

          We measure held-out accuracy, the share of zero-variance groups and the KL to the
          reference, over 20 RL steps. It takes 10-20 minutes on a 2-core CPU (the last cell
          prints this run's time; R1JAX_SMOKE=1: 1-2 minutes).
      '''),
      SETUP, IMPORTS,
      _base_config("1 if SMOKE else 20", "16",
                   "ROWS = 8 if SMOKE else 128  # Samples a step, the same for every group size."
                   "\n    GROUP_SIZES = [2, 4] if SMOKE else [2, 4, 8, 16]"
                   "\n    KL_COEFS = [0.0, 0.04] if SMOKE else [0.0, 0.001, 0.04]"
                   "\n    KL_GROUP = 4 if SMOKE else 8  # R of the KL sweep."),
      STAGE1,
      _code(RUN_VARIANT + '''

    def variant(num_samples, kl_coef):
      return dataclasses.replace(
          rl_base, prompts_per_step=ROWS // num_samples,
          grpo=GRPOConfig(num_samples=num_samples, kl_coef=kl_coef, kl_estimator="k3"))

    runs = {}
    for r in GROUP_SIZES:
      runs[r, 0.0] = run_variant(f"R={r} kl=0", variant(r, 0.0))
    for kl in KL_COEFS:
      if (KL_GROUP, kl) not in runs:  # R = 8, KL 0 is already in the group-size sweep.
        runs[KL_GROUP, kl] = run_variant(f"R={KL_GROUP} kl={kl}", variant(KL_GROUP, kl))
      '''),
      _code('''
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for r in GROUP_SIZES:
      rows = runs[r, 0.0]["rows"]
      axes[0].plot(*series(rows, "accuracy/strict"), label=f"R = {r}")
      axes[1].plot(*series(rows, "groups/zero_var_frac"), label=f"R = {r}")
    for key, marker in (("sampled", "o-"), ("greedy", "s--")):
      axes[2].plot(GROUP_SIZES, [runs[r, 0.0]["eval"][key] for r in GROUP_SIZES], marker,
                   label=key)
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(GROUP_SIZES, [str(r) for r in GROUP_SIZES])
    for ax, title, xlabel in zip(axes, ["training accuracy (sampled)", "zero-variance groups",
                                         "held-out accuracy after RL"],
                                 ["RL step", "RL step", "group size R"]):
      ax.set_title(title)
      ax.set_xlabel(xlabel)
      ax.legend()
    plt.tight_layout()
    plt.show()
      '''),
      _code('''
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for kl in KL_COEFS:
      rows = runs[KL_GROUP, kl]["rows"]
      axes[0].plot(*series(rows, "accuracy/strict"), label=f"KL {kl}")
      axes[1].plot(*series(rows, "kl"), label=f"KL {kl}")
      axes[2].plot(*series(rows, "think_frac"), label=f"KL {kl}")
    for ax, title in zip(axes, ["training accuracy (sampled)",
                                "KL to the reference (k3, per token)",
                                "answers that think (training)"]):
      ax.set_title(title)
      ax.set_xlabel("RL step")
      ax.legend()
    plt.tight_layout()
    plt.show()

    print(f"{'variant':14s}{'greedy':>9s}{'sampled':>9s}{'thinks':>9s}{'zero-var':>10s}"
          f"{'KL':>10s}")
    for (r, kl), run in runs.items():
      zero = np.mean(series(run["rows"], "groups/zero_var_frac")[1])
      last_kl = run["rows"][-1]["kl"]
      print(f"R={r:<3d} KL={kl:<5g}{run['eval']['greedy']:9.3f}{run['eval']['sampled']:9.3f}"
            f"{run['eval']['thinks']:9.3f}{zero:10.3f}{last_kl:10.5f}")
      '''),
      TIMING,
  ]
  return v4.new_notebook(cells=cells, metadata=_metadata())


def clip_higher() -> nbformat.NotebookNode:
  cells = [
      _md('''
          # Clip-higher and entropy collapse, in miniature

          **The claim** (Yu et al. 2025, *DAPO*, arXiv:2503.14476, Sec. 3.1, Fig. 2): with the
          usual symmetric clip (eps = 0.2) the policy's entropy falls fast and the samples of a
          group become nearly identical. The upper clip is what binds for rare "exploration"
          tokens: a token at probability 0.01 may only rise to 0.012 in one update. Raising
          eps_high to 0.28 (eps_low stays 0.2) keeps the entropy up and the samples diverse.

          **The run**: "R1 in miniature" (stage 1 shared, then GRPO with the right-answer reward
          only). A clip only binds when the policy has moved away from the one that sampled,
          so, as in DAPO (a rollout of 512 prompts feeds 16 optimizer steps), every rollout of
          32 prompts x 8 samples is shuffled into 8 mini-batches of 32 rows, one optimizer
          step each (`updates_per_rollout=8`), with pi_old fixed before the first: the first
          step is on-policy, the later ones are not and can clip. Variants: eps_high in
          {0.2, 0.28, 0.4} with eps_low = 0.2, DAPO's token-mean loss, no KL, 10 RL steps,
          two RL seeds (each shared by all variants: the same prompts and sampling keys, so
          within a seed the variants differ only by their clip). We track the policy's token
          entropy on its own samples, how often each clip binds, and accuracy.
          It takes 10-20 minutes on a 2-core CPU (the last cell prints this run's time;
          R1JAX_SMOKE=1: 1-2 minutes).
      '''),
      SETUP, IMPORTS,
      _base_config("1 if SMOKE else 10", "2 if SMOKE else 32",
                   "SEEDS = [0] if SMOKE else [0, 1]  # RL seeds, each shared by the variants."
                   "\n    UPDATES = 2 if SMOKE else 8  # Optimizer steps per rollout (U)."
                   "\n    CLIP_HIGHS = [0.2, 0.28] if SMOKE else [0.2, 0.28, 0.4]"),
      STAGE1,
      _code(RUN_VARIANT + '''

    runs = {}
    for eps_high in CLIP_HIGHS:
      objective = GRPOConfig(num_samples=8, kl_coef=0.0, clip_low=0.2, clip_high=eps_high,
                             loss_agg="token_mean")
      for seed in SEEDS:
        runs[eps_high, seed] = run_variant(
            f"eps_high {eps_high} seed {seed}",
            dataclasses.replace(rl_base, grpo=objective, updates_per_rollout=UPDATES,
                                seed=seed))
      '''),
      _code('''
    colors = dict(zip(CLIP_HIGHS, ["tab:red", "tab:orange", "tab:green"]))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for (eps_high, seed), run in runs.items():
      style = dict(color=colors[eps_high], alpha=0.9 if seed == SEEDS[0] else 0.45,
                   label=f"eps_high {eps_high}" if seed == SEEDS[0] else None)
      for ax, key in zip(axes, ["entropy", "clip/high_frac", "clip/low_frac",
                                "accuracy/strict"]):
        ax.plot(*series(run["rows"], key), **style)
    for ax, title in zip(axes, ["token entropy of the policy (nats)",
                                "tokens where the upper clip binds",
                                "tokens where the lower clip binds",
                                "training accuracy (sampled)"]):
      ax.set_title(title)
      ax.set_xlabel("RL step")
      ax.legend()
    plt.tight_layout()
    plt.show()
      '''),
      _code('''
    def mean_over_seeds(eps_high, fn):
      return float(np.mean([fn(runs[eps_high, s]) for s in SEEDS]))

    print(f"{'eps_high':>9s}{'entropy start':>15s}{'entropy end':>13s}{'upper clip':>12s}"
          f"{'greedy':>9s}{'sampled':>9s}{'thinks':>9s}")
    summary = {}
    for eps_high in CLIP_HIGHS:
      tail = max(1, RL_STEPS // 3)  # The last third of the steps.
      summary[eps_high] = {
          "start": mean_over_seeds(eps_high, lambda r: r["rows"][0]["entropy"]),
          "end": mean_over_seeds(
              eps_high, lambda r: np.mean(series(r["rows"], "entropy")[1][-tail:])),
          "clip": mean_over_seeds(
              eps_high, lambda r: np.mean(series(r["rows"], "clip/high_frac")[1])),
          **{k: mean_over_seeds(eps_high, lambda r, k=k: r["eval"][k])
             for k in ("greedy", "sampled", "thinks")},
      }
      print(f"{eps_high:9.2f}" + "".join(f"{v:13.4f}" for v in summary[eps_high].values()))
    lo, hi = summary[0.2]["end"], summary[0.28]["end"]
    print(f"Entropy over the last third of RL: {lo:.4f} nats with eps_high 0.2, {hi:.4f} with "
          f"0.28 ({(hi - lo) / lo:+.1%}).")
      '''),
      TIMING,
  ]
  return v4.new_notebook(cells=cells, metadata=_metadata())


def _metadata() -> dict:
  return {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
          "language_info": {"name": "python"}, "colab": {"provenance": []},
          "accelerator": "None"}


NOTEBOOKS = {
    "ablate_loss_aggregation.ipynb": loss_aggregation,
    "ablate_group_size_and_kl.ipynb": group_size_and_kl,
    "ablate_clip_higher.ipynb": clip_higher,
}


def strip_logs(path: pathlib.Path) -> None:
  """Removes stderr stream outputs (training logs, progress bars) from an executed notebook."""
  nb = nbformat.read(path, as_version=4)
  for cell in nb.cells:
    if cell.cell_type == "code":
      cell.outputs = [o for o in cell.outputs
                      if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
  nbformat.write(nb, path)


def main(argv: list[str]) -> None:
  if argv[:1] == ["--strip-logs"]:
    for path in argv[1:]:
      strip_logs(pathlib.Path(path))
      print(f"stripped the logs of {path}")
    return
  for name, build in NOTEBOOKS.items():
    nb = build()
    nbformat.validate(nb)
    nbformat.write(nb, HERE / name)
    print(f"wrote {HERE / name}")


if __name__ == "__main__":
  main(sys.argv[1:])
