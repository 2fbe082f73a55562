"""A folder replaced by a link after the scan is never written through.

Between the plan and a change, someone swaps a folder of the tree for a
symbolic link to a folder elsewhere. Every change the local place makes
below that folder must be refused (PreconditionFailed, so the engine skips
the item and reports it), and nothing may appear, change or vanish outside
the synced tree.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from _trees import files

from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import PreconditionFailed
from accord.model import DIR, FILE, LINK, Entry
from accord.replicas import local_at
from accord.replicas.local import LocalReplica

_MTIME = 1_700_000_000_000_000_000


def like(key: str, data: bytes = b"new") -> Entry:
    return Entry(key, FILE, len(data), _MTIME, 0o644, "")


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of reaching a folder: one openat2 call, or a walk of O_NOFOLLOW
    opens (where the kernel does not offer openat2)."""
    if request.param == "walk":
        monkeypatch.setattr(local_at, "_openat2", False)
    return str(request.param)


@pytest.fixture
def place(tmp_path: Path, resolver: str) -> LocalReplica:
    root = tmp_path / "tree"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "deep" / "a.txt").write_text("inside\n")
    (root / "sub" / "a.txt").write_text("inside\n")
    replica = LocalReplica(str(root))
    replica.open()
    yield replica
    replica.close()


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder outside the tree, holding what a swapped link points at."""
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "a.txt").write_text("outside\n")
    (outside / "a.txt").write_text("outside\n")
    return outside


def swap(place: LocalReplica, folder: str, target: Path) -> None:
    """Replace the tree's ``folder`` by a link to ``target``."""
    path = Path(place.root) / folder
    path.rename(path.with_name(path.name + ".moved"))
    os.symlink(target, path)


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below ``root``: content, mode and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        found[str(path.relative_to(root))] = (data, info.st_mode, info.st_mtime_ns)
    return found


Op = Callable[[LocalReplica, dict[str, Entry]], object]

