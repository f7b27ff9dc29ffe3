"""Tests of r1jax.models.weights: loading HF folders, GGUF files and hub ids, and save_hf.

The tiny checkpoints under tests/fixtures/ were written by transformers (tests/make_golden.py);
GGUF files are converted from them here with llama.cpp's conventions (hf_to_gguf). Logit parity
with transformers is in models_parity_test.py.
"""

import dataclasses
import json
import pathlib
import shutil

import gguf
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from r1jax.models import ModelConfig, abstract_params, config_from_hf, load, save_hf
from r1jax.models import gguf_io
from tests import make_golden

FIXTURES = make_golden.FIXTURES
FAMILIES = make_golden.FAMILIES
HF_CLASS = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM", "gemma": "GemmaForCausalLM"}


def tiny(family: str) -> pathlib.Path:
  return FIXTURES / f"tiny_{family}"


def copy_tiny(family: str, tmp_path: pathlib.Path) -> pathlib.Path:
  folder = tmp_path / family
  shutil.copytree(tiny(family), folder)
  return folder


def flat(params) -> dict[str, np.ndarray]:
  return {jax.tree_util.keystr(p): np.asarray(x, np.float32)
          for p, x in jax.tree_util.tree_leaves_with_path(params)}


def assert_same_params(a, b, atol=0.0):
  fa, fb = flat(a), flat(b)
  assert fa.keys() == fb.keys()
  for k in fa:
    np.testing.assert_allclose(fa[k], fb[k], atol=atol, rtol=0, err_msg=k)


# --- HF folders ---------------------------------------------------------------------------------
def test_hf_folder_gives_config_and_transposed_stacked_params():
  cfg, params = load(tiny("llama"))
  assert (cfg.family, cfg.vocab_size, cfg.hidden_size, cfg.num_layers) == ("llama", 256, 32, 2)
  assert (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim) == (4, 2, 8)
  assert (cfg.rope_scaling, cfg.rope_factor, cfg.rope_original_max_position) == (
      "llama3", 8.0, 8192)
  assert cfg.rope_theta == 500000.0 and cfg.rms_norm_eps == 1e-5 and not cfg.tie_embeddings
  want = jax.tree.map(lambda s: (s.shape, s.dtype), abstract_params(cfg))
  assert jax.tree.map(lambda x: (x.shape, x.dtype), params) == want
  hf = load_file(str(tiny("llama") / "model.safetensors"))
  np.testing.assert_array_equal(params["model"]["layers"]["self_attn"]["q_proj"]["kernel"][1],
                                hf["model.layers.1.self_attn.q_proj.weight"].T)
  np.testing.assert_array_equal(params["lm_head"]["kernel"], hf["lm_head.weight"].T)
  np.testing.assert_array_equal(params["model"]["layers"]["post_attention_layernorm"]["weight"][0],
                                hf["model.layers.0.post_attention_layernorm.weight"])


@pytest.mark.parametrize("family", FAMILIES)
def test_family_flags_come_from_config(family):
  cfg, params = load(tiny(family))
  assert cfg.family == family
  assert cfg.qkv_bias == (family == "qwen2")
  assert cfg.qk_norm == (family == "qwen3")
  assert (cfg.embed_scale, cfg.norm_plus_one) == (family == "gemma",) * 2
  assert cfg.mlp_activation == ("gelu_tanh" if family == "gemma" else "silu")
  assert cfg.tie_embeddings == ("lm_head" not in params)
  if family in ("qwen3", "gemma"):
    assert cfg.head_dim == 16  # Explicit head_dim, not D / N = 8.


def test_config_from_transformers4_style_dict():
  hf = {"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 8,
        "num_hidden_layers": 3, "intermediate_size": 128, "vocab_size": 100,
        "rope_theta": 1e6, "rope_scaling": {"type": "linear", "factor": 2.0}}
  cfg = config_from_hf(hf)
  assert cfg.head_dim == 8 and cfg.num_kv_heads == 8  # Defaults: D / N and N.
  assert (cfg.rope_theta, cfg.rope_scaling, cfg.rope_factor) == (1e6, "linear", 2.0)
  assert cfg.qkv_bias and not cfg.tie_embeddings
  gemma = config_from_hf({**hf, "model_type": "gemma", "hidden_act": "gelu", "rope_scaling": None})
  assert gemma.mlp_activation == "gelu_tanh" and gemma.tie_embeddings
  by_arch = config_from_hf({k: v for k, v in hf.items() if k != "model_type"}
                           | {"architectures": ["LlamaForCausalLM"]})
  assert by_arch.family == "llama"


