"""Attacks on the code reward: each must score 0, in time, leaving no process and no file.

To add an attack, append an `Attack` to ATTACKS: the candidate's code, the tests it is scored
on (assert forms the parent judges), and `disable_hook=True` to run it after flipping the
audit hook off (so that it meets the OS isolation, the real boundary, and not the hook).
`test_the_hook_alone_can_be_switched_off` checks that this switch still works.
"""

import dataclasses
import os
import socket
import threading
import time

import pytest

from r1jax.rewards import code as rcode

pytestmark = pytest.mark.skipif(not rcode.sandbox_capabilities()["os_isolation"],
                                reason="no OS isolation on this machine")

TIMEOUT_S = 3.0
SECRET = "r1jax-attack-secret"
# A gc walk that finds the audit hook's re-entry guard and sets it: the hook then allows all.
DISABLE_HOOK = """
import gc
for _o in gc.get_objects():
  if type(_o).__name__ == 'function' and _o.__name__ == 'hook' and _o.__closure__:
    for _c in _o.__closure__:
      try:
        _v = _c.cell_contents
      except ValueError:
        continue
      if type(_v) is list and _v == [False]:
        _v[0] = True
"""
# Finds the harness's `send` by walking up the frames and reports what it likes.
FRAME_FORGE = """
import sys, os, json
def _forge(msgs):
  f = sys._getframe()
  while f is not None:
    send = f.f_locals.get('send') or f.f_globals.get('send')
    if callable(send):
      for m in msgs:
        send(m)
      os._exit(0)
    f = f.f_back
"""


@dataclasses.dataclass(frozen=True)
class Attack:
  name: str
  code: str
  tests: tuple[str, ...] = ("assert f(2) == 5", "assert abs(f(3) - 7.25) < 1e-9")
  disable_hook: bool = False


ATTACKS = [
    Attack("frame_walk_forges_the_results", FRAME_FORGE + """
def f(x):
  _forge([{'u': 0, 'loaded': True}] + [{'u': 0, 'h': h, 'v': 'true'} for h in range(2)]
         + [{'i': 0, 'ok': True}, {'ok': True}])
"""),
    Attack("patched_builtins", """
import builtins
builtins.abs = lambda x: 0
builtins.AssertionError = type('Quiet', (Exception,), {})
builtins.isinstance = lambda *a: False
def f(x):
  return 0
"""),
    Attack("always_true_eq", """
class Any:
  def __eq__(self, other):
    return True
  __hash__ = object.__hash__
  def __sub__(self, other):
    return self
  def __abs__(self):
    return 0
def f(x):
  return Any()
"""),
    Attack("int_subclass_eq", """
class I(int):
  def __eq__(self, other):
    return True
  __hash__ = int.__hash__
def f(x):
  return I(0)
"""),
    Attack("settrace_skips_asserts", """
import sys, threading
def _trace(frame, event, arg):
  if event == 'line' and frame.f_code.co_filename in ('<test>', '<string>'):
    try:
      frame.f_lineno = frame.f_lineno + 1
    except ValueError:
      pass
  return _trace
sys.settrace(_trace)
threading.settrace(_trace)
def f(x):
  sys.settrace(_trace)
  return 0
"""),
    Attack("gc_walk_then_write_outside", DISABLE_HOOK + """
import os
open(os.path.join(VICTIM, 'written.txt'), 'w').write('x')
def f(x):
  open(os.path.join(VICTIM, 'written2.txt'), 'w').write('x')
  return 0
""", disable_hook=True),
    Attack("thread_races_the_hook", """
import threading, os
stop = []
def _spin():
  while not stop:
    open('inside.txt', 'w').close()
for _ in range(4):
  threading.Thread(target=_spin, daemon=True).start()
def f(x):
  for _ in range(2000):
    try:
      open(os.path.join(VICTIM, 'raced.txt'), 'w').write('x')
    except OSError:
      pass
  stop.append(1)
  return 0
"""),
    Attack("exit_after_fake_output", """
import os, json
def f(x):
  for fd in range(0, 40):
    for msg in ({'u': 0, 'h': 0, 'v': '{"i": "5"}'}, {'ok': True}):
      try:
        os.write(fd, (json.dumps(msg) + '\\n').encode())
      except OSError:
        pass
  print('{"u": 0, "h": 1, "v": "{\\\\"f\\\\": \\\\"7.25\\\\"}"}')
  os._exit(0)
"""),
    Attack("fork_bomb", DISABLE_HOOK + """
import os
def f(x):
  while True:
    try:
      if os.fork() == 0:
        os.setsid()
    except OSError:
      pass
""", disable_hook=True),
    Attack("allocate_10gb", """
def f(x):
  return len(bytearray(10 * 2**30))
"""),
    Attack("infinite_loop", """
def f(x):
  while True:
    pass
"""),
    Attack("huge_output", """
import os, sys
def f(x):
  for fd in range(1, 40):
    try:
      os.write(fd, b'x' * (64 << 20))
    except OSError:
      pass
  return 'x' * (200 << 20)
"""),
    Attack("write_remove_rename_outside", DISABLE_HOOK + """
import os, shutil
def f(x):
  for op in (lambda: os.remove(os.path.join(VICTIM, 'keep.txt')),
             lambda: os.rename(os.path.join(VICTIM, 'keep.txt'), 'stolen'),
             lambda: open(os.path.join(VICTIM, 'keep.txt'), 'w').write('changed'),
             lambda: shutil.rmtree(VICTIM),
             lambda: open('/usr/r1jax_attack', 'w').write('x'),
             lambda: open('/r1jax_attack', 'w').write('x'),
             lambda: os.symlink(VICTIM, 'link') or open('link/keep.txt', 'w').write('x')):
    try:
      op()
    except OSError:
      pass
  return 0
""", disable_hook=True),
    Attack("socket_to_the_host", DISABLE_HOOK + """
import socket
def f(x):
  s = socket.create_connection(('127.0.0.1', PORT), timeout=1)
  s.sendall(b'x')
  return 5 if x == 2 else 7.25
""", disable_hook=True),
    Attack("read_another_process_environ", DISABLE_HOOK + """
import os
def f(x):
  data = b''
  for path in ['/proc/%d/environ' % p for p in (1, 2, PARENT)] + ['/proc/self/environ']:
    try:
      data += open(path, 'rb').read()
    except OSError:
      pass
  data += repr(dict(os.environ)).encode()
  return 5 if x == 2 and SECRET.encode() in data else 0
""", disable_hook=True),
]


