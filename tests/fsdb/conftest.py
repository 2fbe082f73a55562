"""FSDB tests: databases made and read by plantdb's own libraries (PyPI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest.importorskip("plantdb.commons.fsdb.core")

from plantdb_db import build, new_db


@pytest.fixture(scope="session")
def made(tmp_path_factory) -> tuple[Path, Path]:
    """A database built with plantdb's API, and an empty one (built once:
    plantdb takes seconds to make its users)."""
    folder = tmp_path_factory.mktemp("plantdb")
    return build(folder / "source"), new_db(folder / "empty")


@pytest.fixture
def source(made, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made[0], tmp_path / "source", symlinks=True))


@pytest.fixture
def target(made, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made[1], tmp_path / "target", symlinks=True))


HOLD = textwrap.dedent(
    """
    import sys, time
    from plantdb.commons.fsdb.lock import LockManager, LockType, LockLevel
    manager = LockManager(sys.argv[1], log_level="ERROR")
    kind = LockType.SHARED if sys.argv[3] == "shared" else LockType.EXCLUSIVE
    with manager.acquire_lock(sys.argv[2], kind, "plantdb-user", LockLevel.SCAN):
        print("held", flush=True)
        sys.stdin.read()
    """
)


class Holder:
    """plantdb holding a scan lock in another process, until ``release``."""

    def __init__(self, root: Path, scan: str, kind: str = "exclusive") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(root), scan, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "held", line

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(30)


@pytest.fixture
def plantdb_holds() -> Iterator[type[Holder]]:
    made: list[Holder] = []

    def hold(root: Path, scan: str, kind: str = "exclusive") -> Holder:
        holder = Holder(root, scan, kind)
        made.append(holder)
        return holder

    yield hold  # type: ignore[misc]
    for holder in made:
        holder.release()
