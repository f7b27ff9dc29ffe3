"""The dry run: per-device bytes by arithmetic, FLOPs, and a clear fit / shortfall verdict."""

import dataclasses
import re

import jax
import pytest

from r1jax import dryrun
from r1jax import sharding
from r1jax.models import ModelConfig, transformer
from r1jax.models.presets import get_preset

GIB = 2 ** 30


def _r1_zero_7b(**overrides):
  """Qwen2.5-Math-7B at R1-Zero's scale: 32 prompts x 16 samples, 4k tokens, 64 devices."""
  kwargs = dict(batch=512, seq_len=4096, num_devices=64, device_memory_gb=80, remat="full",
                minibatch=64, prompt_len=512, num_samples=16, reference=True)
  kwargs.update(overrides)
  return dryrun.dry_run(get_preset("qwen2.5-math-7b"), sharding.MeshConfig(), **kwargs)


def test_qwen_math_7b_on_64_devices_of_80gb_fits():
  report = _r1_zero_7b()
  assert report.mesh == {"data": 1, "fsdp": 64, "tensor": 1}
  assert report.fits and report.shortfall_bytes == 0
  assert report.peak_bytes <= report.usable_bytes == int(80 * GIB * 0.9)
  # The sampler decodes from a whole float32 copy on every device (nothing split over fsdp,
  # so no weight is gathered per token): with 64 devices that copy makes sampling the peak.
  assert report.sampler_params_bytes == 4 * report.num_params
  assert report.verdict.startswith("Fits: the peak (sampling) needs")
  assert report.verdict in dryrun.format_report(report)


def test_qwen_32b_on_4_devices_reports_the_shortfall():
  report = dryrun.dry_run(get_preset("qwen2.5-32b"), (1, 4, 1), batch=64, seq_len=2048,
                          device_memory_gb=80, remat="full", minibatch=4)
  assert not report.fits
  assert report.shortfall_bytes == report.peak_bytes - report.usable_bytes > 0
  # The sampler's whole float32 copy (fsdp = 4 splits no decode weight) tops the peak.
  assert report.verdict.startswith("Does not fit: the peak (sampling) needs")
  assert f"{report.shortfall_bytes / GIB:.1f} GiB short per device" in report.verdict
  assert "optimizer state" in report.verdict  # Names the largest parts.