def _alive(pid: int) -> bool:
  try:
    os.killpg(pid, 0)
    return True
  except ProcessLookupError:
    return False


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_scores_zero_and_leaves_nothing(attack, tmp_path, monkeypatch):
  victim = tmp_path / "victim"
  victim.mkdir()
  (victim / "keep.txt").write_text("original")
  sandboxes = tmp_path / "sandboxes"
  sandboxes.mkdir()
  monkeypatch.setattr("tempfile.tempdir", str(sandboxes))
  monkeypatch.setenv("R1JAX_ATTACK_SECRET", SECRET)
  server = socket.socket()
  server.bind(("127.0.0.1", 0))
  server.listen(4)
  server.settimeout(0.1)
  connections, stop = [], threading.Event()

  def accept():
    while not stop.is_set():
      try:
        connections.append(server.accept()[0])
      except OSError:
        continue
  watcher = threading.Thread(target=accept)
  watcher.start()
  prelude = (f"VICTIM = {str(victim)!r}\nPORT = {server.getsockname()[1]}\n"
             f"PARENT = {os.getpid()}\nSECRET = {SECRET!r}\n")
  start = time.monotonic()
  try:
    result = rcode.run_program(prelude + attack.code, list(attack.tests), timeout_s=TIMEOUT_S,
                               isolation="os")
  finally:
    elapsed = time.monotonic() - start
    time.sleep(0.2)  # A connection made just before the child died would be accepted by now.
    stop.set()
    watcher.join()
    server.close()
  assert result.passed == (False,) * len(attack.tests)
  assert elapsed < TIMEOUT_S + 2.0  # Room for a loaded 2-core machine; more means a hang.
  assert not any(_alive(pid) for pid in result.pids), "processes left behind"
  assert connections == []
  assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
  assert (victim / "keep.txt").read_text() == "original"
  assert list(sandboxes.iterdir()) == []  # Every sandbox directory was removed.
  assert not os.path.exists("/usr/r1jax_attack") and not os.path.exists("/r1jax_attack")


def test_the_hook_alone_can_be_switched_off(tmp_path):
  # Why the attacks above meet the OS layer: in "hook" mode the same gc walk lets a write out.
  os.chmod(tmp_path, 0o777)
  code = DISABLE_HOOK + f"open({str(tmp_path / 'out.txt')!r}, 'w').write('x')\n"
  rcode.run_program(code, ["pass"], timeout_s=TIMEOUT_S, isolation="hook")
  assert (tmp_path / "out.txt").exists()


def test_irreducible_tests_are_forgeable_and_marked_weak():
  # The documented limit: a test that runs in the child (here a loop) reports its own verdict,
  # so the frame walk passes it; the result says it was checked the weaker way.
  code = FRAME_FORGE + "def f(x):\n  _forge([{'ok': True}])\n"
  result = rcode.run_program(code, ["for i in range(2):\n  assert f(i) == 99"],
                             timeout_s=TIMEOUT_S, isolation="os")
  assert result.weak == (True,)
  assert result.passed == (True,)
