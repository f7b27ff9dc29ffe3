"""Tests for r1jax.rewards.code: model-written Python run against tests in a sandbox."""

import concurrent.futures
import os
import pathlib
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from r1jax.rewards import code as rcode

ADD = "def add(a, b):\n  return a + b\n"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
SUM_STDIN = "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"
# Every layer this machine offers, and the audit-hook-and-rlimits-only fallback.
OS = rcode.sandbox_capabilities()["os_isolation"]
ISOLATION = [pytest.param({"isolation": "os"}, id="os", marks=pytest.mark.skipif(
                 not OS, reason="no OS isolation on this machine")),
             pytest.param({"isolation": "hook"}, id="hook_only")]


@pytest.fixture(autouse=True)
def _isolation(monkeypatch):
  # Tests that do not name a mode run in the strongest one this machine gives.
  os_ok = rcode.sandbox_capabilities()["os_isolation"]
  monkeypatch.setenv("R1JAX_SANDBOX_ISOLATION", "os" if os_ok else "hook")


def _group_alive(pgid: int) -> bool:
  try:
    os.killpg(pgid, 0)
    return True
  except ProcessLookupError:
    return False


def _run(code, tests=("pass",), timeout_s=5.0, isolation=None, **kw):
  result = rcode.run_program(code, list(tests), timeout_s=timeout_s, **(isolation or {}), **kw)
  assert not any(_group_alive(pid) for pid in result.pids), "the sandbox left processes behind"
  return result


def test_correct_code_passes_every_test():
  assert rcode.run_tests(ADD, ADD_TESTS, timeout_s=5) == 1.0


def test_score_is_the_fraction_of_tests_passed():
  assert rcode.run_tests("def add(a, b):\n  return 3\n", ADD_TESTS, timeout_s=5) == 0.5


def test_stdin_stdout_tests_compare_output():
  tests = [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5", "output": "10"},
           {"input": "1 1", "output": "3"}]
  result = _run(SUM_STDIN, tests)
  assert result.passed == (True, True, False)


def test_output_comparison_ignores_trailing_whitespace_only():
  code = "print('a  ')\nprint()\nprint()\n"
  assert rcode.run_tests(code, [{"input": "", "output": "a"}], timeout_s=5) == 1.0
  assert rcode.run_tests(code, [{"input": "", "output": " a"}], timeout_s=5) == 0.0


@pytest.mark.parametrize("code", [
    "def add(a, b) return a + b",  # Syntax error.
    "raise RuntimeError('boom')\n" + ADD,  # Crashes on load.
    "import sys\nsys.exit(0)\n" + ADD,  # Exits on load.
])
def test_broken_code_scores_zero(code):
  assert rcode.run_tests(code, ADD_TESTS, timeout_s=5) == 0.0


def test_code_may_use_the_standard_library_and_its_directory():
  code = ("import collections, typing, itertools, heapq, functools, math, re\n"
          "P = collections.namedtuple('P', 'x y')\nT = typing.TypeVar('T')\n"
          "open('scratch.txt', 'w').write('hi')\n"
          "def f():\n  return P(1, 2).x + len(open('scratch.txt').read())\n")
  assert rcode.run_tests(code, ["assert f() == 3"], timeout_s=10) == 1.0


def test_bad_arguments_are_clear_errors():
  with pytest.raises(ValueError, match="test 0 is 42"):
    rcode.run_tests(ADD, [42], timeout_s=5)
  with pytest.raises(ValueError, match="timeout_s"):
    rcode.run_tests(ADD, ADD_TESTS, timeout_s=0)
  assert rcode.run_tests(ADD, [], timeout_s=5) == 0.0


@pytest.mark.parametrize("isolation", ISOLATION)
def test_infinite_loop_is_killed_at_the_timeout(isolation):
  start = time.monotonic()
  result = _run("while True:\n  pass\n", timeout_s=1.0, isolation=isolation)
  assert result.fraction == 0.0 and result.timed_out and result.returncode == -9
  # Bounds with room for a loaded 2-core CI machine; unbounded would mean a hang.
  assert result.wall_s < 1.0 + 1.0
  assert time.monotonic() - start < 1.0 + 3.0


def test_tests_that_finished_before_a_timeout_keep_their_result():
  code = ADD + "def spin():\n  while True:\n    pass\n"
  result = _run(code, ["assert add(1, 2) == 3", "spin()"], timeout_s=1.0)
  assert result.passed == (True, False) and result.timed_out


