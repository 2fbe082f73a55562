"""What accord's agent costs a start on the server: its imports, its exit.

The agent's modules are unpacked from the bundle accord sends
(``agent_bundle()``) and run with ``python -S``, as on a server.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from accord.replicas.link import agent_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """The agent's modules, unpacked as the bootstrap unpacks them."""
    folder = tmp_path / "agent"
    with zipfile.ZipFile(io.BytesIO(agent_bundle()[1])) as archive:
        archive.extractall(folder)
    return folder


def _run(bundle: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(bundle)!r})\n{code}",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_agent_imports_no_thread_pool_module(bundle: Path) -> None:
    """concurrent.futures brings logging, traceback and tokenize along:
    the agent runs its worker threads itself."""
    done = _run(
        bundle,
        "import accord.replicas.agent\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('concurrent', 'logging', 'tokenize', 'traceback')))",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_agent_leaves_without_the_interpreters_teardown(bundle: Path) -> None:
    """Once served (the client closed its end) the agent exits at once,
    status 0: no exit handler, no freeing of every module first."""
    done = _run(
        bundle,
        "import atexit\n"
        "atexit.register(lambda: print('teardown', file=sys.stderr, flush=True))\n"
        "from accord.replicas.agent import main\n"
        "main()",
    )
    assert done.returncode == 0, done.stderr
    assert "teardown" not in done.stderr  # (its stdout is /dev/null by then)


def test_the_agents_workers_run_every_call_given(bundle: Path) -> None:
    """Many calls at once, more than there are threads: each runs once,
    and closing waits for all of them."""
    done = _run(
        bundle,
        "import threading, time\n"
        "from accord.replicas.agent import _Workers\n"
        "seen = []\n"
        "lock = threading.Lock()\n"
        "def work(n):\n"
        "    time.sleep(0.001 * (n % 3))\n"
        "    with lock: seen.append(n)\n"
        "pool = _Workers(4)\n"
        "for n in range(200): pool.submit(work, n)\n"
        "pool.close()\n"
        "print(sorted(seen) == list(range(200)), len(pool._threads))",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "4"]


def test_a_start_that_finds_the_agent_cached_sends_only_its_digest(sshd) -> None:
    """The client computes the digest of the agent's files; the zip is
    made (and pathspec imported) only when the server lacks them."""
    code = (
        "import sys\n"
        "from accord.registry import open_replica\n"
        "from accord.replicas import link\n"
        "place = open_replica(sys.argv[1]); place.open(create=True); place.close()\n"
        "print('opened',\n"
        "      'pathspec' in sys.modules, link._bundle_cache is not None)\n"
    )
    url = sshd.url()
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for _ in range(2)  # the first may have to send the modules
    ]
    assert runs[1].returncode == 0, runs[1].stderr
    assert runs[1].stdout.split() == ["opened", "False", "False"]