OPERATIONS: dict[str, Op] = {
    "write new": lambda p, e: p.write(
        "sub/new.txt", io.BytesIO(b"new"), like=like("sub/new.txt"), expect=None
    ),
    "write over": lambda p, e: p.write(
        "sub/a.txt", io.BytesIO(b"new"), like=like("sub/a.txt"), expect=e["sub/a.txt"]
    ),
    "write deeper": lambda p, e: p.write(
        "sub/deep/new.txt",
        io.BytesIO(b"new"),
        like=like("sub/deep/new.txt"),
        expect=None,
    ),
    "make_dir": lambda p, e: p.make_dir(
        "sub/newdir", like=Entry("sub/newdir", DIR, mode=0o700), expect=None
    ),
    "make_link": lambda p, e: p.make_link(
        "sub/link",
        like=Entry("sub/link", LINK, mtime_ns=_MTIME, target="x"),
        expect=None,
    ),
    "set_meta": lambda p, e: p.set_meta(
        "sub/a.txt",
        like=e["sub/a.txt"]._replace(mode=0o600, mtime_ns=_MTIME),
        expect=e["sub/a.txt"],
    ),
    "delete": lambda p, e: p.delete("sub/a.txt", expect=e["sub/a.txt"], trash=None),
    "delete to trash": lambda p, e: p.delete(
        "sub/a.txt", expect=e["sub/a.txt"], trash="20260101T000000Z-000000"
    ),
    "move out": lambda p, e: p.move("sub/a.txt", "moved.txt", expect=e["sub/a.txt"]),
    "move in": lambda p, e: p.move("top.txt", "sub/top.txt", expect=e["top.txt"]),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_no_change_goes_through_a_folder_swapped_for_a_link(
    place: LocalReplica, elsewhere: Path, name: str
) -> None:
    root = Path(place.root)
    (root / "top.txt").write_text("top\n")
    planned = {e.key: e for e in place.entries()}  # the scan, before the swap
    for key in ("sub/a.txt", "sub/deep/a.txt"):
        # the item outside looks exactly like the one planned for
        os.utime(elsewhere / key[4:], ns=(planned[key].mtime_ns,) * 2)
    swap(place, "sub", elsewhere)
    outside = snapshot(elsewhere)

    with pytest.raises(PreconditionFailed, match="replaced by a link"):
        OPERATIONS[name](place, planned)

    assert snapshot(elsewhere) == outside
    assert (root / "top.txt").read_text() == "top\n"
    assert files(root) == {
        "sub.moved/a.txt": b"inside\n",
        "sub.moved/deep/a.txt": b"inside\n",
        "top.txt": b"top\n",
    }


def test_a_folder_swapped_during_a_copy_is_not_written_through(
    place: LocalReplica, elsewhere: Path
) -> None:
    """The check is made when the file is installed, not when the copy starts."""

    class SwapsWhileRead(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() == 0:
                swap(place, "sub/deep", elsewhere / "deep")
            return super().read(size)

    outside = snapshot(elsewhere)
    with pytest.raises(PreconditionFailed, match="replaced by a link"):
        place.write(
            "sub/deep/new.txt",
            SwapsWhileRead(b"new"),
            like=like("sub/deep/new.txt"),
            expect=None,
        )
    assert snapshot(elsewhere) == outside
    assert "sub/deep.moved/new.txt" not in files(Path(place.root))


def test_a_link_to_a_folder_at_the_root_is_still_followed(tmp_path: Path) -> None:
    """Only folders below the root are checked: the root may be a link."""
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "root-link")
    replica = LocalReplica(str(tmp_path / "root-link"))
    replica.open()
    try:
        replica.make_dir("d", like=Entry("d", DIR, mode=0o755), expect=None)
        replica.write("d/f.txt", io.BytesIO(b"new"), like=like("d/f.txt"), expect=None)
    finally:
        replica.close()
    assert (real / "d" / "f.txt").read_bytes() == b"new"


def test_a_run_skips_and_reports_an_item_below_a_swapped_folder(
    tmp_path: Path, elsewhere: Path
) -> None:
    left, right = tmp_path / "left", tmp_path / "right"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "one.txt").write_text("one\n")
    state = tmp_path / "state"
    with Session(str(left), str(right), state_dir=state) as session:
        session.apply(session.plan())
    (left / "sub" / "two.txt").write_text("two\n")
    outside = snapshot(elsewhere)
    with Session(str(left), str(right), policy=Policy(), state_dir=state) as session:
        plan = session.plan()
        assert [(a.op, a.key) for a in plan.changes] == [("copy", "sub/two.txt")]
        (right / "sub").rename(right / "sub.moved")
        os.symlink(elsewhere, right / "sub")
        report = session.apply(plan)
    assert [o.action.key for o in report.skipped] == ["sub/two.txt"]
    assert "replaced by a link" in report.skipped[0].message
    assert not report.failed
    assert snapshot(elsewhere) == outside


def test_a_copy_never_reads_through_a_folder_swapped_for_a_link(
    place: LocalReplica, elsewhere: Path
) -> None:
    """The source side: what lies outside the tree is never read (a mirror
    would carry it to the other place)."""
    entries = {e.key: e for e in place.entries()}
    swap(place, "sub", elsewhere)
    with pytest.raises(PreconditionFailed, match="replaced by a link"):
        place.open_read("sub/a.txt")
    with pytest.raises(PreconditionFailed, match="replaced by a link"):
        place.digest(entries["sub/a.txt"])


def test_a_copy_never_reads_a_file_swapped_for_a_link(
    place: LocalReplica, elsewhere: Path
) -> None:
    target = Path(place.root) / "sub" / "a.txt"
    target.unlink()
    os.symlink(elsewhere / "a.txt", target)
    with pytest.raises(PreconditionFailed, match="replaced by a link"):
        place.open_read("sub/a.txt")


