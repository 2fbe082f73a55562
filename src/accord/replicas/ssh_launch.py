"""Launching accord's agent through the system's OpenSSH client.

The ``ssh`` command line for an ``sftp://`` place, the bootstrap the server
runs (``python3 -S -c BOOT``), and :class:`SSHProcess`, the running client
used as a channel. Connecting costs a few hundred milliseconds (the key
exchange, the login shell, Python's start on the server), as long as
accord's own start: so when accord's command line names an ``sftp://``
place, the command starts the ``ssh`` at once (:func:`start_early`), before
importing the rest of accord, and the place claims that process when it
connects, if it would have run exactly the same command (:func:`claim`).

This module imports only the standard library: it runs before the rest.
"""

from __future__ import annotations

import contextlib
import os

__all__ = [
    "BOOT",
    "SSHProcess",
    "boot_command",
    "cipher_options",
    "claim",
    "gcm_first",
    "has_aes",
    "recalled_python",
    "remember_python",
    "ssh_argv",
    "start_early",
    "url_argv",
]

_TRUE = ("1", "true", "yes", "on")

# The server-side bootstrap. Python 2 and 3 read it, so that an old
# interpreter answers "old" instead of failing to parse it. The agent's
# modules live unpacked in the user's cache folder, one folder per bundle,
# so that Python keeps their compiled bytecode (modules imported from a zip
# are compiled again at every start); each start checks them against the
# bundle's digest (the digest of their MANIFEST, which lists each file's).
BOOT = r"""
import sys, os
def tidy(folder, current):
    # agents of other accord versions, unused for 30 days, go (shutil is
    # imported only then: it costs a start several milliseconds)
    import time
    for name in os.listdir(folder):
        other = os.path.join(folder, name)
        try:
            if not name.startswith("agent-") or other == current:
                continue
            stamp = os.path.join(other, "MANIFEST")
            used = os.stat(stamp if os.path.isdir(other) else other).st_atime
            if time.time() - used > 30 * 86400:
                if os.path.isdir(other):
                    import shutil
                    shutil.rmtree(other, True)
                else:
                    os.remove(other)
        except OSError:
            pass
def manifest(home, names):
    import hashlib
    lines = []
    for name in names:
        with open(os.path.join(home, name), "rb") as f:
            lines.append("%s  %s\n" % (hashlib.sha256(f.read()).hexdigest(), name))
    return "".join(lines).encode("utf-8")
def good(home, want):
    import hashlib
    try:
        with open(os.path.join(home, "MANIFEST"), "rb") as f:
            text = f.read()
        if hashlib.sha256(text).hexdigest() != want:
            return False
        names = [line.split("  ", 1)[1] for line in text.decode("utf-8").splitlines()]
        return manifest(home, names) == text
    except (OSError, ValueError, IndexError):
        return False
def unpack(home, data, want):
    import io, shutil, zipfile
    temp = "%s.%d" % (home, os.getpid())
    shutil.rmtree(temp, True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
        archive.extractall(temp)
    with open(os.path.join(temp, "MANIFEST"), "wb") as f:
        f.write(manifest(temp, names))
    if not good(temp, want):
        shutil.rmtree(temp, True)
        return False
    if good(home, want):  # another start unpacked it meanwhile
        shutil.rmtree(temp, True)
        return True
    if os.path.exists(home):
        os.rename(home, temp + ".old")
        shutil.rmtree(temp + ".old", True)
    os.rename(temp, home)
    return True
def boot():
    i = getattr(sys.stdin, "buffer", sys.stdin)
    o = getattr(sys.stdout, "buffer", sys.stdout)
    def say(text):
        o.write(text.encode("ascii") + b"\n")
        o.flush()
    if sys.version_info < (3, 8):
        say("old %d.%d" % tuple(sys.version_info[:2]))
        return
    want = i.readline().strip().decode("ascii")
    if not want:  # started early, then not needed
        return
    bases = [os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")]
    temp = os.environ.get("TMPDIR") or "/tmp"
    bases.append(os.path.join(temp, "accord-%d" % os.getuid()))
    home = None
    for base in bases:
        folder = os.path.join(base, "accord")
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.stat(folder).st_uid != os.getuid():
                continue
        except OSError:
            continue
        home = os.path.join(folder, "agent-%s" % want[:32])
        if good(home, want):
            break
        say("need")
        size = int(i.readline())
        data = i.read(size)
        try:
            if unpack(home, data, want):
                break
            say("corrupt upload")
            return
        except OSError:
            home = None
    if home is None or not good(home, want):
        say("no writable cache folder")
        return
    say("ok")
    tidy(os.path.dirname(home), home)
    sys.path.insert(0, home)
    import gc
    gc.disable()  # for the import, which makes nothing to collect; main enables it
    from accord.replicas.agent import main
    main()
boot()
"""


