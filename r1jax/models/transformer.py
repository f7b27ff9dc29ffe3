"""The decoder-only transformer: pure functions of a param dict, one block for every path.

Place in the pipeline: every other part of r1jax (GRPO loss, evaluation, scoring) calls
`forward(params, tokens, cfg=...)`, and the sampler (r1jax/sampler.py) runs the same `block`
with a KV-cache attention for prefill and decode, so sampling and training share one model
code. Flax modules only declare the params (their shapes, initialisers and logical axes); the
params are a plain nested dict whose names mirror
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
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from r1jax.models import attention_kernels
from r1jax.models.config import ModelConfig

Params = dict[str, Any]

__all__ = ["AttendFn", "Params", "abstract_params", "apply_rope", "attention_impl", "block",
           "causal_allowed", "count_params", "dense", "embed", "folded_product", "forward",
           "head_logits", "init", "masked_attention", "out_major_product", "param_logical_axes",
           "positions_from_mask", "rms_norm", "rope_inv_freq", "run_layers", "scan_layers",
           "transposed_product"]

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


# --- the model's maths: pure functions of param dicts ------------------------------------
# One block function serves training, prefill and decode: the caller hands it an `attend`
# function (plain masked attention for training, a KV-cache writer-and-reader for the sampler's
# prefill and decode; see r1jax/models/kv_cache.py), and the layer params either as stored
# (q/k/v and gate/up apart, HF names) or fused by r1jax/decode_layout.py for decoding.

# attend(q [B, T, N, H], k [B, T, K, H], v [B, T, K, H]) -> (out [B, T, N H], aux)
AttendFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, Any]]


def rms_norm(p: Params, x: jax.Array, cfg: ModelConfig) -> jax.Array:
  """RMSNorm over the last axis with weight p['weight']; Gemma's variant scales by (1 + w)."""
  w = p["weight"]
  xf = x.astype(jnp.float32)
  y = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + cfg.rms_norm_eps)
  if cfg.norm_plus_one:  # Gemma scales in float32, then casts.
    return (y * (1.0 + w.astype(jnp.float32))).astype(cfg.dtype)
  return w.astype(cfg.dtype) * y.astype(cfg.dtype)


def dense(p: Params, x: jax.Array, cfg: ModelConfig) -> jax.Array:
  """x [..., D_in] @ p['kernel'] [D_in, ...] (+ p['bias']) in the compute dtype.

  The decode layout may hold the kernel transposed instead, as p['kernel_t'] [O, D_in] with
  the out axes flattened (r1jax/decode_layout.py; callers reshape the result, and a bias is
  reshaped to it): the product is then `transposed_product`'s, on 2-D views of both
  sides (XLA:CPU's dot then gives each row the same bits whatever else shares the batch;
  with x [B, 1, D] unflattened it did not), which keeps a row's sampled tokens independent
  of the decode schedule.
  """
  dt = _dtype(cfg.dtype)
  if "kernel_t" in p:
    w = p["kernel_t"].astype(dt)
    y = transposed_product(w.reshape(-1, w.shape[-1]), x.astype(dt).reshape(-1, x.shape[-1]))
    y = y.reshape(*x.shape[:-1], *w.shape[:-1])
  else:
    y = _matmul(x.astype(dt), p["kernel"].astype(dt))
  return y + p["bias"].astype(dt).reshape(y.shape[x.ndim - 1:]) if "bias" in p else y


# Row counts at which `transposed_product` has the dot write [O, N]: measured faster there
# (experiments/benchmarks/decode_product_rows.py), no faster at 2 or 64 rows, slower at 96.
OUT_MAJOR_ROWS = (3, 48)
# Rows are padded to a multiple of this for the [O, N] form: XLA:CPU's dot takes a right-hand
# side of other row counts by kernels that round differently from the folded form's. An O
# that is not a multiple of it rounds differently too (100, 104 or 49,155 outputs), and so do
# bf16 operands (the head's, summed in float32): such products keep the folded form.
_ROW_TILE = 16


