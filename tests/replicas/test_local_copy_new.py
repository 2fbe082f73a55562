"""A copier copies a new file between local folders by descriptors alone.

``LocalReplica.copy_new``: exactly the file's size is read (no read to find
the end), hashed into a new file without a name in the target's folder
(``O_TMPFILE``; where that is not offered, a temporary file in
``.accord/tmp``), the source's stamp is checked unchanged, and the file is
given its name only where nothing is; otherwise the item is left for the
next run and nothing is left behind. Each test runs on both ways.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _trees import files

from accord.errors import PreconditionFailed
from accord.model import Entry
from accord.replicas import local, local_at
from accord.replicas.local import LocalReplica

_MTIME = 1_700_000_000


def _unnamed_offered(folder: Path) -> bool:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        made = local_at.new_unnamed(fd)
        if made is None:
            return False
        os.close(made)
        return True
    finally:
        os.close(fd)


@pytest.fixture(params=["unnamed", "temporary"])
def way(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """How a new file is made: without a name (O_TMPFILE), or, as where
    that is not offered, as a temporary file in ``.accord/tmp``."""
    if request.param == "unnamed" and not _unnamed_offered(tmp_path):
        pytest.skip("O_TMPFILE is not offered here")
    if request.param == "temporary":
        monkeypatch.setattr(local, "new_unnamed", lambda fd: None)
    return str(request.param)


@pytest.fixture
def pair(tmp_path: Path, way: str) -> Iterator[tuple[LocalReplica, LocalReplica]]:
    """A source holding ``sub/a.txt`` and an empty target, both copiers."""
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "dst" / "sub").mkdir(parents=True)
    data = tmp_path / "src" / "sub" / "a.txt"
    data.write_bytes(b"0123456789" * 1000)
    os.chmod(data, 0o640)
    os.utime(data, (_MTIME, _MTIME))
    source, target = (
        LocalReplica(str(tmp_path / "src")),
        LocalReplica(str(tmp_path / "dst")),
    )
    for place in (source, target):
        place.open(create=True)
        place.forked()
    yield source, target
    for place in (source, target):
        place.close()


def _entry(place: LocalReplica, key: str) -> Entry:
    entry = place.stat(key)
    assert entry is not None
    return entry


def _temporary(place: LocalReplica) -> list[str]:
    """What is left in accord's temporary folder."""
    return [
        name
        for _, _, names in os.walk(Path(place.root) / ".accord" / "tmp")
        for name in names
    ]


