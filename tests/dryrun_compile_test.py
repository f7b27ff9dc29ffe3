"""`r1jax.dryrun_compile`: collectives found inside a compiled decode loop, and the report."""

import os

import pytest

from r1jax import dryrun_compile

_RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "experiments", "r1_zero_qwen2_5_math_7b.py")


@pytest.fixture(scope="module")
def debug_compiled():
  """The R1-Zero recipe's debug variant on 8 fake devices: the default mesh and tensor = 2."""
  fsdp = dryrun_compile.run_subprocess([_RECIPE], 8, debug=True)[_RECIPE]
  tensor = dryrun_compile.run_subprocess([_RECIPE], 8, debug=True,
                                         overrides=("mesh.tensor=2",))[_RECIPE]
  return fsdp, tensor


def test_default_layout_decodes_without_collectives_and_tensor_parallel_all_reduces(
    debug_compiled):
  fsdp, tensor = debug_compiled
  assert sum(fsdp["decode_loop_collectives"].values()) == 0, fsdp
  # Tensor parallelism must all-reduce partial sums on every token: the counter sees them.
  assert tensor["decode_loop_collectives"]["all-reduce"] > 0, tensor
  assert tensor["decode_loop_collectives"]["all-gather"] == 0, tensor


def test_report_prints_compiler_and_plan_side_by_side(debug_compiled):
  text = dryrun_compile.format_compiled(debug_compiled[1])
  assert "Compiled on 8 fake CPU devices" in text and "plan" in text
  assert "all-reduce" in text.splitlines()[-1]


def test_report_names_the_slots_of_continuous_batching(debug_compiled):
  r = dict(debug_compiled[0])
  assert " slots)" not in dryrun_compile.format_compiled(r)  # Every row its own slot.
  r["decode_slots"] = r["decode_rows"] // 2
  assert f"sampler ({r['decode_rows']} rows in {r['decode_slots']} slots)" in (
      dryrun_compile.format_compiled(r))


_HLO = """HloModule m

%body.1 (p: (s32[], f32[8])) -> (s32[], f32[8]) {
  %x = f32[8] parameter(0)
  %g = f32[64] all-gather(%x), dimensions={0}
  %r = f32[8] all-reduce(%x), to_apply=%add.2
}

%add.2 (a: f32[], b: f32[]) -> f32[] {
  %s = f32[] add(%a, %b)
}

%cond.3 (p: (s32[], f32[8])) -> pred[] {
  %c = pred[] constant(true)
}

ENTRY %main.4 (a: f32[8]) -> f32[8] {
  %w = (s32[], f32[8]) while(%t), condition=%cond.3, body=%body.1
  %g2 = f32[64] all-gather(%a), dimensions={0}
}
"""


def test_loop_collectives_count_only_inside_the_loop():
  got = dryrun_compile.loop_collectives(_HLO)
  assert got["all-gather"] == 1 and got["all-reduce"] == 1 and got["reduce-scatter"] == 0