def transposed_product(w: jax.Array, x: jax.Array,
                       preferred: jnp.dtype | None = None) -> jax.Array:
  """w [O, D] (a decode kernel held transposed) times x [N, D] -> [N, O].

  The weight is the dot's left operand, contracting its contiguous axis. Written plainly,
  XLA:CPU folds the transpose of the [O, N] result into the dot, which then runs as
  x @ w.T and reads the weights at ~8 GB/s at 16 rows. For OUT_MAJOR_ROWS rows (float32, O
  a multiple of 16) the [O, N] result is held by an optimization barrier and only it is
  transposed: 30 SmolLM2 MLPs at 16 rows then take 23.4 ms against 35.6 ms. With the rows
  padded to a multiple of 16 both forms give every row the same float32 bits
  (tests/decode_layout_test.py), so which form a batch takes never changes a sampled token.
  """
  if (OUT_MAJOR_ROWS[0] <= x.shape[0] <= OUT_MAJOR_ROWS[1] and w.shape[0] % _ROW_TILE == 0
      and x.dtype == jnp.float32):
    return out_major_product(w, x, preferred)
  return folded_product(w, x, preferred)


def out_major_product(w: jax.Array, x: jax.Array,
                      preferred: jnp.dtype | None = None) -> jax.Array:
  """w [O, D] times x [N, D] -> [N, O], the dot writing [O, N] (rows padded to 16)."""
  n = x.shape[0]
  x = jnp.pad(x, ((0, -n % _ROW_TILE), (0, 0)))
  y = jnp.dot(w, x.T, preferred_element_type=preferred)
  return jax.lax.optimization_barrier(y)[:, :n].T


def folded_product(w: jax.Array, x: jax.Array,
                   preferred: jnp.dtype | None = None) -> jax.Array:
  """w [O, D] times x [N, D] -> [N, O], which XLA:CPU runs as x @ w.T."""
  return jnp.einsum("od,nd->on", w, x, preferred_element_type=preferred).T


