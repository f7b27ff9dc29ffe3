"""r1jax.checkpoint: bitwise round trips, keep-last-K, save interval, crash safety, shardings,
and the preemption flag."""

import glob
import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from r1jax import checkpoint

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_state(seed: int) -> dict:
  """A trainer-like state: params, an AdamW state, reference params, typed keys, metadata."""
  rng = np.random.default_rng(seed)

  def rand(x):  # Random values of x's shape and dtype, made in numpy (no per-op compiles).
    if np.issubdtype(x.dtype, np.integer):
      return jnp.asarray(rng.integers(0, 1000, x.shape), x.dtype)
    return jnp.asarray(rng.standard_normal(x.shape).astype(x.dtype))

  params = {"embed": rand(np.zeros((16, 8), np.float32)),
            "layers": {"kernel": rand(np.zeros((2, 8, 8), np.float32)),
                       "scale": rand(np.zeros((8,), jnp.bfloat16))}}
  # AdamW's real state structure (namedtuples, EmptyState, int32 count, bf16 moments) with
  # random contents.
  opt_state = jax.tree.map(rand, optax.adamw(1e-2, weight_decay=0.1).init(params))
  return {"params": params, "opt_state": opt_state,
          "ref_params": jax.tree.map(rand, params),
          "rng": jax.random.key(seed),
          "rbg_keys": jax.random.split(jax.random.key(seed, impl="rbg"), 3),
          "meta": {"step": seed, "data": {"epoch": 1, "index": 37}, "config_hash": "abc123"}}


def _assert_bitwise_equal(a: dict, b: dict) -> None:
  assert a["meta"] == b["meta"]
  a = {k: v for k, v in a.items() if k != "meta"}
  b = {k: v for k, v in b.items() if k != "meta"}
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    if checkpoint._is_typed_key(x):
      assert jax.random.key_impl(x) == jax.random.key_impl(y)
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    x, y = np.asarray(x), np.asarray(y)
    assert x.tobytes() == y.tobytes()


def test_round_trip_is_bitwise_for_params_adamw_state_typed_keys_and_metadata(tmp_path):
  state = _run_state(3)
  ckpt = checkpoint.Checkpointer(tmp_path, save_every=1, keep=2)
  assert ckpt.restore_latest(state) is None
  assert ckpt.save(3, state)
  ckpt.close()

  # A new process-like start: a fresh manager on the same workdir finds and restores it.
  ckpt = checkpoint.Checkpointer(tmp_path, save_every=1, keep=2)
  step, restored = ckpt.restore_latest(state)
  assert step == 3
  _assert_bitwise_equal(restored, state)
  # Restoring from abstract values (what a trainer has before it allocates) gives the same.
  abstract = jax.eval_shape(lambda: {k: v for k, v in state.items() if k != "meta"})
  step, restored = ckpt.restore_latest(abstract)
  _assert_bitwise_equal(restored, state)
  # The restored key drives the same random stream as the saved one.
  np.testing.assert_array_equal(jax.random.uniform(restored["rng"], (4,)),
                                jax.random.uniform(state["rng"], (4,)))
  ckpt.close()


def test_saves_every_n_steps_keeps_last_k_and_never_rewrites_a_step(tmp_path):
  state = _run_state(0)
  with checkpoint.Checkpointer(tmp_path, save_every=2, keep=2) as ckpt:
    wrote = [ckpt.save(s, state) for s in range(1, 8)]
    assert wrote == [False, True, False, True, False, True, False]
    assert ckpt.all_steps() == [4, 6]
    # Off-interval save, e.g. on SIGTERM; metadata may also come as a keyword.
    arrays = {k: v for k, v in state.items() if k != "meta"}
    assert ckpt.save(7, arrays, meta={"step": 7}, force=True)
    assert ckpt.all_steps() == [6, 7]
    assert not ckpt.save(7, state, force=True)  # already on disk
    assert ckpt.latest_step() == 7
    assert ckpt.restore(7, arrays)["meta"] == {"step": 7}
    with pytest.raises(ValueError, match="Metadata given twice"):
      ckpt.save(8, state, meta={"step": 8})
  assert sorted(os.listdir(os.path.join(tmp_path, "checkpoints"))) == ["6", "7"]


def test_async_save_is_complete_after_wait(tmp_path):
  state = _run_state(5)
  with checkpoint.Checkpointer(tmp_path, save_every=1, keep=1, async_save=True) as ckpt:
    assert ckpt.save(5, state)
    ckpt.wait()
    assert os.path.isdir(os.path.join(ckpt.directory, "5"))
    _assert_bitwise_equal(ckpt.restore(5, state), state)


def test_bad_arguments_are_one_clear_error(tmp_path):
  with pytest.raises(ValueError, match="save_every"):
    checkpoint.Checkpointer(tmp_path, save_every=0, keep=1)
  with pytest.raises(ValueError, match="keep"):
    checkpoint.Checkpointer(tmp_path, save_every=1, keep=0)
  with checkpoint.Checkpointer(tmp_path, save_every=1, keep=1) as ckpt:
    with pytest.raises(ValueError, match="JSON"):
      ckpt.save(1, {"params": jnp.ones(2), "meta": {"x": float("nan")}})
    with pytest.raises(FileNotFoundError, match="step 5"):
      ckpt.restore(5, {"params": jnp.ones(2)})
    ckpt.save(1, {"params": jnp.ones(2), "ref_params": jnp.ones(2)})
    with pytest.raises(ValueError, match="holds entries \\['params', 'ref_params'\\] but the "
                       "restore target has \\['params'\\]"):
      ckpt.restore(1, {"params": jnp.ones(2)})