def boot_command(python: str) -> str:
    """The remote command that starts the bootstrap (``-S``: no
    site-packages; the agent brings what it needs, and starts faster)."""
    import shlex

    return f"{python} -S -c {shlex.quote(BOOT)}"


# -- the interpreter a name led to ---------------------------------------------
# ``python3`` on a server may be a shim (pyenv's, asdf's: a shell script
# that works out which Python to run), which costs each start about 0.05 to
# 0.1 s, as much as the rest of Python's start and the agent's imports. So
# accord keeps, in the client's cache folder, which interpreter a name led
# to on a server (the agent says: ``sys.executable``), and runs that one
# directly next time. When it fails to start (gone, or it needs what the
# shim sets up), accord asks by name again and keeps what that leads to;
# when that is the very interpreter that failed, it keeps an empty memory
# and asks by name from then on, so no run pays a failed start twice.
def _memory(argv: list[str], python: str) -> tuple[str, str] | None:
    """The file keeping which interpreter ``python`` (a name the server's
    PATH resolves) led to through ``argv`` (``ssh`` and its options), and
    the key it must hold (the file is named by a checksum of it: zlib's,
    not hashlib's, whose import would delay the early ``ssh``); None for
    anything but a plain name (a path, or words: run as given)."""
    if not python or "/" in python or python.split() != [python]:
        return None
    return _cache_file("python", "\0".join([*argv, python]))


def _cache_file(folder: str, key: str) -> tuple[str, str]:
    """A memory in the user's cache folder (``.../accord/FOLDER/``) for
    ``key``, named by a checksum of it, with the key it must hold."""
    import zlib

    data = key.encode("utf-8", "surrogateescape")
    name = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "accord", folder, name), key


def _read_memory(memory: tuple[str, str]) -> str | None:
    """What the memory holds for its key; None when nothing is kept (or
    the file is another key's, or damaged)."""
    path, key = memory
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            size, _, rest = file.read().partition("\n")
    except (OSError, ValueError):
        return None
    if not size.isdigit() or rest[: int(size)] != key:
        return None
    return rest[int(size) :]


def _usable(executable: str) -> bool:
    return executable.startswith("/") and not any(c in executable for c in "\n\0")


def recalled_python(argv: list[str], python: str) -> str | None:
    """The interpreter ``python`` led to last time through ``argv``, as an
    absolute path; None when there is none to run instead (nothing kept,
    or asking by name is what works)."""
    memory = _memory(argv, python)
    found = _read_memory(memory) if memory else None
    return found if found and _usable(found) else None


def remember_python(
    argv: list[str], python: str, executable: str, failed: str | None = None
) -> None:
    """Keep that ``python`` led to ``executable``; an empty memory (ask by
    name) when that is ``failed``, the interpreter that just failed to
    start directly."""
    memory = _memory(argv, python)
    if memory is None or not _usable(executable):
        return
    kept = _read_memory(memory)
    if failed is None and kept == "":
        return  # asking by name is what works here
    text = "" if executable == failed else executable
    if kept != text:
        _write_memory(memory, text)