@jax.custom_vjp
def _matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., D_in] . w [D_in, ...] -> [..., ...]: `jnp.tensordot(x, w, axes=1)`.

  Its gradient is the same products, written on 2-D views: dx = g W^T and dW = x^T g with
  the rows (batch and positions) flattened. Autodiff's own transpose of the tensordot
  contracts the batch and position axes in place, which XLA:CPU ran as an Eigen dot fed by a
  transposing copy of g fused into the elementwise backward of the MLP (9.5 ms a layer at
  SmolLM2's [256, 1536]); as written here every product goes to YNNPACK and the update took
  7.6-7.8 s against 8.4-8.9 s. The forward is unchanged, so sampling computes the same bits.
  """
  return jnp.tensordot(x, w, axes=1)


def _matmul_fwd(x, w):
  return jnp.tensordot(x, w, axes=1), (x, w)


def _matmul_bwd(res, g):
  x, w = res
  x2 = x.reshape(-1, x.shape[-1])  # [rows, D_in]
  g2 = g.reshape(x2.shape[0], -1)  # [rows, out]
  w2 = w.reshape(w.shape[0], -1)  # [D_in, out]
  return jnp.dot(g2, w2.T).reshape(x.shape), jnp.dot(x2.T, g2).reshape(w.shape)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def embed(params: Params, tokens: jax.Array, cfg: ModelConfig) -> jax.Array:
  """tokens [B, T] -> x [B, T, D] in the compute dtype (scaled by sqrt(D) for Gemma)."""
  x = jnp.take(params["model"]["embed_tokens"]["embedding"].astype(cfg.dtype), tokens, axis=0)
  if cfg.embed_scale:  # Gemma: the normalizer is rounded to the compute dtype, as in HF.
    x = x * jnp.asarray(cfg.hidden_size ** 0.5, dtype=x.dtype)
  return x


def _project_qkv(p: Params, x: jax.Array, cfg: ModelConfig):
  """x [B, T, D] -> q [B, T, N, H], k and v [B, T, K, H].

  Stored params hold q_proj / k_proj / v_proj; the decode layout fuses them into one
  p['qkv'] kernel [D, K, (G + 2) H] grouped by kv head (each kv head's G query heads, then its
  key and value), so the fused axis is never the tensor-sharded one.
  """
  b, t, _ = x.shape
  n, kv, g, h = cfg.num_heads, cfg.num_kv_heads, cfg.num_groups, cfg.head_dim
  if "qkv" in p:
    qkv = dense(p["qkv"], x, cfg).reshape(b, t, kv, (g + 2) * h)
    return (qkv[..., :g * h].reshape(b, t, n, h), qkv[..., g * h:(g + 1) * h],
            qkv[..., (g + 1) * h:])
  return (dense(p["q_proj"], x, cfg).reshape(b, t, n, h),
          dense(p["k_proj"], x, cfg).reshape(b, t, kv, h),
          dense(p["v_proj"], x, cfg).reshape(b, t, kv, h))


def _gate_up(p: Params, x: jax.Array, cfg: ModelConfig):
  """x [B, T, D] -> gate, up [B, T, F] (fused in the decode layout as gate_up [D, 2, F])."""
  # [..., 2, F] whether the kernel is [D, 2, F] or the CPU decode layout's flat [2F, D].
  if "gate_up" in p:
    gu = dense(p["gate_up"], x, cfg).reshape(*x.shape[:-1], 2, cfg.intermediate_size)
    return gu[..., 0, :], gu[..., 1, :]
  return dense(p["gate_proj"], x, cfg), dense(p["up_proj"], x, cfg)


def block(p: Params, x: jax.Array, positions: jax.Array, attend: AttendFn, *,
          cfg: ModelConfig) -> tuple[jax.Array, Any]:
  """One pre-norm transformer block: x [B, T, D] -> (x [B, T, D], attend's aux).

  p is one layer's params (stored or decode-fused); positions [B, T] are RoPE positions.
  `attend` sees q, k, v after q/k norm and RoPE: whatever it does with a cache stays its own.
  """
  attn = p["self_attn"]
  q, k, v = _project_qkv(attn, rms_norm(p["input_layernorm"], x, cfg), cfg)
  if cfg.qk_norm:  # Qwen3: RMSNorm over each head's H features ((1 + w) where norms are).
    q, k = rms_norm(attn["q_norm"], q, cfg), rms_norm(attn["k_norm"], k, cfg)
  inv_freq = rope_inv_freq(cfg)
  q, k = apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq)
  out, aux = attend(q, k, v)
  x = x + dense(attn["o_proj"], out, cfg)
  gate, up = _gate_up(p["mlp"], rms_norm(p["post_attention_layernorm"], x, cfg), cfg)
  act = jax.nn.silu if cfg.mlp_activation == "silu" else functools.partial(
      jax.nn.gelu, approximate=True)
  x = x + dense(p["mlp"]["down_proj"], act(gate) * up, cfg)
  return nn.with_logical_constraint(x, ACT_AXES), aux


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


def masked_attention(q: jax.Array, k: jax.Array, v: jax.Array, allowed: jax.Array, *,
                     cfg: ModelConfig) -> jax.Array:
  """GQA attention of q [B, T, N, H] over k, v [B, S, K, H]; allowed [B, T, S] -> [B, T, N H].

  Causal and padding masks both live in `allowed`; the scale is 1 / sqrt(H).
  """
  b, t, n, h = q.shape
  kv = k.shape[2]
  k, v = k.astype(q.dtype), v.astype(q.dtype)
  impl = attention_impl(cfg, q.dtype)
  if impl == "splash" and allowed.shape[1] == allowed.shape[2]:
    # Self-attention from position 0 (training, the sampler's prefill): the Pallas kernel.
    return attention_kernels.splash_attention(q, k, v, allowed).reshape(b, t, n * h)
  if impl != "einsum":  # Splash's static mask cannot take another shape: XLA runs those.
    return jax.nn.dot_product_attention(
        q, k, v, mask=allowed[:, None, :, :],
        implementation="xla" if impl == "splash" else impl).reshape(b, t, n * h)
  q = q.reshape(b, t, kv, n // kv, h)
  scores = jnp.einsum("btkgh,bskh->bkgts", q, k, preferred_element_type=jnp.float32) * (h ** -0.5)
  # Masked scores get the most negative float, not -inf, so a row with no allowed key (a pad
  # query) gives a uniform, finite softmax instead of NaN.
  scores = jnp.where(allowed[:, None, None, :, :], scores, jnp.finfo(jnp.float32).min)
  probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
  return jnp.einsum("bkgts,bskh->btkgh", probs, v).reshape(b, t, n * h)


def run_layers(layers: Params | Sequence[Params], x: jax.Array, positions: jax.Array,
               attend: AttendFn | Sequence[AttendFn], *, cfg: ModelConfig,
               remat: bool = False) -> tuple[jax.Array, Any]:
  """Runs every block: x [B, T, D] -> (x, stacked or listed aux of `attend`).

  `layers` is either the stored params' stacked [L, ...] layer tree, scanned with
  `cfg.scan_unroll` layers per iteration (and `cfg.remat` when `remat`), or a sequence of L
  per-layer trees (the decode layout), run unrolled with one `attend` per layer: on XLA:CPU a
  scan over stacked weights copies each layer's slice on every call, which a decode step,
  bound by reading weights, cannot afford.
  """
  if isinstance(layers, (list, tuple)):
    auxes = []
    for i, p in enumerate(layers):
      x, aux = block(p, x, positions, attend[i] if isinstance(attend, (list, tuple)) else attend,
                     cfg=cfg)
      auxes.append(aux)
    return x, auxes

  return scan_layers(lambda x, p: block(p, x, positions, attend, cfg=cfg), x, layers, cfg=cfg,
                     remat=remat)


def scan_layers(body: Callable[[Any, Params], tuple[Any, Any]], carry: Any, layers: Params, *,
                cfg: ModelConfig, remat: bool = False) -> tuple[Any, Any]:
  """lax.scan of body(carry, one layer's params) over the stacked [L, ...] layer tree, with
  `cfg.scan_unroll` layers an iteration and, when `remat`, `cfg.remat`'s checkpointing."""
  if remat and cfg.remat != "none":
    body = jax.checkpoint(body, policy=REMAT_POLICIES[cfg.remat], prevent_cse=False)
  return jax.lax.scan(body, carry, layers, unroll=min(cfg.scan_unroll, cfg.num_layers))


def _head(x: jax.Array, w: jax.Array, tied: bool) -> jax.Array:
  """float32 logits [..., V] of hidden states x [..., D]; w is [V, D] if tied, else [D, V]."""
  w = w.astype(x.dtype)
  spec = "...d,vd->...v" if tied else "...d,dv->...v"
  return jnp.einsum(spec, x, w, preferred_element_type=jnp.float32).astype(jnp.float32)


def head_logits(params: Params, x: jax.Array, *, cfg: ModelConfig) -> jax.Array:
  """The vocabulary head alone: final hidden states x [..., D] -> float32 logits [..., V].

  Equal to `forward`'s logits for the hidden states `forward(..., hidden_only=True)` returns;
  the GRPO update applies it to chunks of the completion so [B, T, V] never exists whole, and
  the sampler to the last position of each row.
  """
  if "kernel_t" in params.get("lm_head", {}):  # [V, D], the decode layout's on CPU.
    w = params["lm_head"]["kernel_t"].astype(x.dtype)
    y = transposed_product(w, x.reshape(-1, x.shape[-1]), jnp.float32)
    return y.reshape(*x.shape[:-1], -1)
  if cfg.tie_embeddings:
    return _head(x, params["model"]["embed_tokens"]["embedding"], True)
  return _head(x, params["lm_head"]["kernel"], False)


# --- param declarations (init only) ------------------------------------------------------
# Flax modules that only declare the params, with their initialisers and logical axes; the
# module names give the HF-mirroring param paths and Flax's per-path RNG streams.


class _DeclDense(nn.Module):
  features: int
  names: tuple[str, str]
  bias: bool
  param_dtype: Any

  @nn.compact
  def __call__(self, in_features: int):
    self.param("kernel", _init(self.names), (in_features, self.features), self.param_dtype)
    if self.bias:
      self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, self.names[1:]),
                 (self.features,), self.param_dtype)


class _DeclNorm(nn.Module):
  plus_one: bool
  param_dtype: Any

  @nn.compact
  def __call__(self, width: int):
    init = nn.initializers.zeros if self.plus_one else nn.initializers.ones
    self.param("weight", nn.with_logical_partitioning(init, ("norm",)), (width,),
               self.param_dtype)


class _DeclBlock(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, carry, _):
    cfg = self.cfg
    norm = functools.partial(_DeclNorm, cfg.norm_plus_one, _dtype(cfg.param_dtype))
    norm(name="input_layernorm")(cfg.hidden_size)
    _DeclAttention(cfg, name="self_attn")()
    _DeclMLP(cfg, name="mlp")()
    norm(name="post_attention_layernorm")(cfg.hidden_size)
    return carry, None


class _DeclAttention(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self):
    cfg = self.cfg
    d, n, k, h = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    pd = _dtype(cfg.param_dtype)
    _DeclDense(n * h, ("embed", "q_heads"), cfg.qkv_bias, pd, name="q_proj")(d)
    _DeclDense(k * h, ("embed", "kv_heads"), cfg.qkv_bias, pd, name="k_proj")(d)
    _DeclDense(k * h, ("embed", "kv_heads"), cfg.qkv_bias, pd, name="v_proj")(d)
    if cfg.qk_norm:
      _DeclNorm(cfg.norm_plus_one, pd, name="q_norm")(h)
      _DeclNorm(cfg.norm_plus_one, pd, name="k_norm")(h)
    _DeclDense(d, ("q_heads", "embed"), False, pd, name="o_proj")(n * h)


class _DeclMLP(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self):
    cfg = self.cfg
    d, f, pd = cfg.hidden_size, cfg.intermediate_size, _dtype(cfg.param_dtype)
    _DeclDense(f, ("embed", "mlp"), False, pd, name="gate_proj")(d)
    _DeclDense(f, ("embed", "mlp"), False, pd, name="up_proj")(d)
    _DeclDense(d, ("mlp", "embed"), False, pd, name="down_proj")(f)


class _DeclDecoder(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self):
    cfg = self.cfg
    pd = _dtype(cfg.param_dtype)
    self_embed = nn.Embed(cfg.vocab_size, cfg.hidden_size, param_dtype=pd,
                          embedding_init=_init(("vocab", "embed")), name="embed_tokens")
    self_embed(jnp.zeros((1, 1), jnp.int32))
    stack = nn.scan(_DeclBlock, variable_axes={"params": 0}, split_rngs={"params": True},
                    length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})
    stack(cfg, name="layers")(jnp.zeros(()), None)
    _DeclNorm(cfg.norm_plus_one, pd, name="norm")(cfg.hidden_size)


