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


AHA_CONFIG = '''
    # experiments/aha_miniature.py's config (tests/aha_miniature_test.py checks they agree):
    # stage 1 teaches three styles (direct, worked, worked then checked) with a first pass that
    # forgets the carry out of a column of two big digits; stage 2 is GRPO with a reward for
    # the right answer only.
    def aha_config(seed):
      return Config(
          model=ModelConfig(family="llama", vocab_size=22, hidden_size=96, num_layers=3,
                            num_heads=4, num_kv_heads=4, head_dim=24, intermediate_size=256,
                            max_position_embeddings=80, rope_theta=10000.0, scan_unroll=3),
          tokenizer_path="aha_miniature", task="aha_miniature",
          task_args={"seed": 0, "digits": 4}, eval_task_args={"seed": 1000},
          grpo=GRPOConfig(num_samples=8, kl_coef=0.0, clip_low=0.2, clip_high=0.2,
                          loss_agg="token_mean"),
          sampling=SamplingConfig(temperature=1.0, max_new_tokens=64, prompt_multiple=16),
          max_prompt_len=16, prompts_per_step=32, num_steps=60,
          optim=OptimConfig(lr=3e-4, max_grad_norm=1.0),
          sft=SFTConfig(steps=800, data="aha_miniature",
                        data_args={"worked_frac": 0.5, "think_in_prompt": 0.67,
                                   "verify_frac": 0.4, "check_in_prompt": 0.6,
                                   "slip_rate": 0.0, "blind_spot": True, "digits": 4},
                        batch_size=128,
                        optim=OptimConfig(lr=3e-3, warmup_steps=30, max_grad_norm=1.0,
                                          schedule="cosine", min_lr_ratio=0.1),
                        stop_accuracy=0.85, stop_style="verify", min_steps=200,
                        check_every=25),
          eval=EvalConfig(every=10, num_examples=256, num_samples=1, batch_size=256),
          checkpoint=CheckpointConfig(every=20, keep=2),
          seed=seed)


    def smoke(cfg):
      """Toy sizes (experiments/aha_miniature.py's debug variant): the code runs, nothing learns."""
      return dataclasses.replace(
          cfg, num_steps=2, prompts_per_step=4,
          grpo=dataclasses.replace(cfg.grpo, num_samples=4),
          sft=dataclasses.replace(cfg.sft, steps=5, batch_size=16, min_steps=0, check_every=5,
                                  heldout_rows=16),
          eval=EvalConfig(every=1, num_examples=8, batch_size=8),
          checkpoint=CheckpointConfig(every=1, keep=2), tensorboard=False)


    SEEDS = [0] if SMOKE else [0, 1]
    CONFIGS = {s: smoke(aha_config(s)) if SMOKE else aha_config(s) for s in SEEDS}
'''


