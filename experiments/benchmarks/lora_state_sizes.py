"""What LoRA saves: learned numbers, optimizer state and checkpoint bytes at ranks 4/8/16 and full.

For each model it builds the state the trainer checkpoints (`train._state`: the learned tree,
AdamW's state over it, the RNG key) with real arrays after one optimizer step on a random
gradient (so that no leaf is all zeros, which orbax would compress away: a fresh LoRA B and
fresh Adam moments are), writes it through the trainer's own `checkpoint.Checkpointer`, and
prints the bytes: the optimizer state from its arrays, the
checkpoint from the files on disk. Full fine-tuning checkpoints the params (and, with a KL
term, a reference copy: not included here); LoRA checkpoints the adapters only (all seven
projections targeted), its base being the loaded or stage-1 weights.

Run:
  python experiments/benchmarks/lora_state_sizes.py [--models miniature,smollm2-135m]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

import jax
import optax

from r1jax import checkpoint, lora, train, train_step
from r1jax.models import presets, transformer
from r1jax.run_config import OptimConfig

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _model(name: str):
  if name == "miniature":
    from r1jax import experiment  # pylint: disable=g-import-not-at-top
    return experiment.load_experiment(_ROOT / "experiments" / "miniature.py").get_config().model
  return presets.get_preset(name)


def _bytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _keys(key: jax.Array, tree):
  leaves, treedef = jax.tree.flatten(tree)
  return jax.tree.unflatten(treedef, list(jax.random.split(key, len(leaves))))


def _dir_bytes(path: pathlib.Path) -> int:
  return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(name: str, ranks=(4, 8, 16)) -> list[tuple[str, int, int, int]]:
  """[(label, learned numbers, optimizer-state bytes, checkpoint bytes)] for one model."""
  cfg = _model(name)
  tx, _ = train_step.make_optimizer(OptimConfig(lr=1e-4), 100)
  key = jax.random.key(0)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for rank in (*ranks, 0):
      if rank:
        learned = lora.init_adapters(cfg, lora.LoRAConfig(rank=rank), key)
      else:
        learned = transformer.init(cfg, key)
      opt_state = tx.init(learned)
      grads = jax.tree.map(lambda x, k: jax.random.normal(k, x.shape, x.dtype), learned,
                           _keys(key, learned))
      updates, opt_state = tx.update(grads, opt_state, learned)
      learned = optax.apply_updates(learned, updates)
      del grads, updates
      folder = pathlib.Path(tmp) / f"r{rank}"
      with checkpoint.Checkpointer(folder, save_every=1, keep=1) as ckpt:
        # The trainer's own checkpointed state. pylint: disable-next=protected-access
        state = train._state(learned, opt_state, None, key, lora=bool(rank))
        ckpt.save(1, state, meta={"data_position": {}}, force=True)
      rows.append((f"rank {rank}" if rank else "full", sum(x.size for x in jax.tree.leaves(
          learned)), _bytes(opt_state), _dir_bytes(folder)))
      del learned, opt_state
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", default="miniature,smollm2-135m")
  args = parser.parse_args(argv)
  for name in args.models.split(","):
    print(f"\n{name}")
    print(f"| {'learned':8} | {'numbers':>12} | {'optimizer state':>16} | {'checkpoint':>14} |")
    print("|---|---:|---:|---:|")
    for label, n, opt_b, ckpt_b in measure(name):
      print(f"| {label:8} | {n:12,d} | {opt_b:16,d} | {ckpt_b:14,d} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