class _DeclTransformer(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self):
    cfg = self.cfg
    _DeclDecoder(cfg, name="model")()
    if not cfg.tie_embeddings:
      self.param("lm_head", _init(("embed", "vocab")), (cfg.hidden_size, cfg.vocab_size),
                 _dtype(cfg.param_dtype))


def _lm_head_rename(params: Params) -> Params:
  """Stores the untied head as params['lm_head']['kernel'] (HF: lm_head.weight)."""
  if "lm_head" in params and not isinstance(params["lm_head"], dict):
    params = dict(params)
    params["lm_head"] = {"kernel": params["lm_head"]}
  return params


def _boxed_init(cfg: ModelConfig, key: jax.Array):
  return _DeclTransformer(cfg).init(key)["params"]


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


def positions_from_mask(mask: jax.Array) -> jax.Array:
  """RoPE positions [B, T] of a left-padded mask [B, T]: 0 at each row's first real token.

  Pads before a row's first token sit at position 0; they are never attended to.
  """
  return jnp.maximum(jnp.cumsum(mask, axis=1, dtype=jnp.int32) - 1, 0)


def causal_allowed(mask: jax.Array) -> jax.Array:
  """Which keys each query sees in self-attention from position 0: mask [B, T] -> [B, T, T].

  Real keys at or before the query (causal and padding masks in one); the sampler's prefill
  and `forward` both attend this way.
  """
  t = mask.shape[1]
  return mask[:, None, :] & jnp.tril(jnp.ones((t, t), bool))[None]


