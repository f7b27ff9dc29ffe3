"""Suite-wide pytest set-up: compiled programs are freed after each test module.

CI runs the suite in two pytest-xdist workers, each a process running many modules (one
process runs them all without -n). XLA:CPU maps each compiled program's code into
the process as memory regions of its own, and JAX's jit caches keep every program alive, so
the regions only grow: by the last modules a full run held ~63,000 of them, against Linux's
default `vm.max_map_count` of 65,530. Past it XLA's compile dies inside `mmap` (seen as an
abort, then a segmentation fault, in the sampler tests once the sampler's program grew).
Clearing the caches when a module ends frees its programs (tests/sampler_test.py alone:
22,711 regions left without this, 1,430 with it); modules share few programs, so the suite
recompiles little.

Compiled programs are also kept on disk for the session (JAX's persistent compilation cache,
in a temporary folder of each worker's, removed at its end): a program compiled again, after
the clearing above or in one of the many subprocesses (CLI runs, a killed run and its resume, notebooks,
8-device checks), is read back instead. A cached program is the same executable, so no
result changes. The cache starts empty on every run: nothing carries over between runs.
"""

import gc
import os
import shutil
import tempfile

import jax
import pytest

_XLA_CACHE = tempfile.mkdtemp(prefix="r1jax-tests-xla-cache-")
_CACHE_SETTINGS = {  # Environment variables (inherited by subprocesses) and jax.config names.
    "JAX_COMPILATION_CACHE_DIR": ("jax_compilation_cache_dir", _XLA_CACHE),
    # Programs that compile in under 0.2 s are not worth a disk entry.
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": (
        "jax_persistent_cache_min_compile_time_secs", 0.2),
}
for _env, (_name, _value) in _CACHE_SETTINGS.items():
  os.environ[_env] = str(_value)
  jax.config.update(_name, _value)


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  shutil.rmtree(_XLA_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
  yield
  jax.clear_caches()
  gc.collect()
