"""Multi-host plumbing: one program on every host, each with its share of the batch.

Place in the pipeline: the CLI calls `initialize_distributed` first; the trainer's host side
then uses `to_host` (all-gathers what other processes' devices hold), `process_rows` /
`allgather_rows` (each process scores its share of a rollout's rows, then all hosts see every
score), `global_batch` (each process hands over the rows its devices hold) and `any_process`
(one process's stop signal stops them all at the same step). JAX's multi-controller runtime,
no Ray, no Pathways. The mesh and the layouts themselves live in `r1jax.sharding`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

__all__ = ["allgather_rows", "any_process", "detect_cluster", "global_batch",
           "host_local_to_global", "initialize_distributed", "process_rows", "to_host"]


def _int_env(env: Mapping[str, str], name: str) -> int:
  try:
    return int(env.get(name, "1").split("(")[0])  # SLURM may write "2(x4)".
  except ValueError:
    return 1


def detect_cluster(env: Mapping[str, str] | None = None) -> str | None:
  """Names the multi-process launcher these environment variables show, if any.

  "tpu" (a multi-host TPU slice: several TPU_WORKER_HOSTNAMES, or a Megascale/GKE process
  list), "slurm" (more than one task in the job step), "mpi" (Open MPI with more than one rank),
  or None for a single process. jax.distributed then reads the details itself.
  """
  env = os.environ if env is None else env
  if len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1 or (
      env.get("MEGASCALE_COORDINATOR_ADDRESS") or env.get("TPU_PROCESS_ADDRESSES")):
    return "tpu"
  if "SLURM_JOB_ID" in env and max(_int_env(env, "SLURM_STEP_NUM_TASKS"),
                                   _int_env(env, "SLURM_NTASKS")) > 1:
    return "slurm"
  if _int_env(env, "OMPI_COMM_WORLD_SIZE") > 1:
    return "mpi"
  return None


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *,
                           initialization_timeout_s: int = 300,
                           heartbeat_timeout_s: int = 100) -> bool:
  """Starts JAX's multi-controller runtime; returns whether this run is multi-process.

  Call it first, before any other JAX call. With all three arguments given, this process joins
  `coordinator` ("host:port", served by process 0). With none given, a TPU pod slice, SLURM
  job or MPI launch is detected from the environment and jax.distributed reads the details
  itself; `coordinator="auto"` forces that detection (e.g. on a TPU VM whose worker list lives
  only in the metadata server). Otherwise the run stays single-process and nothing happens.
  A peer that dies is noticed within `heartbeat_timeout_s`, and the survivors exit with an
  error instead of hanging.
  """
  if coordinator == "auto":  # jax.distributed detects the cluster (and any missing count/id).
    coordinator = None
  elif coordinator is None and num_processes is None and process_id is None:
    if detect_cluster() is None:
      return False  # A single process: nothing to start.
  else:
    if coordinator is None or num_processes is None or process_id is None:
      raise ValueError(f"multi-process runs need coordinator (host:port), num_processes and "
                       f"process_id together; got coordinator={coordinator!r}, "
                       f"num_processes={num_processes!r}, process_id={process_id!r}")
    if ":" not in coordinator:
      raise ValueError(f"coordinator must be HOST:PORT or 'auto', got {coordinator!r}")
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
      raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}")
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not (
        0 <= process_id < num_processes):
      raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id!r}")
  if jax.distributed.is_initialized():
    return jax.process_count() > 1
  jax.distributed.initialize(coordinator, num_processes, process_id,
                             initialization_timeout=initialization_timeout_s,
                             heartbeat_timeout_seconds=heartbeat_timeout_s)
  return jax.process_count() > 1


def host_local_to_global(array_tree: Any, mesh: jax.sharding.Mesh, pspec: P | Any) -> Any:
  """Global jax.Arrays from each process's rows (numpy or jax arrays of this host's slice).

  `pspec` is one PartitionSpec for every leaf (e.g. P(('data', 'fsdp'))) or a tree of them.
  A process's rows must be the slice its devices hold (an even split of the rows, with a mesh
  whose leading axes span processes, as `make_mesh` builds); with one process this is
  device_put.
  """
  if isinstance(pspec, P):
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(NamedSharding(mesh, pspec), x),
        array_tree)
  return jax.tree.map(
      lambda x, s: jax.make_array_from_process_local_data(NamedSharding(mesh, s), x),
      array_tree, pspec)


def process_rows(num_rows: int, process_index: int | None = None,
                 process_count: int | None = None) -> slice:
  """This process's contiguous share of `num_rows` host-side rows (e.g. to score rewards).

  Any count splits: the first num_rows % count processes take one row more (an evaluation
  batch need not divide by the process count).
  """
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  if count < 1 or not 0 <= index < count:
    raise ValueError(f"process_index must be in [0, {count}), got {index}")
  per, extra = divmod(num_rows, count)
  start = index * per + min(index, extra)
  return slice(start, start + per + (index < extra))


def allgather_rows(tree: Any) -> Any:
  """Every process's rows, concatenated in process order, on every process (numpy).

  Each leaf holds this process's rows on its leading axis; processes may hold different
  numbers of rows (`process_rows`). With one process the tree comes back as numpy, unchanged.
  """
  leaves, treedef = jax.tree.flatten(tree)
  leaves = [np.asarray(x) for x in leaves]
  if jax.process_count() == 1 or not leaves:
    return jax.tree.unflatten(treedef, leaves)
  # process_allgather needs equal shapes on every process: pad to the longest share.
  counts = multihost_utils.process_allgather(np.array([len(x) for x in leaves], np.int32))
  most = counts.max(axis=0)
  padded = [np.concatenate([x, np.zeros((m - len(x),) + x.shape[1:], x.dtype)])
            for x, m in zip(leaves, most)]
  gathered = multihost_utils.process_allgather(padded)  # Each leaf: [processes, most, ...].
  out = [np.concatenate([g[p, :counts[p, i]] for p in range(len(counts))])
         for i, g in enumerate(gathered)]
  return jax.tree.unflatten(treedef, out)


def any_process(flag: bool) -> bool:
  """Whether `flag` is set on any process (a collective: every process must call it)."""
  if jax.process_count() == 1:
    return bool(flag)
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def to_host(tree: Any) -> Any:
  """numpy copies of a tree of arrays; parts held by other processes' devices are gathered.

  A collective when some leaf spans processes: every process must call it.
  """
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))
  return jax.tree.map(one, tree)


def _local_rows(sharding: jax.sharding.Sharding, shape: tuple[int, ...]) -> slice:
  """The rows (leading axis) that this process's devices hold, as one slice if contiguous."""
  starts_stops = {idx[0].indices(shape[0])[:2] for idx in
                  sharding.addressable_devices_indices_map(shape).values()}
  starts_stops = sorted(starts_stops)
  lo, hi = starts_stops[0][0], starts_stops[0][1]
  for start, stop in starts_stops[1:]:
    if start > hi:  # A gap: not one slice; hand over every row (all hosts hold them all).
      return slice(None)
    hi = max(hi, stop)
  return slice(lo, hi)


def global_batch(host_tree: Any, shardings: Any) -> Any:
  """Global jax.Arrays of a batch that every process holds in full on the host.

  Each process hands over only the rows its own devices hold
  (`jax.make_array_from_process_local_data` with the global shape); with one process this is
  `device_put`. Every process must pass equal values (they are one global batch).
  """
  def one(x, s):
    x = np.asarray(x)
    local = x[_local_rows(s, x.shape)] if x.ndim else x
    return jax.make_array_from_process_local_data(s, local, x.shape)
  return jax.tree.map(one, host_tree, shardings)