def test_a_mirror_skips_a_source_item_below_a_swapped_folder(
    tmp_path: Path, elsewhere: Path
) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.txt").write_text("inside\n")
    (source / "top.txt").write_text("top\n")
    policy = Policy(mode="mirror")
    with Session(str(source), str(target), policy=policy, state_dir=tmp_path) as run:
        plan = run.plan()
        (source / "sub").rename(source / "sub.moved")
        os.symlink(elsewhere, source / "sub")
        report = run.apply(plan)
    assert [o.action.key for o in report.skipped] == ["sub/a.txt"]
    assert "replaced by a link" in report.skipped[0].message
    assert (target / "top.txt").read_text() == "top\n"
    assert not (target / "sub" / "a.txt").exists()


def test_a_copier_keeps_a_folder_open_but_never_writes_through_a_link(
    place: LocalReplica, elsewhere: Path
) -> None:
    """A forked copier keeps the folder it writes in open between items:
    a folder swapped for a link before its first write there is refused;
    one swapped after it holds the next item in the folder itself (moved
    aside), never what the link points at."""
    place.forked()
    root = Path(place.root)
    outside = snapshot(elsewhere)
    swap(place, "sub/deep", elsewhere / "deep")
    with pytest.raises(PreconditionFailed, match="replaced by a link"):
        place.write(
            "sub/deep/new.txt",
            io.BytesIO(b"new"),
            like=like("sub/deep/new.txt"),
            expect=None,
        )
    place.write(
        "sub/one.txt", io.BytesIO(b"new"), like=like("sub/one.txt"), expect=None
    )
    swap(place, "sub", elsewhere)
    place.write(
        "sub/two.txt", io.BytesIO(b"new"), like=like("sub/two.txt"), expect=None
    )
    assert snapshot(elsewhere) == outside
    assert files(root)["sub.moved/two.txt"] == b"new"


def test_a_copier_drops_its_open_folder_when_folders_change(
    tmp_path: Path,
) -> None:
    """A move, delete or new folder through the place drops the folder a
    copier keeps open: the next write goes to the folder now at that name."""
    root = tmp_path / "tree"
    (root / "a").mkdir(parents=True)
    place = LocalReplica(str(root))
    place.open()
    place.forked()
    try:
        place.write("a/x", io.BytesIO(b"x"), like=like("a/x", b"x"), expect=None)
        folder = place.stat("a")
        assert folder is not None
        place.move("a", "b", expect=folder)
        place.make_dir("a", like=Entry("a", DIR, mode=0o755), expect=None)
        place.write("a/y", io.BytesIO(b"y"), like=like("a/y", b"y"), expect=None)
        old = place.stat("b")
        assert old is not None
        place.write("b/z", io.BytesIO(b"z"), like=like("b/z", b"z"), expect=None)
        place.delete("b/z", expect=place.stat("b/z"), trash=None)  # type: ignore[arg-type]
        place.delete("b/x", expect=place.stat("b/x"), trash=None)  # type: ignore[arg-type]
        place.delete("b", expect=old, trash=None)
        place.make_dir("b", like=Entry("b", DIR, mode=0o755), expect=None)
        place.write("b/w", io.BytesIO(b"w"), like=like("b/w", b"w"), expect=None)
    finally:
        place.close()
    assert files(root) == {"a/y": b"y", "b/w": b"w"}


def test_two_copiers_writing_beside_one_folder_use_distinct_names(
    tmp_path: Path,
) -> None:
    """Across a mount point a temporary file is made beside its target; two
    copiers (each counting its names from the same number) writing into one
    folder at once must not collide."""
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    one, two = LocalReplica(str(root)), LocalReplica(str(root))
    for place in (one, two):
        place.open()
        place.forked()
        place._same_device["sub"] = False  # as if "sub" were another disk

    class WritesTheOther(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() == 0:  # while one's temporary file exists
                two.write(
                    "sub/b", io.BytesIO(b"b"), like=like("sub/b", b"b"), expect=None
                )
            return super().read(size)

    try:
        one.write("sub/a", WritesTheOther(b"a"), like=like("sub/a", b"a"), expect=None)
    finally:
        one.close()
        two.close()
    assert files(root) == {"sub/a": b"a", "sub/b": b"b"}
