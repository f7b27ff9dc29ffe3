"""Mesh config, logical-axis rules, spec trees and multi-host helpers, on one CPU device.

The sharded-equals-unsharded checks on 8 fake devices are in sharding_multidevice_test.py.
"""

import dataclasses

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from r1jax import config
from r1jax import sharding
from r1jax.models import ModelConfig, kv_cache, transformer
from r1jax.models.presets import get_preset

BATCH = ("data", "fsdp")
SIZES = {"data": 2, "fsdp": 4, "tensor": 2}


def test_mesh_config_fills_minus_one_with_remaining_devices():
  assert sharding.MeshConfig().shape(8) == (1, 8, 1)
  assert sharding.MeshConfig(data=2, fsdp=-1, tensor=2).shape(16) == (2, 4, 2)
  assert sharding.MeshConfig(data=-1, fsdp=1, tensor=1).shape(4) == (4, 1, 1)
  assert sharding.MeshConfig(2, 2, 2).shape(8) == (2, 2, 2)


def test_mesh_config_wrong_device_count_is_a_clear_error():
  with pytest.raises(ValueError, match="needs 8 devices but 4 are available"):
    sharding.MeshConfig(2, 2, 2).shape(4)
  with pytest.raises(ValueError, match="cannot fill 6 devices"):
    sharding.MeshConfig(data=4, fsdp=-1).shape(6)


@pytest.mark.parametrize("kwargs, match", [
    ({"data": 0}, "MeshConfig.data must be a positive integer or -1 \\(fill\\), got 0"),
    ({"tensor": -2}, "MeshConfig.tensor"),
    ({"fsdp": True}, "MeshConfig.fsdp"),
    ({"data": -1, "fsdp": -1}, "at most one"),
    ({"rules": (("embed", "model"),)}, "maps 'embed' to 'model'"),
    ({"rules": (("embed",),)}, "expected \\(logical name, mesh axes\\)"),
    ({"sample_rules": "embed"}, "MeshConfig.sample_rules must be a tuple"),
])
def test_mesh_config_rejects_bad_values(kwargs, match):
  with pytest.raises(ValueError, match=match):
    sharding.MeshConfig(**kwargs)


def test_mesh_config_json_round_trip_and_override():
  mesh = sharding.MeshConfig(data=2, rules=sharding.DEFAULT_RULES + (("batch", ["data"]),),
                             sample_rules=sharding.SAMPLE_RULES)
  back = config.from_json(sharding.MeshConfig, config.to_json(mesh))
  assert back == mesh and hash(back) == hash(mesh)
  assert back.rules[0] == ("act_batch", ("data", "fsdp")) and back.rules[-1] == ("batch", "data")
  changed = config.override(mesh, "rules", "(('embed', ('fsdp',)), ('mlp', None))")
  assert changed.rules == (("embed", "fsdp"), ("mlp", None))


def test_make_mesh_has_named_auto_axes():
  mesh = sharding.make_mesh(sharding.MeshConfig())
  assert mesh.axis_names == ("data", "fsdp", "tensor")
  assert dict(mesh.shape) == {"data": 1, "fsdp": 1, "tensor": 1}
  assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)


def test_logical_to_mesh_uses_each_mesh_axis_once_in_rule_order():
  rules = (("a", "fsdp"), ("b", "fsdp"), ("b", "tensor"), ("c", None))
  assert sharding.logical_to_mesh(("a", "b", "c"), rules) == P("fsdp", "tensor", None)
  assert sharding.logical_to_mesh(("b",), rules) == P("fsdp")
  assert sharding.logical_to_mesh(("unknown", None), rules) == P(None, None)


def test_indivisible_dim_falls_back_to_next_rule_then_replication():
  rules = (("batch", BATCH), ("batch", "data"))
  assert sharding.spec_for_shape(("batch",), (8,), rules, SIZES) == P(BATCH)
  assert sharding.spec_for_shape(("batch",), (6,), rules, SIZES) == P("data")
  assert sharding.spec_for_shape(("batch",), (5,), rules, SIZES) == P(None)


def test_units_keep_heads_whole():
  # [D, K*H] with K = 2 heads of H = 8: 16 columns divide by 4, but 2 heads do not.
  rules = (("kv_heads", "tensor"),)
  sizes = {"data": 1, "fsdp": 1, "tensor": 4}
  assert sharding.spec_for_shape((None, "kv_heads"), (32, 16), rules, sizes) == P(None, "tensor")
  assert sharding.spec_for_shape((None, "kv_heads"), (32, 16), rules, sizes,
                                 {"kv_heads": 8}) == P(None, None)


