"""The rollout sampler: prefill once per prompt, fan out, decode in a jit-compiled while loop.

Place in the pipeline: step 2 of a GRPO step (see r1jax/__init__.py). The trainer hands P prompts
(token-id lists) to `generate`, which returns B = P * num_samples completions grouped by
prompt (rows [p * R, (p + 1) * R) belong to prompt p), with the logprob of every sampled
token, each row's length and whether it stopped (eos or a stop sequence) or ran out of budget.

How it works:
  1. Prompts are left-padded to a bucketed length (`SamplingConfig.prompt_buckets` or a
     multiple of `prompt_multiple`) with an explicit attention mask: padding is never inferred
     from token values (SmolLM2's pad id is its end-of-turn id, inside every chat prompt).
     Shapes depend only on the bucket, so a run compiles once per bucket.
  2. One prefill over the P prompts fills a KV cache with bucket + max_new_tokens slots; the
     cache and the last logits are repeated num_samples times (rows grouped by prompt).
  3. A `lax.while_loop` samples a token per row, feeds it back through a one-token decode
     step of the same model (the trainer's params and maths; tests pin it to
     `models.forward`), and exits once every row has finished.
See `r1jax.sampling` for what the returned logprobs mean under temperature / top-k / top-p.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from r1jax import sampling as sampling_lib
from r1jax import decode_layout
from r1jax.models import transformer
from r1jax.models.config import ModelConfig

__all__ = ["Rollout", "SamplingConfig", "generate", "bucket_length", "trace_count"]


def _token_id(x, field: str) -> int:
  if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0:
    raise ValueError(f"SamplingConfig.{field} must hold non-negative integer token ids, got "
                     f"{x!r}")
  return int(x)


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """How to sample completions. Static under jit: a new value compiles a new sampler."""

  temperature: float = 1.0  # Softmax temperature; 0 = greedy (argmax).
  top_k: int = 0  # Keep only the k most likely tokens; 0 = no top-k.
  top_p: float = 1.0  # Nucleus: keep the smallest set with probability >= top_p; 1 = off.
  min_p: float = 0.0  # Keep tokens with probability >= min_p * the top one; 0 = off.
  max_new_tokens: int = 256  # Completion budget per row (T_new, the output width).
  eos_ids: tuple[int, ...] = ()  # A row stops after emitting any of these (kept in the row).
  stop_sequences: tuple[tuple[int, ...], ...] = ()  # Token-id sequences that also stop a row.
  pad_id: int = 0  # Written after a row has stopped (its logprob there is 0).
  prompt_buckets: tuple[int, ...] = ()  # Padded prompt lengths; the smallest that fits is used.
  prompt_multiple: int = 64  # Else prompts are padded to a multiple of this.

  def __post_init__(self):
    # Lists (from JSON or a user) become tuples: the config is a static, hashed jit argument.
    as_ids = lambda xs, name: tuple(_token_id(x, name) for x in xs)
    object.__setattr__(self, "eos_ids", as_ids(self.eos_ids, "eos_ids"))
    object.__setattr__(self, "stop_sequences", tuple(
        as_ids(seq, "stop_sequences") for seq in self.stop_sequences))
    object.__setattr__(self, "prompt_buckets", tuple(self.prompt_buckets))
    if not self.temperature >= 0:
      raise ValueError(f"SamplingConfig.temperature must be >= 0 (0 = greedy), got "
                       f"{self.temperature!r}")
    if not isinstance(self.top_k, int) or self.top_k < 0:
      raise ValueError(f"SamplingConfig.top_k must be an integer >= 0 (0 = off), got "
                       f"{self.top_k!r}")
    if not 0 < self.top_p <= 1:
      raise ValueError(f"SamplingConfig.top_p must be in (0, 1] (1 = off), got {self.top_p!r}")
    if not 0 <= self.min_p <= 1:
      raise ValueError(f"SamplingConfig.min_p must be in [0, 1] (0 = off), got {self.min_p!r}")
    if not isinstance(self.max_new_tokens, int) or self.max_new_tokens <= 0:
      raise ValueError(f"SamplingConfig.max_new_tokens must be a positive integer, got "
                       f"{self.max_new_tokens!r}")
    if any(not seq for seq in self.stop_sequences):
      raise ValueError(f"SamplingConfig.stop_sequences must be non-empty tuples of token "
                       f"ids, got {self.stop_sequences!r}")
    if not isinstance(self.pad_id, int) or self.pad_id < 0:
      raise ValueError(f"SamplingConfig.pad_id must be a token id >= 0, got {self.pad_id!r}")
    if any(not isinstance(b, int) or b <= 0 for b in self.prompt_buckets):
      raise ValueError(f"SamplingConfig.prompt_buckets must be positive integers, got "
                       f"{self.prompt_buckets!r}")
    if not isinstance(self.prompt_multiple, int) or self.prompt_multiple <= 0:
      raise ValueError(f"SamplingConfig.prompt_multiple must be a positive integer, got "
                       f"{self.prompt_multiple!r}")


class Rollout(NamedTuple):
  """Completions of B = P * R rows, grouped by prompt (a pytree of arrays)."""
  tokens: jax.Array  # int32 [B, T_new]; pad_id after each row's end.
  logprobs: jax.Array  # float32 [B, T_new]; log softmax(logits / T)[token] (r1jax.sampling); 0 after the end.
  lengths: jax.Array  # int32 [B]; tokens generated, including the stopping eos / sequence.
  finished: jax.Array  # bool [B]; True if the row stopped, False if it hit max_new_tokens.


def bucket_length(length: int, sampling: SamplingConfig) -> int:
  """The padded prompt length for a longest prompt of `length` tokens."""
  fits = [b for b in sorted(sampling.prompt_buckets) if b >= length]
  if fits:
    return fits[0]
  m = sampling.prompt_multiple
  return -(-length // m) * m


_TRACES = [0]


def trace_count() -> int:
  """How many times the sampler has been traced (= compiled) in this process."""
  return _TRACES[0]


# The model, run the way a sampler needs it. Prefill runs the model's own scanned `Decoder`
# and sends only the last prompt position through the LM head. Decode runs the layers
# unrolled, each reading its own params and its own cache buffer in the loop carry, with the
# cache laid out [B, K, S, H]. Both choices remove copies from a memory-bound step that XLA:CPU
# otherwise makes on every token: a scan over stacked layers copies each layer's weights and
# cache slice (a dynamic slice is not fed to a matmul in place), and `transformer.Attention`'s
# [B, S, K, H] cache is transposed twice per layer to put the (B, K) batch axes first. The
# decode block reuses the model's RMSNorm module and RoPE functions and writes out the rest of
# `transformer.Block` for one query. Tests pin it to `models.forward` for every model-family
# flag (qkv bias, q/k norm, GeGLU, embedding scale, (1 + w) norms, untied head, rope scaling).


def _embed(params: transformer.Params, tokens: jax.Array, cfg: ModelConfig) -> jax.Array:
  """tokens [B, T] -> x [B, T, D], as `transformer.Decoder` embeds them."""
  x = nn.Embed(cfg.vocab_size, cfg.hidden_size, dtype=jnp.dtype(cfg.dtype),
               param_dtype=jnp.dtype(cfg.param_dtype)).apply(
                   {"params": params["model"]["embed_tokens"]}, tokens)
  if cfg.embed_scale:
    x = x * jnp.asarray(cfg.hidden_size ** 0.5, dtype=x.dtype)
  return x


def _norm(p, x: jax.Array, cfg: ModelConfig) -> jax.Array:
  return transformer.RMSNorm(cfg.rms_norm_eps, cfg.norm_plus_one, jnp.dtype(cfg.dtype),
                             jnp.dtype(cfg.param_dtype)).apply({"params": p}, x)


def _lm_head(params: transformer.Params, x: jax.Array, cfg: ModelConfig) -> jax.Array:
  """Normed hidden states x [B, D] -> float32 logits [B, V], as `transformer.Transformer`."""
  if cfg.tie_embeddings:
    w = params["model"]["embed_tokens"]["embedding"].astype(x.dtype)
    logits = jnp.einsum("bd,vd->bv", x, w, preferred_element_type=jnp.float32)
  else:
    w = params["lm_head"]["kernel"].astype(x.dtype)
    logits = jnp.einsum("bd,dv->bv", x, w, preferred_element_type=jnp.float32)
  return logits.astype(jnp.float32)


class _Cache(NamedTuple):
  k: tuple[jax.Array, ...]  # L x [B, K, S, H]
  v: tuple[jax.Array, ...]  # L x [B, K, S, H]
  mask: jax.Array  # [B, S] bool: slots holding real tokens.
  index: jax.Array  # () int32: next slot to write (shared by all rows).
  pos: jax.Array  # [B] int32: next RoPE position of each row.


def _prefill(params, tokens, mask, *, cfg: ModelConfig, slots: int):
  """Left-padded prompts [P, T] -> (last-position logits [P, V], cache with `slots` slots)."""
  p, t = tokens.shape
  kv_valid = jnp.zeros((p, slots), bool).at[:, :t].set(mask)
  positions = jnp.maximum(jnp.cumsum(mask, axis=1, dtype=jnp.int32) - 1, 0)
  causal = jnp.arange(slots)[None, :] <= jnp.arange(t)[:, None]  # [T, S]
  allowed = kv_valid[:, None, :] & causal[None]
  empty = jnp.zeros((cfg.num_layers, p, slots, cfg.num_kv_heads, cfg.head_dim),
                    jnp.dtype(cfg.dtype))
  x, _, k, v = transformer.Decoder(cfg).apply(
      {"params": params["model"]}, tokens, positions, allowed, jnp.zeros((), jnp.int32),
      empty, empty)  # x is already normed.
  k, v = jnp.swapaxes(k, 2, 3), jnp.swapaxes(v, 2, 3)  # [L, P, K, S, H], once per call.
  cache = _Cache(tuple(k), tuple(v), kv_valid, jnp.asarray(t, jnp.int32),
                 mask.sum(axis=1, dtype=jnp.int32))
  return _lm_head(params, x[:, -1], cfg), cache


def _dense(p, x: jax.Array, cfg: ModelConfig) -> jax.Array:
  """x [B, D_in] @ kernel [D_in, ...] (+ bias), as flax's nn.Dense(dtype=cfg.dtype) does."""
  dt = jnp.dtype(cfg.dtype)
  y = jnp.tensordot(x.astype(dt), p["kernel"].astype(dt), axes=1)
  return y + p["bias"].astype(dt) if "bias" in p else y


