"""Runs a check script in a fresh Python process and returns the JSON it prints.

The 8-device tests need their own process: the fake CPU device count is fixed by XLA_FLAGS
before jax is imported, and the pytest process has imported jax already. The scripts set the
flag themselves, so an XLA_FLAGS inherited from the caller is dropped.
"""

import json
import os
import subprocess
import sys
from typing import Any


def run_json_script(path: str, *, timeout: float = 900,
                    args: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
  """Runs `python path *args`; asserts it exits 0 (showing its stderr) and parses its stdout."""
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run([sys.executable, path, *args], capture_output=True, text=True, env=env,
                        timeout=timeout, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(proc.stdout)