def _write_memory(memory: tuple[str, str], text: str) -> None:
    """Write the memory whole (a temporary file renamed over it), its key
    first; a cache: a failure leaves it as it was."""
    path, key = memory
    temp = f"{path}.{os.getpid()}"
    with contextlib.suppress(OSError, ValueError):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(temp, "w", encoding="utf-8", errors="surrogateescape") as file:
            file.write(f"{len(key)}\n{key}{text}")
        os.replace(temp, path)
    with contextlib.suppress(OSError):
        os.remove(temp)


def ssh_argv(
    alias: str,
    *,
    user: str | None = None,
    port: int | None = None,
    config: str | None = None,
    known_hosts: str | None = None,
    identity: str | None = None,
    accept_new_host_key: bool = False,
) -> list[str] | None:
    """The ``ssh`` command line to a place's server, from what its URL says
    (ssh itself reads its config for the rest: User, Port, IdentityFile,
    ProxyJump, ...); the remote command goes last. None without ``ssh``."""
    binary = _which("ssh")
    if binary is None:
        return None
    checking = "accept-new" if accept_new_host_key else "yes"
    argv = [
        binary,
        "-x",
        "-T",
        "-o", "BatchMode=yes",  # never ask for anything
        "-o", "ClearAllForwardings=yes",
        "-o", "ConnectTimeout=15",
        "-o", "ServerAliveInterval=15",
        "-o", f"StrictHostKeyChecking={checking}",
    ]  # fmt: skip
    if port:
        argv += ["-p", str(port)]
    if user:
        argv += ["-l", user]
    if config:
        argv += ["-F", config]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={os.path.expanduser(known_hosts)}"]
    if identity:
        argv += ["-i", os.path.expanduser(identity)]
    return [*argv, *cipher_options(binary, config), alias]


def _which(name: str) -> str | None:
    """The first executable file ``name`` in ``$PATH``, as ``shutil.which``
    finds it, without importing ``shutil`` (2 ms, with its compression
    modules): this runs before the early ``ssh`` starts, on the path every
    run over SSH waits for."""
    search = os.environ.get("PATH")
    if search is None:
        search = os.defpath
    for folder in search.split(os.pathsep) if search else ():
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


# -- the cipher -------------------------------------------------------------------
# OpenSSH's compiled-in preference puts chacha20-poly1305 first. On a CPU
# with AES instructions, AES-GCM costs each end less CPU for the same bytes
# (200 MiB through ``ssh host 'cat >/dev/null'`` on loopback: the client
# 0.37 s against 0.51 s, the server 0.60-0.74 s against 0.83 s), which is
# what a first copy's bytes cost: so, when nothing in ssh's configuration
# names ciphers, accord asks for the very same set with AES-GCM first. A
# ``Ciphers`` line anywhere in the files ssh reads (in any Host or Match
# block, or a file they include) leaves the choice to ssh, and so does a CPU
# without AES instructions, an ssh whose system-wide file may be elsewhere
# than /etc/ssh/ssh_config (one not in /usr/bin or /bin), or anything this
# cannot read. What ssh's own default set is, ``ssh -F /dev/null -G`` says
# once per ssh binary (kept in the cache folder like the interpreter's
# memory): a command line starts no process of its own for this.
_GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
_CPUINFO = "/proc/cpuinfo"
_SYSTEM_CONFIG = ("/etc/ssh/ssh_config", "/etc/ssh")
_DEPTH = 16  # OpenSSH's own limit on nested Include


def cipher_options(binary: str, config: str | None) -> list[str]:
    """``-o Ciphers=...``: ``binary``'s default ciphers with AES-GCM first,
    when this CPU has AES instructions and no file ssh reads names ciphers;
    else nothing (ssh chooses as configured)."""
    if not _cpu_has_aes():
        return []
    files = _config_files(binary, config)
    if files is None or any(_names_ciphers(*file) for file in files):
        return []
    default = _default_ciphers(binary)
    order = gcm_first(default) if default else None
    return ["-o", "Ciphers=" + ",".join(order)] if order else []


