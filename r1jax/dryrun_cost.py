"""What a whole run costs: device-hours and dollars from the dry run's FLOPs, as an estimate.

Place in the pipeline: `r1jax train RECIPE --dry-run` prints it under the memory plan
(`dryrun.format_report`). The FLOPs of one step (`dryrun.Report`) times the run's steps,
split into the rollout (prefill + decode) and the update (training, recompute, reference and
pi_old passes), are divided by an assumed fraction of the chip's peak (MFU) that each phase
reaches. Decoding is bound by memory bandwidth, not FLOPs, hence its lower default MFU.
Defaults: an H100-class chip (989 TFLOP/s dense bf16), update MFU 40%, rollout MFU 10%,
$2 a device-hour (the R1 paper's H800 rental price). The figure is as good as these guesses.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Cost", "run_cost", "format_cost"]


@dataclasses.dataclass(frozen=True)
class Cost:
  """A run's projected compute (device-hours over all devices) and price."""

  steps: int
  update_hours: float
  rollout_hours: float
  device_hours: float
  wall_hours: float  # device_hours / devices.
  dollars: float
  assumptions: str


def run_cost(flops_update_per_step: float, flops_rollout_per_step: float, *, steps: int,
             num_devices: int, peak_flops: float = 989e12, update_mfu: float = 0.4,
             rollout_mfu: float = 0.1, price_per_device_hour: float = 2.0) -> Cost:
  """Device-hours and dollars of `steps` steps at the given MFUs and price."""
  for name, value in (("update_mfu", update_mfu), ("rollout_mfu", rollout_mfu)):
    if not 0 < value <= 1:
      raise ValueError(f"{name} must be in (0, 1], got {value!r}")
  if steps < 1 or num_devices < 1 or peak_flops <= 0:
    raise ValueError(f"steps, num_devices and peak_flops must be positive, got {steps!r}, "
                     f"{num_devices!r} and {peak_flops!r}")
  update_h = flops_update_per_step * steps / (peak_flops * update_mfu) / 3600
  rollout_h = flops_rollout_per_step * steps / (peak_flops * rollout_mfu) / 3600
  total = update_h + rollout_h
  assumptions = (f"{peak_flops / 1e12:.0f} TFLOP/s peak a device, update MFU {update_mfu:.0%}, "
                 f"rollout MFU {rollout_mfu:.0%}, ${price_per_device_hour:g} a device-hour")
  return Cost(steps, update_h, rollout_h, total, total / num_devices,
              total * price_per_device_hour, assumptions)


def format_cost(cost: Cost) -> str:
  return (f"Whole run ({cost.steps} steps): {cost.device_hours:,.0f} device-hours "
          f"(update {cost.update_hours:,.0f}, rollout {cost.rollout_hours:,.0f}), "
          f"{cost.wall_hours:,.1f} h of wall time, ${cost.dollars:,.0f}; assuming "
          f"{cost.assumptions}.")
