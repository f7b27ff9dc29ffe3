"""Rule-based rewards, scored on the host after sampling (Python, outside jit, with timeouts).

- `math`: final-answer extraction and equivalence grading (sympy in worker processes under a
  hard timeout; normalization rules in `math_normalize`).
- `format`: the R1-Zero `<think>...</think><answer>...</answer>` format reward.
- `countdown`: TinyZero's Countdown rule, parsed without eval.
- `language`: R1's language-consistency reward.
- `math_boxed`: the one `\\boxed{}` extractor; `math_verify_backend`: math-verify as an
  alternative grading backend.
- `code`: model-written Python run against tests in a sandbox (`code_verdict`: assertions
  judged in this process; `code_isolation`: the OS isolation of the child; `code_harness`:
  the child's program).
- `combine`: a task's reward as a weighted sum of named terms, each logged, errors counted.
"""

from r1jax.rewards.code import (CheckTest, CodeTests, humaneval_test, run_program, run_tests,
                                sandbox_capabilities)
from r1jax.rewards.combine import (BatchScores, CombinedReward, RewardFn, RewardTerm, combine,
                                   score_batch)
from r1jax.rewards.countdown import CountdownAccuracy, countdown_reward
from r1jax.rewards.format import R1Format, TagCount, format_reward, tag_count_reward
from r1jax.rewards.language import LanguageConsistency, language_consistency
from r1jax.rewards.math import (MathAccuracy, extract_answer, gold_answer, grading_stats,
                                is_equivalent, math_reward)

__all__ = [
    "BatchScores",
    "CheckTest",
    "CodeTests",
    "CombinedReward",
    "CountdownAccuracy",
    "LanguageConsistency",
    "MathAccuracy",
    "R1Format",
    "RewardFn",
    "RewardTerm",
    "combine",
    "countdown_reward",
    "extract_answer",
    "format_reward",
    "tag_count_reward",
    "TagCount",
    "gold_answer",
    "humaneval_test",
    "grading_stats",
    "is_equivalent",
    "language_consistency",
    "math_reward",
    "run_program",
    "run_tests",
    "sandbox_capabilities",
    "score_batch",
]