def test_params_bytes_are_sharded_arithmetic_with_replicated_norms_and_biases():
  cfg = get_preset("qwen2.5-7b")
  report = dryrun.dry_run(cfg, (1, 64, 1), batch=64, seq_len=128)
  total = transformer.count_params(transformer.abstract_params(cfg))
  l, d, nh, kh = cfg.num_layers, cfg.hidden_size, cfg.num_heads * cfg.head_dim, (
      cfg.num_kv_heads * cfg.head_dim)
  # Norms ('norm') and biases ('q_heads' / 'kv_heads' only) have no dim mapped to fsdp.
  replicated = 2 * l * d + d + l * (nh + 2 * kh)
  assert (total - replicated) % 64 == 0
  assert report.params_bytes == 4 * ((total - replicated) // 64 + replicated)
  assert report.opt_state_bytes == 2 * report.params_bytes + 4  # AdamW mu, nu and a count.
  assert report.grads_bytes == report.params_bytes


def test_kv_cache_bytes_split_over_batch_axes():
  cfg = get_preset("qwen2.5-7b")
  report = dryrun.dry_run(cfg, (2, 32, 1), batch=64, seq_len=4096)
  per_row = 2 * cfg.num_layers * 4096 * cfg.num_kv_heads * cfg.head_dim * 4  # k and v, f32.
  assert report.kv_cache_bytes == per_row  # No prompt: no prompts' cache beside the slots'.


def test_activation_formula_for_tiny_config_under_full_remat():
  cfg = ModelConfig()  # D=32, L=2, N=4, K=2, H=8, F=64, V=256, float32.
  report = dryrun.dry_run(cfg, (1, 1, 1), batch=4, seq_len=16, remat="full")
  b, t, e = 4, 16, 4
  carry = b * t * 32 * e
  proj = b * t * (32 + 2 * 16 + 32) * e
  mlp = b * t * (2 * 64 + 32) * e
  attn = b * 4 * t * t * (4 + e)
  other = b * t * (2 * 32 + 64 + 32) * e
  logits = 3 * b * t * 256 * 4
  assert report.activation_bytes == 2 * carry + (proj + mlp + 2 * attn + other) + logits


def test_remat_policies_order_activation_memory():
  sizes = [dryrun.dry_run(get_preset("qwen2.5-1.5b"), (1, 8, 1), batch=64, seq_len=1024,
                          remat=r).activation_bytes
           for r in ("full", "dots_no_batch", "dots", "none")]
  assert sizes == sorted(sizes) and len(set(sizes)) == 4


def test_flops_per_step_formula():
  cfg = ModelConfig()
  n = transformer.count_params(transformer.abstract_params(cfg))  # Tied: all params in matmuls.
  report = dryrun.dry_run(cfg, (1, 1, 1), batch=4, seq_len=16, remat="full", reference=True)
  lnh, tokens = 2 * 4 * 8, 4 * 16
  assert report.flops_train == tokens * (6 * n + 12 * lnh * 16)
  assert report.flops_recompute == tokens * (2 * n + 4 * lnh * 16)
  assert report.flops_reference == tokens * (2 * n + 4 * lnh * 16)
  assert report.flops_sample == tokens * (2 * n + 4 * lnh * 16)
  assert report.flops_per_step == (report.flops_train + report.flops_recompute
                                   + report.flops_reference + report.flops_sample)


def test_untied_head_counts_the_head_not_the_lookup():
  cfg = dataclasses.replace(ModelConfig(), tie_embeddings=False)
  n = transformer.count_params(transformer.abstract_params(cfg)) - 256 * 32
  report = dryrun.dry_run(cfg, (1, 1, 1), batch=1, seq_len=8, remat="none")
  assert report.flops_train == 8 * (6 * n + 12 * 64 * 8)


def test_default_sample_layout_is_a_whole_copy_and_the_training_layout_needs_none():
  cfg = ModelConfig()
  default = dryrun.dry_run(cfg, sharding.MeshConfig(), batch=8, seq_len=16, num_devices=8)
  sample = dryrun.dry_run(cfg, sharding.MeshConfig(sample_rules=sharding.SAMPLE_RULES),
                          batch=8, seq_len=16, num_devices=8)
  same = dryrun.dry_run(cfg, sharding.MeshConfig(sample_rules=sharding.DEFAULT_RULES),
                        batch=8, seq_len=16, num_devices=8)
  n = transformer.count_params(transformer.abstract_params(cfg))
  # tensor = 1: the decode copy is whole (no weight split over fsdp, gathered per token).
  assert default.sampler_params_bytes == sample.sampler_params_bytes == 4 * n
  assert same.sampler_params_bytes == 0


def test_cpu_plans_the_bf16_decode_copy_in_float32_and_a_bf16_reference_halves():
  cfg = dataclasses.replace(ModelConfig(), dtype="bfloat16")
  args = dict(batch=8, seq_len=16, num_devices=8, reference=True)
  accel = dryrun.dry_run(cfg, sharding.MeshConfig(), **args)
  cpu = dryrun.dry_run(cfg, sharding.MeshConfig(), platform="cpu", **args)
  half = dryrun.dry_run(cfg, sharding.MeshConfig(), reference_dtype="bfloat16", **args)
  n = transformer.count_params(transformer.abstract_params(cfg))
  norms = 2 * cfg.num_layers * cfg.hidden_size + cfg.hidden_size  # Kept in float32.
  assert accel.sampler_params_bytes == 2 * (n - norms) + 4 * norms
  assert cpu.sampler_params_bytes == 4 * n  # XLA:CPU widens bf16 matmul weights.
  assert accel.reference_bytes == accel.params_bytes
  assert half.reference_bytes < 0.6 * accel.reference_bytes
  assert half.train_peak_bytes == accel.train_peak_bytes - (
      accel.reference_bytes - half.reference_bytes)
  with pytest.raises(ValueError, match="platform must be one of accelerator, cpu, got 'tpu'"):
    dryrun.dry_run(cfg, sharding.MeshConfig(), platform="tpu", **args)


def test_sampler_caches_are_the_slots_and_the_prompts_and_the_work_the_larger_phase():
  cfg = get_preset("qwen2.5-7b")
  per_pos = 2 * cfg.num_layers * cfg.num_kv_heads * cfg.head_dim * 4  # k and v, f32.
  # 16 rows of 4 prompts: 16 slots of 2048 positions, and the 4 prompts' 64 positions they
  # copy from. The working set is the larger of a decode step's logits and probabilities and
  # the prefill (over the prompt alone; the head sees each prompt's last position).
  d, f, n, e = cfg.hidden_size, cfg.intermediate_size, cfg.num_heads, 4
  nh, kh = n * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
  prefill = lambda p, t: (p * t * (d + (nh + 2 * kh + d) + (2 * f + d) + (2 * d + f + nh)) * e
                          + p * n * t * t * (4 + e) + p * cfg.vocab_size * 4)
  fan = dryrun.dry_run(cfg, (1, 1, 1), batch=16, seq_len=2048, prompt_len=64, num_samples=4)
  assert fan.kv_cache_bytes == per_pos * (16 * 2048 + 4 * 64)
  assert fan.sampler_work_bytes == max(2 * 16 * cfg.vocab_size * 4, prefill(4, 64))
  one = dryrun.dry_run(cfg, (1, 1, 1), batch=64, seq_len=2048, prompt_len=8, num_samples=64)
  assert one.sampler_work_bytes == 2 * 64 * cfg.vocab_size * 4  # A tiny prefill: decode wins.
  long = dryrun.dry_run(cfg, (1, 1, 1), batch=1, seq_len=2048, prompt_len=2000, num_samples=1)
  assert long.sampler_work_bytes == prefill(1, 2000)


def test_continuous_batching_plans_a_cache_for_its_slots_and_every_prompt():
  cfg = get_preset("qwen2.5-7b")
  per_pos = 2 * cfg.num_layers * cfg.num_kv_heads * cfg.head_dim * 4  # k and v, f32.
  # 64 rows of 16 prompts in 8 slots: 8 slots' caches and the 16 prompts' they copy from.
  cont = dryrun.dry_run(cfg, (1, 1, 1), batch=64, seq_len=2048, prompt_len=8, num_samples=4,
                        sample_slots=8)
  assert cont.kv_cache_bytes == per_pos * (8 * 2048 + 16 * 8)
  # A decode step's logits and probabilities are the 8 slots' (a 1-token prefill is smaller).
  one = dryrun.dry_run(cfg, (1, 1, 1), batch=512, seq_len=2048, prompt_len=1, num_samples=64,
                       sample_slots=8)
  assert one.sampler_work_bytes == 2 * 8 * cfg.vocab_size * 4
  # More slots than rows: every row its own slot.
  whole = dryrun.dry_run(cfg, (1, 1, 1), batch=64, seq_len=2048, prompt_len=8, num_samples=4)
  assert dryrun.dry_run(cfg, (1, 1, 1), batch=64, seq_len=2048, prompt_len=8, num_samples=4,
                        sample_slots=128).kv_cache_bytes == whole.kv_cache_bytes


def test_dims_that_cannot_split_are_noted():
  report = dryrun.dry_run(get_preset("qwen2.5-7b"), (1, 8, 8), batch=64, seq_len=128)
  assert any("self_attn/q_proj/kernel dim 2 (q_heads" in n for n in report.notes)
  assert any("self_attn/k_proj/kernel" in n for n in report.notes)
  text = dryrun.format_report(report)
  assert "Note: " in text and "GiB" in text and "FLOPs per step" in text


@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'; accepted: adamw"),
    ({"remat": "some"}, "unknown remat policy 'some'"),
    ({"num_devices": 3}, "needs 8 devices but 3 are available"),
    ({"batch": 0}, "dry_run batch must be a positive integer, got 0"),
    ({"sample_slots": 0}, "dry_run sample_slots must be a positive integer, got 0"),
    ({"prompt_len": 16}, "prompt_len must be in \\[0, seq_len=16\\)"),
])
def test_bad_arguments_are_clear_errors(kwargs, match):
  args = dict(batch=8, seq_len=16)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    dryrun.dry_run(ModelConfig(), (2, 2, 2), **args)