@pytest.mark.parametrize("change, message", [
    ({"model_type": "mistral"}, "architecture 'mistral' is not supported.*llama.*qwen2"),
    ({"model_type": None, "architectures": ["PhiForCausalLM"]}, "PhiForCausalLM"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope type 'yarn'"),
    ({"mlp_bias": True}, "mlp_bias"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ({"model_type": "qwen2", "use_sliding_window": True}, "use_sliding_window"),
])
def test_config_from_hf_rejects_unsupported(change, message):
  hf = {"model_type": "llama", "hidden_size": 32, "num_attention_heads": 4,
        "num_hidden_layers": 1, "intermediate_size": 64, "vocab_size": 10}
  with pytest.raises(ValueError, match=message):
    config_from_hf({**hf, **change}, source="x/config.json")


def test_bfloat16_load_and_bad_dtype():
  cfg, params = load(tiny("qwen3"), dtype=jnp.bfloat16)
  assert cfg.param_dtype == cfg.dtype == "bfloat16"
  assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
  with pytest.raises(ValueError, match="dtype 'int32' is not supported"):
    load(tiny("qwen3"), dtype=jnp.int32)


# --- save_hf ------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_save_hf_round_trip(family, tmp_path):
  cfg, params = load(tiny(family))
  save_hf(cfg, params, tmp_path / "out")
  files = load_file(str(tmp_path / "out" / "model.safetensors"))
  assert ("lm_head.weight" in files) == (not cfg.tie_embeddings)
  hf = json.loads((tmp_path / "out" / "config.json").read_text())
  assert hf["architectures"] == [HF_CLASS[family]] and hf["torch_dtype"] == "float32"
  cfg2, params2 = load(tmp_path / "out")
  assert cfg2 == cfg
  assert_same_params(params, params2)


def test_save_hf_bfloat16_and_sharded(tmp_path):
  cfg, params = load(tiny("llama"), dtype=jnp.bfloat16)
  save_hf(cfg, params, tmp_path, max_shard_bytes=20_000)
  index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
  shards = sorted(set(index["weight_map"].values()))
  assert len(shards) > 2 and not (tmp_path / "model.safetensors").exists()
  assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
  cfg2, params2 = load(tmp_path, dtype=jnp.bfloat16)
  assert cfg2 == cfg
  assert_same_params(params, params2)
  # Saving again unsharded removes the old shards (a stale one would be read back).
  save_hf(cfg, params, tmp_path)
  assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["model.safetensors"]


def test_save_hf_zero_biases_express_r1jax_flags(tmp_path):
  """Llama with q/k/v biases needs HF's attention_bias, which adds an o_proj bias: zeros."""
  cfg = ModelConfig(qkv_bias=True)
  params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), abstract_params(cfg))
  save_hf(cfg, params, tmp_path)
  files = load_file(str(tmp_path / "model.safetensors"))
  np.testing.assert_array_equal(files["model.layers.1.self_attn.o_proj.bias"], 0)
  cfg2, params2 = load(tmp_path)
  assert cfg2 == cfg
  assert_same_params(params, params2)


def test_save_hf_rejects_what_hf_cannot_express(tmp_path):
  cfg = ModelConfig(family="qwen3", qk_norm=False)
  with pytest.raises(ValueError, match="qk_norm=False cannot be saved as Qwen3ForCausalLM"):
    save_hf(cfg, {}, tmp_path)
  cfg = ModelConfig()
  params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), abstract_params(cfg))
  del params["model"]["norm"]
  with pytest.raises(ValueError, match="params have no entry model/norm/weight"):
    save_hf(cfg, params, tmp_path)


# --- errors for bad HF folders ------------------------------------------------------------------
def test_missing_paths_name_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match="model path './nowhere/at/all' does not exist"):
    load("./nowhere/at/all")
  with pytest.raises(FileNotFoundError, match=r"config.json does not exist"):
    load(tmp_path)
  shutil.copy(tiny("llama") / "config.json", tmp_path / "config.json")
  (tmp_path / "pytorch_model.bin").write_bytes(b"")
  with pytest.raises(FileNotFoundError, match="found pytorch_model.bin; convert"):
    load(tmp_path)


