"""The ablation notebooks run top to bottom in smoke mode (R1JAX_SMOKE=1), as CI runs them.

Each notebook is executed by nbclient in a fresh kernel; a cell that raises fails the test with
the cell's traceback. The committed notebooks carry the outputs of a full run; these runs
write their outputs to a copy and leave the files untouched. Also checked: the notebooks are
what notebooks/_make_notebooks.py writes, and they define no library code of their own.
"""

import ast
import copy
import importlib.util
import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = pathlib.Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
_TIMEOUT_S = 900  # Per cell; a smoke cell takes well under a minute on a 2-core CPU.


def _generator():
  spec = importlib.util.spec_from_file_location("make_notebooks",
                                                NOTEBOOK_DIR / "_make_notebooks.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _sources(nb):
  return [(c.cell_type, c.source) for c in nb.cells]


def test_the_three_ablations_are_here_and_match_their_generator():
  generator = _generator()
  assert {p.name for p in NOTEBOOKS} == set(generator.NOTEBOOKS)
  for path in NOTEBOOKS:
    committed = nbformat.read(path, as_version=4)
    # Outputs differ from run to run; the cells' sources must be the generator's.
    assert _sources(committed) == _sources(generator.NOTEBOOKS[path.name]()), (
        f"{path.name} differs from notebooks/_make_notebooks.py; regenerate and re-execute it")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_installs_r1jax_first_and_defines_no_classes(path):
  nb = nbformat.read(path, as_version=4)
  code = [c.source for c in nb.cells if c.cell_type == "code"]
  assert 'find_spec("r1jax")' in code[0] and "pip" in code[0], (
      "the first code cell must install r1jax when it is missing")
  assert "R1JAX_SMOKE" in code[0], "the first code cell must read the smoke setting"
  for source in code:
    for node in ast.walk(ast.parse(source)):
      # Helpers that format, plot or loop are fine; classes would be library code.
      assert not isinstance(node, ast.ClassDef), f"{path.name} defines class {node.name}"
  assert any("from r1jax" in s for s in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_in_smoke_mode(path, tmp_path, monkeypatch):
  monkeypatch.setenv("R1JAX_SMOKE", "1")
  monkeypatch.setenv("TMPDIR", str(tmp_path))  # The notebook's work folder lands in tmp_path.
  nb = copy.deepcopy(nbformat.read(path, as_version=4))
  client = nbclient.NotebookClient(nb, timeout=_TIMEOUT_S, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()  # Raises CellExecutionError, with the traceback, if any cell fails.
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
  text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
  assert "smoke run" in text
  assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
             for o in outputs), f"{path.name} drew no figure"
  assert "whole notebook:" in text