def test_mesh_with_fill_axis_needs_num_devices():
  with pytest.raises(ValueError, match="num_devices is needed"):
    dryrun.dry_run(ModelConfig(), sharding.MeshConfig(), batch=8, seq_len=16)
  with pytest.raises(ValueError, match="mesh must be a MeshConfig"):
    dryrun.dry_run(ModelConfig(), "2x2x2", batch=8, seq_len=16)


def test_dry_run_allocates_nothing_for_a_32b_model():
  before = len(jax.live_arrays())
  dryrun.dry_run(get_preset("qwen2.5-32b"), (1, 64, 1), batch=64, seq_len=128)
  assert len(jax.live_arrays()) - before < 10  # A few scalars at most, never the params.


# `r1jax train EXPERIMENT.py --dry-run`: the command line, through an experiment's Config.
_R1_ZERO_EXPERIMENT = '''
import dataclasses
from r1jax.grpo_config import GRPOConfig
from r1jax.models.presets import get_preset
from r1jax.run_config import Config
from r1jax.sampler import SamplingConfig


def get_config():
  # R1-Zero's step: 32 prompts x 16 samples, 512 prompt + 3584 new tokens, a KL reference.
  return Config(model=dataclasses.replace(get_preset("{preset}"), remat="full"),
                grpo=GRPOConfig(num_samples=16, kl_coef=0.001),
                sampling=SamplingConfig(max_new_tokens=3584), max_prompt_len=512,
                prompts_per_step=32, minibatch_size={minibatch})
'''