def test_unsupported_architecture_in_folder(tmp_path):
  folder = copy_tiny("llama", tmp_path)
  hf = json.loads((folder / "config.json").read_text())
  (folder / "config.json").write_text(json.dumps({**hf, "model_type": "gpt2"}))
  with pytest.raises(ValueError, match=r"config.json: architecture 'gpt2' is not supported"):
    load(folder)


def _rewrite(folder, edit):
  tensors = load_file(str(folder / "model.safetensors"))
  edit(tensors)
  save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_wrong_shape_missing_and_extra_tensors_are_named(tmp_path):
  folder = copy_tiny("qwen2", tmp_path)
  _rewrite(folder, lambda t: t.update({"model.layers.1.mlp.up_proj.weight": np.zeros((63, 32),
                                                                                     np.float32)}))
  with pytest.raises(ValueError, match=r"tensor model.layers.1.mlp.up_proj.weight in .* has shape "
                     r"\(63, 32\), expected \(64, 32\)"):
    load(folder)
  _rewrite(folder, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
  with pytest.raises(ValueError, match=r"missing tensor model.layers.1.mlp.up_proj.weight "
                     r"\(expected shape \(64, 32\)\)"):
    load(folder)
  folder = copy_tiny("llama", tmp_path / "b")
  _rewrite(folder, lambda t: t.update({"model.layers.0.mlp.up_proj.bias": np.ones(64, np.float32),
                                       "model.layers.0.self_attn.rotary_emb.inv_freq":
                                           np.ones(4, np.float32)}))
  with pytest.raises(ValueError, match=r"does not use: model.layers.0.mlp.up_proj.bias in"):
    load(folder)


def test_nonzero_output_bias_is_refused(tmp_path):
  folder = copy_tiny("llama", tmp_path)
  hf = json.loads((folder / "config.json").read_text())
  (folder / "config.json").write_text(json.dumps({**hf, "attention_bias": True}))

  def add_biases(t, o_value):
    for i in range(2):
      for proj, width in (("q", 32), ("k", 16), ("v", 16), ("o", 32)):
        t[f"model.layers.{i}.self_attn.{proj}_proj.bias"] = np.full(
            width, o_value if proj == "o" else 0.5, np.float32)
  _rewrite(folder, lambda t: add_biases(t, 0.0))
  cfg, params = load(folder)
  assert cfg.qkv_bias
  np.testing.assert_array_equal(params["model"]["layers"]["self_attn"]["k_proj"]["bias"], 0.5)
  _rewrite(folder, lambda t: add_biases(t, 0.1))
  with pytest.raises(ValueError, match="o_proj.bias in .* is a nonzero output-projection bias"):
    load(folder)


def test_sharded_index_with_missing_shard(tmp_path):
  cfg, params = load(tiny("gemma"))
  save_hf(cfg, params, tmp_path, max_shard_bytes=30_000)
  shard = sorted(tmp_path.glob("model-*.safetensors"))[1]
  shard.unlink()
  with pytest.raises(FileNotFoundError, match=f"shard .*{shard.name} named by .*index.json"):
    load(tmp_path)


# --- hub ids ------------------------------------------------------------------------------------
def test_hub_id_resolves_through_local_cache_only(tmp_path):
  # The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}.
  commit = "0123456789abcdef0123456789abcdef01234567"
  repo = tmp_path / "models--someorg--tiny-qwen3"
  shutil.copytree(tiny("qwen3"), repo / "snapshots" / commit)
  (repo / "refs").mkdir()
  (repo / "refs" / "main").write_text(commit)
  cfg, params = load("someorg/tiny-qwen3", cache_dir=tmp_path)
  cfg_ref, params_ref = load(tiny("qwen3"))
  assert cfg == cfg_ref
  assert_same_params(params, params_ref)
  with pytest.raises(FileNotFoundError, match="'someorg/absent' is neither a local path nor in "
                     "the Hugging Face cache"):
    load("someorg/absent", cache_dir=tmp_path)


# --- GGUF ---------------------------------------------------------------------------------------
def test_gguf_header_parser_agrees_with_gguf_reader(tmp_path):
  path = make_golden.hf_to_gguf(tiny("llama"), tmp_path / "m.gguf", quant="Q8_0")
  ours = gguf_io.read_gguf(path)
  ref = gguf.GGUFReader(str(path))
  assert set(ours.metadata) == {k for k in ref.fields if not k.startswith("GGUF.")}
  for key, field in ref.fields.items():
    if not key.startswith("GGUF."):
      np.testing.assert_equal(np.asarray(ours.metadata[key]), np.asarray(field.contents()))
  assert len(ours.tensors) == len(ref.tensors)
  for t in ref.tensors:
    info = ours.tensors[t.name]
    assert info.shape == tuple(reversed(t.shape.tolist()))
    assert (info.ggml_type, info.offset) == (t.tensor_type, t.data_offset)
    np.testing.assert_array_equal(ours.read(t.name).reshape(-1),
                                  gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1))