@pytest.mark.parametrize("isolation", ISOLATION)
@pytest.mark.parametrize("bomb", [
    "import os\nwhile True:\n  os.fork()\n",
    "import subprocess\nsubprocess.Popen(['sleep', '100'])\n",
    "import os\nos.system('sleep 100 &')\n",
    "import os\nos.posix_spawn('/bin/sleep', ['sleep', '100'], {})\n",
    "import multiprocessing\nmultiprocessing.Process(target=print).start()\n",
    "import ctypes\nctypes.CDLL(None).fork()\n",
    "import pty\npty.fork()\n",
])
def test_fork_bombs_and_subprocesses_are_contained(bomb, isolation):
  start = time.monotonic()
  result = _run(bomb + ADD, ADD_TESTS, timeout_s=3.0, isolation=isolation)
  assert result.fraction == 0.0
  assert not result.timed_out
  assert time.monotonic() - start < 3.0


@pytest.mark.skipif(not OS, reason="no OS isolation on this machine")
def test_a_killed_namespace_is_reaped_by_its_own_unshare(monkeypatch):
  # A setsid fork bomb keeps the namespace's init exiting for a while. Killed together with
  # `unshare`, the init was orphaned and waited, a zombie, for the host's init to reap it
  # (up to 2 s): the sandbox's group must already be gone when the kill returns.
  from r1jax.rewards import code_isolation
  left = []
  kill = code_isolation._kill_child

  def kill_and_look(proc, mode, **kw):
    killed = kill(proc, mode, **kw)
    left.append(_group_alive(proc.pid))
    return killed
  monkeypatch.setattr(code_isolation, "_kill_child", kill_and_look)
  bomb = ("import os\nwhile True:\n  try:\n    os.fork() or os.setsid()\n"
          "  except OSError:\n    pass\n")
  result = _run(bomb, timeout_s=1.0, isolation={"isolation": "os"})
  assert result.timed_out and result.returncode == -9
  assert left == [False]


@pytest.mark.parametrize("isolation", ISOLATION)
def test_allocating_10gb_fails_inside_the_child_only(isolation):
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  start = time.monotonic()
  result = _run("x = bytearray(10 * 2**30)\n" + ADD, ADD_TESTS, isolation=isolation)
  assert result.fraction == 0.0 and not result.timed_out
  assert time.monotonic() - start < 3.0
  assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100_000  # KiB.


@pytest.mark.parametrize("isolation", ISOLATION)
def test_writing_outside_the_working_directory_is_refused(tmp_path, isolation):
  victim = tmp_path / "keep.txt"
  victim.write_text("original")
  escapes = [
      f"open({str(tmp_path / 'new.txt')!r}, 'w').write('x')",
      "open('../escaped.txt', 'w').write('x')",
      f"import os\nos.remove({str(victim)!r})",
      f"import os\nos.rename({str(victim)!r}, 'stolen.txt')",
      f"import pathlib\npathlib.Path({str(victim)!r}).write_text('changed')",
      f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
      f"import os\nos.symlink({str(victim)!r}, 'link')\nopen('link', 'w').write('x')",
  ]
  for escape in escapes:
    result = _run(escape + "\n" + ADD, ADD_TESTS, isolation=isolation)
    assert result.fraction == 0.0, escape
  assert victim.read_text() == "original"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("isolation", ISOLATION)
def test_network_access_is_refused(isolation):
  server = socket.socket()
  server.bind(("127.0.0.1", 0))
  server.listen(1)
  server.settimeout(0.2)
  port = server.getsockname()[1]
  connections = []
  stop = threading.Event()

  def accept():
    while not stop.is_set():
      try:
        connections.append(server.accept()[0])
      except socket.timeout:
        continue

  watcher = threading.Thread(target=accept)
  watcher.start()
  code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}))\ns.sendall(b'x')\n"
  result = _run(code + ADD, ADD_TESTS, isolation=isolation)
  time.sleep(0.3)  # A connection made just before the child died would be accepted by now.
  stop.set()
  watcher.join()
  server.close()
  assert result.fraction == 0.0
  assert connections == []


@pytest.mark.parametrize("isolation", ISOLATION)
def test_parent_environment_is_not_readable(monkeypatch, isolation):
  monkeypatch.setenv("R1JAX_TEST_SECRET", "hunter2")
  probes = [
      "import os\nassert os.environ['R1JAX_TEST_SECRET'] == 'hunter2'",
      "import os\nassert b'hunter2' in open(f'/proc/{os.getppid()}/environ', 'rb').read()",
      f"assert b'hunter2' in open('/proc/{os.getpid()}/environ', 'rb').read()",
  ]
  for probe in probes:
    assert _run(probe + "\n" + ADD, ADD_TESTS, isolation=isolation).fraction == 0.0, probe
  # The child sees only its scrubbed environment.
  code = "import os\nKEYS = sorted(os.environ)\n"
  assert rcode.run_tests(code, ["assert KEYS == ['HOME', 'LANG', 'PATH', 'TMPDIR'], KEYS"],
                         timeout_s=5) == 1.0


