"""A first copy's listing made by two processes at once
(``detect.scan_shared``): a forked child lists the folders its share is
dealt, this process the others, and together they are the listing one
walk makes (problems, refused names and ignored items included). When
the tree changes between the two walks, the shares do not make one
listing: the run lists again in one walk. A view in front of a local
folder, or a folder kind with a listing of its own, is not listed so."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.capabilities import Capabilities
from accord.engine import detect
from accord.engine.names import Gate
from accord.engine.session import Session
from accord.keys import IgnoreRules
from accord.model import DIR, Entry, Problem, Side
from accord.replicas.local import LocalReplica


@pytest.fixture(autouse=True)
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads another test left running (a server's) do not stop the
    listing from forking here."""
    monkeypatch.setattr("accord.engine.detect.can_fork", lambda: True)


def _tree(root: Path) -> None:
    """Folders of uneven sizes, nested, with a link, a named pipe, an
    ignored folder and names a picky target refuses (a folder of them)."""
    for top in range(6):
        for sub in range(top + 1):
            folder = root / f"top{top}" / f"sub{sub}"
            folder.mkdir(parents=True)
            for number in range(3 * top + sub):
                (folder / f"f{number}.txt").write_text(f"{top} {sub} {number}")
    (root / "a.txt").write_text("a file at the root, sorting before a/")
    (root / "a").mkdir()
    (root / "a" / "b").write_text("in a/")
    (root / "top1" / "link").symlink_to("sub0/f0.txt")
    os.mkfifo(root / "top2" / "pipe")
    (root / "cache").mkdir()
    (root / "cache" / "big.bin").write_text("ignored")
    (root / "top3" / "odd:name").mkdir()
    (root / "top3" / "odd:name" / "x.txt").write_text("refused")
    (root / "top3" / "odd:name" / "y:z.txt").write_text("refused, deepest")


def _opened_tree(tmp_path: Path) -> tuple[Path, LocalReplica]:
    """``_tree`` in ``tmp_path/src``, and that folder as an opened place."""
    root = tmp_path / "src"
    root.mkdir()
    _tree(root)
    place = LocalReplica(str(root))
    place.open()
    return root, place


def _gate(root: Path) -> Gate:
    return Gate(str(root), Capabilities(forbidden_chars=":"), "/elsewhere")


def test_the_shares_make_the_listing_of_one_walk(tmp_path: Path) -> None:
    root, place = _opened_tree(tmp_path)
    ignore = IgnoreRules(["cache/"])
    shared = detect.scan_shared(place, Side.LEFT, ignore, _gate(root))
    walked = detect.scan_side(place, {}, Side.LEFT, ignore, _gate(root))
    assert shared is not None
    assert shared.fresh == walked.fresh
    assert [type(e) for e in shared.fresh] == [Entry] * len(walked.fresh)
    assert shared.problems == walked.problems
    assert shared.seen == walked.seen
    assert shared.unseen == walked.unseen == []
    keys = [e.key for e in shared.fresh]
    assert keys == sorted(keys)
    assert "cache/big.bin" not in keys
    assert {p.key for p in shared.problems} >= {"top2/pipe", "top3/odd:name/y:z.txt"}
    # each share listed some folders: the work was split
    gate = _gate(root)
    place.settle_names()
    shares = [detect._share(place, Side.LEFT, ignore, gate, n) for n in (0, 1)]
    assert all(share[0] for share in shares)
    assert detect._one_listing([share[4] for share in shares])


def test_a_tree_changed_between_the_walks_is_listed_again(tmp_path: Path) -> None:
    root, place = _opened_tree(tmp_path)
    gate = Gate(str(root))
    theirs = detect._share(place, Side.LEFT, None, gate, 1)
    shutil.rmtree(root / "top5")  # the biggest folder goes: the deal moves
    (root / "top0" / "new").mkdir()
    mine = detect._share(place, Side.LEFT, None, gate, 0)
    assert not detect._one_listing([mine[4], theirs[4]])


def test_folders_listed_twice_or_never_are_no_listing() -> None:
    one = detect._one_listing
    assert one([(["", "b"], ["a", "b"]), (["a"], [])])
    assert not one([(["", "a", "b"], ["a", "b"]), (["a"], [])])  # a twice
    assert not one([(["", "b"], ["a", "b"]), ([], [])])  # a never
    assert not one([(["", "b"], ["b"]), (["a"], [])])  # a not found


class View:
    """A view in front of a place, forwarding what it does not define."""

    def __init__(self, inner: LocalReplica) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class OwnListing(LocalReplica):
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str | int]:
        return super().scan(ignore, known)


def test_only_a_local_folder_itself_is_listed_in_shares(tmp_path: Path) -> None:
    place = LocalReplica(str(tmp_path))
    assert detect.lists_in_shares(place)
    assert not detect.lists_in_shares(View(place))  # type: ignore[arg-type]
    assert not detect.lists_in_shares(OwnListing(str(tmp_path)))
    assert detect.scan_shared(OwnListing(str(tmp_path)), Side.LEFT) is None


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The places a run lists in one walk (``scan_side``), not in shares."""
    walked: list[str] = []

    def one_walk(place: Any, *args: Any) -> Any:
        walked.append(place.url)
        return detect.scan_side(place, *args)

    monkeypatch.setattr("accord.engine.session.scan_side", one_walk)
    return walked


def _held(root: Path) -> list[str]:
    """Every item under ``root`` but accord's own, as sorted relative paths."""
    found = [p for p in root.rglob("*") if ".accord" not in p.parts]
    return sorted(str(p.relative_to(root)) for p in found)


def test_a_first_copy_into_a_new_folder(tmp_path: Path, walks: list[str]) -> None:
    """The run lists the source in shares, not in one walk, and copies
    all of it."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _tree(src)
    os.unlink(src / "top2" / "pipe")
    with Session(str(src), str(dst), state_dir=tmp_path / "state") as session:
        plan = session.plan()
        report = session.apply(plan)
    assert report.ok
    copied = _held(dst)
    held = _held(src)
    assert walks == []
    assert copied == held
    assert (dst / "top1" / "link").readlink() == Path("sub0/f0.txt")
    assert sum(1 for a in plan.actions if a.entry and a.entry.kind == DIR) == 30


def test_a_first_sync_of_two_folders_lists_each_in_shares(
    tmp_path: Path, walks: list[str]
) -> None:
    """Two existing folders, nothing archived: each is listed in shares,
    one after the other, and the run brings both to the union."""
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    _tree(left)
    os.unlink(left / "top2" / "pipe")
    (right / "top0" / "sub0").mkdir(parents=True)
    (right / "top0" / "sub0" / "theirs.txt").write_text("from the right")
    (right / "only").mkdir()
    (right / "only" / "r.txt").write_text("right only")
    with Session(str(left), str(right), state_dir=tmp_path / "state") as session:
        report = session.apply(session.plan())
    assert report.ok
    assert walks == []
    assert _held(left) == _held(right)
    assert (left / "only" / "r.txt").read_text() == "right only"
    assert (right / "top5" / "sub5" / "f19.txt").read_text() == "5 5 19"
