"""The rollout sampler: prefill once per prompt, fan out, decode in a jit-compiled while loop.

Place in the pipeline: step 2 of a GRPO step (see r1jax/__init__.py). The trainer hands P prompts
(token-id lists) to `generate`, which returns B = P * num_samples completions grouped by
prompt (rows [p * R, (p + 1) * R) belong to prompt p), with the logprob of every sampled
token, each row's length and whether it stopped (eos or a stop sequence) or ran out of budget.

How it works (one model code: prefill and decode run `transformer.block`, with the
attention of r1jax/models/kv_cache.py):
  1. Prompts are left-padded to a bucketed length T_p (`SamplingConfig.prompt_buckets` or a
     multiple of `prompt_multiple`) with an explicit attention mask: padding is never inferred
     from token values (SmolLM2's pad id is its end-of-turn id, inside every chat prompt).
     Shapes depend only on the bucket, so a run compiles once per bucket.
  2. One prefill over the P distinct prompts (attending over the prompt alone) gives their
     keys, values and next-token logits; the first tokens every prompt shares (a chat
     template's system turn) run once for all of them, and the rest are packed end to end
     so that padding costs no matmuls (r1jax/prefill.py).
  3. A `lax.while_loop` decodes S = `max_rows` slots (all B rows by default) one token per
     step. A slot (r1jax/decode_slots.py) holds one (prompt, sample) row: the prompt's keys
     and values copied in, then its own generated ones, each written at the row's own
     position in the generated blocks. Attention reads the prompt and the blocks up to the
     longest live row (`cache_blocks`). When a row ends (eos, a stop sequence, the budget) its
     slot takes the next pending row (continuous batching), so with S < B the batch stays
     full however heavy the tail of lengths; once no rows are pending, the last few live rows
     move to a narrower batch (`tail_slots`) and a second loop finishes them. Under a mesh
     the slots form one group per device, each taking only the rows of the prompts on its
     device, so starting, moving and writing rows stays on the device.
  4. Row r's n-th token is drawn with key fold_in(fold_in(key, r), n), so a rollout is the
     same whatever the schedule (static or continuous, any S): only float rounding of the
     batched matmuls can differ between batch shapes.
See `r1jax.sampling` for what the returned logprobs mean under temperature / top-k / top-p.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from r1jax import decode_layout
from r1jax import decode_slots
from r1jax import sampling as sampling_lib
from r1jax import prefill as prefill_lib
from r1jax.models import kv_cache
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
  # Prompts' common first tokens, rounded down to a multiple of this, are prefilled once for
  # all of them (r1jax/prefill.py): a chat template's system turn, R1's preamble. 0 = off.
  shared_prefix_multiple: int = 8
  # Decode slots: rows generated at once. 0 = every row at once (the static schedule). Fewer
  # slots than rows is continuous batching: a slot whose row ends takes the next pending
  # (prompt, sample), so a heavy-tailed batch does not wait on its longest row.
  max_rows: int = 0
  # Rows a continuous batch may start per decode step (each copies its prompt's keys and
  # values into its slot); 0 = a quarter of the slots. Under a mesh, split evenly between
  # the devices' slot groups (at least one each).
  refill_rows: int = 0
  # Once no rows are pending and at most this many slots are live, the live rows move to a
  # batch of this many slots to finish (one copy of their caches): on a CPU a step of fewer
  # rows is cheaper. 0 = a quarter of the slots under continuous batching (max_rows below the
  # rows), none for the static schedule; max_rows or more = never. Under a mesh each device's
  # slot group narrows to its share (tail_slots / G), once every group has that few live.
  tail_slots: int = 0
  # Decode attends over the prompt plus the generated spans up to the longest live row: the
  # budget cut into this many spans (one compiled branch each). 1 = the whole cache each step.
  cache_blocks: int = 8

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
    for name in ("max_rows", "refill_rows", "tail_slots", "shared_prefix_multiple"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"SamplingConfig.{name} must be an integer >= 0 "
                         f"({'off' if name == 'shared_prefix_multiple' else 'automatic'} at 0), "
                         f"got {value!r}")
    if isinstance(self.cache_blocks, bool) or not isinstance(self.cache_blocks, int) or (
        self.cache_blocks < 1):
      raise ValueError(f"SamplingConfig.cache_blocks must be a positive integer (1 = attend "
                       f"over the whole cache), got {self.cache_blocks!r}")
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


class _Loop(NamedTuple):
  step: jax.Array  # () int32: decode steps taken.
  slots: decode_slots.Slots
  next_row: jax.Array  # [G] int32: each slot group's first row no slot has taken yet.
  tokens: jax.Array  # [B, T_new] output.
  logprobs: jax.Array  # [B, T_new]
  lengths: jax.Array  # [B]
  finished: jax.Array  # [B]
  done_rows: jax.Array  # () int32: rows completed so far (the progress bar's count).


def _tail_slots(sampling: SamplingConfig, s: int, b: int) -> int:
  """Slots of the narrow batch that finishes a call's last rows; 0 = no narrow batch."""
  tail = sampling.tail_slots or (s // 4 if s < b else 0)
  return tail if 0 < tail < s else 0


def _stop_hit(window: jax.Array, token: jax.Array, sampling: SamplingConfig) -> jax.Array:
  """Whether `token` [B] (already appended to `window` [B, M]) ends a row: eos or a stop seq."""
  hit = jnp.zeros(token.shape, bool)
  for eos in sampling.eos_ids:
    hit |= token == eos
  m = window.shape[1]
  for seq in sampling.stop_sequences:
    hit |= jnp.all(window[:, m - len(seq):] == jnp.asarray(seq, jnp.int32), axis=1)
  return hit


_PROGRESS = [None]  # The progress bar of the running `generate(..., progress=True)` call.


def _tick(done) -> None:
  bar = _PROGRESS[0]
  if bar is not None:
    bar.update(int(done) - bar.n)


def _generate(params, prefix, tokens, mask, key, budget=None, packed=None, *, cfg: ModelConfig,
              sampling: SamplingConfig, num_samples: int, progress: bool) -> Rollout:
  _TRACES[0] += 1  # Python side effect: runs once per trace, i.e. once per compilation.
  p, t_prompt = tokens.shape[0], prefix.shape[1] + tokens.shape[1]  # T_p = T_s + T_x.
  b, t_new = p * num_samples, sampling.max_new_tokens
  s = min(sampling.max_rows or b, b)  # Decode slots.
  # Under a mesh, each device's slots take the rows of the prompts on that device: G slot
  # groups (r1jax/decode_slots.py), so starting or moving a row copies nothing across devices.
  groups = math.gcd(decode_layout.row_shards(s, "cache_batch"), p)
  params = decode_layout.cast(params, cfg)
  mask = decode_layout.rows(mask, "batch", None)
  if packed is None:  # Each suffix in its own row (a traced caller's prompts): no packing.
    packed = prefill_lib.unpacked(tokens, mask, prefix.shape[1],
                                  decode_layout.row_shards(p, "batch"))
  packed = packed._replace(**{  # One group of packed rows a device, as the prompts lie.
      name: decode_layout.rows(getattr(packed, name), "batch", None, None)
      for name in packed._fields if name != "chunks"})
  layers = decode_layout.layer_params(params, cfg)
  top = decode_layout.top_params(params, cfg)
  if budget is None:
    budget = jnp.full((p,), t_new, jnp.int32)
  prompts = prefill_lib.prefill(layers, top, prefix, packed, mask, jnp.minimum(budget, t_new),
                                cfg=cfg)

  m = max([len(q) for q in sampling.stop_sequences] + [1])
  start = functools.partial(decode_slots.start_rows, prompts=prompts, num_rows=b,
                            num_samples=num_samples)
  dt = jnp.dtype(cfg.dtype)
  pin_v = lambda x: decode_layout.rows(x, "cache_batch", "cache_kv_heads", "cache_length", None)
  pin_k = lambda x: decode_layout.rows(x, "cache_batch", "cache_kv_heads", None, "cache_length")
  spans = kv_cache.block_spans(t_new, sampling.cache_blocks)
  k_blocks = tuple(pin_k(jnp.zeros((s, cfg.num_kv_heads, cfg.head_dim, n), dt)) for n in spans)
  v_blocks = tuple(pin_v(jnp.zeros((s, cfg.num_kv_heads, n, cfg.head_dim), dt)) for n in spans)
  if s == b:  # Every row its own slot: the fan-out is a repeat (sharded like the rows).
    fan = lambda x: jnp.repeat(x, num_samples, axis=0)
    k_parts = lambda pc: (pin_k(fan(pc).astype(dt)),) + k_blocks
    v_parts = lambda pc: (pin_v(fan(pc).astype(dt)),) + v_blocks
    slots = decode_slots.Slots(
        tuple(map(k_parts, prompts.k)), tuple(map(v_parts, prompts.v)), fan(prompts.mask),
        jnp.arange(b, dtype=jnp.int32), jnp.zeros((b,), jnp.int32), fan(prompts.length),
        fan(prompts.budget), fan(prompts.logits), jnp.full((b, m), -1, jnp.int32))
    next_row = jnp.full((groups,), b // groups, jnp.int32)
  else:  # Empty slots, then the first S rows start through the same path as later ones.
    empty = jnp.zeros((s, cfg.num_kv_heads, t_prompt, cfg.head_dim), dt)
    empty_k = (pin_k(jnp.swapaxes(empty, 2, 3)),) + k_blocks
    empty_v = (pin_v(empty),) + v_blocks
    slots = decode_slots.Slots(
        (empty_k,) * cfg.num_layers, (empty_v,) * cfg.num_layers,
        jnp.zeros((s, t_prompt), bool), jnp.full((s,), b, jnp.int32),
        jnp.zeros((s,), jnp.int32), jnp.zeros((s,), jnp.int32), jnp.zeros((s,), jnp.int32),
        jnp.zeros((s, cfg.vocab_size), jnp.float32), jnp.full((s, m), -1, jnp.int32))
    slots, next_row = start(slots, jnp.ones((s,), bool), jnp.zeros((groups,), jnp.int32),
                            most=s // groups)
  refills = 0 if s == b else max(1, min(s, sampling.refill_rows or max(1, s // 4)) // groups)
  pending = lambda next_row: jnp.any(next_row < b // groups)  # Rows no slot has taken yet.
  lengths = kv_cache.filled_lengths(t_prompt, t_new, sampling.cache_blocks)
  # The static schedule (every row its own slot from the start) keeps rows in slot order and
  # in step: its outputs and cache writes are column updates at the step, local to each
  # device's rows under a mesh. Continuous batching scatters by row id and slot position.
  static = s == b
  state = _Loop(jnp.zeros((), jnp.int32), slots, next_row,
                jnp.full((b, t_new), sampling.pad_id, jnp.int32),
                jnp.zeros((b, t_new), jnp.float32), jnp.zeros((b,), jnp.int32),
                jnp.zeros((b,), bool), jnp.zeros((), jnp.int32))

  def step(st: _Loop, *, s: int, static: bool, refills: int) -> _Loop:
    """One decode step of S slots: sample, write the outputs, feed the tokens back, refill."""
    sl = st.slots
    live = sl.row < b
    # Each row's n-th token is drawn with fold_in(fold_in(key, row), n): the same whichever
    # slot, schedule or batch the row runs in.
    keys = jax.vmap(lambda r, n: jax.random.fold_in(jax.random.fold_in(key, r), n))(sl.row, sl.n)
    token, logprob = sampling_lib.sample_token(
        keys, sl.logits, temperature=sampling.temperature, top_k=sampling.top_k,
        top_p=sampling.top_p, min_p=sampling.min_p)
    token = jnp.where(live, token, sampling.pad_id)
    window = jnp.concatenate([sl.window[:, 1:], token[:, None]], axis=1)
    hit = live & _stop_hit(window, token, sampling)
    n = sl.n + 1
    ended = live & (hit | (n >= sl.budget))
    if static:  # Slot i is row i; every live row is at n = step.
      column = lambda a, x: jax.lax.dynamic_update_slice(a, x[:, None].astype(a.dtype),
                                                         (0, st.step))
      tokens_out = column(st.tokens, token)
      logprobs_out = column(st.logprobs, jnp.where(live, logprob, 0.0))
      lengths_out = jnp.where(ended, n, st.lengths)
      finished_out = jnp.where(ended, hit, st.finished)
    else:
      out_row = jnp.where(ended, sl.row, b)  # b: dropped.
      tokens_out = decode_slots.write_rows(st.tokens, sl.row, token, groups, sl.n)
      logprobs_out = decode_slots.write_rows(st.logprobs, sl.row, logprob, groups, sl.n)
      lengths_out = decode_slots.write_rows(st.lengths, out_row, n, groups)
      finished_out = decode_slots.write_rows(st.finished, out_row, hit, groups)
    # Feed the token back. Slots that just ended or are idle compute too (their results are
    # discarded); only continuing rows decide how much of the cache to read.
    going = live & ~ended
    at = st.step if static else sl.n  # The generated position each slot writes.
    generated = jnp.broadcast_to(jnp.arange(t_new)[None, :] <= jnp.reshape(at, (-1, 1)),
                                 (s, t_new))
    allowed = jnp.concatenate([sl.prompt_mask, generated], axis=1)  # [S, C]
    needed = st.step + 1 if static else jnp.max(jnp.where(going, n, 1))
    choice = kv_cache.filled_choice(lengths, t_prompt, needed)
    attends = [kv_cache.decode_attend(sl.k[i], sl.v[i], at, allowed, choice)
               for i in range(cfg.num_layers)]
    x = transformer.embed(top, token[:, None], cfg)
    x, kv = transformer.run_layers(layers, x, sl.pos[:, None], attends, cfg=cfg)
    x = decode_layout.rows(x[:, 0], "act_batch", "act_embed")
    logits = decode_layout.rows(prefill_lib.top_logits(top, x, cfg), "act_batch", None)
    ks, vs = zip(*kv)
    sl = decode_slots.Slots(tuple(ks), tuple(vs), sl.prompt_mask, jnp.where(ended, b, sl.row),
                            n, sl.pos + 1, sl.budget, logits, window)
    next_row = st.next_row
    if refills:  # Only on steps where a slot is free and rows are pending: a start gathers
      # its prompts' keys and values for every layer, which most steps would do for nothing.
      free = sl.row >= b
      sl, next_row = jax.lax.cond(
          jnp.any(free) & pending(next_row),
          lambda sl_, nr: start(sl_, sl_.row >= b, nr, most=refills),
          lambda sl_, nr: (sl_, nr), sl, next_row)
    done_rows = st.done_rows + jnp.sum(ended, dtype=jnp.int32)
    if progress:
      jax.debug.callback(_tick, done_rows)
    return _Loop(st.step + 1, sl, next_row, tokens_out, logprobs_out, lengths_out, finished_out,
                 done_rows)

  live_rows = lambda st: jnp.sum(st.slots.row < b, dtype=jnp.int32)
  tail = _tail_slots(sampling, s, b) // groups  # Per group.
  if tail:  # The wide batch while rows are pending or a group has more than `tail` live, ...
    state = jax.lax.while_loop(
        lambda st: (jnp.max(decode_slots.live_per_group(st.slots, groups, b)) > tail) | (
            pending(st.next_row) & (live_rows(st) > 0)),
        functools.partial(step, s=s, static=static, refills=refills), state)
    # ... then each group's live rows move to `tail` slots (one copy of their caches).
    state = state._replace(
        slots=decode_slots.narrow(state.slots, groups, tail, b, pin_k, pin_v))
    s, static, refills = tail * groups, False, 0
  state = jax.lax.while_loop(lambda st: live_rows(st) > 0,
                             functools.partial(step, s=s, static=static, refills=refills), state)
  return Rollout(state.tokens, state.logprobs, state.lengths, state.finished)


# XLA:CPU (jax 0.10.2) hands dots to YNNPACK fusions by default, and the sampler keeps them:
# with the decode weights transposed (r1jax/decode_layout.py) SmolLM2's 16-row decode ran
# 201.6 tokens/s against 151.5 with YNNPACK off and 140.5 with it off and the weights as
# stored (idle 2-core machine; 139.5 vs 108.0 with one core busy). An earlier jax measured the
# opposite, so the benchmark (experiments/benchmarks/sampler_vs_transformers.py) is the judge.
_JITTED = {}


def _jitted_generate(platform: str):
  if platform not in _JITTED:
    _JITTED[platform] = jax.jit(
        _generate, static_argnames=("cfg", "sampling", "num_samples", "progress"))
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
             progress: bool = False, budgets: Sequence[int] | None = None) -> Rollout:
  """Samples num_samples completions for each of P prompts.

  Args:
    params: model params (from `models.init` or `models.load`).
    prompts: P token-id lists of any lengths (no padding; a bucket pads them internally).
    cfg: the model's architecture.
    sampling: temperature, truncation, budget and stop conditions.
    key: PRNG key; the same key, prompts and config give the same rollout.
    num_samples: R, completions per prompt.
    progress: show a progress bar of finished rows on stderr (a host callback per step).
    budgets: optional new-token budget per prompt (P ints in [1, max_new_tokens]); a row that
      reaches its prompt's budget ends unfinished, as at max_new_tokens. Same compile.

  Returns:
    A Rollout with B = P * R rows, rows [p * R, (p + 1) * R) for prompt p.

  Raises:
    ValueError: an empty prompt list or prompt, a token id outside the vocabulary, a prompt
      that does not fit the context with max_new_tokens, num_samples < 1, or bad budgets.
  """
  if not isinstance(num_samples, int) or num_samples < 1:
    raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
  ids = _check_prompts(prompts, cfg, sampling)
  t_prompt = bucket_length(max(len(x) for x in ids), sampling)
  # The shared prefix is prefilled once; the rest of each prompt fills the bucket's other
  # T_x = T_p - T_s columns, so decode sees the same T_p with or without sharing.
  t_s = prefill_lib.shared_prefix_length(ids, sampling.shared_prefix_multiple)
  prefix = np.asarray([ids[0][:t_s]], np.int32).reshape(1, t_s)
  t_x = t_prompt - t_s
  tokens = np.full((len(ids), t_x), sampling.pad_id, np.int32)
  mask = np.zeros((len(ids), t_x), bool)
  for i, x in enumerate(ids):  # Left padding: every prompt ends at the last column.
    tokens[i, t_x - (len(x) - t_s):] = x[t_s:]
    mask[i, t_x - (len(x) - t_s):] = True
  # Not .pop(): devices() may hand out a cached set, and popping empties it for later calls.
  leaf = jax.tree.leaves(params)[0]
  platform = (next(iter(leaf.devices())).platform if isinstance(leaf, jax.Array)
              else jax.default_backend())
  if budgets is None:
    budgets = [sampling.max_new_tokens] * len(ids)
  budgets = [int(x) for x in budgets]
  if len(budgets) != len(ids) or not all(1 <= x <= sampling.max_new_tokens for x in budgets):
    raise ValueError(f"budgets must be {len(ids)} integers (one per prompt) in "
                     f"[1, max_new_tokens={sampling.max_new_tokens}], got {budgets!r:.120}")
  # Suffixes packed end to end (r1jax/prefill.py), one group a device the prompts lie on.
  packed = prefill_lib.pack(mask, tokens, t_s, decode_layout.row_shards(len(ids), "batch"))
  # The prefix goes in as numpy: `jnp.asarray` compiles a small staging program per new shape.
  run = functools.partial(_jitted_generate(platform), params, prefix, jnp.asarray(tokens),
                          jnp.asarray(mask), key, jnp.asarray(budgets, jnp.int32), packed,
                          cfg=cfg, sampling=sampling, num_samples=num_samples,
                          progress=progress)
  if not progress:
    return run()
  with tqdm.tqdm(total=len(ids) * num_samples, desc="decoding", unit="row", file=sys.stderr,
                 leave=False) as bar:
    _PROGRESS[0] = bar
    try:
      return jax.block_until_ready(run())
    finally:
      _PROGRESS[0] = None