@pytest.mark.parametrize("family", FAMILIES)
def test_gguf_gives_the_hf_folders_params(family, tmp_path):
  """Names, reversed dims, Llama's Q/K permutation, Gemma's (1 + w) norms, rope metadata."""
  path = make_golden.hf_to_gguf(tiny(family), tmp_path / "m.gguf")
  cfg, params = load(path)
  cfg_ref, params_ref = load(tiny(family))
  # GGUF stores eps as float32 (1e-5 reads back as 9.99999975e-06), as transformers keeps it.
  assert cfg.rms_norm_eps == np.float32(cfg_ref.rms_norm_eps)
  assert dataclasses.replace(cfg, rms_norm_eps=cfg_ref.rms_norm_eps) == cfg_ref
  assert_same_params(params, params_ref, atol=1e-6 if family == "gemma" else 0.0)


@pytest.mark.parametrize("quant, atol", [("F16", 2e-3), ("Q8_0", 3e-2)])
def test_gguf_quantized_weights_are_dequantized(quant, atol, tmp_path):
  path = make_golden.hf_to_gguf(tiny("llama"), tmp_path / "m.gguf", quant=quant)
  _, params = load(path)
  _, params_ref = load(tiny("llama"))
  gf = gguf_io.read_gguf(path)
  assert gf.type_name("blk.0.attn_q.weight") == quant
  assert_same_params(params, params_ref, atol=atol)


def test_gguf_folder_with_one_file_loads(tmp_path):
  make_golden.hf_to_gguf(tiny("qwen2"), tmp_path / "m.gguf")
  cfg, _ = load(tmp_path)
  assert cfg.family == "qwen2" and cfg.rope_scaling == "linear" and cfg.rope_factor == 4.0


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(arch="phi3"), ValueError, r"m.gguf: GGUF architecture 'phi3' is not supported by "
     r"r1jax; supported: llama, qwen2, qwen3, gemma"),
    (dict(overrides={"blk.1.attn_v.weight": np.zeros((16, 32), np.float64)}), ValueError,
     r"tensor blk.1.attn_v.weight is stored as F64, which the gguf package cannot dequantize"),
    (dict(overrides={"blk.1.ffn_up.weight": np.zeros((63, 32), np.float32)}), ValueError,
     r"tensor blk.1.ffn_up.weight in .*m.gguf has shape \(63, 32\), expected \(64, 32\)"),
    (dict(overrides={"blk.0.ffn_gate.weight": None}), ValueError,
     r"missing tensor blk.0.ffn_gate.weight in .*m.gguf \(expected shape \(64, 32\)\)"),
    (dict(overrides={"blk.0.ffn_gate.bias": np.zeros(64, np.float32)}), ValueError,
     r"does not use: blk.0.ffn_gate.bias in .*m.gguf"),
    (dict(overrides={"rope_freqs.weight": np.asarray([1, 2, 3, 4], np.float32)}), ValueError,
     r"rope_freqs.weight does not match Llama-3 rope scaling"),
])
def test_gguf_errors_name_the_file_and_tensor(kwargs, error, message, tmp_path):
  path = make_golden.hf_to_gguf(tiny("llama"), tmp_path / "m.gguf", **kwargs)
  with pytest.raises(error, match=message):
    load(path)


def test_not_a_gguf_file(tmp_path):
  bad = tmp_path / "x.gguf"
  bad.write_bytes(b"GGUF" + (7).to_bytes(4, "little") + bytes(16))
  with pytest.raises(ValueError, match="GGUF version 7 is not supported"):
    load(bad)
  with pytest.raises(FileNotFoundError, match="GGUF file .*none.gguf does not exist"):
    gguf_io.read_gguf(tmp_path / "none.gguf")

