"""Dry run: will this config fit the devices? Per-device memory and FLOPs, with no allocation.

Place in the pipeline: `r1jax train EXPERIMENT.py --dry-run [--device-memory-gb G]` calls
`dry_run` before anything is allocated and prints `format_report`. Params and optimizer state
are built abstractly (`jax.eval_shape`), and per-device sizes come from the sharding specs by
arithmetic (dim / product of its mesh axes), so a 64-device plan is checked on a laptop.

Memory model, per device (all sizes after sharding; b = rows per device):
  train phase  = params + grads (their float32 sum, and a micro-batch's own with accumulation)
                 + optimizer state + reference params (when a KL term needs them, in
                 `reference_dtype`) + activations
  sample phase = params + optimizer state + reference params + the sampler's param copy (in
                 the compute dtype, laid out by `MeshConfig.sampler_rules`; none when that is
                 the params' own layout and dtype) + KV cache + the sampler's working set
  peak = max(train phase, sample phase); it fits when peak <= (1 - headroom) * device memory.

The sampler's working set is what it holds beyond its weights and the full KV cache at its
busiest moment: the prompts' own cache (one row per prompt, every slot) beside the full one
while it is fanned out to R rows, or a decode step's logits and probabilities; the prefill's
activations and the prompts' cache, when that phase is larger than the full cache (the
prefill's vocabulary head covers each prompt's last position only).

`platform="cpu"` plans what XLA:CPU compiles (the fake-device check of r1jax.dryrun_compile):
XLA:CPU has no bf16 / f16 matmul, so it widens their operands to float32, and the decode
loop's weights, being loop-invariant, are widened once before the loop; the sampler's copy is
then float32. (Found in the compiled buffer assignment of the 7B recipes' samplers: 28 layers'
fused weights held as f32[3584, 37888] and so on, twice the bf16 bytes.) GPUs and TPUs multiply
in bf16 and hold the bf16 copy.

Activations of one micro-batch (b rows of T tokens, e bytes per compute-dtype element, scores
kept in float32; N', K'H, F', V' are the head, kv, MLP and vocab widths left on one device
after tensor parallelism). Per layer:
  carry  = b T D e                      block input, kept by the layer scan for the backward
  proj   = b T (N'H + 2 K'H + D) e      q, k, v and o_proj outputs
  mlp    = b T (2 F' + D) e             gate, up and down outputs
  attn   = b N' T T (4 + e)             scores (float32) and probabilities
  other  = b T (2 D + F' + N'H) e       two norms, act(gate) * up, attention output
  saved by remat policy: none = proj + mlp + attn + other; dots = proj + mlp + b N' T T 4
    + b T N'H e; dots_no_batch = proj + mlp; full = 0
  activations = L (carry + saved) + (proj + mlp + 2 attn + other)  [one layer's backward: its
                                                                   values, and the cotangents
                                                                   of scores and probabilities]
                + 3 b C V' 4                                      [logits, log-probs, cotangent]
  where C = the completion's positions, or one chunk of them (`ModelConfig.logits_chunk`).
It is an estimate: XLA may fuse away some buffers and needs temporaries of its own (hence the
headroom).

LoRA (`Config.lora.rank` > 0): the params are the frozen base and also the reference (no
reference copy); gradients are the adapters' float32 sum plus, inside the backward pass, the
gradient of each merged targeted kernel (param dtype, from which A's and B's are contracted);
the optimizer state mirrors the adapters; both phases hold the adapters and one merged copy of
the targeted kernels (built in the loss, and once per rollout for the sampler). FLOPs are
counted as for full fine-tuning: the merged kernels' gradients are computed all the same.

FLOPs per step (all devices), N_mm = params used in matmuls (all but the embedding lookup;
a tied embedding counts once, as the head), attention 4 L N H S per token forward (this
implementation scores every key slot S):
  train     = mu * B * T * (6 N_mm + 12 L N H T)
  recompute = remat full: mu * B * T * (2 N_mm + 4 L N H T); dots_no_batch: the attention part
  reference = B * T * (2 N_mm + 4 L N H T) per forward-only pass: the reference model's (with
              a KL term) and pi_old's (several optimizer steps per rollout)
  sample    = (prompt tokens once per prompt + completion tokens per row) * (2 N_mm + 4 L N H S)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import jax
import optax

from r1jax import dryrun_cost, sharding
from r1jax.models import kv_cache, transformer
from r1jax.models.config import ModelConfig

__all__ = ["Report", "dry_run", "format_report", "per_device_bytes", "activation_bytes"]

GIB = 2 ** 30
OPTIMIZERS = ("adamw", "adam", "lion", "sgd", "adafactor")
REMATS = ("none", "full", "dots", "dots_no_batch")
PLATFORMS = ("accelerator", "cpu")


@dataclasses.dataclass(frozen=True)
class Report:
  """Per-device bytes (after sharding), FLOPs per step (all devices) and the verdict."""

  num_params: int  # Model params.
  mesh: dict[str, int]  # {'data': ., 'fsdp': ., 'tensor': .}.
  num_devices: int
  params_bytes: int
  grads_bytes: int
  opt_state_bytes: int
  reference_bytes: int
  activation_bytes: int
  sampler_params_bytes: int  # The sampler's own param copy when its layout differs, else 0.
  kv_cache_bytes: int
  sampler_work_bytes: int  # Beyond weights and the full cache: prefill, fan-out or decode.
  train_peak_bytes: int
  sample_peak_bytes: int
  peak_bytes: int
  device_memory_bytes: int
  usable_bytes: int  # device memory less the headroom.
  fits: bool
  shortfall_bytes: int  # peak - usable when it does not fit, else 0.
  flops_train: float
  flops_recompute: float
  flops_reference: float
  flops_sample: float
  flops_per_step: float
  verdict: str  # One sentence: fits, or by how much it falls short.
  notes: tuple[str, ...] = ()  # Dims that fell back to replication, and similar.
  num_steps: int = 0  # The run's steps (from a Config), for the cost line; 0 = not known.
  adapter_bytes: int = 0  # LoRA adapters (0 without LoRA).
  merged_bytes: int = 0  # LoRA: the merged copy of the targeted kernels, in both phases.


def _ways(spec: Any, mesh_sizes: Mapping[str, int]) -> list[int]:
  out = []
  for entry in tuple(spec):
    axes = sharding._axes_tuple(entry)  # pylint: disable=protected-access
    out.append(math.prod(mesh_sizes[a] for a in axes))
  return out


def per_device_bytes(abstract_tree: Any, spec_tree: Any, mesh_sizes: Mapping[str, int]) -> int:
  """Bytes one device holds of a tree of ShapeDtypeStructs sharded by a tree of specs."""
  total = 0
  specs = jax.tree.leaves(spec_tree, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
  leaves = jax.tree.leaves(abstract_tree)
  if len(specs) != len(leaves):
    raise ValueError(f"{len(leaves)} arrays but {len(specs)} partition specs")
  for a, spec in zip(leaves, specs):
    ways = _ways(spec, mesh_sizes) + [1] * (len(a.shape) - len(tuple(spec)))
    total += math.prod(-(-d // w) for d, w in zip(a.shape, ways)) * a.dtype.itemsize
  return total


def _optimizer(optimizer: str | optax.GradientTransformation) -> optax.GradientTransformation:
  if not isinstance(optimizer, str):
    return optimizer
  makers = {"adamw": optax.adamw, "adam": optax.adam, "lion": optax.lion, "sgd": optax.sgd,
            "adafactor": optax.adafactor}
  if optimizer not in makers:
    raise ValueError(f"unknown optimizer {optimizer!r}; accepted: {', '.join(OPTIMIZERS)} "
                     "or an optax.GradientTransformation")
  return makers[optimizer](1e-6)


def _mesh_sizes(mesh: Any, num_devices: int | None) -> tuple[dict[str, int], Any]:
  """(mesh sizes, MeshConfig or None) from a MeshConfig, a (data, fsdp, tensor) or a dict."""
  cfg = None
  if isinstance(mesh, sharding.MeshConfig):
    cfg = mesh
  elif isinstance(mesh, Mapping):
    cfg = sharding.MeshConfig(**mesh)
  elif isinstance(mesh, Sequence) and len(mesh) == 3:
    cfg = sharding.MeshConfig(*mesh)
  else:
    raise ValueError(f"mesh must be a MeshConfig, a (data, fsdp, tensor) tuple or a dict of "
                     f"those axes, got {mesh!r}")
  if num_devices is None:
    if -1 in (cfg.data, cfg.fsdp, cfg.tensor):
      raise ValueError(f"num_devices is needed to fill the -1 axis of mesh {mesh!r}")
    num_devices = cfg.data * cfg.fsdp * cfg.tensor
  return dict(zip(sharding.AXES, cfg.shape(num_devices))), cfg


def _layer_terms(rows: int, t: int, s: int, widths: Mapping[str, int], e: int) -> dict:
  """Per-layer activation bytes of `rows` rows, t queries over s keys (see module docstring)."""
  d, nh, kh, f, n = (widths[k] for k in ("D", "NH", "KH", "F", "N"))
  return {
      "carry": rows * t * d * e,
      "proj": rows * t * (nh + 2 * kh + d) * e,
      "mlp": rows * t * (2 * f + d) * e,
      "attn": rows * n * t * s * (4 + e),
      "scores": rows * n * t * s * 4,
      "attn_out": rows * t * nh * e,
      "other": rows * t * (2 * d + f + nh) * e,
  }


def _widths(cfg: ModelConfig, specs: Any, sizes: Mapping[str, int]) -> dict[str, int]:
  """Per-device head / kv / MLP / vocab widths, read from the params' actual specs."""
  layers = specs["model"]["layers"]
  q_ways = _ways(layers["self_attn"]["q_proj"]["kernel"], sizes)[2]
  kv_ways = _ways(layers["self_attn"]["k_proj"]["kernel"], sizes)[2]
  f_ways = _ways(layers["mlp"]["gate_proj"]["kernel"], sizes)[2]
  head = specs["lm_head"]["kernel"] if "lm_head" in specs else None
  v_ways = (_ways(head, sizes)[1] if head is not None else
            _ways(specs["model"]["embed_tokens"]["embedding"], sizes)[0])
  n = -(-cfg.num_heads // q_ways)
  return {"D": cfg.hidden_size, "N": n, "NH": n * cfg.head_dim,
          "KH": -(-cfg.num_kv_heads // kv_ways) * cfg.head_dim,
          "F": -(-cfg.intermediate_size // f_ways), "V": -(-cfg.vocab_size // v_ways)}


def activation_bytes(cfg: ModelConfig, rows: int, seq_len: int, remat: str,
                     widths: Mapping[str, int], logit_len: int | None = None) -> int:
  """Training activations of `rows` rows per device under a remat policy (module docstring).

  `logit_len` is the number of positions whose logits exist at once: the completion, or one
  chunk of it (`ModelConfig.logits_chunk`); default seq_len.
  """
  e = jax.numpy.dtype(cfg.dtype).itemsize
  x = _layer_terms(rows, seq_len, seq_len, widths, e)
  layer = x["proj"] + x["mlp"] + x["attn"] + x["other"]
  saved = {"none": layer, "dots": x["proj"] + x["mlp"] + x["scores"] + x["attn_out"],
           "dots_no_batch": x["proj"] + x["mlp"], "full": 0}[remat]
  logits = 3 * rows * (seq_len if logit_len is None else logit_len) * widths["V"] * 4
  # A layer's backward holds the scores' and probabilities' cotangents beside their values:
  # without this term the plan fell 31% short of XLA's figure for the Dr. GRPO 7B step.
  return cfg.num_layers * (x["carry"] + saved) + layer + x["attn"] + logits


def dry_run(model_cfg: ModelConfig, mesh: Any, *, batch: int, seq_len: int,
            num_devices: int | None = None, device_memory_gb: float = 80.0,
            optimizer: str | optax.GradientTransformation = "adamw", remat: str | None = None,
            kv_cache_len: int | None = None, minibatch: int | None = None,
            sample_batch: int | None = None, sample_slots: int | None = None,
            prompt_len: int = 0, num_samples: int = 1, num_iterations: int = 1,
            reference: bool = False, old_pass: bool = False,
            update_rows: int | None = None, headroom: float = 0.1,
            reference_dtype: str | None = None, platform: str = "accelerator",
            lora: Any = None) -> Report:
  """Estimates per-device memory and FLOPs of one GRPO step; allocates nothing.

  Args:
    model_cfg: the architecture (its dtypes set the byte sizes).
    mesh: a MeshConfig (its rules and sample_rules are used), a (data, fsdp, tensor) tuple,
      or a dict of those axes; a -1 axis is filled from num_devices.
    batch: B = P * R rollout rows per step.
    seq_len: T, tokens per row in training (prompt + completion).
    num_devices: devices in the mesh (default: the mesh's product, when it has no -1).
    device_memory_gb: memory of one device in GiB (an "80 GB" card holds 80 GiB).
    optimizer: an optax optimizer or one of adamw, adam, lion, sgd, adafactor.
    remat: activation checkpointing policy; default the model config's.
    kv_cache_len: S, cache slots per sampled row; default seq_len.
    minibatch: rows per gradient computation (a micro-batch); default batch.
    sample_batch: rows the sampler decodes in one call; default batch.
    sample_slots: decode slots of that call (fewer than sample_batch: continuous batching,
      `SamplingConfig.max_rows`); default sample_batch.
    prompt_len: prompt tokens per row (for the prefill terms; 0 = ignore the prefill).
    num_samples: R, rows per prompt (the prefill runs once per prompt).
    num_iterations: mu, optimisation passes over each rollout batch.
    reference: whether a frozen reference model is kept (a KL term).
    old_pass: whether pi_old takes a forward pass of its own (several optimizer steps per
      rollout with the trainer's pi_old).
    update_rows: rows of one optimizer step (batch / updates per rollout); default batch.
    headroom: fraction of device memory left for XLA temporaries and fragmentation.
    reference_dtype: the reference params' storage dtype (default the params' own).
    platform: "accelerator" (GPU / TPU) or "cpu" (XLA:CPU widens bf16 / f16 matmul weights to
      float32: see the module docstring).
    lora: a `r1jax.lora.LoRAConfig`; with rank > 0 only adapters are trained (module docstring).
  """
  remat = model_cfg.remat if remat is None else remat
  if remat not in REMATS:
    raise ValueError(f"unknown remat policy {remat!r}; accepted: {', '.join(REMATS)}")
  for name, value in (("batch", batch), ("seq_len", seq_len), ("num_samples", num_samples),
                      ("num_iterations", num_iterations),
                      ("sample_slots", 1 if sample_slots is None else sample_slots)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"dry_run {name} must be a positive integer, got {value!r}")
  if not 0 <= prompt_len < seq_len:
    raise ValueError(f"dry_run prompt_len must be in [0, seq_len={seq_len}), got {prompt_len!r}")
  if platform not in PLATFORMS:
    raise ValueError(f"dry_run platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")
  if not device_memory_gb > 0 or not 0 <= headroom < 1:
    raise ValueError(f"device_memory_gb must be > 0 and headroom in [0, 1), got "
                     f"{device_memory_gb!r} and {headroom!r}")
  minibatch = batch if minibatch is None else minibatch
  sample_batch = batch if sample_batch is None else sample_batch
  slots = sample_batch if sample_slots is None else min(sample_slots, sample_batch)
  kv_cache_len = seq_len if kv_cache_len is None else kv_cache_len
  sizes, mesh_cfg = _mesh_sizes(mesh, num_devices)
  n_dev = math.prod(sizes.values())
  rules, sample_rules = mesh_cfg.rules, mesh_cfg.sampler_rules

  _, abstract = sharding.param_logical_and_abstract(model_cfg)
  specs = sharding.param_specs(model_cfg, sizes, rules)
  params_b = per_device_bytes(abstract, specs, sizes)
  tx = _optimizer(optimizer)
  opt_abstract = jax.eval_shape(tx.init, abstract)
  opt_specs = sharding.mirror_params(opt_abstract, abstract, specs, jax.sharding.PartitionSpec())
  opt_b = per_device_bytes(opt_abstract, opt_specs, sizes)
  # Gradients are summed in float32; with accumulation a micro-batch's own gradient (param
  # dtype) sits beside that sum.
  update_rows = batch if update_rows is None else update_rows
  grads_b = params_b * 4 // jax.numpy.dtype(model_cfg.param_dtype).itemsize
  if minibatch < update_rows:
    grads_b += params_b
  ref_b = per_device_bytes(_in_dtype(abstract, reference_dtype), specs, sizes) if reference else 0
  adapter_b = merged_b = 0
  if lora is not None and lora.enabled:
    adapter_b, merged_b, opt_b, grads_b = _lora_bytes(model_cfg, lora, tx, specs, sizes, rules,
                                                      accumulate=minibatch < update_rows)
    ref_b = 0  # The reference is the frozen base itself.
  notes = _fallback_notes(model_cfg, specs, abstract, rules, sizes)

  widths = _widths(model_cfg, specs, sizes)
  batch_ways = math.prod(_ways(sharding.logical_to_mesh(("act_batch",), rules), sizes))
  rows = -(-minibatch // batch_ways)
  # The update's logits cover the completion only, one chunk of it at a time.
  t_new = seq_len - prompt_len
  logit_len = min(model_cfg.logits_chunk, t_new) if model_cfg.logits_chunk else t_new
  act_b = activation_bytes(model_cfg, rows, seq_len, remat, widths, logit_len)

  # The sampler decodes from a copy in the compute dtype laid out by its rules (norm weights
  # keep their dtype); none when that is the training params' own layout and dtype. XLA:CPU
  # holds that copy widened to float32 (module docstring).
  s_dtype = jax.numpy.dtype(model_cfg.dtype)
  if platform == "cpu" and s_dtype.itemsize < 4:
    s_dtype = jax.numpy.dtype("float32")
  s_specs = sharding.param_specs(model_cfg, sizes, sample_rules)
  s_abstract = _in_dtype(abstract, s_dtype.name)
  if sample_rules == rules and s_dtype == jax.numpy.dtype(model_cfg.param_dtype):
    sample_params_b, s_widths = 0, widths
  else:
    sample_params_b = per_device_bytes(s_abstract, s_specs, sizes)
    s_widths = _widths(model_cfg, s_specs, sizes)
  cache = kv_cache.abstract_cache(model_cfg, slots, kv_cache_len,
                                 max(sample_batch // num_samples, 1), prompt_len)
  cache_b = per_device_bytes(cache, sharding.cache_specs(cache, sizes, sample_rules), sizes)
  s_ways = math.prod(_ways(sharding.logical_to_mesh(("cache_batch",), sample_rules), sizes))
  s_rows = -(-slots // s_ways)
  # Beyond the weights and the caches (the slots' and the prompts' they copy from, both in
  # cache_b): a decode step's logits and probabilities, or the prefill, whichever is larger.
  work_b = 2 * s_rows * s_widths["V"] * 4
  if prompt_len:
    p_rows = -(-max(sample_batch // num_samples, 1) // s_ways)
    e = jax.numpy.dtype(model_cfg.dtype).itemsize
    x = _layer_terms(p_rows, prompt_len, prompt_len, s_widths, e)  # Prefill: prompt alone.
    prefill_b = (x["carry"] + x["proj"] + x["mlp"] + x["attn"] + x["other"]
                 + p_rows * s_widths["V"] * 4)  # The head sees each prompt's last position.
    work_b = max(work_b, prefill_b)

  train_peak = params_b + adapter_b + merged_b + grads_b + opt_b + ref_b + act_b
  sample_peak = (params_b + adapter_b + merged_b + opt_b + ref_b + sample_params_b + cache_b
                 + work_b)
  peak = max(train_peak, sample_peak)
  mem = int(device_memory_gb * GIB)
  usable = int(mem * (1 - headroom))

  n_mm = transformer.count_params(abstract)
  if not model_cfg.tie_embeddings:
    n_mm -= model_cfg.vocab_size * model_cfg.hidden_size  # The lookup is not a matmul.
  lnh = model_cfg.num_layers * model_cfg.num_heads * model_cfg.head_dim
  train_tokens = batch * seq_len
  flops_train = num_iterations * train_tokens * (6 * n_mm + 12 * lnh * seq_len)
  recompute = {"full": 2 * n_mm + 4 * lnh * seq_len, "dots_no_batch": 4 * lnh * seq_len}
  flops_recompute = num_iterations * train_tokens * recompute.get(remat, 0)
  forward = train_tokens * (2 * n_mm + 4 * lnh * seq_len)
  flops_ref = forward * (int(reference) + int(old_pass))  # Reference and pi_old passes.
  sampled_tokens = (max(batch // num_samples, 1) * prompt_len
                    + batch * (seq_len - prompt_len))
  flops_sample = sampled_tokens * (2 * n_mm + 4 * lnh * kv_cache_len)
  total = flops_train + flops_recompute + flops_ref + flops_sample

  parts = {"params": params_b, "gradients": grads_b, "optimizer state": opt_b,
           "reference params": ref_b, "activations": act_b, "LoRA merged kernels": merged_b}
  if sample_peak > train_peak:
    parts = {"params": params_b, "optimizer state": opt_b, "reference params": ref_b,
             "sampler params": sample_params_b, "KV cache": cache_b, "sampler working set": work_b,
             "LoRA merged kernels": merged_b}
  top = sorted(((v, k) for k, v in parts.items() if v), reverse=True)[:3]
  phase = "sampling" if sample_peak > train_peak else "training"
  usable_text = (f"{usable / GIB:.1f} GiB usable of {device_memory_gb:g} GiB "
                 f"({headroom:.0%} kept as headroom)")
  if peak <= usable:
    verdict = (f"Fits: the peak ({phase}) needs {peak / GIB:.1f} GiB per device, "
               f"{usable_text}.")
  else:
    verdict = (f"Does not fit: the peak ({phase}) needs {peak / GIB:.1f} GiB per device but "
               f"only {usable_text}, {(peak - usable) / GIB:.1f} GiB short per device "
               f"(largest: {', '.join(f'{k} {v / GIB:.1f} GiB' for v, k in top)}).")
  return Report(
      num_params=transformer.count_params(abstract), mesh=sizes, num_devices=n_dev,
      params_bytes=params_b, grads_bytes=grads_b, opt_state_bytes=opt_b,
      reference_bytes=ref_b, activation_bytes=act_b, sampler_params_bytes=sample_params_b,
      kv_cache_bytes=cache_b, sampler_work_bytes=work_b, train_peak_bytes=train_peak,
      sample_peak_bytes=sample_peak, peak_bytes=peak, device_memory_bytes=mem,
      usable_bytes=usable, fits=peak <= usable, shortfall_bytes=max(peak - usable, 0),
      flops_train=float(flops_train), flops_recompute=float(flops_recompute),
      flops_reference=float(flops_ref), flops_sample=float(flops_sample),
      flops_per_step=float(total), verdict=verdict, notes=tuple(notes),
      adapter_bytes=adapter_b, merged_bytes=merged_b)


def _lora_bytes(cfg: ModelConfig, lora: Any, tx: optax.GradientTransformation, specs: Any,
                sizes: Mapping[str, int], rules: sharding.Rules,
                accumulate: bool) -> tuple[int, int, int, int]:
  """Per-device (adapters, merged kernels, optimizer state, gradients) bytes under LoRA."""
  from r1jax import lora as lora_lib  # pylint: disable=g-import-not-at-top
  is_spec = lambda x: isinstance(x, jax.sharding.PartitionSpec)
  units = {"q_heads": cfg.head_dim, "kv_heads": cfg.head_dim}
  ad_abstract = lora_lib.abstract_adapters(cfg, lora)
  ad_specs = jax.tree.map(lambda s, a: sharding.spec_for_shape(tuple(s), a.shape, rules, sizes,
                                                               units),
                          lora_lib.adapter_logical_axes(cfg, lora), ad_abstract, is_leaf=is_spec)
  adapter_b = per_device_bytes(ad_abstract, ad_specs, sizes)
  opt_abstract = jax.eval_shape(tx.init, ad_abstract)
  opt_b = per_device_bytes(opt_abstract, sharding.mirror_params(
      opt_abstract, ad_abstract, ad_specs, jax.sharding.PartitionSpec()), sizes)
  _, abstract = sharding.param_logical_and_abstract(cfg)
  layers, layer_specs = abstract["model"]["layers"], specs["model"]["layers"]
  kernels = [(layers[m][name]["kernel"], layer_specs[m][name]["kernel"])
             for m, names in ad_abstract["model"]["layers"].items() for name in names]
  merged_b = per_device_bytes([k for k, _ in kernels], [s for _, s in kernels], sizes)
  # The adapters' float32 sum (and a micro-batch's own beside it), and each merged kernel's
  # gradient inside the backward pass.
  grads_b = adapter_b * (2 if accumulate else 1) + merged_b
  return adapter_b, merged_b, opt_b, grads_b


def _in_dtype(abstract: Any, dtype: str | None) -> Any:
  """Abstract params with their float leaves, norm weights aside, in `dtype` (None: as is)."""
  if dtype is None:
    return abstract
  return jax.tree_util.tree_map_with_path(
      lambda path, a: a if "norm" in jax.tree_util.keystr(path) else jax.ShapeDtypeStruct(
          a.shape, jax.numpy.dtype(dtype)), abstract)


def _fallback_notes(cfg: ModelConfig, specs: Any, abstract: Any, rules: sharding.Rules,
                    sizes: Mapping[str, int]) -> list[str]:
  """One line per param dim that a rule would split but that fell back to replication."""
  is_spec = lambda x: isinstance(x, jax.sharding.PartitionSpec)
  logical = jax.tree.leaves(sharding.param_logical_and_abstract(cfg)[0], is_leaf=is_spec)
  flat = jax.tree_util.tree_flatten_with_path(abstract)[0]
  notes = []
  for (path, a), spec, names in zip(flat, jax.tree.leaves(specs, is_leaf=is_spec), logical):
    wanted = _ways(sharding.logical_to_mesh(tuple(names), rules), sizes)
    got = _ways(spec, sizes) + [1] * len(a.shape)
    for i, (want, have) in enumerate(zip(wanted, got)):
      if want > have:
        name = jax.tree_util.keystr(path, simple=True, separator="/")
        notes.append(f"{name} dim {i} ({names[i]}, size {a.shape[i]}) does not split "
                     f"{want} ways; it is replicated")
  return notes


def format_report(report: Report) -> str:
  """The dry run as a short table for the console."""
  gib = lambda b: f"{b / GIB:9.2f} GiB"
  mesh = " x ".join(f"{k}={v}" for k, v in report.mesh.items())
  lines = [
      f"Dry run: {report.num_params / 1e9:.2f}B params on {report.num_devices} devices "
      f"({mesh})",
      "Per device, training phase:",
      f"  params            {gib(report.params_bytes)}",
      *([f"  LoRA adapters     {gib(report.adapter_bytes)}",
         f"  merged kernels    {gib(report.merged_bytes)}  (LoRA: W + (alpha/r) A B)"]
        if report.adapter_bytes else []),
      f"  gradients         {gib(report.grads_bytes)}",
      f"  optimizer state   {gib(report.opt_state_bytes)}",
      f"  reference params  {gib(report.reference_bytes)}",
      f"  activations       {gib(report.activation_bytes)}",
      f"  total             {gib(report.train_peak_bytes)}",
      "Per device, sampling phase (params, optimizer state and reference stay resident):",
      f"  sampler params    {gib(report.sampler_params_bytes)}",
      f"  KV cache          {gib(report.kv_cache_bytes)}",
      f"  working set       {gib(report.sampler_work_bytes)}",
      f"  total             {gib(report.sample_peak_bytes)}",
      f"FLOPs per step (all devices): {report.flops_per_step:.3e} = train "
      f"{report.flops_train:.3e} + recompute {report.flops_recompute:.3e} + reference "
      f"{report.flops_reference:.3e} + sampling {report.flops_sample:.3e}",
      f"FLOPs per device per step: {report.flops_per_step / report.num_devices:.3e}",
  ]
  lines += [f"Note: {n}" for n in report.notes[:8]]
  if len(report.notes) > 8:
    lines.append(f"Note: ... and {len(report.notes) - 8} more replicated params")
  if report.num_steps:
    cost = dryrun_cost.run_cost(
        report.flops_train + report.flops_recompute + report.flops_reference,
        report.flops_sample, steps=report.num_steps, num_devices=report.num_devices)
    lines.append(dryrun_cost.format_cost(cost))
  lines.append(report.verdict)  # The last line: scripts read the verdict there.
  return "\n".join(lines)


def dry_run_config(cfg: Any, *, num_devices: int, device_memory_gb: float = 80.0,
                   platform: str = "accelerator") -> Report:
  """`dry_run` of one GRPO step of an experiment Config (r1jax.run_config.Config).

  Rows B = prompts_per_step x grpo.num_samples; each row is max_prompt_len prompt tokens plus
  sampling.max_new_tokens; a gradient is computed over `minibatch_size` rows (default: one
  optimizer step's B / updates_per_rollout); the sampler decodes `rollout_chunk` prompts'
  rows in one call (default all), `sampling.max_rows` at a time (default all: continuous
  batching below that); the architecture is cfg.model and the mesh cfg.mesh; the
  reference lives in `cfg.ref_dtype` ("" = the params' dtype); `platform` as for `dry_run`.
  """
  r = cfg.grpo.num_samples
  rows = cfg.prompts_per_step * r
  return dataclasses.replace(_dry_run_of(cfg, r, rows, num_devices, device_memory_gb, platform),
                             num_steps=cfg.num_steps)


def _dry_run_of(cfg: Any, r: int, rows: int, num_devices: int, device_memory_gb: float,
                platform: str) -> Report:
  return dry_run(cfg.model, cfg.mesh, batch=rows,
                 seq_len=cfg.max_prompt_len + cfg.sampling.max_new_tokens,
                 num_devices=num_devices, device_memory_gb=device_memory_gb,
                 minibatch=cfg.minibatch_size or rows // cfg.updates_per_rollout,
                 sample_batch=(cfg.rollout_chunk or cfg.prompts_per_step) * r,
                 sample_slots=cfg.sampling.max_rows or None, prompt_len=cfg.max_prompt_len,
                 num_samples=r,
                 num_iterations=cfg.grpo.num_iterations, reference=cfg.grpo.kl_coef > 0,
                 old_pass=cfg.updates_per_rollout > 1 and cfg.grpo.old_logprobs == "trainer",
                 update_rows=rows // cfg.updates_per_rollout,
                 reference_dtype=cfg.ref_dtype or None, platform=platform, lora=cfg.lora)
