"""The program that runs inside the code sandbox (`rewards.code_isolation` passes it to `python -c`).

Place in the pipeline: `rewards.code.run_program` starts `python -I -S -c <this file>` (inside
new mount, PID, network, IPC and UTS namespaces made by `unshare` in "os" isolation) in a
throwaway directory and writes one JSON job to its stdin. This program then, in order:
1. keeps its stdout as the private result channel and points fds 0-2 at /dev/null;
2. in "os" isolation, still root in its own namespaces: builds a new root filesystem (a
   read-only tmpfs holding read-only, nosuid bind mounts of the interpreter and system
   libraries, four device nodes and the read-write working directory, nothing else), pivots
   into it, sets the rlimits, drops to uid/gid 65534 with no supplementary groups, sets
   no_new_privs, enters a new user namespace and clears every capability it holds there;
   in "hook" isolation only the rlimits;
3. installs the audit hook (an extra layer, not the boundary; see `rewards.code`);
4. runs the job and writes one nonce-tagged JSON line per result.

Jobs ("mode"): "values" loads each unit's program and setup and evaluates expression sources
("holes", e.g. `candidate([1, 2])`), sending each value as tagged JSON data built from exact
built-in types only (the parent decodes and compares; no object of the candidate's ever
leaves); stdin units run the program on an input and send its stdout; "asserts" runs one
irreducible test's statements and sends whether they raised (the weaker, forgeable way).
Standard library only: the child runs with -I -S as nobody, so nothing else is importable.
"""

import io
import json
import os
import resource
import signal
import sys

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND = 1, 2, 4, 32, 4096
_MS_REC, _MS_PRIVATE = 16384, 1 << 18
_CLONE_NEWUSER = 0x10000000
_PR_SET_NO_NEW_PRIVS = 38
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
_MAX_VALUE_CHARS = 1 << 20  # One encoded value; the parent also caps the whole channel.


def _main():
  job = json.loads(sys.stdin.buffer.read())
  # Our stdout becomes the private result channel; the code's fds 0-2 go to /dev/null.
  out_fd = os.dup(1)
  null = os.open(os.devnull, os.O_RDWR)
  for fd in (0, 1, 2):
    os.dup2(null, fd)
  os.close(null)
  send = _sender(out_fd, job.pop("nonce"))
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # Writing past RLIMIT_FSIZE fails, not kills.
  iso = job.get("isolate")
  try:
    if iso:
      _new_root(iso)
    _set_limits(job["limits"])
    if iso:
      _drop_privileges(iso["uid"])
  except Exception as e:  # pylint: disable=broad-except
    send({"isolation_error": f"{type(e).__name__}: {e}"})
    return
  if job["mode"] == "probe":
    send({"probe": {"uid": os.getuid(), "pid": os.getpid(),
                    "writable_root": os.access("/", os.W_OK)}})
    return
  box = os.path.realpath(os.getcwd())
  roots = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix,
                                                sys.exec_prefix, os.path.dirname(os.__file__))})
  _install_hook(box, roots)
  if job["mode"] == "values":
    _run_values(job["units"], job["max_out"], send)
  else:
    _run_asserts(job["program"], job["test"], send)


def _libc():
  import ctypes  # pylint: disable=g-import-not-at-top
  libc = ctypes.CDLL(None, use_errno=True)
  libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                         ctypes.c_char_p]
  libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

  def check(ret, what):
    if ret != 0:
      err = ctypes.get_errno()
      raise OSError(err, f"{what}: {os.strerror(err)}")
  return ctypes, libc, check


