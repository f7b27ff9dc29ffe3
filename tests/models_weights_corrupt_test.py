"""A checkpoint file cut short (an interrupted download) is an error naming the file."""

import pathlib
import shutil

import pytest

from r1jax.models import load
from tests import make_golden

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _truncate(path: pathlib.Path, keep: float = 0.6) -> None:
  data = path.read_bytes()
  path.write_bytes(data[:int(len(data) * keep)])


def test_truncated_safetensors_names_the_file(tmp_path):
  folder = tmp_path / "m"
  shutil.copytree(FIXTURES / "tiny_llama", folder)
  _truncate(folder / "model.safetensors")
  with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors file "
                     r"\(truncated or corrupt\?\)"):
    load(folder)


@pytest.mark.parametrize("quant", ["F32", "Q8_0"])
def test_truncated_gguf_names_the_file_and_a_tensor(tmp_path, quant):
  path = make_golden.hf_to_gguf(FIXTURES / "tiny_llama", tmp_path / "m.gguf", quant=quant)
  _truncate(path)
  with pytest.raises(ValueError, match=r"m\.gguf is truncated or corrupt: tensor \S+ needs "
                     r"bytes up to [\d,]+ but the file has [\d,]+"):
    load(path)
