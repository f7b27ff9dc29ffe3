"""Checkpoints of a training run, and clean stops on preemption.

Place in the pipeline: step 6 of every training step (see r1jax/__init__.py). train.py hands this module
a flat dict of the run's state every step; it is written every `save_every` steps (and on demand,
e.g. when a SIGTERM arrives) under `workdir/checkpoints/<step>/`, the last `keep` are kept, and
rerunning the same command restores the newest complete one.

A thin layer over orbax-checkpoint's `CheckpointManager`:
  * state = {"params": ..., "opt_state": ..., "rng": typed key, ..., "meta": {JSON-able}}. Every
    entry but "meta" is a pytree of arrays saved with `StandardSave`; "meta" (step, data position,
    config hash) is saved as JSON, so it stays readable with `cat`.
  * Typed PRNG keys (`jax.random.key`) are stored as their raw `key_data` with the key
    implementation's name next to them, so restore does not depend on the orbax version knowing
    key dtypes.
  * Atomic: orbax writes a step into `<step>.orbax-checkpoint-tmp-*` and renames it when complete;
    a save killed half-way leaves only that tmp directory, which is ignored (and removed when the
    next manager opens the directory), so restore always finds the last complete step.
  * Restore takes a target tree of arrays or `jax.ShapeDtypeStruct`s; their shardings are honoured,
    so a multi-device run restores straight into its layout.
Saves are synchronous by default: the step that follows a save cannot race with it, which keeps
runs deterministic and the checkpoint on disk when `save` returns.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import warnings
from typing import Any, Iterable

import jax
import orbax.checkpoint as ocp

# The state entry saved as JSON instead of as arrays.
METADATA_KEY = "meta"

# Item names inside one orbax step directory.
_ARRAYS = "arrays"
_META = "meta"
_KEYS = "prng_keys"  # {keypath string: key implementation name} for typed PRNG keys.


def _is_typed_key(x: Any) -> bool:
  dtype = getattr(x, "dtype", None)
  return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _split_state(state: dict) -> tuple[dict, Any, dict[str, str]]:
  """state -> (array pytrees with keys as raw data, JSON metadata, {path: key impl})."""
  if not isinstance(state, dict):
    raise ValueError(f"The checkpoint state must be a dict of pytrees, got {type(state).__name__}.")
  meta = state.get(METADATA_KEY, {})
  try:
    json.dumps(meta, allow_nan=False)
  except (TypeError, ValueError) as e:
    raise ValueError(f"state[{METADATA_KEY!r}] must be JSON-serialisable (no NaN), got {meta!r}: "
                     f"{e}.") from None
  arrays = {k: v for k, v in state.items() if k != METADATA_KEY}
  impls: dict[str, str] = {}

  def encode(path, x):
    if _is_typed_key(x):
      impls[jax.tree_util.keystr(path)] = str(jax.random.key_impl(x))
      return jax.random.key_data(x)
    return x

  arrays = jax.tree_util.tree_map_with_path(encode, arrays)
  return arrays, meta, impls


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
  """A restore target leaf: shape, dtype and sharding (a single local device when none is given)."""
  sharding = getattr(x, "sharding", None)
  if sharding is None:
    # Without a sharding orbax would hand back numpy arrays; a jax array on the default device is
    # what the caller had before saving.
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  if _is_typed_key(x):
    # key_data adds trailing dims (e.g. [..., 2] for threefry); a NamedSharding's spec covers the
    # leading dims, the trailing ones stay unsharded, so the same sharding object fits.
    data = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct(x.shape, x.dtype))
    return jax.ShapeDtypeStruct(data.shape, data.dtype, sharding=sharding)
  if not hasattr(x, "shape") or not hasattr(x, "dtype"):
    raise ValueError(f"A restore target leaf must be an array or jax.ShapeDtypeStruct, got "
                     f"{type(x).__name__} ({x!r}).")
  return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)


class Checkpointer:
  """Saves and restores a run's state under `workdir/checkpoints`.

  On several hosts every process must make the same calls (orbax coordinates the writes).

  Usage in a trainer:
    ckpt = Checkpointer(workdir, save_every=100, keep=3)
    restored = ckpt.restore_latest(abstract_state)   # None on a fresh run
    ...
    ckpt.save(step, state, force=guard.should_stop() or step == last)
    ckpt.close()
  """

  def __init__(self, workdir: str | os.PathLike, *, save_every: int, keep: int,
               async_save: bool = False):
    """Opens (creating if needed) `workdir/checkpoints`.

    Args:
      workdir: the run's directory.
      save_every: `save(step, ...)` writes when step % save_every == 0 (or when forced).
      keep: how many of the newest checkpoints to keep; older ones are deleted after each save.
      async_save: write in a background thread (`save` returns once the arrays are copied to
        host memory). Call `wait()` before reading the files. Off by default for determinism.
    """
    if not isinstance(save_every, int) or save_every < 1:
      raise ValueError(f"save_every must be a positive integer, got {save_every!r}.")
    if not isinstance(keep, int) or keep < 1:
      raise ValueError(f"keep must be a positive integer, got {keep!r}.")
    self.save_every = save_every
    self.keep = keep
    self.directory = os.path.abspath(os.path.join(os.fspath(workdir), "checkpoints"))
    options = ocp.CheckpointManagerOptions(
        enable_async_checkpointing=async_save,
        preservation_policy=ocp.checkpoint_managers.LatestN(keep),
        # A save killed half-way leaves a tmp directory; it is never a restore candidate, and
        # removing it here keeps the directory from filling up across preemptions.
        cleanup_tmp_directories=True,
        create=True,
    )
    self._manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={_ARRAYS: ocp.StandardCheckpointHandler(),
                       _META: ocp.JsonCheckpointHandler(),
                       _KEYS: ocp.JsonCheckpointHandler()})

  def should_save(self, step: int, *, force: bool = False) -> bool:
    """Whether `save(step, ..., force=force)` would write (not already saved, on the interval)."""
    if step in self._manager.all_steps():
      return False
    return force or step % self.save_every == 0

  def save(self, step: int, state: dict, *, meta: dict | None = None,
           force: bool = False) -> bool:
    """Writes `state` as checkpoint `step` if due; returns whether it wrote.

    Args:
      step: the number of completed training steps the state belongs to.
      state: {name: pytree of arrays (typed PRNG keys allowed), "meta": JSON-able dict}.
      meta: the JSON-able metadata, as an alternative to putting it in state["meta"].
      force: write even off the `save_every` interval (preemption, end of run). A step already
        on disk is never rewritten.
    """
    if meta is not None:
      if METADATA_KEY in state:
        raise ValueError(f"Metadata given twice: as meta= and as state[{METADATA_KEY!r}]; pass "
                         f"one.")
      state = {**state, METADATA_KEY: meta}
    if not self.should_save(step, force=force):
      return False
    arrays, meta, impls = _split_state(state)
    args = ocp.args.Composite(**{_ARRAYS: ocp.args.StandardSave(arrays),
                                 _META: ocp.args.JsonSave(meta),
                                 _KEYS: ocp.args.JsonSave(impls)})
    return bool(self._manager.save(step, args=args, force=True))

  def latest_step(self) -> int | None:
    """The newest complete checkpoint's step, or None when there is none."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """Steps of the complete checkpoints on disk, ascending."""
    return sorted(self._manager.all_steps())

  def restore(self, step: int, target: dict) -> dict:
    """Restores checkpoint `step` into the structure, dtypes and shardings of `target`.

    Args:
      step: a step from `all_steps()`.
      target: the state dict as given to `save` (real arrays or `jax.ShapeDtypeStruct`s with
        `.sharding`, e.g. from `jax.eval_shape`); the value of its "meta" entry is ignored.

    Returns:
      The state dict; "meta" holds the saved JSON metadata.
    """
    if step not in self._manager.all_steps():
      raise FileNotFoundError(f"No checkpoint for step {step} in {self.directory}; steps on disk: "
                              f"{self.all_steps()}.")
    if not isinstance(target, dict):
      raise ValueError(f"The restore target must be a dict of pytrees, got "
                       f"{type(target).__name__}.")
    target_arrays = {k: v for k, v in target.items() if k != METADATA_KEY}
    saved = self._manager.item_metadata(step)[_ARRAYS]
    if saved is not None and set(saved.keys()) != set(target_arrays):
      # E.g. a run restarted with kl_coef changed between 0 and > 0 (reference params kept or not).
      raise ValueError(f"Checkpoint {step} in {self.directory} holds entries "
                       f"{sorted(saved.keys())} but the restore target has "
                       f"{sorted(target_arrays)}; restore with the entries it was saved with.")
    abstract = jax.tree.map(_abstract, target_arrays)
    restored = self._manager.restore(step, args=ocp.args.Composite(**{
        _ARRAYS: ocp.args.StandardRestore(abstract),
        _META: ocp.args.JsonRestore(),
        _KEYS: ocp.args.JsonRestore()}))
    impls = restored[_KEYS] or {}

    def decode(path, x, want):
      name = jax.tree_util.keystr(path)
      if _is_typed_key(want):
        if name not in impls:
          raise ValueError(f"The target has a typed PRNG key at {name} but checkpoint {step} "
                           f"stored plain data there.")
        return jax.random.wrap_key_data(x, impl=impls[name])
      return x

    state = jax.tree_util.tree_map_with_path(decode, restored[_ARRAYS], target_arrays)
    state = dict(state)
    state[METADATA_KEY] = restored[_META]
    return state

  def metadata(self, step: int) -> dict:
    """Checkpoint `step`'s JSON metadata alone (no array is read)."""
    if step not in self._manager.all_steps():
      raise FileNotFoundError(f"No checkpoint for step {step} in {self.directory}; steps on disk: "
                              f"{self.all_steps()}.")
    restored = self._manager.restore(step, args=ocp.args.Composite(
        **{_META: ocp.args.JsonRestore()}))
    return restored[_META] or {}

  def restore_latest(self, target: dict) -> tuple[int, dict] | None:
    """(step, state) of the newest complete checkpoint, restored like `restore`; None if none."""
    step = self.latest_step()
    if step is None:
      return None
    return step, self.restore(step, target)

  def wait(self) -> None:
    """Blocks until an async save in flight is on disk (a no-op for synchronous saves)."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases the manager."""
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class PreemptionGuard:
  """Turns SIGTERM/SIGINT into a flag the training loop polls, so it can save and exit cleanly.

  The first signal only sets the flag; a second one of the same kind goes to the handler that was
  installed before (Ctrl-C twice still interrupts a stuck run). `uninstall()` (or leaving the
  `with` block) puts the previous handlers back.
  """

  def __init__(self, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)):
    self._signals = tuple(signals)
    self._previous: dict[int, Any] = {}
    self._received: int | None = None
    self._installed = False

  def install(self) -> "PreemptionGuard":
    if self._installed:
      return self
    if threading.current_thread() is not threading.main_thread():
      # Python only delivers signals to the main thread; a trainer run from a worker thread
      # (some notebook runners) still trains, it just cannot be stopped cleanly by a signal.
      warnings.warn("Preemption handler not installed: signals can only be caught in the main "
                    "thread.", RuntimeWarning, stacklevel=2)
      return self
    for sig in self._signals:
      self._previous[sig] = signal.getsignal(sig)
      signal.signal(sig, self._handle)
    self._installed = True
    return self

  def _handle(self, signum, frame) -> None:
    if self._received == signum:
      previous = self._previous.get(signum)
      self.uninstall()
      if callable(previous):
        previous(signum, frame)
      else:
        signal.raise_signal(signum)  # SIG_DFL: the default action, e.g. terminate.
      return
    self._received = signum

  def should_stop(self) -> bool:
    """True once a watched signal arrived: save a checkpoint now and leave the loop."""
    return self._received is not None

  @property
  def signal_received(self) -> int | None:
    """The first signal number received, or None."""
    return self._received

  def uninstall(self) -> None:
    if not self._installed:
      return
    for sig, handler in self._previous.items():
      # None means a handler not set from Python; SIG_DFL is the closest we can restore.
      signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    self._previous.clear()
    self._installed = False

  def __enter__(self) -> "PreemptionGuard":
    return self.install()

  def __exit__(self, *exc) -> None:
    self.uninstall()


# The guard of the last `install_preemption_handler()`, for the module-level helpers below.
_guard: PreemptionGuard | None = None


def install_preemption_handler(
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> PreemptionGuard:
  """Installs a `PreemptionGuard` for `signals` and returns it; poll `.should_stop()`.

  Use as `with install_preemption_handler() as guard:` to restore the previous handlers after,
  or poll the module-level `should_stop()` and call `restore_signal_handlers()` when done.
  """
  global _guard
  if _guard is not None:
    _guard.uninstall()  # One guard at a time, so "previous handlers" stay the user's own.
  _guard = PreemptionGuard(signals).install()
  return _guard


def should_stop() -> bool:
  """Whether a signal reached the guard installed by `install_preemption_handler()`."""
  return _guard is not None and _guard.should_stop()


def restore_signal_handlers() -> None:
  """Uninstalls the guard of `install_preemption_handler()`, restoring the previous handlers."""
  global _guard
  if _guard is not None:
    _guard.uninstall()
    _guard = None