def test_default_param_specs_fsdp_on_embed_tensor_on_heads_mlp_vocab():
  cfg = dataclasses.replace(ModelConfig(), tie_embeddings=False)
  specs = sharding.param_specs(cfg, SIZES)
  layers = specs["model"]["layers"]
  assert specs["model"]["embed_tokens"]["embedding"] == P("tensor", "fsdp")
  assert specs["lm_head"]["kernel"] == P("fsdp", "tensor")
  assert layers["self_attn"]["q_proj"]["kernel"] == P(None, "fsdp", "tensor")
  assert layers["self_attn"]["k_proj"]["kernel"] == P(None, "fsdp", "tensor")
  assert layers["self_attn"]["o_proj"]["kernel"] == P(None, "tensor", "fsdp")
  assert layers["mlp"]["down_proj"]["kernel"] == P(None, "tensor", "fsdp")
  assert layers["input_layernorm"]["weight"] == P(None, None)
  assert specs["model"]["norm"]["weight"] == P(None)


def test_heads_that_do_not_divide_the_tensor_axis_are_replicated():
  # SmolLM2: 9 query heads and 3 kv heads on tensor = 2; its MLP (1536) still splits.
  specs = sharding.param_specs(get_preset("smollm2-135m"), {"data": 1, "fsdp": 4, "tensor": 2})
  layers = specs["model"]["layers"]
  assert layers["self_attn"]["q_proj"]["kernel"] == P(None, "fsdp", None)
  assert layers["self_attn"]["k_proj"]["kernel"] == P(None, "fsdp", None)
  assert layers["mlp"]["gate_proj"]["kernel"] == P(None, "fsdp", "tensor")


def test_batch_and_cache_specs():
  assert sharding.batch_spec((8, 12), SIZES) == P(BATCH, None)
  assert sharding.batch_spec((8,), SIZES) == P(BATCH)
  assert sharding.batch_spec((6, 12), SIZES) == P(None, None)
  cache = kv_cache.abstract_cache(ModelConfig(), 8, 16, prompts=8, prompt_len=8)
  specs = sharding.cache_specs(cache, SIZES)
  assert specs["k"] == P(None, BATCH, "tensor", None, None)
  assert specs["prompt_v"] == P(None, BATCH, "tensor", None, None)
  # K = 2 kv heads do not split 4 ways: that dim is replicated, the batch still splits.
  specs4 = sharding.cache_specs(cache, {"data": 2, "fsdp": 1, "tensor": 4})
  assert specs4["k"] == P(None, BATCH, None, None, None)
  with pytest.raises(ValueError, match="unknown KV cache fields \\['extra'\\]"):
    sharding.cache_specs({**cache, "extra": cache["k"]}, SIZES)


def test_optimizer_state_specs_mirror_params_and_replicate_the_rest():
  cfg = ModelConfig()
  abstract = transformer.abstract_params(cfg)
  specs = sharding.param_specs(cfg, SIZES)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
  state = jax.eval_shape(tx.init, abstract)
  mirrored = sharding.mirror_params(state, abstract, specs, P())
  adam = mirrored[1][0]
  assert adam.mu == specs and adam.nu == specs
  assert adam.count == P()
  # Adafactor's factored statistics have other shapes than their params: replicated.
  fstate = jax.eval_shape(optax.adafactor(1e-3, min_dim_size_to_factor=16).init, abstract)
  fspecs = sharding.mirror_params(fstate, abstract, specs, P())[0]
  kernel = lambda t: t["model"]["layers"]["mlp"]["up_proj"]["kernel"]
  assert kernel(fstate[0].v_row).shape != kernel(abstract).shape
  assert kernel(fspecs.v_row) == P() and kernel(fspecs.v_col) == P()
  assert kernel(specs) == P(None, "fsdp", "tensor")
  assert fspecs.v["model"]["embed_tokens"]["embedding"] == P()  # Factored: a (1,) dummy.


def test_init_params_sharded_places_params_in_their_shardings():
  # Equality with the unsharded init is checked on 8 devices (sharding_multidevice_test.py).
  cfg = ModelConfig()
  mesh = sharding.make_mesh(sharding.MeshConfig())
  got = sharding.init_params_sharded(cfg, jax.random.key(3), mesh)
  shardings = sharding.param_shardings(cfg, mesh)
  assert jax.tree.structure(got) == jax.tree.structure(transformer.abstract_params(cfg))
  jax.tree.map(lambda a, s: assert_equivalent(a.sharding, s, a.ndim), got, shardings)
  abstract = sharding.sharded_abstract(transformer.abstract_params(cfg), shardings)
  leaf = abstract["model"]["embed_tokens"]["embedding"]
  assert isinstance(leaf, jax.ShapeDtypeStruct) and leaf.sharding.mesh == mesh


