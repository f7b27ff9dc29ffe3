"""The decoder-only transformer: Flax linen modules used as pure init/apply functions.

Place in the pipeline: every other part of r1jax (sampler, GRPO loss, evaluation) calls
`forward(params, tokens, cfg=...)`; the params are a plain nested dict whose names mirror
Hugging Face's (`model.layers.self_attn.q_proj.kernel` is HF's `q_proj.weight`, transposed and
stacked over layers), so loading a checkpoint is a rename plus a transpose.

Shape letters, used in einsum strings and comments throughout r1jax:
  B batch rows, T query length, S key length (cache slots), D width, N query heads,
  K kv heads, G = N / K query heads per kv head, H head dim, F MLP width, V vocab, L layers.

Padding is carried explicitly by `attention_mask` (never inferred from token values: SmolLM2's
pad id is also its end-of-turn id, which appears inside every chat prompt). Positions come from
the mask, so a left-padded row gives exactly the logits of the same row unpadded.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from r1jax.models import attention_kernels
from r1jax.models.config import ModelConfig

Params = dict[str, Any]
Cache = dict[str, jax.Array]

__all__ = ["Cache", "Params", "Transformer", "attention_impl", "forward", "head_logits", "init",
           "init_cache", "param_logical_axes", "abstract_params", "count_params",
           "rope_inv_freq"]

# Activation checkpointing policies by config name. "full" saves nothing and recomputes the
# whole block in the backward pass; "dots" saves matmul outputs.
REMAT_POLICIES = {
    "full": None,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}

# Logical names of activation axes at block boundaries (sharding.py maps them to mesh axes).
ACT_AXES = ("act_batch", "act_length", "act_embed")


def _dtype(name: str) -> jnp.dtype:
  return jnp.dtype(name)


def _init(names: tuple[str, ...], std: float = 0.02):
  return nn.with_logical_partitioning(nn.initializers.normal(std), names)


def rope_inv_freq(cfg: ModelConfig) -> jax.Array:
  """Inverse frequencies [H/2] in float32, with llama3 or linear scaling applied.

  Computed in NumPy float32 on the host, as torch does: inside jit XLA folds the power with
  other rounding (1 ulp off in a third of the entries), which moves logits by ~1e-4 at
  positions in the thousands.
  """
  h = cfg.head_dim
  f32 = np.float32
  inv_freq = f32(1.0) / (f32(cfg.rope_theta) ** (np.arange(0, h, 2, dtype=f32) / f32(h)))
  if cfg.rope_scaling == "linear":
    inv_freq = inv_freq / f32(cfg.rope_factor)
  elif cfg.rope_scaling == "llama3":
    # Llama 3.1: long wavelengths are divided by the factor, short ones kept, and the band
    # between is interpolated smoothly.
    old = f32(cfg.rope_original_max_position)
    low, high, factor = (f32(cfg.rope_low_freq_factor), f32(cfg.rope_high_freq_factor),
                         f32(cfg.rope_factor))
    wavelen = f32(2 * math.pi) / inv_freq
    scaled = np.where(wavelen > old / low, inv_freq / factor, inv_freq).astype(f32)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (f32(1) - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    inv_freq = np.where(medium, smoothed, scaled)
  return jnp.asarray(inv_freq, jnp.float32)


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: jax.Array) -> jax.Array:
  """Rotates x [B, T, n, H] by positions [B, T] (HF's rotate-half layout)."""
  freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, T, H/2]
  emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]  # [B, T, 1, H]
  cos, sin = jnp.cos(emb).astype(x.dtype), jnp.sin(emb).astype(x.dtype)
  x1, x2 = jnp.split(x, 2, axis=-1)
  rotated = jnp.concatenate([-x2, x1], axis=-1)
  return x * cos + rotated * sin


class RMSNorm(nn.Module):
  """RMSNorm over the last axis; Gemma's variant scales by (1 + w)."""
  eps: float
  plus_one: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = nn.initializers.zeros if self.plus_one else nn.initializers.ones
    w = self.param("weight", nn.with_logical_partitioning(init, ("norm",)), (x.shape[-1],),
                   self.param_dtype)
    xf = x.astype(jnp.float32)
    y = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + self.eps)
    if self.plus_one:  # Gemma scales in float32, then casts.
      return (y * (1.0 + w.astype(jnp.float32))).astype(self.dtype)
    return w.astype(self.dtype) * y.astype(self.dtype)


def _dense(features: int, names: tuple[str, str], cfg: ModelConfig, name: str,
           bias: bool = False) -> nn.Dense:
  return nn.Dense(features, use_bias=bias, dtype=_dtype(cfg.dtype),
                  param_dtype=_dtype(cfg.param_dtype), kernel_init=_init(names),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, names[1:]),
                  name=name)