def _new_root(iso):
  """Builds the child's whole filesystem view and pivots into it (root, new mount namespace)."""
  _, libc, check = _libc()
  root = iso["root"]
  enc = os.fsencode

  def bind(src, dst, flags):
    check(libc.mount(enc(src), enc(dst), None, _MS_BIND, None), "bind " + src)
    # A bind mount takes new flags only on a remount.
    check(libc.mount(None, enc(dst), None, _MS_BIND | _MS_REMOUNT | flags, None),
          "remount " + dst)

  # Nothing mounted from here on propagates back to the host.
  check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
  check(libc.mount(b"tmpfs", enc(root), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=64k,mode=755"),
        "tmpfs root")
  for path in iso["read_only"]:
    target = root + path
    if os.path.islink(path):
      os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
      os.symlink(os.readlink(path), target)
    elif os.path.isdir(path):
      os.makedirs(target, mode=0o755, exist_ok=True)
      bind(path, target, _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
  os.makedirs(root + "/dev", mode=0o755, exist_ok=True)
  for dev in _DEVICES:
    open(root + dev, "w").close()  # pylint: disable=consider-using-with
    bind(dev, root + dev, _MS_NOSUID)
  box = iso["box"]
  os.makedirs(root + box, mode=0o755, exist_ok=True)
  bind(box, root + box, _MS_NOSUID | _MS_NODEV)
  check(libc.mount(None, enc(root), None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV,
                   None), "read-only root")
  number = _SYS_PIVOT_ROOT.get(os.uname().machine)
  if number is None:
    raise OSError(f"pivot_root's syscall number on {os.uname().machine} is not known")
  os.chdir(root)
  # pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only ours.
  check(libc.syscall(number, b".", b"."), "pivot_root")
  check(libc.umount2(b".", 2), "detach the old root")  # MNT_DETACH.
  os.chdir(box)


def _set_limits(lim):
  for name, value in (("RLIMIT_CPU", lim["cpu"]), ("RLIMIT_AS", lim["mem"]),
                      ("RLIMIT_FSIZE", lim["fsize"]), ("RLIMIT_NOFILE", 64),
                      ("RLIMIT_NPROC", lim["nproc"]), ("RLIMIT_CORE", 0)):
    resource.setrlimit(getattr(resource, name), (value, value))


def _drop_privileges(uid):
  """Becomes `uid` with no groups and no capabilities, inside a new user namespace."""
  ctypes, libc, check = _libc()
  os.setgroups([])
  os.setgid(uid)
  os.setuid(uid)  # Clears every capability (no keep-caps).
  check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
  # A user namespace of our own: RLIMIT_NPROC now counts this namespace's processes, and
  # uids outside it mean nothing here. Its creator holds every capability inside it: drop them.
  check(libc.unshare(_CLONE_NEWUSER), "user namespace")
  header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread.
  data = (ctypes.c_uint32 * 6)()
  check(libc.capset(header, data), "clear capabilities")
  for name in ("ctypes", "_ctypes", "ctypes._endian"):
    sys.modules.pop(name, None)


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


def _encoder():
  """Value -> JSON data of exact built-in types; references taken before any candidate runs."""
  t_bool, t_int, t_float, t_complex, t_str, t_bytes = bool, int, float, complex, str, bytes
  t_list, t_tuple, t_dict, t_set, t_frozen = list, tuple, dict, set, frozenset
  isinstance_, type_, len_ = isinstance, type, len
  int_repr, float_repr, str_copy, bytes_hex = int.__repr__, float.__repr__, str.__str__, bytes.hex
  list_, dumps = list, json.dumps

  def enc(v, depth):
    if depth > 64:
      raise ValueError("value nested too deeply")
    t = type_(v)
    if v is None or t is t_bool:
      return v
    # Subclasses are sent as their base value: their own __eq__/__repr__ never run here.
    if isinstance_(v, t_bool):
      return bool(v is True)
    if isinstance_(v, t_int):
      return {"i": int_repr(v)}
    if isinstance_(v, t_float):
      return {"f": float_repr(v)}
    if isinstance_(v, t_complex):
      return {"c": [float_repr(v.real), float_repr(v.imag)]}
    if isinstance_(v, t_str):
      return {"s": str_copy(v)}
    if isinstance_(v, t_bytes):
      return {"b": bytes_hex(v)}
    for cls, tag in ((t_list, "l"), (t_tuple, "t"), (t_set, "S"), (t_frozen, "F")):
      if isinstance_(v, cls):
        items = list_(v)
        if len_(items) > 100_000:
          raise ValueError("value too large")
        return {tag: [enc(x, depth + 1) for x in items]}
    if isinstance_(v, t_dict):
      items = list_(t_dict.items(v))
      if len_(items) > 100_000:
        raise ValueError("value too large")
      return {"d": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in items]}
    raise TypeError("not a plain value: " + t.__name__)

  def encode(v):
    text = dumps(enc(v, 0))
    if len_(text) > _MAX_VALUE_CHARS:
      raise ValueError("value too large")
    return text
  return encode


def _load(program, ns):
  try:
    exec(compile(program, "<solution>", "exec"), ns)  # pylint: disable=exec-used
    return True
  except BaseException:  # pylint: disable=broad-except
    return False  # A program that crashes (or exits) on load passes nothing.


def _run_values(units, max_out, send):
  """Loads each unit's program once, then evaluates its holes or runs its stdin input."""
  encode = _encoder()
  spaces = {}
  real_stdin, real_stdout = sys.stdin, sys.stdout
  for u, unit in enumerate(units):
    if "input" in unit:
      raw_out = io.BytesIO()
      # Text streams with a .buffer, for solutions that read sys.stdin.buffer.
      sys.stdin = io.TextIOWrapper(io.BytesIO(unit["input"].encode()), encoding="utf-8")
      sys.stdout = io.TextIOWrapper(raw_out, encoding="utf-8", write_through=True)
      try:
        exec(compile(unit["program"], "<solution>", "exec"),  # pylint: disable=exec-used
             {"__name__": "__main__"})
        ok = True
      except SystemExit as e:
        ok = e.code in (None, 0)
      except BaseException:  # pylint: disable=broad-except
        ok = False
      try:
        sys.stdout.flush()
      except BaseException:  # pylint: disable=broad-except
        pass
      # Read before restoring: dropping the wrapper closes its buffer.
      out = raw_out.getvalue()[:max_out].decode("utf-8", errors="replace")
      sys.stdin, sys.stdout = real_stdin, real_stdout
      send({"u": u, "ok": ok, "out": out})
      continue
    sys.stdout = io.StringIO()
    program = unit["program"]
    if program not in spaces:
      ns = {"__name__": "__solution__"}
      spaces[program] = ns if _load(program, ns) else None
    ns = spaces[program]
    local = {}
    loaded = ns is not None and _load(unit["setup"], ns) and _load(unit["local_setup"], local)
    if loaded and unit.get("entry"):
      loaded = unit["entry"] in ns
      if loaded:
        local["candidate"] = ns[unit["entry"]]
    send({"u": u, "loaded": loaded})
    if loaded:
      for h, src in enumerate(unit["holes"]):
        try:
          msg = {"u": u, "h": h, "v": encode(eval(src, ns, local))}  # pylint: disable=eval-used
        except BaseException:  # pylint: disable=broad-except
          msg = {"u": u, "h": h, "error": True}
        sys.stdout = io.StringIO()  # Printing in a loop must not grow memory for ever.
        send(msg)
    sys.stdin, sys.stdout = real_stdin, real_stdout


def _run_asserts(program, test, send):
  """One irreducible test: passes when neither the program nor the test raises."""
  sys.stdout = io.StringIO()
  ns = {"__name__": "__solution__"}
  ok = _load(program, ns) and _load(test, ns)
  send({"ok": ok})


if __name__ == "__main__":
  _main()
  os._exit(0)  # Skip interpreter teardown: nothing the code left behind gets to run.
