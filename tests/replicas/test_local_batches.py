"""The local place reads and writes small files many at a time, by descriptors.

What the SSH agent's batches go through: ``LocalReplica.read_small`` (the
client reading a batch's sources) and ``LocalReplica.write_batch`` (the
agent writing them). Each file is read whole and its stamp checked
unchanged since it was listed; each new file goes into a temporary file
and is renamed into place only where nothing is; one file's failure stops
no other, and nothing is left behind.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.errors import AccordError, NotFound, PreconditionFailed
from accord.model import FILE, Entry
from accord.replica import WriteItem
from accord.replicas.local import LocalReplica

_MTIME = 1_700_000_000_123_456_789


@pytest.fixture
def place(tmp_path: Path) -> Iterator[LocalReplica]:
    (tmp_path / "p" / "sub").mkdir(parents=True)
    replica = LocalReplica(str(tmp_path / "p"))
    replica.open(create=True)
    yield replica
    replica.close()


def _like(key: str, data: bytes, digest: bool = False) -> Entry:
    told = f"sha256:{hashlib.sha256(data).hexdigest()}" if digest else None
    return Entry(key, FILE, len(data), _MTIME, 0o640, "", told)


def _listed(place: LocalReplica, key: str) -> Entry:
    entry = place.stat(key)
    assert entry is not None
    return entry


def _temps(place: LocalReplica) -> list[Path]:
    return [p for p in Path(place.root, ".accord", "tmp").rglob("*") if p.is_file()]


def test_files_are_read_whole_each_checked_unchanged(place: LocalReplica) -> None:
    root = Path(place.root)
    for name, data in (("a", b"a" * 10), ("b", b""), ("sub/c", b"c" * 5000)):
        (root / name).write_bytes(data)
    listed = [_listed(place, key) for key in ("a", "b", "sub/c")]
    grown, shrunk, replaced, vanished = "sub/e", "sub/f", "sub/g", "sub/h"
    for key in (grown, shrunk, replaced, vanished):
        (root / key).write_bytes(b"12345")
    late = [_listed(place, key) for key in (grown, shrunk, replaced, vanished)]
    with open(root / grown, "ab") as handle:
        handle.write(b"6")
    (root / shrunk).write_bytes(b"1234")
    (root / "new").write_bytes(b"12345")
    os.replace(root / "new", root / replaced)  # same bytes, another file
    os.unlink(root / vanished)
    found = place.read_small(listed + late)
    assert found[:3] == [b"a" * 10, b"", b"c" * 5000]
    assert all(isinstance(f, PreconditionFailed) for f in found[3:6]), found
    assert isinstance(found[6], NotFound)


def test_a_folder_swapped_for_a_link_is_not_read_through(
    place: LocalReplica, tmp_path: Path
) -> None:
    root = Path(place.root)
    (root / "sub" / "a").write_bytes(b"inside")
    listed = _listed(place, "sub/a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a").write_bytes(b"inside")
    os.rename(root / "sub", tmp_path / "moved")
    os.symlink(outside, root / "sub")
    (found,) = place.read_small([listed])
    assert isinstance(found, PreconditionFailed), found


def test_new_files_are_written_and_what_appeared_is_kept(place: LocalReplica) -> None:
    root = Path(place.root)
    (root / "sub" / "taken").write_bytes(b"appeared meanwhile")
    (root / "old").write_bytes(b"old")
    old = _listed(place, "old")
    items = [
        WriteItem("a", b"a" * 100, _like("a", b"a" * 100, digest=True), None),
        WriteItem("sub/taken", b"mine", _like("sub/taken", b"mine"), None),
        WriteItem("sub/bad", b"read", _like("sub/bad", b"planned", digest=True), None),
        WriteItem("sub/empty", b"", _like("sub/empty", b""), None),
        WriteItem("old", b"new", _like("old", b"new"), old, "run-1"),
        WriteItem("../out", b"x", _like("../out", b"x"), None),
        WriteItem("sub/\ud800", b"x", _like("sub/\ud800", b"x"), None),
        WriteItem("sub/last", b"x", _like("sub/last", b"x"), None),
    ]
    results = place.write_batch(items)
    made = results[0]
    assert isinstance(made, Entry)
    assert made == _listed(place, "a")._replace(digest=made.digest)
    assert made.digest == f"sha256:{hashlib.sha256(b'a' * 100).hexdigest()}"
    assert (made.mtime_ns, made.mode) == (_MTIME, 0o640)
    assert isinstance(results[1], PreconditionFailed)
    assert (root / "sub" / "taken").read_bytes() == b"appeared meanwhile"
    assert isinstance(results[2], PreconditionFailed)
    assert not (root / "sub" / "bad").exists()
    assert (
        isinstance(results[3], Entry) and (root / "sub" / "empty").stat().st_size == 0
    )
    assert isinstance(results[4], Entry) and (root / "old").read_bytes() == b"new"
    assert [t.key for t in place.trash_list()] == ["old"]
    assert isinstance(results[5], AccordError)
    assert not (Path(place.root).parent / "out").exists()
    assert isinstance(results[6], AccordError)  # not encodable: that item alone
    assert isinstance(results[7], Entry)
    assert _temps(place) == []


def test_a_new_file_is_not_written_through_a_link(
    place: LocalReplica, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, Path(place.root) / "linked")
    (result,) = place.write_batch(
        [WriteItem("linked/a", b"a", _like("linked/a", b"a"), None)]
    )
    assert isinstance(result, PreconditionFailed), result
    assert list(outside.iterdir()) == []
    assert _temps(place) == []