def _decode_block(layer, x, positions, allowed, cache_k, cache_v, index, *, cfg: ModelConfig):
  """One transformer block for one new token per row: x [B, D] -> x [B, D], new k/v caches.

  The maths of `transformer.Block` at T = 1. positions [B, 1]; allowed [B, S] (the cache
  slots the query sees, the new one included); cache_k, cache_v [B, K, S, H], written at
  slot `index`.
  """
  b = x.shape[0]
  n, kv, g, h = cfg.num_heads, cfg.num_kv_heads, cfg.num_groups, cfg.head_dim
  qkv = _dense(layer["qkv"], _norm(layer["input_layernorm"], x, cfg), cfg)  # [B, K, (G+2)H]
  q = qkv[..., :g * h].reshape(b, 1, n, h)
  k = qkv[..., g * h:(g + 1) * h].reshape(b, 1, kv, h)
  v = qkv[..., (g + 1) * h:].reshape(b, 1, kv, h)
  if cfg.qk_norm:
    q, k = _norm(layer["q_norm"], q, cfg), _norm(layer["k_norm"], k, cfg)
  inv_freq = transformer.rope_inv_freq(cfg)
  q = transformer.apply_rope(q, positions, inv_freq).reshape(b, kv, n // kv, h)
  k = transformer.apply_rope(k, positions, inv_freq)
  write = lambda c, new: jax.lax.dynamic_update_slice(
      c, jnp.swapaxes(new, 1, 2).astype(c.dtype), (0, 0, index, 0))
  cache_k, cache_v = write(cache_k, k), write(cache_v, v)
  cache_k, cache_v = (
      decode_layout.rows(c, "cache_batch", "cache_kv_heads", "cache_length", None)
      for c in (cache_k, cache_v))
  # Scores come out [B, K, S, G] (slots before the G query heads of a KV head): XLA:CPU runs
  # these batched dots with tiny G about 1.3x faster this way round than as [B, K, G, S]
  # (B = 64, S = 448: 12.3 vs 16.3 ms per layer), and attention dominates long decodes.
  scores = jnp.einsum("bksh,bkgh->bksg", cache_k.astype(q.dtype), q,
                      preferred_element_type=jnp.float32) * (h ** -0.5)
  scores = jnp.where(allowed[:, None, :, None], scores, jnp.finfo(jnp.float32).min)
  probs = jax.nn.softmax(scores, axis=2).astype(q.dtype)
  out = jnp.einsum("bksg,bksh->bkgh", probs, cache_v.astype(q.dtype)).reshape(b, n * h)
  x = x + _dense(layer["o_proj"], out, cfg)
  gate_up = _dense(layer["gate_up"], _norm(layer["post_attention_layernorm"], x, cfg), cfg)
  gate, up = gate_up[:, 0], gate_up[:, 1]  # [B, 2, F] -> 2 x [B, F]
  act = jax.nn.silu if cfg.mlp_activation == "silu" else functools.partial(
      jax.nn.gelu, approximate=True)
  x = x + _dense(layer["down_proj"], act(gate) * up, cfg)
  return decode_layout.rows(x, "act_batch", "act_embed"), cache_k, cache_v


def _decode_step(params, layers, token, cache: _Cache, *, cfg: ModelConfig):
  """Feeds one token per row [B]; returns next-token logits [B, V] and the updated cache."""
  b, s = cache.mask.shape
  mask = jax.lax.dynamic_update_slice(cache.mask, jnp.ones((b, 1), bool), (0, cache.index))
  allowed = mask & (jnp.arange(s) <= cache.index)[None, :]  # [B, S]
  x = _embed(params, token, cfg)
  ks, vs = [], []
  for i, layer in enumerate(layers):
    x, k, v = _decode_block(layer, x, cache.pos[:, None], allowed, cache.k[i], cache.v[i],
                            cache.index, cfg=cfg)
    ks.append(k)
    vs.append(v)
  logits = _lm_head(params, _norm(params["model"]["norm"], x, cfg), cfg)
  return logits, _Cache(tuple(ks), tuple(vs), mask, cache.index + 1, cache.pos + 1)


def _stop_hit(window: jax.Array, token: jax.Array, sampling: SamplingConfig) -> jax.Array:
  """Whether `token` [B] (already appended to `window` [B, M]) ends a row: eos or a stop seq."""
  hit = jnp.zeros(token.shape, bool)
  for eos in sampling.eos_ids:
    hit |= token == eos
  m = window.shape[1]
  for seq in sampling.stop_sequences:
    hit |= jnp.all(window[:, m - len(seq):] == jnp.asarray(seq, jnp.int32), axis=1)
  return hit


class _Loop(NamedTuple):
  step: jax.Array  # () int32: index of the token sampled next.
  cache: _Cache
  logits: jax.Array  # [B, V] float32 logits for the next token.
  tokens: jax.Array  # [B, T_new]
  logprobs: jax.Array  # [B, T_new]
  lengths: jax.Array  # [B]
  done: jax.Array  # [B]
  window: jax.Array  # [B, M] the last M generated tokens (-1 before the first), M >= 1.


_PROGRESS = [None]  # The progress bar of the running `generate(..., progress=True)` call.


def _tick(step) -> None:
  bar = _PROGRESS[0]
  if bar is not None:
    bar.update(int(step) - bar.n)


def _generate(params, tokens, mask, key, *, cfg: ModelConfig, sampling: SamplingConfig,
              num_samples: int, progress: bool) -> Rollout:
  _TRACES[0] += 1  # Python side effect: runs once per trace, i.e. once per compilation.
  p, t_prompt = tokens.shape
  b, t_new = p * num_samples, sampling.max_new_tokens
  params = decode_layout.cast(params, cfg)
  tokens = decode_layout.rows(tokens, "batch", None)
  mask = decode_layout.rows(mask, "batch", None)
  logits, cache = _prefill(params, tokens, mask, cfg=cfg, slots=t_prompt + t_new)
  fan = lambda x: jnp.repeat(x, num_samples, axis=0)  # Rows [i * R, (i + 1) * R) <- prompt i.
  cache = _Cache(tuple(map(fan, cache.k)), tuple(map(fan, cache.v)), fan(cache.mask),
                 cache.index, fan(cache.pos))
  layers = decode_layout.layer_params(params, cfg)
  top = decode_layout.top_params(params, cfg)
  m = max([len(s) for s in sampling.stop_sequences] + [1])
  state = _Loop(
      step=jnp.zeros((), jnp.int32), cache=cache, logits=fan(logits),
      tokens=jnp.full((b, t_new), sampling.pad_id, jnp.int32),
      logprobs=jnp.zeros((b, t_new), jnp.float32), lengths=jnp.zeros((b,), jnp.int32),
      done=jnp.zeros((b,), bool), window=jnp.full((b, m), -1, jnp.int32))

  def cond(s: _Loop):
    return (s.step < t_new) & ~jnp.all(s.done)

  def body(s: _Loop) -> _Loop:
    token, logprob = sampling_lib.sample_token(
        jax.random.fold_in(key, s.step), s.logits, temperature=sampling.temperature,
        top_k=sampling.top_k, top_p=sampling.top_p, min_p=sampling.min_p)
    token = jnp.where(s.done, sampling.pad_id, token)
    logprob = jnp.where(s.done, 0.0, logprob)
    window = jnp.concatenate([s.window[:, 1:], token[:, None]], axis=1)
    done = s.done | _stop_hit(window, token, sampling)
    lengths = jnp.where(s.done, s.lengths, s.step + 1)
    out_tokens = jax.lax.dynamic_update_slice(s.tokens, token[:, None], (0, s.step))
    out_logprobs = jax.lax.dynamic_update_slice(s.logprobs, logprob[:, None], (0, s.step))
    # The forward after the last token is wasted (1 step in T_new); a cond to skip it would
    # make XLA copy the cache.
    logits, cache = _decode_step(top, layers, token, s.cache, cfg=cfg)
    logits = decode_layout.rows(logits, "act_batch", None)
    if progress:
      jax.debug.callback(_tick, s.step + 1)
    return _Loop(s.step + 1, cache, logits, out_tokens, out_logprobs, lengths, done, window)

  state = jax.lax.while_loop(cond, body, state)
  return Rollout(state.tokens, state.logprobs, state.lengths, state.done)


# XLA:CPU (jax 0.10) hands dots to YNNPACK fusions by default; for decode's [B, D] x [D, F]
# products with B ~ 16 they ran 4-5x slower than XLA's own Eigen dots on the 2-core machine
# (430 MB of layer weights: 497 ms vs 106 ms under the same load). The option is per
# compilation, so it touches nothing else in the process.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
_JITTED = {}


def _jitted_generate(platform: str):
  if platform not in _JITTED:
    _JITTED[platform] = jax.jit(
        _generate, static_argnames=("cfg", "sampling", "num_samples", "progress"),
        compiler_options=_CPU_OPTIONS if platform == "cpu" else None)
  return _JITTED[platform]


def _check_prompts(prompts: Sequence[Sequence[int]], cfg: ModelConfig,
                   sampling: SamplingConfig) -> list[list[int]]:
  if isinstance(prompts, (str, bytes)) or len(prompts) == 0:
    raise ValueError("prompts must be a non-empty list of token-id lists, got "
                     f"{prompts!r:.80}")
  out = []
  for i, prompt in enumerate(prompts):
    ids = [int(t) for t in np.asarray(prompt, dtype=np.int64).reshape(-1)]
    if not ids:
      raise ValueError(f"prompt {i} is empty; every prompt needs at least one token")
    bad = [t for t in ids if not 0 <= t < cfg.vocab_size]
    if bad:
      raise ValueError(f"prompt {i} has token id {bad[0]} outside the vocabulary "
                       f"[0, {cfg.vocab_size})")
    if len(ids) + sampling.max_new_tokens > cfg.max_position_embeddings:
      raise ValueError(
          f"prompt {i} has {len(ids)} tokens; with max_new_tokens={sampling.max_new_tokens} "
          f"that exceeds the model's context of {cfg.max_position_embeddings} tokens")
    out.append(ids)
  return out


def generate(params: transformer.Params, prompts: Sequence[Sequence[int]], *, cfg: ModelConfig,
             sampling: SamplingConfig, key: jax.Array, num_samples: int = 1,
             progress: bool = False) -> Rollout:
  """Samples num_samples completions for each of P prompts.

  Args:
    params: model params (from `models.init` or `models.load`).
    prompts: P token-id lists of any lengths (no padding; a bucket pads them internally).
    cfg: the model's architecture.
    sampling: temperature, truncation, budget and stop conditions.
    key: PRNG key; the same key, prompts and config give the same rollout.
    num_samples: R, completions per prompt.
    progress: show a progress bar of decode steps on stderr (a host callback per step).

  Returns:
    A Rollout with B = P * R rows, rows [p * R, (p + 1) * R) for prompt p.

  Raises:
    ValueError: an empty prompt list or prompt, a token id outside the vocabulary, a prompt
      that does not fit the context with max_new_tokens, or num_samples < 1.
  """
  if not isinstance(num_samples, int) or num_samples < 1:
    raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
  ids = _check_prompts(prompts, cfg, sampling)
  t_prompt = bucket_length(max(len(x) for x in ids), sampling)
  tokens = np.full((len(ids), t_prompt), sampling.pad_id, np.int32)
  mask = np.zeros((len(ids), t_prompt), bool)
  for i, x in enumerate(ids):  # Left padding: every prompt ends at the last column.
    tokens[i, t_prompt - len(x):] = x
    mask[i, t_prompt - len(x):] = True
  # Not .pop(): devices() may hand out a cached set, and popping empties it for later calls.
  leaf = jax.tree.leaves(params)[0]
  platform = (next(iter(leaf.devices())).platform if isinstance(leaf, jax.Array)
              else jax.default_backend())
  run = functools.partial(_jitted_generate(platform), params, jnp.asarray(tokens),
                          jnp.asarray(mask), key, cfg=cfg, sampling=sampling,
                          num_samples=num_samples, progress=progress)
  if not progress:
    return run()
  with tqdm.tqdm(total=sampling.max_new_tokens, desc="decoding", unit="step", file=sys.stderr,
                 leave=False) as bar:
    _PROGRESS[0] = bar
    try:
      return jax.block_until_ready(run())
    finally:
      _PROGRESS[0] = None