def forward(params: Params, tokens: jax.Array, *, cfg: ModelConfig,
            positions: jax.Array | None = None, attention_mask: jax.Array | None = None,
            logits_last: int | None = None,
            hidden_only: bool = False) -> tuple[jax.Array, None]:
  """Runs the model on whole sequences tokens [B, T]; returns float32 logits [B, T, V].

  The training and scoring path (teacher forcing). Decoding with a KV cache runs the same
  `block` through r1jax/sampler.py with r1jax/models/kv_cache.py's attention.

  Args:
    params: the nested param dict from `init` or `models.load`.
    tokens: int32 [B, T] token ids.
    cfg: the model's architecture.
    positions: int32 [B, T] RoPE positions; by default counted from `attention_mask`, so left
      padding does not shift positions.
    attention_mask: bool [B, T], True on real tokens; pad tokens are never attended to.
    logits_last: if set (a Python int n <= T), logits only for the last n positions, [B, n, V]:
      a GRPO update needs them for the completion alone, and the head over a 50k-150k
      vocabulary is a large share of the cost at the prompt positions it skips.
    hidden_only: return the final (normed) hidden states [B, T or n, D] in the compute dtype
      instead of logits; `head_logits` turns them into logits.

  Returns:
    (logits [B, T, V] float32 (or [B, n, V], or hidden states), None). The second element
    keeps the (logits, cache) shape of callers written for a cache-returning forward.
  """
  if logits_last is not None and not (isinstance(logits_last, int) and
                                       0 < logits_last <= tokens.shape[1]):
    raise ValueError(f"logits_last must be an int in [1, {tokens.shape[1]}] (T), got "
                     f"{logits_last!r}")
  b, t = tokens.shape
  mask = jnp.ones((b, t), bool) if attention_mask is None else attention_mask.astype(bool)
  if positions is None:
    positions = positions_from_mask(mask)
  allowed = causal_allowed(mask)  # [B, T, S = T]
  attend = lambda q, k, v: (masked_attention(q, k, v, allowed, cfg=cfg), None)
  x = nn.with_logical_constraint(embed(params, tokens, cfg), ACT_AXES)
  x, _ = run_layers(params["model"]["layers"], x, positions, attend, cfg=cfg, remat=True)
  x = rms_norm(params["model"]["norm"], x, cfg)
  if logits_last is not None:  # Only the last positions need the (large) vocabulary head.
    x = x[:, -logits_last:]
  if hidden_only:  # The caller applies the head itself (in chunks: see `head_logits`).
    return x, None
  return head_logits(params, x, cfg=cfg), None