def attention_impl(cfg: ModelConfig, dtype: Any) -> str:
  """The attention implementation `cfg.attention` names; "auto" picks by backend and dtype.

  cuDNN's flash attention (GPU) runs only in bf16 / f16, so "auto" uses it there, the Pallas
  splash kernel on TPU (r1jax.models.attention_kernels), and XLA's
  `jax.nn.dot_product_attention` everywhere else.
  """
  if cfg.attention != "auto":
    return cfg.attention
  if jax.default_backend() == "tpu":
    return "splash"
  low = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
  return "cudnn" if jax.default_backend() == "gpu" and low else "xla"


class Attention(nn.Module):
  """GQA self-attention that writes its new keys and values into a KV cache."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x, positions, allowed, index, k_cache, v_cache):
    cfg = self.cfg
    b, t, _ = x.shape
    n, k, h = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    q = _dense(n * h, ("embed", "q_heads"), cfg, "q_proj", cfg.qkv_bias)(x).reshape(b, t, n, h)
    kk = _dense(k * h, ("embed", "kv_heads"), cfg, "k_proj", cfg.qkv_bias)(x).reshape(b, t, k, h)
    vv = _dense(k * h, ("embed", "kv_heads"), cfg, "v_proj", cfg.qkv_bias)(x).reshape(b, t, k, h)
    if cfg.qk_norm:  # Qwen3: RMSNorm over each head's H features ((1 + w) where norms are).
      norm = functools.partial(RMSNorm, cfg.rms_norm_eps, cfg.norm_plus_one,
                               dtype=_dtype(cfg.dtype), param_dtype=_dtype(cfg.param_dtype))
      q = norm(name="q_norm")(q)
      kk = norm(name="k_norm")(kk)
    inv_freq = rope_inv_freq(cfg)
    q = apply_rope(q, positions, inv_freq)
    kk = apply_rope(kk, positions, inv_freq)
    if k_cache is not None:  # Write this step's keys and values at slots [index, index + T).
      kk = jax.lax.dynamic_update_slice(k_cache, kk.astype(k_cache.dtype), (0, index, 0, 0))
      vv = jax.lax.dynamic_update_slice(v_cache, vv.astype(v_cache.dtype), (0, index, 0, 0))
    new_k, new_v = kk, vv
    impl = attention_impl(cfg, q.dtype)
    if impl == "splash" and k_cache is None:  # Its mask is static: no cache offset.
      out = attention_kernels.splash_attention(q, kk, vv, allowed).reshape(b, t, n * h)
    elif impl == "einsum":
      q = q.reshape(b, t, k, n // k, h)
      scores = jnp.einsum("btkgh,bskh->bkgts", q, kk.astype(q.dtype),
                          preferred_element_type=jnp.float32) * (h ** -0.5)
      # Masked scores get the most negative float, not -inf, so a row with no allowed key (a
      # pad query) gives a uniform, finite softmax instead of NaN.
      scores = jnp.where(allowed[:, None, None, :, :], scores, jnp.finfo(jnp.float32).min)
      probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
      out = jnp.einsum("bkgts,bskh->btkgh", probs, vv.astype(q.dtype)).reshape(b, t, n * h)
    else:  # GQA, causal and padding masks all in `allowed` [B, T, S]; scale 1 / sqrt(H).
      out = jax.nn.dot_product_attention(
          q, kk.astype(q.dtype), vv.astype(q.dtype), mask=allowed[:, None, :, :],
          implementation="xla" if impl == "splash" else impl).reshape(b, t, n * h)
    out = _dense(cfg.hidden_size, ("q_heads", "embed"), cfg, "o_proj")(out)
    return out, new_k, new_v


class MLP(nn.Module):
  """Gated MLP: SwiGLU (silu) or GeGLU (tanh-approximated gelu, Gemma)."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.cfg
    gate = _dense(cfg.intermediate_size, ("embed", "mlp"), cfg, "gate_proj")(x)
    up = _dense(cfg.intermediate_size, ("embed", "mlp"), cfg, "up_proj")(x)
    act = jax.nn.silu if cfg.mlp_activation == "silu" else functools.partial(
        jax.nn.gelu, approximate=True)
    return _dense(cfg.hidden_size, ("mlp", "embed"), cfg, "down_proj")(act(gate) * up)