def gcm_first(default: list[str]) -> list[str] | None:
    """The same ciphers with AES-GCM's first; None when there are none of
    those, or they lead already."""
    gcm = [name for name in default if name in _GCM]
    order = gcm + [name for name in default if name not in _GCM]
    return order if gcm and order != default else None


def has_aes(cpuinfo: str) -> bool:
    """Whether ``/proc/cpuinfo``'s text lists AES instructions (x86's
    ``flags``, arm64's ``Features``: its first such line)."""
    for line in cpuinfo.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip() in ("flags", "Features"):
            return "aes" in value.split()
    return False


def _cpu_has_aes() -> bool:
    text = []
    try:
        with open(_CPUINFO, encoding="ascii", errors="replace") as file:
            for line in file:  # the first processor's lines are enough
                text.append(line)
                if line.startswith(("flags", "Features")):
                    break
    except OSError:
        return False
    return has_aes("".join(text))


def _home() -> str:
    """The home folder ssh reads ``~/.ssh/config`` in (the account's,
    not $HOME)."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return os.path.expanduser("~")


def _config_files(binary: str, config: str | None) -> list[tuple[str, str]] | None:
    """The files ``binary`` reads its settings from, each with the folder
    its relative Includes name files in; None when that is not known."""
    user = os.path.join(_home(), ".ssh")
    if config:
        return [] if config == "none" else [(config, user)]
    if os.path.dirname(os.path.realpath(binary)) not in ("/usr/bin", "/bin"):
        return None  # a build of its own: its system-wide file may be elsewhere
    return [(os.path.join(user, "config"), user), _SYSTEM_CONFIG]


def _names_ciphers(path: str, folder: str, depth: int = 0) -> bool:
    """Whether ssh's settings file ``path``, or one it includes, has a
    ``Ciphers`` line (wherever it is); True when this cannot tell."""
    if depth > _DEPTH:
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        keyword, _, rest = words[0].partition("=")
        keyword = keyword.lower()
        if keyword == "ciphers":
            return True
        if keyword == "include":
            names = _included(" ".join([rest, *words[1:]]), folder)
            if names is None or any(
                _names_ciphers(name, folder, depth + 1) for name in names
            ):
                return True
    return False


def _included(patterns: str, folder: str) -> list[str] | None:
    """The files an ``Include`` line's patterns name (relative ones in
    ``folder``); None when they cannot be read."""
    import glob
    import shlex

    try:
        words = shlex.split(patterns.lstrip(" \t="))
    except ValueError:
        return None
    names = []
    for word in words:
        if word.startswith("~"):
            word = _home() + word[1:]
        names += sorted(glob.glob(os.path.join(folder, word)))
    return names


def _default_ciphers(binary: str) -> list[str] | None:
    """``binary``'s compiled-in cipher preference, kept in the cache folder
    for that binary (its path, size and time)."""
    try:
        stat = os.stat(binary)
    except OSError:
        return None
    key = f"{binary}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}"
    memory = _cache_file("ssh-ciphers", key)
    kept = _read_memory(memory)
    if kept is None:
        kept = _ask_default_ciphers(binary)
        _write_memory(memory, kept)
    return kept.split(",") if kept else None


def _ask_default_ciphers(binary: str) -> str:
    """What ``ssh -F /dev/null -G`` says ``ciphers`` is; empty when it
    says nothing."""
    import subprocess

    try:
        done = subprocess.run(
            [binary, "-F", "/dev/null", "-G", "accord.invalid"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name == "ciphers" and done.returncode == 0:
            return value.strip()
    return ""


def url_argv(url: str) -> list[str] | None:
    """The whole command (``ssh``, its options, the bootstrap) an
    ``sftp://`` URL's place would run to start its agent; None when it
    would not (``?agent=off``, no ``ssh``, a URL it cannot read)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "sftp" or not parts.hostname:
        return None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query.get("agent", "auto").lower() == "off":
        return None
    argv = ssh_argv(
        parts.hostname,
        user=unquote(parts.username) if parts.username else None,
        port=port,
        config=query.get("config") or os.environ.get("ACCORD_SSH_CONFIG"),
        known_hosts=query.get("known_hosts"),
        identity=query.get("identity"),
        accept_new_host_key=query.get("accept_new_host_key", "").lower() in _TRUE,
    )
    if argv is None:
        return None
    python = query.get("python", "python3")
    recalled = recalled_python(argv, python)
    if recalled is not None:
        import shlex

        python = shlex.quote(recalled)
    return [*argv, boot_command(python)]