def test_the_agent_leaves_once_it_has_answered_close(bundle: Path, tmp_path) -> None:
    """After its reply to ``close`` the agent exits, without waiting for the
    client to close its end of the channel (one hop fewer at each run's end)."""
    from accord.replicas import wire

    calls = [("hello", [str(tmp_path), None]), ("open", [False]), ("close", [])]
    command = (
        f"import sys; sys.path.insert(0, {str(bundle)!r})\n"
        "from accord.replicas.agent import main\nmain()"
    )
    with subprocess.Popen(
        [sys.executable, "-S", "-c", command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as agent:
        assert agent.stdin is not None and agent.stdout is not None
        try:
            for ident, call in enumerate(calls, 1):
                frame = wire.frame(wire.CALL, ident, wire.dumps(list(call)))
                agent.stdin.write(frame)
            agent.stdin.flush()  # and the channel stays open
            assert agent.wait(timeout=30) == 0
            replies = list(wire.frames(agent.stdout.read))
        finally:
            agent.kill()
    assert [(kind, ident) for kind, ident, _ in replies] == [
        (wire.RESULT, 1),
        (wire.RESULT, 2),
        (wire.RESULT, 3),
    ]


def test_the_agents_start_imports_nothing_only_some_calls_need(bundle: Path) -> None:
    """The start makes its named tuples without ``typing`` (which compiles
    each field's annotation), and leaves out base64, weakref and
    importlib.util: imports a start need not pay on the server."""
    done = _run(
        bundle,
        "import accord.replicas.agent\n"
        "print(sorted(m for m in ('typing', 'base64', 'weakref', 'importlib.util') "
        "if m in sys.modules))",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


#: accord modules the agent's modules name but never import in the agent:
#: a local place's watch (``LocalReplica.watch``, no call of the agent's)
_NEVER_IN_THE_AGENT = {"accord.replicas.local_watch"}


def _accord_imports(source: str) -> set[str]:
    """The accord modules a module's text imports, at its top or inside a
    function (``from accord.x import y`` may name module ``accord.x.y``)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "accord"}


def test_every_accord_module_the_agent_may_import_is_sent_with_it(
    bundle: Path,
) -> None:
    """The modules the agent imports when a call first needs them (not at
    its start) are in its bundle too: a server has nothing else."""
    import accord

    source = Path(accord.__file__).parent.parent

    def is_module(name: str) -> bool:
        path = source.joinpath(*name.split("."))
        return path.with_suffix(".py").exists() or (path / "__init__.py").exists()

    sent = {
        ".".join(path.relative_to(bundle).with_suffix("").parts).removesuffix(
            ".__init__"
        )
        for path in (bundle / "accord").rglob("*.py")
    }
    missing = {
        (path.name, module)
        for path in (bundle / "accord").rglob("*.py")
        for name in _accord_imports(path.read_text(encoding="utf-8"))
        for module in [name if is_module(name) else name.rsplit(".", 1)[0]]
        if module not in sent | _NEVER_IN_THE_AGENT
    }
    assert missing == set()


@pytest.mark.parametrize("version", ["", "3.8"])
def test_a_fresh_agent_serves_the_calls_whose_imports_it_left_out(
    sshd, version: str
) -> None:
    """Through sshd, on a fresh interpreter (the oldest the agent runs on,
    too): the calls whose modules the start leaves out, or makes without
    typing, answer as ever: accord's own files and lock notes (binascii),
    the server's spots (mountinfo), entries (named tuples), ignore rules
    (pathspec, found beside the agent's modules)."""
    from accord.model import FILE, Entry, Spot
    from accord.registry import open_replica
    from accord.replicas.ssh import AgentReplica
    from accord.replicas.where import local_spots

    url = sshd.url()
    if version:
        found = sorted(Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python"))
        if not found:
            pytest.skip(f"no Python {version} on this machine to run the agent with")
        url += f"&python={found[0]}"
    place = open_replica(url + "&agent=on")
    place.open(create=True)
    try:
        agent = place.via
        assert isinstance(agent, AgentReplica)
        assert agent._rules_there is (version != "3.8")
        # the server is this machine: its file system's spot is the local one
        here = local_spots(agent.root)[-1]
        assert here.space.startswith("fs:")
        assert agent.spots()[-1] == Spot(f"{agent.server}/{here.space}", here.path)
        raw = bytes(range(256))
        assert place.meta_create("probe", raw)
        assert place.meta_read("probe") == raw
        token = place.hold_lock(
            "x.lock", shared=False, timeout=5, note_key="x.info", note=raw
        )
        place.drop_lock(token)
        like = Entry("a.txt", FILE, 1, 1_700_000_000_000_000_000, 0o644, "")
        new = place.write("a.txt", io.BytesIO(b"a"), like=like, expect=None)
        assert type(new) is Entry and new.size == 1
        listed = list(place.scan())
        assert [(type(item), item.key) for item in listed] == [(Entry, "a.txt")]
    finally:
        place.close()