class Block(nn.Module):
  """Pre-norm transformer block; the scan body. Carries x, scans over the layer's cache."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x, positions, allowed, index, k_cache, v_cache):
    cfg = self.cfg
    norm = functools.partial(RMSNorm, cfg.rms_norm_eps, cfg.norm_plus_one,
                             _dtype(cfg.dtype), _dtype(cfg.param_dtype))
    attn_out, new_k, new_v = Attention(cfg, name="self_attn")(
        norm(name="input_layernorm")(x), positions, allowed, index, k_cache, v_cache)
    x = x + attn_out
    x = x + MLP(cfg, name="mlp")(norm(name="post_attention_layernorm")(x))
    x = nn.with_logical_constraint(x, ACT_AXES)
    return x, (new_k, new_v)


class Decoder(nn.Module):
  """Embedding, scanned blocks and final norm (HF's `model`)."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, tokens, positions, allowed, index, k_cache, v_cache):
    cfg = self.cfg
    embed = nn.Embed(cfg.vocab_size, cfg.hidden_size, dtype=_dtype(cfg.dtype),
                     param_dtype=_dtype(cfg.param_dtype),
                     embedding_init=_init(("vocab", "embed")), name="embed_tokens")
    x = embed(tokens)
    if cfg.embed_scale:  # Gemma: the normalizer is rounded to the compute dtype, as in HF.
      x = x * jnp.asarray(cfg.hidden_size ** 0.5, dtype=x.dtype)
    x = nn.with_logical_constraint(x, ACT_AXES)
    block = Block
    if cfg.remat != "none":
      block = nn.remat(Block, policy=REMAT_POLICIES[cfg.remat], prevent_cse=False)
    stack = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True},
                    in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, 0, 0),
                    length=cfg.num_layers, unroll=min(cfg.scan_unroll, cfg.num_layers),
                    metadata_params={nn.PARTITION_NAME: "layers"})
    x, (new_k, new_v) = stack(cfg, name="layers")(x, positions, allowed, index, k_cache, v_cache)
    x = RMSNorm(cfg.rms_norm_eps, cfg.norm_plus_one, _dtype(cfg.dtype),
                _dtype(cfg.param_dtype), name="norm")(x)
    return x, embed, new_k, new_v


