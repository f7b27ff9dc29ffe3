"""Suite-wide pytest set-up: compiled programs are freed after each test module.

CI runs every module in one pytest process. XLA:CPU maps each compiled program's code into
the process as memory regions of its own, and JAX's jit caches keep every program alive, so
the regions only grow: by the last modules a full run held ~63,000 of them, against Linux's
default `vm.max_map_count` of 65,530. Past it XLA's compile dies inside `mmap` (seen as an
abort, then a segmentation fault, in the sampler tests once the sampler's program grew).
Clearing the caches when a module ends frees its programs (tests/sampler_test.py alone:
22,711 regions left without this, 1,430 with it); modules share few programs, so the suite
recompiles little.
"""

import gc

import jax
import pytest


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
  yield
  jax.clear_caches()
  gc.collect()
