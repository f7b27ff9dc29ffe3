"""`math-verify` (the grader of open-r1, lighteval and TRL) as a grading backend of `rewards.math`.

Place in the pipeline: `rewards.math.is_equivalent(pred, gold, backend="math_verify")` (and
`MathAccuracy(backend="math_verify")`) sends the extracted answer and the gold answer here
instead of to r1jax's own normalizer, so a researcher can report accuracies comparable with
those projects. Extraction stays r1jax's (`rewards.math.extract_answer`): the backends differ
only in deciding whether two answers are equal. Each answer is given to `math_verify.parse`
inside `\\boxed{...}` (so its LaTeX extraction takes the whole answer) and the two parses to
`math_verify.verify(gold, pred)` with its own timeouts off: math-verify's timeouts use
SIGALRM, which works only in a main thread. Instead the call runs in r1jax's own worker
processes (`rewards.timeout.WorkerPool`, which preload math-verify) and a worker that passes
the deadline is SIGKILLed and replaced.

Install with `pip install 'r1jax[mathverify]'` (math-verify with its ANTLR 4.13.2 parser).
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Optional

from r1jax.rewards import timeout as timeout_lib

__all__ = ["available", "equal", "equal_strings"]

_TARGET = "r1jax.rewards.math_verify_backend:equal_strings"
_POOL: Optional[timeout_lib.WorkerPool] = None
_LOCK = threading.Lock()


def available() -> bool:
  """Whether the `math-verify` package is installed."""
  return importlib.util.find_spec("math_verify") is not None


def equal_strings(pred: str, gold: str) -> bool:
  """Runs in a worker: math-verify's verdict on two answer strings (no signal timeouts)."""
  from math_verify import parse, verify  # pylint: disable=g-import-not-at-top
  g = parse("\\boxed{" + gold + "}", parsing_timeout=None)
  p = parse("\\boxed{" + pred + "}", parsing_timeout=None)
  return bool(g and p and verify(g, p, timeout_seconds=None))


def _pool() -> timeout_lib.WorkerPool:
  global _POOL
  with _LOCK:
    if _POOL is None:
      # The worker imports this module (and so math-verify and sympy) once, before its first
      # request, so the import never counts against a call's timeout.
      _POOL = timeout_lib.WorkerPool(
          timeout_lib._POOL_SETTINGS["num_workers"],  # pylint: disable=protected-access
          memory_mb=timeout_lib._POOL_SETTINGS["memory_mb"],  # pylint: disable=protected-access
          preload=("r1jax.rewards.math_verify_backend", "math_verify"))
    return _POOL


def equal(pred: str, gold: str, timeout_s: float) -> bool:
  """math-verify's verdict under a hard timeout (raises timeout_lib.GradingTimeout/WorkerError).

  Raises:
    ImportError: math-verify is not installed.
  """
  if not available():
    raise ImportError("backend='math_verify' needs the math-verify package; install it with "
                      "pip install 'r1jax[mathverify]'.")
  return bool(_pool().call(_TARGET, [pred, gold], timeout_s))
