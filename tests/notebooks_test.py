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
import shutil
import subprocess
import sys

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


def _run_setup_cell(cwd, target, **env):
  """Runs a notebook's first cell where r1jax does not import, as in a fresh Colab runtime.

  `python -I -S` leaves out site-packages (where the tests' own r1jax is installed), so the
  cell finds no r1jax and runs its pip command; pip's environment settings send the install
  to `target`, without dependencies, offline, with the setuptools at hand.
  """
  source = next(c.source for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells
                if c.cell_type == "code")
  assert all(next(c.source for c in nbformat.read(p, as_version=4).cells
                  if c.cell_type == "code") == source for p in NOTEBOOKS)
  pip_env = {"PIP_TARGET": str(target), "PIP_NO_DEPS": "1", "PIP_NO_INDEX": "1",
             # pip reads "0" here as --no-build-isolation (its documented quirk for --no-*).
             "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
  full_env = {k: v for k, v in os.environ.items() if k != "R1JAX_SOURCE"}
  return subprocess.run([sys.executable, "-I", "-S", "-c", source], cwd=cwd,
                        env={**full_env, **pip_env, **env}, capture_output=True, text=True,
                        timeout=600)


def _checkout_copy(tmp_path):
  """The parts of this checkout pip needs, plus the notebooks (a build writes into it)."""
  root = NOTEBOOK_DIR.parent
  copy_root = tmp_path / "checkout"
  copy_root.mkdir()
  for name in ("setup.py", "README.md"):
    shutil.copy(root / name, copy_root / name)
  for name in ("r1jax", "notebooks"):
    shutil.copytree(root / name, copy_root / name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.ipynb_checkpoints"))
  return copy_root


def test_install_cell_installs_the_checkout_it_sits_in(tmp_path):
  checkout = _checkout_copy(tmp_path)
  proc = _run_setup_cell(checkout / "notebooks", tmp_path / "site")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"installing r1jax from {checkout}" in proc.stdout
  installed = tmp_path / "site" / "r1jax"
  assert list((tmp_path / "site").glob("r1jax-0.1.0.dist-info"))
  for module in ("__init__.py", "train.py", "data/tasks.py"):
    assert (installed / module).read_bytes() == (checkout / "r1jax" / module).read_bytes()


def test_install_cell_elsewhere_uses_r1jax_source_or_the_repository_url(tmp_path):
  checkout = _checkout_copy(tmp_path)
  elsewhere = tmp_path / "colab"
  elsewhere.mkdir()
  proc = _run_setup_cell(elsewhere, tmp_path / "site", R1JAX_SOURCE=str(checkout))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (tmp_path / "site" / "r1jax" / "__init__.py").is_file()
  generator = (NOTEBOOK_DIR / "_make_notebooks.py").read_text()
  assert generator.count('R1JAX_REPO = "git+https://') == 1  # the one place the URL is kept
  url = generator.split('R1JAX_REPO = "', 1)[1].split('"', 1)[0]
  # Without a checkout around it, the cell installs from the URL (unreachable offline).
  proc = _run_setup_cell(elsewhere, tmp_path / "site2")
  assert f"installing r1jax from {url}" in proc.stdout


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
