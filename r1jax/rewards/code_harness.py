"""The program that runs inside the code sandbox (`rewards.code` passes it to `python -c`).

Place in the pipeline: `rewards.code.run_program` starts `python -I -S -c <this file>` (through
`unshare` when available) in a throwaway directory and writes one JSON job to its stdin:
{code, tests, nonce, drop_uid, max_out, limits}. This program then, in order: keeps its stdout
as the private result channel and points fds 0-2 at /dev/null; sets RLIMIT_CPU, RLIMIT_AS,
RLIMIT_FSIZE, RLIMIT_NOFILE and RLIMIT_CORE (and RLIMIT_NPROC before dropping to uid
`drop_uid` when root); installs the audit hook (documented in `rewards.code`); runs the code and
each test, writing one nonce-tagged JSON line per test. Standard library only: the child runs
with -I -S and possibly as nobody, so nothing else may be importable.
"""

import io
import json
import os
import resource
import signal
import sys


def _main():
  job = json.loads(sys.stdin.buffer.read())
  # Our stdout becomes the private result channel; the code's fds 0-2 go to /dev/null.
  out_fd = os.dup(1)
  null = os.open(os.devnull, os.O_RDWR)
  for fd in (0, 1, 2):
    os.dup2(null, fd)
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # Writing past RLIMIT_FSIZE fails, not kills.
  lim = job["limits"]
  for name, value in (("RLIMIT_CPU", lim["cpu"]), ("RLIMIT_AS", lim["mem"]),
                      ("RLIMIT_FSIZE", lim["fsize"]), ("RLIMIT_NOFILE", 64),
                      ("RLIMIT_CORE", 0)):
    resource.setrlimit(getattr(resource, name), (value, value))
  if job["drop_uid"]:
    resource.setrlimit(resource.RLIMIT_NPROC, (16, 16))  # Enforced once we are not root.
    os.setgroups([])
    os.setgid(job["drop_uid"])
    os.setuid(job["drop_uid"])
  box = os.path.realpath(os.getcwd())
  roots = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix,
                                                sys.exec_prefix, os.path.dirname(os.__file__))})
  send = _sender(out_fd, job.pop("nonce"))
  _install_hook(box, roots)
  _run(job["code"], job["tests"], job["max_out"], send)


def _sender(fd, nonce):
  """Writes one result line tagged with the nonce (kept only in this closure)."""
  def send(msg, _dumps=json.dumps, _write=os.write):
    msg["nonce"] = nonce
    _write(fd, (_dumps(msg) + "\n").encode())
  return send


def _install_hook(box, roots):
  """Refuses process, network and out-of-directory file operations (see rewards.code)."""
  realpath, join, fspath = os.path.realpath, os.path.join, os.fspath
  blocked_prefix = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn",
                    "os.fork", "os.forkpty", "os.system", "os.kill", "os.killpg", "os.setuid",
                    "os.setgid", "os.startfile", "pty.", "winreg.", "_winapi.", "os.chroot",
                    "os.setns", "os.unshare", "cpython.PyInterpreterState_", "resource.",
                    "signal.pthread_kill", "sqlite3.", "os.setpgid", "os.setsid")
  # Modules that reach the OS around the hook (C calls, native file libraries).
  blocked_imports = ("ctypes", "_ctypes", "cffi", "_posixsubprocess", "_xxsubinterpreters",
                     "_sqlite3", "_dbm", "_gdbm", "multiprocessing", "_multiprocessing")
  path_events = ("os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown",
                 "os.lchown", "os.lchmod", "os.link", "os.symlink", "os.truncate", "os.utime",
                 "os.listdir",
                 "os.scandir", "os.chdir", "os.chflags", "os.lchflags", "os.mkfifo",
                 "os.mknod", "os.setxattr", "os.removexattr", "shutil.rmtree",
                 "shutil.copyfile", "shutil.move", "tempfile.mkstemp", "tempfile.mkdtemp")
  busy = [False]  # The hook's own path checks must not re-enter it.
  writes = [0]  # Files opened for writing: capped so RLIMIT_FSIZE bounds the disk used.

  def inside(path, allowed):
    if isinstance(path, int) or path is None:
      return True
    p = realpath(join(box, fspath(path)))
    return any(p == r or p.startswith(r + os.sep) for r in allowed)

  def deny(event):
    raise PermissionError("sandbox: " + event + " is not allowed")

  def hook(event, args):
    if busy[0]:
      return
    busy[0] = True
    try:
      if event.startswith(blocked_prefix):
        deny(event)
      elif event == "import" and args[0].split(".")[0] in blocked_imports:
        deny("import " + args[0])
      elif event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        if path == os.devnull:
          return
        if not inside(path, [box] if writing else [box] + roots):
          deny("opening " + str(path))
        if writing and not isinstance(path, int):
          writes[0] += 1
          if writes[0] > 64:
            deny("opening more than 64 files for writing")
      elif event in path_events:
        for a in args:
          if isinstance(a, (str, bytes)) or hasattr(a, "__fspath__"):
            if not inside(a, [box] + roots if event in ("os.listdir", "os.scandir") else [box]):
              deny(event + " " + str(a))
    finally:
      busy[0] = False
  sys.addaudithook(hook)


def _run(code, tests, max_out, send):
  """Runs each test; assert-style tests share one namespace, stdin tests run the code afresh."""
  try:
    compiled = compile(code, "<solution>", "exec")
  except BaseException:  # pylint: disable=broad-except
    for i in range(len(tests)):
      send({"i": i, "ok": False})
    return
  shared, loaded = None, False
  real_stdin, real_stdout = sys.stdin, sys.stdout
  for i, test in enumerate(tests):
    if isinstance(test, str):
      sys.stdout = io.StringIO()
      if shared is None:
        shared = {"__name__": "__solution__"}
        try:
          exec(compiled, shared)  # pylint: disable=exec-used
          loaded = True
        except BaseException:  # pylint: disable=broad-except
          loaded = False  # A solution that crashes (or exits) on load passes nothing.
      ok = loaded
      if loaded:
        try:
          exec(compile(test, "<test>", "exec"), shared)  # pylint: disable=exec-used
        except BaseException:  # pylint: disable=broad-except
          ok = False
      send({"i": i, "ok": ok})
    else:
      # Text streams with a .buffer, for solutions that read sys.stdin.buffer.
      raw_out = io.BytesIO()
      sys.stdin = io.TextIOWrapper(io.BytesIO(test["input"].encode()), encoding="utf-8")
      sys.stdout = io.TextIOWrapper(raw_out, encoding="utf-8", write_through=True)
      try:
        exec(compiled, {"__name__": "__main__"})  # pylint: disable=exec-used
        ok = True
      except SystemExit as e:
        ok = e.code in (None, 0)
      except BaseException:  # pylint: disable=broad-except
        ok = False
      try:
        sys.stdout.flush()
      except BaseException:  # pylint: disable=broad-except
        pass
      out = raw_out.getvalue()[:max_out].decode("utf-8", errors="replace")
      send({"i": i, "ok": ok, "out": out})
    sys.stdin, sys.stdout = real_stdin, real_stdout


if __name__ == "__main__":
  _main()
  os._exit(0)  # Skip interpreter teardown: nothing the code left behind gets to run.
