"""A copier copies a new file between local folders by descriptors alone.

``LocalReplica.copy_new``: exactly the file's size is read (no read to find
the end), hashed into a temporary file, the source's stamp is checked
unchanged, and the file is renamed into place only where nothing is;
otherwise the item is left for the next run and nothing is left behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _trees import files

from accord.errors import PreconditionFailed
from accord.model import Entry
from accord.replicas import local
from accord.replicas.local import LocalReplica
from accord.testing.contract import like

_MTIME = 1_700_000_000


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LocalReplica, LocalReplica]]:
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


def test_a_copier_killed_during_the_copy_leaves_only_its_temporary_file(
    pair: tuple[LocalReplica, LocalReplica], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed before the rename: nothing in the target's folder, a
    temporary file in ``.accord/tmp``, which the next run removes."""
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
    assert len(_temporary(target)) == 1
    target.clean_temp()
    assert _temporary(target) == []


def test_the_entry_is_the_written_file_s_even_if_the_name_is_taken_over(
    pair: tuple[LocalReplica, LocalReplica], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program renames its file over the copy right after the
    rename into place: the copy's entry is still the written file's (its
    stamp), never theirs, so the next run sees their file as a change."""
    source, target = pair
    theirs = Path(target.root) / "theirs"
    theirs.write_bytes(b"theirs")
    real = LocalReplica._rename_fresh

    def then_taken_over(self: LocalReplica, *args: Any) -> None:
        real(self, *args)
        os.replace(theirs, Path(target.root) / "sub" / "a.txt")

    monkeypatch.setattr(LocalReplica, "_rename_fresh", then_taken_over)
    made = target.copy_new(source, "sub/a.txt", _entry(source, "sub/a.txt"))
    assert made is not None
    now = _entry(target, "sub/a.txt")
    assert made.version != now.version
    assert made.size == 10_000 and now.size == len(b"theirs")


@pytest.mark.parametrize("copier", [False, True], ids=["write", "copier's write"])
@pytest.mark.parametrize("replacing", [False, True], ids=["new", "replacing"])
def test_a_write_s_entry_is_the_written_file_s_even_if_the_name_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copier: bool, replacing: bool
) -> None:
    """``write`` (in this process, or a copier's, for a new file or one it
    replaces): another program renames its file over the written one right
    after the rename into place; the entry returned is still the written
    file's, so the next run sees their file as a change."""
    place = LocalReplica(str(tmp_path / "dst"))
    place.open(create=True)
    (tmp_path / "dst" / "sub").mkdir()
    expect = None
    if replacing:
        old = b"old"
        expect = place.write(
            "sub/a.txt", io.BytesIO(old), like=like("sub/a.txt", old), expect=None
        )
    if copier:
        place.forked()
    theirs = tmp_path / "dst" / "theirs"
    theirs.write_bytes(b"theirs")
    name = tmp_path / "dst" / "sub" / "a.txt"
    renamed = os.rename

    def then_taken_over(*args: Any, **kwargs: Any) -> None:
        renamed(*args, **kwargs)
        if os.path.exists(theirs):
            renamed(theirs, name)

    fresh = LocalReplica._rename_fresh

    def fresh_then_taken_over(self: LocalReplica, *args: Any) -> None:
        fresh(self, *args)
        renamed(theirs, name)

    monkeypatch.setattr(LocalReplica, "_rename_fresh", fresh_then_taken_over)
    monkeypatch.setattr(local.os, "rename", then_taken_over)
    data = b"mine" * 1000
    try:
        made = place.write(
            "sub/a.txt", io.BytesIO(data), like=like("sub/a.txt", data), expect=expect
        )
    finally:
        monkeypatch.undo()
        place.close()
    now = os.stat(name)
    assert made.size == len(data) and now.st_size == len(b"theirs")
    assert made.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert made.mtime_ns == like("sub/a.txt", data).mtime_ns