def test_a_new_file_is_copied_with_one_read_its_digest_mtime_and_mode(
    pair: tuple[LocalReplica, LocalReplica], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = pair
    entry = _entry(source, "sub/a.txt")
    reads: list[int] = []
    real_read = os.read

    def counted(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counted)
    made = target.copy_new(source, "sub/a.txt", entry)
    assert made is not None
    assert reads == [entry.size]  # no read past the end to find it
    data = (Path(target.root) / "sub" / "a.txt").read_bytes()
    assert data == b"0123456789" * 1000
    assert made.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert made.version == _entry(target, "sub/a.txt").version
    assert (made.mtime_ns, made.mode) == (entry.mtime_ns, 0o640)
    assert _temporary(target) == []


def test_a_source_that_grew_after_the_scan_is_left_for_the_next_run(
    pair: tuple[LocalReplica, LocalReplica],
) -> None:
    source, target = pair
    entry = _entry(source, "sub/a.txt")
    with open(Path(source.root) / "sub" / "a.txt", "ab") as grow:
        grow.write(b"more")
    with pytest.raises(PreconditionFailed, match="source changed"):
        target.copy_new(source, "sub/a.txt", entry)
    assert files(Path(target.root)) == {}
    assert _temporary(target) == []


def test_a_source_that_shrank_after_the_scan_is_left_for_the_next_run(
    pair: tuple[LocalReplica, LocalReplica],
) -> None:
    source, target = pair
    entry = _entry(source, "sub/a.txt")
    os.truncate(Path(source.root) / "sub" / "a.txt", 10)
    with pytest.raises(PreconditionFailed, match="source changed"):
        target.copy_new(source, "sub/a.txt", entry)
    assert files(Path(target.root)) == {}
    assert _temporary(target) == []


def test_a_file_that_appeared_at_the_name_is_never_replaced(
    pair: tuple[LocalReplica, LocalReplica],
) -> None:
    source, target = pair
    entry = _entry(source, "sub/a.txt")
    (Path(target.root) / "sub" / "a.txt").write_bytes(b"theirs")
    with pytest.raises(PreconditionFailed, match="appeared"):
        target.copy_new(source, "sub/a.txt", entry)
    assert files(Path(target.root)) == {"sub/a.txt": b"theirs"}
    assert _temporary(target) == []


def test_what_was_read_is_checked_against_a_known_digest(
    pair: tuple[LocalReplica, LocalReplica],
) -> None:
    source, target = pair
    entry = _entry(source, "sub/a.txt")._replace(digest="sha256:" + "0" * 64)
    with pytest.raises(PreconditionFailed, match="source changed"):
        target.copy_new(source, "sub/a.txt", entry)
    assert files(Path(target.root)) == {}
    assert _temporary(target) == []


def test_only_a_copier_copies_by_itself(tmp_path: Path) -> None:
    """Outside a copier process the engine reads and writes (None)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"a")
    source, target = (
        LocalReplica(str(tmp_path / "src")),
        LocalReplica(str(tmp_path / "dst")),
    )
    target.open(create=True)
    try:
        assert target.copy_new(source, "a", _entry(source, "a")) is None
    finally:
        target.close()


def _during_copy(monkeypatch: pytest.MonkeyPatch, then: Any) -> None:
    """Run ``then()`` once the bytes are copied, before the file is named."""
    real = local.copy_exact

    def copying(*args: Any) -> tuple[str, int]:
        done = real(*args)
        then()
        return done

    monkeypatch.setattr(local, "copy_exact", copying)


def test_a_file_without_a_name_leaves_no_name_while_it_is_written(
    pair: tuple[LocalReplica, LocalReplica], way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unnamed: no temporary name anywhere during the copy; else the
    temporary file is in ``.accord/tmp`` alone. The target's folder holds
    nothing but the final name, in both."""
    source, target = pair
    seen: list[tuple[list[str], list[str]]] = []
    folder = Path(target.root) / "sub"
    _during_copy(
        monkeypatch, lambda: seen.append((os.listdir(folder), _temporary(target)))
    )
    assert target.copy_new(source, "sub/a.txt", _entry(source, "sub/a.txt"))
    [(in_folder, in_tmp)] = seen
    assert in_folder == []
    assert len(in_tmp) == (0 if way == "unnamed" else 1)
    assert os.listdir(folder) == ["a.txt"]
    assert _temporary(target) == []


def test_a_place_without_unnamed_files_falls_back_for_the_rest_of_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An O_TMPFILE open refused as not offered (a file system without it,
    an old kernel) is no error: the copy goes through ``.accord/tmp``, and
    later ones do not ask again."""
    (tmp_path / "src").mkdir()
    for name in ("a", "b"):
        (tmp_path / "src" / name).write_bytes(name.encode() * 100)
    source, target = (
        LocalReplica(str(tmp_path / "src")),
        LocalReplica(str(tmp_path / "dst")),
    )
    for place in (source, target):
        place.open(create=True)
        place.forked()
    offered = _unnamed_offered(tmp_path)
    asked: list[int] = []
    real_open = os.open

    def no_tmpfile(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
            asked.append(flags)
            raise OSError(errno.EOPNOTSUPP, "not supported")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_tmpfile)
    try:
        for name in ("a", "b"):
            made = target.copy_new(source, name, _entry(source, name))
            assert made is not None and made.version == _entry(target, name).version
    finally:
        for place in (source, target):
            place.close()
    assert files(tmp_path / "dst") == {"a": b"a" * 100, "b": b"b" * 100}
    assert len(asked) == (1 if offered else 0)  # not asked again
    assert _temporary(target) == []


def test_a_file_that_appears_at_the_name_during_the_copy_is_never_replaced(
    pair: tuple[LocalReplica, LocalReplica], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = pair
    theirs = Path(target.root) / "sub" / "a.txt"
    _during_copy(monkeypatch, lambda: theirs.write_bytes(b"theirs"))
    with pytest.raises(PreconditionFailed, match="appeared"):
        target.copy_new(source, "sub/a.txt", _entry(source, "sub/a.txt"))
    assert files(Path(target.root)) == {"sub/a.txt": b"theirs"}
    assert _temporary(target) == []


def test_a_link_that_appears_at_the_name_during_the_copy_is_not_followed(
    pair: tuple[LocalReplica, LocalReplica],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    source, target = pair
    outside = tmp_path / "outside"
    link = Path(target.root) / "sub" / "a.txt"
    _during_copy(monkeypatch, lambda: link.symlink_to(outside))
    with pytest.raises(PreconditionFailed, match="appeared"):
        target.copy_new(source, "sub/a.txt", _entry(source, "sub/a.txt"))
    assert link.is_symlink() and not outside.exists()
    assert _temporary(target) == []


def test_a_copier_killed_during_the_copy_leaves_nothing_behind(
    pair: tuple[LocalReplica, LocalReplica], way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed before the name is given: an unnamed file goes with the
    process; a temporary file stays in ``.accord/tmp`` for the next run's
    ``clean_temp``. Never anything in the target's folder."""
    source, target = pair
    _during_copy(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGKILL))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the killed copier
        try:
            target.copy_new(source, "sub/a.txt", _entry(source, "sub/a.txt"))
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert os.listdir(Path(target.root) / "sub") == []
    assert len(_temporary(target)) == (0 if way == "unnamed" else 1)