def _big_state(step: int) -> dict:
  """16 MB of params, so that writing it takes long enough to be killed half-way."""
  rng = np.random.default_rng(step)
  return {"params": {f"w{i}": jnp.asarray(rng.standard_normal((1024, 1024), np.float32))
                     for i in range(4)},
          "rng": jax.random.key(100 + step), "meta": {"step": step}}


_KILLED_SAVE = textwrap.dedent("""
    import glob, os, signal, sys, threading, time
    from r1jax import checkpoint
    from tests.checkpoint_test import _big_state as state

    ckpt = checkpoint.Checkpointer(sys.argv[1], save_every=1, keep=2)
    ckpt.save(1, state(1))
    ckpt.save(2, state(2))

    def kill_when_step_3_is_being_written():
      while not glob.glob(os.path.join(ckpt.directory, "3.orbax-checkpoint-tmp*")):
        time.sleep(0.0002)
      os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=kill_when_step_3_is_being_written, daemon=True).start()
    ckpt.save(3, state(3))
    print("step 3 save finished before the kill")
    """)


def test_save_killed_midway_leaves_last_complete_checkpoint_restorable(tmp_path):
  script = tmp_path / "killed_save.py"
  script.write_text(_KILLED_SAVE)
  workdir = tmp_path / "run"
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=_ROOT)
  proc = subprocess.run([sys.executable, str(script), str(workdir)], env=env,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr[-3000:]
  # The kill really landed mid-save: step 3 exists only as an uncommitted tmp directory.
  ckpt_dir = workdir / "checkpoints"
  assert glob.glob(str(ckpt_dir / "3.orbax-checkpoint-tmp*"))
  assert not (ckpt_dir / "3").exists()

  expected = _big_state(2)
  with checkpoint.Checkpointer(workdir, save_every=1, keep=2) as ckpt:
    assert ckpt.all_steps() == [1, 2]
    step, restored = ckpt.restore_latest(expected)
    assert step == 2
    _assert_bitwise_equal(restored, expected)
    # The run continues; once the next checkpoint is written (a step other than 3, whose own
    # save would reuse the leftover's name), the half-written step 3 is gone.
    assert ckpt.save(4, _big_state(4))
    assert ckpt.all_steps() == [2, 4]
    assert not glob.glob(str(ckpt_dir / "*tmp*"))


_SHARDED = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from r1jax import checkpoint

    mesh = jax.make_mesh((4,), ("x",), axis_types=(jax.sharding.AxisType.Auto,))
    by_row = NamedSharding(mesh, P("x", None))
    by_col = NamedSharding(mesh, P(None, "x"))
    replicated = NamedSharding(mesh, P())
    w = jax.device_put(jnp.arange(32.0).reshape(8, 4), by_row)
    keys = jax.device_put(jax.random.split(jax.random.key(0), 4), NamedSharding(mesh, P("x")))
    ckpt = checkpoint.Checkpointer(sys.argv[1], save_every=1, keep=1)
    ckpt.save(1, {"w": w, "keys": keys, "meta": {}})

    for w_sharding, k_sharding in [(by_col, replicated), (replicated, NamedSharding(mesh, P("x")))]:
      target = {"w": jax.ShapeDtypeStruct(w.shape, w.dtype, sharding=w_sharding),
                "keys": jax.ShapeDtypeStruct(keys.shape, keys.dtype, sharding=k_sharding)}
      _, got = ckpt.restore_latest(target)
      assert got["w"].sharding.is_equivalent_to(w_sharding, 2), got["w"].sharding
      assert got["keys"].sharding.is_equivalent_to(k_sharding, 1), got["keys"].sharding
      np.testing.assert_array_equal(np.asarray(got["w"]), np.asarray(w))
      np.testing.assert_array_equal(jax.random.key_data(got["keys"]), jax.random.key_data(keys))
    ckpt.close()
    print("SHARDED_OK")
    """)


def test_restore_lands_in_the_target_shardings_on_four_devices(tmp_path):
  script = tmp_path / "sharded.py"
  script.write_text(_SHARDED)
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=_ROOT)
  proc = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], env=env,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0 and "SHARDED_OK" in proc.stdout, proc.stderr[-3000:]


def test_sigterm_sets_the_stop_flag_and_previous_handlers_come_back():
  previous_term = signal.getsignal(signal.SIGTERM)
  previous_int = signal.getsignal(signal.SIGINT)
  with checkpoint.install_preemption_handler() as guard:
    assert not guard.should_stop()
    os.kill(os.getpid(), signal.SIGTERM)  # delivered before the next bytecode in the main thread
    assert guard.should_stop() and guard.signal_received == signal.SIGTERM
  assert signal.getsignal(signal.SIGTERM) is previous_term
  assert signal.getsignal(signal.SIGINT) is previous_int


def test_second_sigint_goes_to_the_previous_handler():
  guard = checkpoint.install_preemption_handler((signal.SIGINT,))
  try:
    os.kill(os.getpid(), signal.SIGINT)
    assert guard.should_stop()
    with pytest.raises(KeyboardInterrupt):  # Python's default SIGINT handler
      os.kill(os.getpid(), signal.SIGINT)
  finally:
    guard.uninstall()
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_module_level_flag_and_restore_for_a_trainer_loop():
  previous_term = signal.getsignal(signal.SIGTERM)
  checkpoint.install_preemption_handler()
  try:
    assert not checkpoint.should_stop()
    os.kill(os.getpid(), signal.SIGTERM)
    assert checkpoint.should_stop()
  finally:
    checkpoint.restore_signal_handlers()
  assert not checkpoint.should_stop()
  assert signal.getsignal(signal.SIGTERM) is previous_term