class Transformer(nn.Module):
  """The whole causal LM: decoder plus lm_head (or the tied embedding)."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, tokens, positions, allowed, index=0, k_cache=None, v_cache=None,
               logits_last=None, hidden_only=False):
    cfg = self.cfg
    x, embed, new_k, new_v = Decoder(cfg, name="model")(
        tokens, positions, allowed, index, k_cache, v_cache)
    if logits_last is not None:  # Only the last positions need the (large) vocabulary head.
      x = x[:, -logits_last:]
    if hidden_only:  # The caller applies the head itself (in chunks: see `head_logits`).
      return x, new_k, new_v
    if cfg.tie_embeddings:
      w = embed.embedding  # [V, D]
    else:
      w = self.param("lm_head", _init(("embed", "vocab")), (cfg.hidden_size, cfg.vocab_size),
                     _dtype(cfg.param_dtype))
    return _head(x, w, cfg.tie_embeddings), new_k, new_v


def _head(x: jax.Array, w: jax.Array, tied: bool) -> jax.Array:
  """float32 logits [B, T, V] of hidden states x [B, T, D]; w is [V, D] if tied, else [D, V]."""
  w = w.astype(x.dtype)
  spec = "btd,vd->btv" if tied else "btd,dv->btv"
  return jnp.einsum(spec, x, w, preferred_element_type=jnp.float32).astype(jnp.float32)


def head_logits(params: Params, x: jax.Array, *, cfg: ModelConfig) -> jax.Array:
  """The vocabulary head alone: final hidden states x [B, T, D] -> float32 logits [B, T, V].

  Equal to `forward`'s logits for the hidden states `forward(..., hidden_only=True)` returns;
  the GRPO update applies it to chunks of the completion so [B, T, V] never exists whole.
  """
  if cfg.tie_embeddings:
    return _head(x, params["model"]["embed_tokens"]["embedding"], True)
  head = params["lm_head"]
  return _head(x, head["kernel"] if isinstance(head, dict) else head, False)


def _lm_head_rename(params: Params) -> Params:
  """Stores the untied head as params['lm_head']['kernel'] (HF: lm_head.weight)."""
  if "lm_head" in params and not isinstance(params["lm_head"], dict):
    params = dict(params)
    params["lm_head"] = {"kernel": params["lm_head"]}
  return params


def _flax_params(params: Params) -> Params:
  if "lm_head" in params and isinstance(params["lm_head"], dict):
    params = dict(params)
    params["lm_head"] = params["lm_head"]["kernel"]
  return params


def _dummy_inputs(cfg: ModelConfig):
  tokens = jnp.zeros((1, 1), jnp.int32)
  return tokens, jnp.zeros((1, 1), jnp.int32), jnp.ones((1, 1, 1), bool)


def _boxed_init(cfg: ModelConfig, key: jax.Array):
  return Transformer(cfg).init(key, *_dummy_inputs(cfg))["params"]


def init(cfg: ModelConfig, key: jax.Array) -> Params:
  """Random params (normal(0.02) kernels, unit norms), a nested dict of arrays."""
  return _lm_head_rename(nn.unbox(_boxed_init(cfg, key)))


def abstract_params(cfg: ModelConfig) -> Params:
  """Params as jax.ShapeDtypeStruct leaves; allocates nothing."""
  return jax.eval_shape(lambda k: init(cfg, k), jax.random.key(0))


def param_logical_axes(cfg: ModelConfig) -> Params:
  """A PartitionSpec of logical axis names for every param (e.g. ('layers', 'embed', 'mlp'))."""
  boxed = jax.eval_shape(lambda k: _boxed_init(cfg, k), jax.random.key(0))
  return _lm_head_rename(nn.get_partition_spec(boxed))


def count_params(params: Params) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


def init_cache(cfg: ModelConfig, batch: int, max_len: int, dtype: Any = None) -> Cache:
  """An empty KV cache with `max_len` slots per row.

  Fields: k, v [L, B, S, K, H]; mask [B, S] (which slots hold real tokens); index () int32
  (next slot to write, shared by all rows); pos [B] int32 (next position of each row).
  """
  dtype = _dtype(cfg.dtype) if dtype is None else dtype
  shape = (cfg.num_layers, batch, max_len, cfg.num_kv_heads, cfg.head_dim)
  return {
      "k": jnp.zeros(shape, dtype),
      "v": jnp.zeros(shape, dtype),
      "mask": jnp.zeros((batch, max_len), bool),
      "index": jnp.zeros((), jnp.int32),
      "pos": jnp.zeros((batch,), jnp.int32),
  }


def forward(params: Params, tokens: jax.Array, *, cfg: ModelConfig,
            positions: jax.Array | None = None, cache: Cache | None = None,
            attention_mask: jax.Array | None = None,
            logits_last: int | None = None,
            hidden_only: bool = False) -> tuple[jax.Array, Cache | None]:
  """Runs the model on tokens [B, T]; returns float32 logits [B, T, V] and the updated cache.

  Args:
    params: the nested param dict from `init` or `models.load`.
    tokens: int32 [B, T] token ids.
    cfg: the model's architecture.
    positions: int32 [B, T] RoPE positions; by default counted from `attention_mask` (and the
      cache's per-row position), so left padding does not shift positions.
    cache: a KV cache from `init_cache` (or a previous call); the T tokens are written at
      slots [cache.index, cache.index + T) and attend to every valid earlier slot.
    attention_mask: bool [B, T], True on real tokens; pad tokens are never attended to.
    logits_last: if set (a Python int n <= T), logits only for the last n positions, [B, n, V]:
      a GRPO update needs them for the completion alone, and the head over a 50k-150k
      vocabulary is a large share of the cost at the prompt positions it skips.
    hidden_only: return the final (normed) hidden states [B, T or n, D] in the compute dtype
      instead of logits; `head_logits` turns them into logits.

  Returns:
    (logits [B, T, V] float32 (or [B, n, V], or hidden states), new cache or None when `cache`
    was None).
  """
  if logits_last is not None and not (isinstance(logits_last, int) and
                                       0 < logits_last <= tokens.shape[1]):
    raise ValueError(f"logits_last must be an int in [1, {tokens.shape[1]}] (T), got "
                     f"{logits_last!r}")
  b, t = tokens.shape
  mask = jnp.ones((b, t), bool) if attention_mask is None else attention_mask.astype(bool)
  if cache is None:
    index = jnp.zeros((), jnp.int32)
    start = jnp.zeros((b,), jnp.int32)
    kv_valid = mask
  else:
    index = cache["index"]
    start = cache["pos"]
    kv_valid = jax.lax.dynamic_update_slice(cache["mask"], mask, (0, index))
  if positions is None:
    positions = start[:, None] + jnp.maximum(jnp.cumsum(mask, axis=1, dtype=jnp.int32) - 1, 0)
    # Rows that have not started yet (only pads so far) stay at position `start`.
  s = kv_valid.shape[1]
  q_slot = index + jnp.arange(t)
  allowed = kv_valid[:, None, :] & (jnp.arange(s)[None, None, :] <= q_slot[None, :, None])
  k_cache = None if cache is None else cache["k"]
  v_cache = None if cache is None else cache["v"]
  logits, new_k, new_v = Transformer(cfg).apply(
      {"params": _flax_params(params)}, tokens, positions, allowed, index, k_cache, v_cache,
      logits_last, hidden_only)
  if cache is None:
    return logits, None
  new_cache = {"k": new_k, "v": new_v, "mask": kv_valid, "index": index + t,
               "pos": start + mask.sum(axis=1, dtype=jnp.int32)}
  return logits, new_cache
