"""GRPOConfig: every choice of the GRPO objective as a named field, and the papers' presets.

"GRPO" names different objectives in different papers and codebases (loss aggregation, KL
estimator, reward scaling, clip ranges). `r1jax.grpo` reads only this config, so a run's JSON
dump says exactly which objective it optimised. The presets are functions returning the values
each paper states; variants are made with `dataclasses.replace` or `--set grpo.<field>=<value>`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Literal

RatioLevel = Literal["token", "sequence"]
KLEstimator = Literal["k1", "k2", "k3"]
AdvBaseline = Literal["group_mean", "rloo"]
AdvScale = Literal["group_std", "batch_std", "none"]
LossAgg = Literal["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"]
OldLogprobs = Literal["trainer", "sampler"]

RATIO_LEVELS: tuple[str, ...] = typing.get_args(RatioLevel)
KL_ESTIMATORS: tuple[str, ...] = typing.get_args(KLEstimator)
ADV_BASELINES: tuple[str, ...] = typing.get_args(AdvBaseline)
ADV_SCALES: tuple[str, ...] = typing.get_args(AdvScale)
LOSS_AGGS: tuple[str, ...] = typing.get_args(LossAgg)
OLD_LOGPROBS: tuple[str, ...] = typing.get_args(OldLogprobs)


def _is_number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclasses.dataclass(frozen=True)
class GRPOConfig:
  """The GRPO objective (see `r1jax.grpo` for the formulas each field selects).

  The defaults are DeepSeekMath's objective with a small group (R = 8).
  """

  num_samples: int = 8  # R: completions sampled per prompt (the group); at least 2.
  clip_low: float | None = 0.2  # eps_low: ratio clipped below at 1 - eps_low; None: no clip.
  clip_high: float = 0.2  # eps_high: ratio clipped above at 1 + eps_high (DAPO: > eps_low).
  dual_clip: float | None = None  # c > 1: loss of a negative-advantage token bounded by -c * A.
  ratio_level: RatioLevel = "token"  # "token" (GRPO) or "sequence" (GSPO: exp(mean log-ratio)).
  kl_coef: float = 0.04  # beta: weight of the per-token KL to the reference; 0 skips the reference.
  kl_estimator: KLEstimator = "k3"  # k1 log(pi/ref), k2 log^2 / 2, k3 ref/pi - log(ref/pi) - 1.
  entropy_coef: float = 0.0  # Weight of the per-token entropy bonus (subtracted from the loss).
  adv_baseline: AdvBaseline = "group_mean"  # Group mean, or mean of the other R - 1 (RLOO).
  adv_scale: AdvScale = "group_std"  # Divide by the group std, batch std (Lite PPO), or not.
  loss_agg: LossAgg = "seq_mean_token_mean"  # How token losses become one number (see grpo.py).
  # Dr. GRPO's constant L (seq_mean_token_sum_norm divides token sums by it); 0 = the
  # response budget, sampling.max_new_tokens, which the trainer fills in.
  token_sum_divisor: int = 0
  mask_truncated: bool = False  # DAPO overlong filtering: truncated completions get mask 0.
  num_iterations: int = 1  # mu: optimisation passes over each rollout batch (GRPO's inner loop).
  # Where pi_old comes from, fixed before a rollout's first optimizer step: "trainer" (a
  # teacher-forced pass on the rollout's params) or "sampler" (its logprobs, no extra pass;
  # equal in float32, not under a bf16 sampler or another engine).
  old_logprobs: OldLogprobs = "trainer"
  # Truncated importance sampling: weight each token's policy-gradient term by
  # min(pi_old / pi_sampler, C) to correct sampler-trainer mismatch; None = off.
  tis_cap: float | None = None
  dynamic_sampling: bool = False  # DAPO: drop groups whose rewards are all equal, refill the batch.
  adv_eps: float = 1e-6  # Added to the std in the advantage's denominator.
  overlong_buffer: int = 0  # DAPO soft overlong punishment: last L_cache tokens of budget; 0 off.
  overlong_penalty_factor: float = 1.0  # Reward penalty at the end of that buffer (DAPO: 1).

  def __post_init__(self):
    for name, choices in (("ratio_level", RATIO_LEVELS), ("kl_estimator", KL_ESTIMATORS),
                          ("adv_baseline", ADV_BASELINES), ("adv_scale", ADV_SCALES),
                          ("loss_agg", LOSS_AGGS), ("old_logprobs", OLD_LOGPROBS)):
      value = getattr(self, name)
      if value not in choices:
        raise ValueError(f"GRPOConfig.{name} got {value!r}; accepted values: "
                         f"{', '.join(map(repr, choices))}")
    for name, minimum in (("num_samples", 2), ("num_iterations", 1), ("overlong_buffer", 0),
                          ("token_sum_divisor", 0)):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"GRPOConfig.{name} must be an integer >= {minimum}, got {value!r}")
    if self.clip_low is not None and not (_is_number(self.clip_low) and 0 <= self.clip_low < 1):
      raise ValueError(f"GRPOConfig.clip_low must be in [0, 1) (or None for no lower clip), "
                       f"got {self.clip_low!r}")
    for name in ("clip_high", "kl_coef", "entropy_coef", "overlong_penalty_factor"):
      value = getattr(self, name)
      if not (_is_number(value) and value >= 0):
        raise ValueError(f"GRPOConfig.{name} must be a finite number >= 0, got {value!r}")
    if not (_is_number(self.adv_eps) and self.adv_eps > 0):
      raise ValueError(f"GRPOConfig.adv_eps must be a finite number > 0, got {self.adv_eps!r}")
    if self.dual_clip is not None and not (_is_number(self.dual_clip) and self.dual_clip > 1):
      raise ValueError(f"GRPOConfig.dual_clip must be a number > 1 (or None to disable), "
                       f"got {self.dual_clip!r}")
    if self.tis_cap is not None and not (_is_number(self.tis_cap) and self.tis_cap >= 1):
      raise ValueError(f"GRPOConfig.tis_cap must be a number >= 1 (or None to disable), got "
                       f"{self.tis_cap!r}")
    if self.tis_cap is not None and self.old_logprobs == "sampler":
      raise ValueError("GRPOConfig.tis_cap corrects the trainer's pi_old against the sampler's "
                       "logprobs, so it needs old_logprobs='trainer' (got 'sampler')")
    for name in ("mask_truncated", "dynamic_sampling"):
      if not isinstance(getattr(self, name), bool):
        raise ValueError(f"GRPOConfig.{name} must be true or false, got {getattr(self, name)!r}")


def grpo_deepseekmath() -> GRPOConfig:
  """GRPO as introduced in DeepSeekMath.

  Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
  Language Models", arXiv:2402.03300, Sec. 4 (GRPO objective, k3 KL estimator; RL setup: KL
  coefficient 0.04, 64 outputs per question, max length 1024, batch 1024, lr 1e-6, one policy
  update per exploration stage). The objective averages each output's token losses, then the
  outputs (`seq_mean_token_mean`), with advantages (r - mean) / std over the group. The paper
  does not state eps; 0.2 is PPO's default.
  """
  return GRPOConfig(num_samples=64, clip_low=0.2, clip_high=0.2, kl_coef=0.04, kl_estimator="k3",
                    adv_baseline="group_mean", adv_scale="group_std",
                    loss_agg="seq_mean_token_mean", num_iterations=1)


def r1_zero() -> GRPOConfig:
  """GRPO as used for DeepSeek-R1-Zero.

  DeepSeek-AI 2025, "DeepSeek-R1 incentivizes reasoning in LLMs through reinforcement
  learning", Nature 645, 633-638 (arXiv:2501.12948), Methods: KL coefficient 0.001, GRPO clip
  ratio eps = 10, 16 outputs per question, lr 3e-6, temperature 1, 32 questions per step, each
  rollout's 8192 outputs split into 16 minibatches for a single inner epoch (num_iterations 1;
  the 16 optimizer steps are the trainer's `Config.updates_per_rollout`),
  reference model replaced by the policy every 400 steps, max length 32768 (65536 after step
  8.2k). Those training-loop values belong to the trainer's config. With eps = 10 the lower
  bound 1 - eps < 0 can never bind (ratios are positive), hence clip_low=None.
  """
  return GRPOConfig(num_samples=16, clip_low=None, clip_high=10.0, kl_coef=0.001,
                    kl_estimator="k3", adv_baseline="group_mean", adv_scale="group_std",
                    loss_agg="seq_mean_token_mean", num_iterations=1)


def dr_grpo() -> GRPOConfig:
  """Dr. GRPO ("GRPO done right"): no length or std normalisation.

  Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective",
  arXiv:2503.20783 (COLM 2025), Sec. 3: advantages r - mean(r) without dividing by std, each
  output's token sum divided by a constant (`token_sum_divisor`; 0 takes the generation
  budget, sampling.max_new_tokens: their recipe uses 3000) instead of its length.
  Their released recipe: 8 samples per question, beta = 0. The clipped PPO surrogate is kept;
  eps = 0.2 is PPO's standard value.
  """
  return GRPOConfig(num_samples=8, clip_low=0.2, clip_high=0.2, kl_coef=0.0,
                    adv_baseline="group_mean", adv_scale="none",
                    loss_agg="seq_mean_token_sum_norm", num_iterations=1)


def dapo() -> GRPOConfig:
  """DAPO: clip-higher, token-level loss, dynamic sampling, overlong filtering and punishment.

  Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale",
  arXiv:2503.14476: eps_low 0.2, eps_high 0.28 (Sec. 3.1), dynamic sampling of groups with
  non-zero reward variance (Sec. 3.2), token-level loss over the whole batch (Sec. 3.3),
  overlong filtering and a soft punishment over the last L_cache = 4096 of L_max = 20480 tokens
  (Sec. 3.4), no KL term (Sec. 2.3); 16 responses per prompt, 512 prompts per rollout,
  16 gradient updates per rollout (one pass: num_iterations 1; the 16 updates are the
  trainer's `Config.updates_per_rollout`), lr 1e-6 (Sec. 4.1). Every
  component is in the final recipe (Table 1 adds them cumulatively).
  """
  return GRPOConfig(num_samples=16, clip_low=0.2, clip_high=0.28, kl_coef=0.0,
                    adv_baseline="group_mean", adv_scale="group_std", loss_agg="token_mean",
                    mask_truncated=True, dynamic_sampling=True, num_iterations=1,
                    overlong_buffer=4096, overlong_penalty_factor=1.0)


def gspo() -> GRPOConfig:
  """GSPO: one clipped importance ratio per sequence.

  Zheng et al. 2025, "Group Sequence Policy Optimization", arXiv:2507.18071: the ratio is
  s_i = (pi(y_i|x) / pi_old(y_i|x))^(1/|y_i|), clipped to [1 - 3e-4, 1 + 4e-4] (Sec. 5.1), the
  objective averages the G sequence terms (`seq_mean_token_mean` of a per-sequence constant),
  group-normalised advantages, no KL term, each rollout batch split into 4 minibatches (one
  pass; set `Config.updates_per_rollout=4`). The group size is not the paper's subject; 16
  here is our choice.
  """
  return GRPOConfig(num_samples=16, ratio_level="sequence", clip_low=3e-4, clip_high=4e-4,
                    kl_coef=0.0, adv_baseline="group_mean", adv_scale="group_std",
                    loss_agg="seq_mean_token_mean", num_iterations=1)


PRESETS = {
    "grpo_deepseekmath": grpo_deepseekmath,
    "r1_zero": r1_zero,
    "dr_grpo": dr_grpo,
    "dapo": dapo,
    "gspo": gspo,
}