def assert_equivalent(a, b, ndim):
  assert a.is_equivalent_to(b, ndim), (a, b)


def test_axis_rules_context_sets_mesh_and_rules_and_restores_them():
  mesh = sharding.make_mesh(sharding.MeshConfig())
  assert jax.sharding.get_abstract_mesh().empty
  with sharding.axis_rules_context(mesh):
    assert tuple(nn.get_logical_axis_rules()) == sharding.DEFAULT_RULES
    assert not jax.sharding.get_abstract_mesh().empty
  assert not nn.get_logical_axis_rules()
  assert jax.sharding.get_abstract_mesh().empty


def test_reshard_and_host_local_to_global_keep_values():
  mesh = sharding.make_mesh(sharding.MeshConfig())
  x = {"a": np.arange(12.0).reshape(4, 3), "b": np.arange(4)}
  moved = sharding.reshard(x, sharding.batch_shardings(x, mesh))
  np.testing.assert_array_equal(moved["a"], x["a"])
  glob = sharding.host_local_to_global(x, mesh, P(BATCH))
  np.testing.assert_array_equal(glob["b"], x["b"])
  glob = sharding.host_local_to_global(x, mesh, {"a": P(BATCH, None), "b": P()})
  np.testing.assert_array_equal(glob["a"], x["a"])


def test_process_rows_split_any_row_count_contiguously():
  parts = [sharding.process_rows(10, i, 4) for i in range(4)]
  assert parts == [slice(0, 3), slice(3, 6), slice(6, 8), slice(8, 10)]
  assert sharding.process_rows(2, 2, 3) == slice(2, 2)  # More processes than rows: none.
  assert sharding.process_rows(7) == slice(0, 7)  # One process here.
  with pytest.raises(ValueError, match="process_index must be in \\[0, 2\\), got 3"):
    sharding.process_rows(8, 3, 2)


def test_host_side_collectives_on_one_process_return_the_local_values():
  # Their multi-process behaviour is tested with two real processes (train_multiprocess_test).
  tree = {"a": np.arange(6).reshape(3, 2), "b": [np.ones(1, np.float32)]}
  out = sharding.allgather_rows(tree)
  np.testing.assert_array_equal(out["a"], tree["a"])
  np.testing.assert_array_equal(out["b"][0], tree["b"][0])
  assert sharding.any_process(True) and not sharding.any_process(False)
  host = sharding.to_host({"x": jax.numpy.arange(4.0), "n": np.int32(3)})
  assert isinstance(host["x"], np.ndarray) and host["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
  assert host["n"] == 3


def test_global_batch_places_rows_in_their_shardings():
  mesh = sharding.make_mesh(sharding.MeshConfig())
  host = {"t": np.arange(12).reshape(4, 3), "s": np.float32(2.0)}
  shardings = {"t": jax.sharding.NamedSharding(mesh, P(BATCH)), "s": sharding.replicated(mesh)}
  out = sharding.global_batch(host, shardings)
  np.testing.assert_array_equal(out["t"], host["t"])
  assert float(out["s"]) == 2.0
  assert out["t"].sharding.is_equivalent_to(shardings["t"], 2)


@pytest.mark.parametrize("env, want", [
    ({}, None),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, "slurm"),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, None),
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_NUM_TASKS": "2(x4)"}, "slurm"),
    ({"TPU_WORKER_HOSTNAMES": "w0,w1,w2,w3"}, "tpu"),
    ({"TPU_WORKER_HOSTNAMES": "localhost"}, None),
    ({"MEGASCALE_COORDINATOR_ADDRESS": "10.0.0.2"}, "tpu"),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, "mpi"),
])
def test_detect_cluster(env, want):
  assert sharding.detect_cluster(env) == want


def test_initialize_distributed_single_process_and_bad_arguments(monkeypatch):
  for var in ("SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS",
              "TPU_PROCESS_ADDRESSES", "OMPI_COMM_WORLD_SIZE"):
    monkeypatch.delenv(var, raising=False)
  assert sharding.initialize_distributed() is False
  assert not jax.distributed.is_initialized()
  with pytest.raises(ValueError, match="need coordinator .* together"):
    sharding.initialize_distributed("127.0.0.1:1234")
  with pytest.raises(ValueError, match="coordinator must be HOST:PORT"):
    sharding.initialize_distributed("localhost", 2, 0)
  with pytest.raises(ValueError, match="process_id must be in \\[0, 2\\), got 2"):
    sharding.initialize_distributed("127.0.0.1:1234", 2, 2)
  with pytest.raises(ValueError, match="num_processes must be a positive integer"):
    sharding.initialize_distributed("127.0.0.1:1234", 0, 0)
