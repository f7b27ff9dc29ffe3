"""The `r1jax` command line: `r1jax fetch | sample | train | eval | plot`.

Each subcommand parses its flags here and calls library functions; no maths lives here.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_fetch(args: argparse.Namespace) -> int:
  from r1jax import fetch
  path = fetch.fetch(args.name)
  print(path)
  return 0


def _add_fetch(sub) -> None:
  p = sub.add_parser("fetch", help="download a known model into the cache and print its path")
  p.add_argument("name", help="a known model name, e.g. smollm2-135m")
  p.set_defaults(func=_cmd_fetch)


# --- sample: owned by the sampler (r1jax/sampler.py) -------------------------------------
def _add_sample(sub) -> None:
  p = sub.add_parser("sample", help="generate completions for a prompt")
  p.set_defaults(func=lambda args: (print("sample: not built yet", file=sys.stderr), 2)[1])
# --- end sample ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="r1jax", description="DeepSeek-R1-style RL (GRPO and successors) in JAX")
  sub = parser.add_subparsers(dest="command", required=True)
  _add_fetch(sub)
  _add_sample(sub)
  return parser


def main(argv: list[str] | None = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    return int(args.func(args) or 0)
  except (ValueError, FileNotFoundError, RuntimeError) as e:
    # User-facing errors are one clear sentence; tracebacks are for bugs.
    print(f"r1jax {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