class SSHProcess:
    """The system's OpenSSH client running one remote command, used as a
    channel: OpenSSH does the crypto in its own process (another core), and
    honours everything in ``~/.ssh/config`` (ProxyJump, ControlMaster, ...)."""

    def __init__(self, argv: list[str]) -> None:
        import subprocess

        self.argv = argv
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,  # Ctrl-C reaches accord, which closes it
        )
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self._in = self.process.stdin.fileno()
        self._out = self.process.stdout.fileno()
        self._err = self.process.stderr.fileno()
        self._timeout: float | None = None
        _widen_pipes(self._in, self._out)

    def settimeout(self, seconds: float | None) -> None:
        self._timeout = seconds

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._in, view) :]

    def send_parts(self, parts: list[bytes]) -> None:
        """Send ``parts`` one after another, as they are (``writev``: no
        copy of them joined into one buffer first)."""
        views = [memoryview(part) for part in parts if part]
        while views:
            written = os.writev(self._in, views[:1024])  # IOV_MAX
            while written and written >= len(views[0]):
                written -= len(views.pop(0))
            if written:
                views[0] = views[0][written:]

    def recv(self, size: int) -> bytes:
        if self._timeout is not None:
            import select

            ready, _, _ = select.select([self._out], [], [], self._timeout)
            if not ready:
                raise TimeoutError("no answer from the server")
        return os.read(self._out, size)

    def recv_stderr_ready(self) -> bool:
        import select

        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                self.process.wait(0.5)  # let it finish saying why
        return bool(select.select([self._err], [], [], 0)[0])

    def recv_stderr(self, size: int) -> bytes:
        return os.read(self._err, size)

    def exit_code(self) -> int | None:
        with contextlib.suppress(Exception):
            return self.process.wait(2)
        return None

    def shutdown_write(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()

    def close(self) -> None:
        self.shutdown_write()
        try:
            self.process.wait(10)
        except Exception:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _widen_pipes(*fds: int) -> None:
    """1 MiB pipes to ``ssh`` on Linux (as ``wire.widen_pipes``, repeated
    here: this module imports nothing of accord's)."""
    import sys

    if sys.platform.startswith("linux"):
        import fcntl

        for fd in fds:
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)


# -- started early ---------------------------------------------------------------
_early: dict[tuple[str, ...], SSHProcess] = {}


def start_early(args: list[str]) -> None:
    """Start the ``ssh`` of each ``sftp://`` place named in ``args`` (a
    command line), for :func:`claim`; those never claimed are stopped at
    exit. Anything unexpected leaves it to the place: this is only a head
    start."""
    for arg in args:
        if not arg.startswith("sftp://"):
            continue
        try:
            argv = url_argv(arg)
            if argv is None or tuple(argv) in _early:
                continue
            if not _early:
                import atexit

                atexit.register(_stop_unclaimed)
            _early[tuple(argv)] = SSHProcess(argv)
        except Exception:
            continue


def claim(argv: list[str]) -> SSHProcess | None:
    """The process started early with exactly ``argv``, once; or None."""
    process = _early.pop(tuple(argv), None)
    if process is not None and process.process.poll() is not None:
        process.close()  # it ended (could not connect): start afresh
        return None
    return process


def _stop_unclaimed() -> None:
    while _early:
        _, process = _early.popitem()
        with contextlib.suppress(Exception):
            process.process.terminate()
            process.close()