def aha_moment() -> nbformat.NotebookNode:
  cells = [
      _md('''
          # The "aha moment" in miniature: does GRPO make a model check its own work?

          **The claim** (DeepSeek-AI, *DeepSeek-R1 incentivizes reasoning in LLMs through
          reinforcement learning*, Nature 645, 2025): trained by RL with a rule reward on the
          final answer alone, DeepSeek-R1-Zero's responses grow longer as training goes on
          (Fig. 1b: the average response length on the training set climbs steadily through
          the run, which lasts ~10k policy updates; approximate, read from the figure), its
          AIME 2024 pass@1 rises from 15.6% to 77.9% (Fig. 1a and the text), and it starts to
          re-check its work: the frequency of reflective words ("wait", "mistake", "however",
          "but", "retry", "error", "verify", "wrong", "evaluate", "check") rises over training
          (Extended Data Fig. 1a), and "wait" in particular is virtually absent early, appears
          sporadically between steps 4,000 and 7,000 and rises sharply after step 8,000
          (Extended Data Fig. 1b, as its caption says).

          **The run**: 4-digit additions, a 3-layer decoder (~330k parameters) trained from
          scratch (`experiments/aha_miniature.py`, text in `r1jax/data/aha_miniature.py`).
          Stage 1 (SFT) shows three styles:

          | style | completion | right? |
          |---|---|---|
          | direct | `A:09336` | rarely: one step is too much for this model |
          | worked | `<think>97016\\|39012\\|11103\\|72009</think>A:09326` | only when no column has two digits >= 5 |
          | verify | `<think>97016\\|39012\\|11103\\|72009?79016\\|93113<wait>11103\\|27009\\|</think>A:09336` | almost always |

          The first pass (columns units first: digit of a, digit of b, carry in, column sum)
          has a blind spot: it forgets the carry out of a column whose two digits are both 5
          or more (here 9 + 7), so ~58% of first passes are wrong. The check works b + a and
          follows each column with its verdict: `|` when its carry agrees with the first
          pass's, `<wait>` when it does not; the answer is the checked sum. (A first version
          with random slips instead failed in an instructive way, see
          `experiments/aha_miniature.py`: GRPO sharpened the slips away and checking stopped
          paying.) The model starts RL thinking on about
          a quarter of its answers and checking on about 5% of them. Stage 2 is GRPO (32
          prompts x 8 samples, temperature 1, no KL) with reward 1 for a right answer and
          nothing else: nothing rewards length, checking or `<wait>`. Every 10 steps 256
          held-out sums are answered greedily and by sampling; we plot accuracy, mean length,
          the share that thinks and that checks (works the sum a second time), `<wait>` per
          response (and how many of those follow a column that agrees: a marker that flags
          nothing) and the share of answers whose first pass is wrong, for two seeds. Each seed takes several minutes on a 2-core CPU
          (the last cell prints this run's time; R1JAX_SMOKE=1: a few minutes for the code
          only, nothing learns).
      '''),
      SETUP,
      _code('''
    import dataclasses
    import pathlib
    import tempfile
    import time

    import matplotlib.pyplot as plt
    import numpy as np

    from r1jax import train
    from r1jax.data import aha_miniature
    from r1jax.grpo_config import GRPOConfig
    from r1jax.metrics import read_metrics
    from r1jax.models.config import ModelConfig
    from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig, SFTConfig
    from r1jax.sampler import SamplingConfig

    WORK = pathlib.Path(tempfile.mkdtemp(prefix="r1jax_aha_"))
    T_START = time.time()
    print("stage-1 rows of 7139 + 2197, one per style (the first pass forgets the units' carry):")
    for style in ("direct", "worked", "verify"):
      row = aha_miniature.sft_example({"question": "7139+2197", "answer": "9336", "a": 7139,
                                       "b": 2197, "digits": 4}, style=style,
                                      flips=aha_miniature.blind_spot(7139, 2197))
      print(f"  {style:7s}{row['prompt']} {row['completion']}")
      '''),
      _code(AHA_CONFIG),
      _code('''
    runs = {}
    for seed, cfg in CONFIGS.items():
      t0 = time.time()
      train.run(cfg, WORK / f"seed{seed}")
      runs[seed] = read_metrics(WORK / f"seed{seed}")
      sft = next(r for r in runs[seed] if "sft/steps" in r)
      print(f"seed {seed}: {(time.time() - t0) / 60:.1f} min (stage 1: {sft['sft/steps']} "
            f"steps), metrics in {WORK / f'seed{seed}' / 'metrics.jsonl'}")


    def series(rows, key):
      return [r["step"] for r in rows if key in r], [r[key] for r in rows if key in r]
      '''),
      _md('''
          The curves: held-out sums every 10 RL steps (step 0 is right after stage 1). Solid:
          seed 0, faded: seed 1. The last panel is R1-Zero's published curves in words: we do
          not redraw them, since any numbers we would plot would be read off a figure.
      '''),
      _code('''
    PANELS = [
        ("accuracy (held-out)", [("eval/greedy/strict", "greedy"),
                                 ("eval/sampled/strict", "sampled")], True),
        ("mean response length, tokens", [("eval/sampled/length", "held-out, sampled"),
                                          ("length/mean", "training rollouts")], False),
        ("share of responses that ... (held-out, sampled)",
         [("eval/sampled/worked", "think"), ("eval/sampled/verify", "check (verify)")], True),
        ("<wait> per response (held-out, sampled)",
         [("eval/sampled/wait", "all <wait>"),
          ("eval/sampled/false_wait", "<wait> where the columns agree")], False),
        ("first pass wrong (held-out, sampled)", [("eval/sampled/slip", "share of responses")],
         True),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    for ax, (title, keys, share) in zip(axes.flat, PANELS):
      for i, (key, label) in enumerate(keys):
        for seed, rows in runs.items():
          ax.plot(*series(rows, key), marker="o", markersize=3, color=f"C{i}",
                  alpha=1.0 if seed == SEEDS[0] else 0.4,
                  label=f"{label}, seed {seed}")
      ax.set_title(title)
      ax.set_xlabel("RL step")
      if share:
        ax.set_ylim(-0.03, 1.03)
      ax.legend(fontsize=7)
      ax.grid(alpha=0.3)
    ax = axes.flat[-1]
    ax.axis("off")
    ax.text(0, 1, "DeepSeek-R1-Zero, Nature 2025 (described, not redrawn):\\n\\n"
            "Fig. 1a  AIME 2024 pass@1 rises from 15.6% to 77.9%\\n"
            "             over the RL run.\\n"
            "Fig. 1b  mean response length on the training set climbs\\n"
            "             steadily over the run (~10k steps; approximate,\\n"
            "             read from the figure).\\n"
            "Ext. Data Fig. 1a  reflective words rise over training.\\n"
            "Ext. Data Fig. 1b  'wait' virtually absent early, sporadic\\n"
            "             at steps 4,000-7,000, sharp rise after 8,000.\\n\\n"
            "Here: the same quantities, in miniature, over RL steps.",
            va="top", family="monospace", fontsize=9)
    fig.suptitle("GRPO with a right-answer reward alone: accuracy, length, checking, <wait>")
    plt.tight_layout()
    plt.show()
      '''),
      _code('''
    # The numbers behind the curves, and the issue's questions answered from them.
    KEYS = [("greedy accuracy", "eval/greedy/strict"), ("sampled accuracy", "eval/sampled/strict"),
            ("sampled length", "eval/sampled/length"), ("thinks", "eval/sampled/worked"),
            ("checks", "eval/sampled/verify"), ("<wait> per response", "eval/sampled/wait"),
            ("  of which unwarranted", "eval/sampled/false_wait"),
            ("first pass wrong", "eval/sampled/slip")]
    for seed, rows in runs.items():
      evals = [r for r in rows if "eval/sampled/strict" in r]
      first, last = evals[0], evals[-1]
      print(f"seed {seed}, held-out sums, step {first['step']} -> step {last['step']}:")
      for label, key in KEYS:
        print(f"  {label:22s}{first[key]:8.3f} -> {last[key]:8.3f}")
      # Length after the switch to thinking: from the first evaluation where 90% think.
      for mode in ("greedy", "sampled"):
        switched = next((r for r in evals if r[f"eval/{mode}/worked"] >= 0.9), None)
        if switched is None:
          print(f"  the {mode} answers never reached 90% thinking")
          continue
        before, after = switched[f"eval/{mode}/length"], last[f"eval/{mode}/length"]
        print(f"  {mode}: 90% think from step {switched['step']} (checking "
              f"{switched[f'eval/{mode}/verify']:.1%}), length {before:.1f} -> {after:.1f} "
              f"tokens by step {last['step']} "
              f"({'still growing' if after > before + 1 else 'not growing'} after the switch)")
      rose = last["eval/sampled/verify"] > max(0.5, first["eval/sampled/verify"])
      print(f"  checking {'rose above' if rose else 'did not rise above'} half of the sampled "
            f"answers ({first['eval/sampled/verify']:.1%} -> {last['eval/sampled/verify']:.1%})")
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
    "aha_miniature.ipynb": aha_moment,
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
