"""DeepCoder-14B-Preview: code RL from DeepSeek-R1-Distill-Qwen-14B with GRPO+.

Source: Michael Luo, Sijun Tan, Roy Huang, et al. (Agentica and Together AI), "DeepCoder: A
Fully Open-Source 14B Coder at O3-mini Level" (blog, April 2025) and the model card of
agentica-org/DeepCoder-14B-Preview; code: github.com/agentica-project/rllm (veRL). No paper.

What they did (model card): RL from DeepSeek-R1-Distill-Qwen-14B on about 24K verified
problem-tests pairs (TACO-Verified, PrimeIntellect SYNTHETIC-1, LiveCodeBench v5 problems of
2023-05-01 to 2024-07-31); reward 1 when the code passes every test, else 0 (no partial credit,
no format term); GRPO+: offline difficulty filtering of the data, no entropy loss, no KL loss
(and so no reference model), overlong filtering (truncated samples are masked, from DAPO),
clip-high (from DAPO); iterative context lengthening (from DeepScaleR): 16K-token responses,
then 32K; 32 H100s for 2.5 weeks.

Reported (model card; the base model in brackets): LiveCodeBench v5 (2024-08-01 to
2025-02-01) pass@1 60.6% [53.0%], Codeforces rating 1936 [1791] (95.3 percentile), HumanEval+
92.6% [92.0%], AIME 2024 73.8% [69.7%] (maths, never trained on); o3-mini (low) scores 60.9%
on the same LiveCodeBench window.

Here:
  * the objective is GRPO+ as listed: no KL (kl_coef 0, the reference is skipped), no entropy
    term, truncated samples masked, eps_low 0.2 with eps_high 0.28 (DAPO's value: the card
    names clip-high, not its value), token-level loss over the batch as in DAPO.
  * only the first context stage: 16,384-token responses. The 32K stage is the same run
    continued with `--set sampling.max_new_tokens=32768` (not planned here).
  * 64 prompts x 8 samples a step, lr 1e-6 constant, 4 updates a rollout and 1,000 steps are
    our choices (DeepScaleR-like); the card states no batch, group or step counts.
  * the data must be converted to JSONL for the `code` task's stdio layout (question text, a
    tests field of {"input", "output"} objects); call-based problems (LeetCode / LiveCodeBench
    "functional" tests, TACO's fn_name) are refused by r1jax's stdio loader and must be left
    out, so the training set is smaller than DeepCoder's. Difficulty filtering is not done.
  * the prompt is r1jax's R1 instruction as the system turn (reason in <think>, code in one
    ```python block inside <answer>); DeepCoder's words differ. No format reward
    (format_weight 0), as DeepCoder.
  * tests run in r1jax's sandbox with a 6 s limit for the whole test set of a sample (their
    per-test limits differ); tests are capped at 15 per problem (max_tests).

Data: $R1JAX_DATA (default ./data) must hold deepcoder/train.jsonl and deepcoder/test.jsonl.

Commands:
  r1jax train experiments/deepcoder_14b_preview.py --dry-run --num-devices 32 \\
      --device-memory-gb 80            # the memory plan on DeepCoder's 32 H100s: fits
  r1jax train experiments/deepcoder_14b_preview.py --workdir workdirs/deepcoder_14b
  r1jax train experiments/deepcoder_14b_preview.py --debug   # tiny model, CPU

Expected: not measured with r1jax yet (no accelerator was available).
"""

import dataclasses
import os

from r1jax import experiment
from r1jax.grpo_config import GRPOConfig
from r1jax.models.config import ModelConfig
from r1jax.run_config import CheckpointConfig, Config, EvalConfig, OptimConfig
from r1jax.sampler import SamplingConfig
from r1jax.sharding import MeshConfig

DATA = os.environ.get("R1JAX_DATA", "data")
# The hardware of the dry run in the docstring (and of tests/experiments_test.py).
HARDWARE = {"num_devices": 32, "device_memory_gb": 80.0}
UPDATES_PER_ROLLOUT = 4
_TASK = {"layout": "stdio", "fields": {"question": "question", "tests": "tests"},
         "max_tests": 15, "template": "chat", "format_weight": 0.0, "timeout_s": 6.0}


def _r1_distill_qwen_14b() -> ModelConfig:
  """DeepSeek-R1-Distill-Qwen-14B: the Qwen2.5-14B architecture (its config.json)."""
  return ModelConfig(family="qwen2", vocab_size=152064, hidden_size=5120, num_layers=48,
                     num_heads=40, num_kv_heads=8, head_dim=128, intermediate_size=13824,
                     max_position_embeddings=131072, rope_theta=1e6, rms_norm_eps=1e-5,
                     tie_embeddings=False, qkv_bias=True, dtype="bfloat16", remat="full")


def get_config() -> Config:
  return Config(
      model=_r1_distill_qwen_14b(),
      model_path="deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
      task="code",
      task_args={"path": f"{DATA}/deepcoder/train.jsonl", **_TASK},
      eval_task_args={"path": f"{DATA}/deepcoder/test.jsonl"},
      chat=True,
      # GRPO+: no KL, no entropy, overlong filtering, clip-high, token-level loss.
      grpo=GRPOConfig(num_samples=8, clip_low=0.2, clip_high=0.28, kl_coef=0.0,
                      entropy_coef=0.0, loss_agg="token_mean", mask_truncated=True),
      sampling=SamplingConfig(temperature=0.6, top_p=0.95, max_new_tokens=16_384),
      max_prompt_len=2048,
      prompts_per_step=64,
      updates_per_rollout=UPDATES_PER_ROLLOUT,
      minibatch_size=8,
      rollout_chunk=32,
      num_steps=1000,
      optim=OptimConfig(lr=1e-6, schedule="constant", max_grad_norm=1.0),
      eval=EvalConfig(every=20, num_examples=128, num_samples=1, temperature=0.6,
                      batch_size=64),
      checkpoint=CheckpointConfig(every=20, keep=3),
      mesh=MeshConfig(data=1, fsdp=8, tensor=4),
      seed=0,
  )


def get_debug_config() -> Config:
  """The same objective, template and sandbox reward at toy sizes: seconds on CPU.

  A tiny random Qwen2-family decoder with the byte tokenizer; the generated function-writing
  problems (`code_functions`, level 1) stand in for the data file the CPU does not have.
  """
  debug = experiment.debug_variant(get_config(), max_position_embeddings=1024,
                                   max_prompt_len=900, chat=False, mesh=MeshConfig())
  task = {k: v for k, v in _TASK.items() if k in ("format_weight", "timeout_s")}
  return dataclasses.replace(
      debug, task="code_functions",
      task_args={"seed": 0, "levels": (1,), "template": "r1_zero", **task},
      eval_task_args={"seed": 1})