def test_faked_results_and_early_exit_score_zero():
  forge = ("import os, json\nfor fd in range(3, 20):\n  try:\n"
           "    os.write(fd, (json.dumps({'i': 0, 'ok': True}) + '\\n').encode())\n"
           "  except OSError:\n    pass\n"
           "print('{\"i\": 0, \"ok\": true}')\n")
  assert rcode.run_tests(forge, ["assert False"], timeout_s=5) == 0.0
  assert rcode.run_tests("import os\nos._exit(0)\n", ["assert False"], timeout_s=5) == 0.0


def test_the_test_process_is_unaffected():
  cwd, env, pid = os.getcwd(), dict(os.environ), os.getpid()
  _run("import os\nos.chdir('/')\nos.environ['PATH'] = ''\n" + ADD, ADD_TESTS)
  assert (os.getcwd(), dict(os.environ), os.getpid()) == (cwd, env, pid)


@pytest.mark.skipif(not OS, reason="no OS isolation on this machine")
def test_os_isolation_runs_as_nobody_in_its_own_namespaces():
  code = "import os\nPID, UID = os.getpid(), os.getuid()\nW = os.access('/usr', os.W_OK)\n"
  assert rcode.run_tests(code, ["assert PID == 1", "assert UID == 65534",
                                "assert W is False"], timeout_s=5, isolation="os") == 1.0
  assert rcode.run_tests(code, ["assert PID != 1"], timeout_s=5, isolation="hook") == 1.0


def test_capabilities_name_what_is_missing():
  caps = rcode.sandbox_capabilities()
  assert set(caps) == {"os_isolation", "missing", "namespaces", "uid", "python"}
  assert caps["os_isolation"] == (not caps["missing"])
  with pytest.raises(ValueError, match="isolation must be one of"):
    rcode.run_tests(ADD, ADD_TESTS, isolation="none")


def test_without_root_os_isolation_is_refused_with_the_flag_to_use():
  # The refusal path, for real: the isolation module run by an unprivileged user.
  setpriv = shutil.which("setpriv")
  if os.geteuid() != 0 or not setpriv or not os.path.exists("/usr/bin/python3"):
    pytest.skip("needs root, setpriv and a system python3 to run as an unprivileged user")
  src = pathlib.Path(rcode.__file__).with_name("code_isolation.py")
  tmp_path = pathlib.Path(tempfile.mkdtemp())  # pytest's tmp_path is private to root.
  os.chmod(tmp_path, 0o755)
  for name in ("code_isolation.py", "code_harness.py"):
    shutil.copy(src.with_name(name), tmp_path / name)
  probe = ("import sys; sys.path.insert(0, sys.argv[1]); import code_isolation as c\n"
           "try:\n  c.resolve_mode('os')\nexcept c.IsolationUnavailable as e:\n  print(e)\n")
  try:
    out = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                          "/usr/bin/python3", "-I", "-c", probe, str(tmp_path)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, check=True)
  finally:
    shutil.rmtree(tmp_path)
  assert "missing: root" in out.stdout
  assert "isolation='hook'" in out.stdout and "R1JAX_SANDBOX_ISOLATION=hook" in out.stdout


def test_code_tests_reward_fn_runs_the_last_fenced_block():
  completion = ("Here is a draft:\n```python\ndef add(a, b):\n  return 0\n```\n"
                "Fixed:\n```python\n" + ADD + "```\n")
  assert rcode.extract_code(completion) == ADD
  fn = rcode.CodeTests(timeout_s=5)
  assert fn(completion, {"tests": ADD_TESTS}) == 1.0
  assert fn("<answer>" + ADD + "</answer>", {"tests": ADD_TESTS}) == 1.0


def test_concurrent_runs_from_threads_are_independent():
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    scores = list(pool.map(
        lambda i: rcode.run_tests(f"def f():\n  return {i}\n", [f"assert f() == {i}"],
                                  timeout_s=30), range(16)))
  assert scores == [1.0] * 16


def test_stdin_programs_may_use_binary_buffers_and_input():
  code = ("import sys\na, b = map(int, sys.stdin.buffer.readline().split())\n"
          "c = int(input())\nsys.stdout.buffer.write(str(a + b + c).encode())\n")
  assert rcode.run_tests(code, [{"input": "1 2\n3\n", "output": "6"}], timeout_s=5) == 1.0