def _dry_run_cli(capsys, *argv):
  from r1jax import cli  # Local: only these tests use the command line.
  code = cli.main(["train", *map(str, argv), "--dry-run"])
  return code, capsys.readouterr().out


def test_cli_dry_run_of_the_miniature_experiment_prints_bytes_and_fit(capsys):
  code, out = _dry_run_cli(capsys, "experiments/miniature.py", "--num-devices", 8)
  assert code == 0
  assert "on 8 devices" in out
  for line in ("params ", "optimizer state ", "activations ", "KV cache ", "FLOPs per step"):
    assert line in out, line
  assert out.strip().splitlines()[-1].startswith("Fits: the peak")


def test_cli_dry_run_of_qwen_math_7b_at_r1_zero_scale_fits_on_64_gpus(tmp_path, capsys):
  path = tmp_path / "r1_zero_7b.py"
  path.write_text(_R1_ZERO_EXPERIMENT.format(preset="qwen2.5-math-7b", minibatch=64))
  code, out = _dry_run_cli(capsys, path, "--num-devices", 64, "--device-memory-gb", 80)
  assert code == 0
  assert "7.62B params on 64 devices (data=1 x fsdp=64 x tensor=1)" in out
  assert out.strip().splitlines()[-1].startswith("Fits: the peak (sampling) needs")


def test_cli_dry_run_of_qwen_32b_on_8_gpus_reports_the_shortfall(tmp_path, capsys):
  path = tmp_path / "r1_zero_32b.py"
  path.write_text(_R1_ZERO_EXPERIMENT.format(preset="qwen2.5-32b", minibatch=8))
  code, out = _dry_run_cli(capsys, path, "--num-devices", 8, "--device-memory-gb", 80)
  assert code == 0  # A plan that does not fit is an answer, not an error.
  verdict = out.strip().splitlines()[-1]
  # At R1-Zero's 4k tokens a row, the sampler's KV cache is the peak here, not training.
  match = re.fullmatch(r"Does not fit: the peak \((training|sampling)\) needs [\d.]+ GiB per "
                       r"device but only 72\.0 GiB usable of 80 GiB .*, ([\d.]+) GiB short per "
                       r"device \(largest: .*\)\.", verdict)
  assert match and float(match.group(2)) > 0, verdict
