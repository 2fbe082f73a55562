"""Shared fixtures: a private state directory for every test.

Fixtures that start real servers on 127.0.0.1 (sshd, S3, slapd) live in
``tests/fixtures/``, one module per server, and are loaded here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

pytest_plugins = sorted(
    f"fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("[!_]*.py")
)


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory, monkeypatch):
    """accord's state (and its cache) go to fresh folders, never the user's."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("ACCORD_STATE_DIR", str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    return path


# -- tests that need this process to fork -----------------------------------
# accord forks (copiers, a listing child) only while no other thread runs:
# forking a threaded process can deadlock the child. A test marked ``forks``
# asserts what the forked path does; where this process runs another thread
# (fsspec's event loop, ``fsspecIO``, lives on once an HTTP place was used),
# the test runs in a fresh interpreter instead, so it is still run, in
# whichever order the tests come.
_FRESH = "ACCORD_TEST_FRESH_PROCESS"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if (
        pyfuncitem.get_closest_marker("forks") is None
        or threading.active_count() == 1
        or os.environ.get(_FRESH)
    ):
        return None
    _run_fresh(pyfuncitem)
    return True


def _run_fresh(item: pytest.Function) -> None:
    """``item`` alone in a new pytest process; its failure fails it here."""
    others = sorted(
        t.name for t in threading.enumerate() if t is not threading.main_thread()
    )
    with tempfile.TemporaryDirectory(prefix="accord-fresh-") as temp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                f"--basetemp={temp}/t",
                f"--rootdir={item.config.rootpath}",
                item.nodeid,
            ],
            cwd=item.config.rootpath,
            env={**os.environ, _FRESH: "1"},
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        pytest.fail(
            f"run in a fresh process (this one runs {', '.join(others)}), "
            f"it failed:\n{done.stdout[-6000:]}{done.stderr[-2000:]}",
            pytrace=False,
        )
