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
