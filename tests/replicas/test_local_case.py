"""A case-only rename on a local place that takes both spellings for one name."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from accord import api
from accord.model import FILE, Entry, Problem, Side
from accord.replicas import local_at, local_case, local_tree
from accord.replicas.local import LocalReplica


def test_rename_case_stores_the_new_spelling(tmp_path: Path) -> None:
    (tmp_path / "Readme.md").write_text("read me\n")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        local_at.rename_case(fd, "Readme.md", fd, "README.md")
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["README.md"]
    assert (tmp_path / "README.md").read_text() == "read me\n"


def test_rename_case_puts_the_item_back_when_it_fails(tmp_path: Path) -> None:
    (tmp_path / "Readme.md").write_text("read me\n")
    (tmp_path / "README.md").write_text("another file\n")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(FileExistsError):
            local_at.rename_case(fd, "Readme.md", fd, "README.md")
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["README.md", "Readme.md"]
    assert (tmp_path / "Readme.md").read_text() == "read me\n"


def test_move_to_a_spelling_the_disk_takes_for_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a case-insensitive disk the new spelling already names the item;
    the move goes through a temporary name instead of being refused."""
    (tmp_path / "Readme.md").write_text("read me\n")
    place = LocalReplica(str(tmp_path), case_sensitive=False)
    place.open()
    old = place.stat("Readme.md")
    assert old is not None
    seen = []

    def same_item(fd: int, name: str, other_fd: int, other: str) -> bool:
        seen.append((name, other))
        return True  # what a case-insensitive disk answers

    monkeypatch.setattr(local_tree, "same_item", same_item)
    moved = place.move("Readme.md", "README.md", expect=old)
    place.close()
    assert seen == [("Readme.md", "README.md")]
    assert moved.key == "README.md"
    assert sorted(os.listdir(tmp_path)) == [".accord", "README.md"]
    assert not any((tmp_path / ".accord").rglob("*case*"))  # its note went


# -- a run killed between the two renames ---------------------------------
# This machine offers no case-insensitive file system to the tests: the
# disk's answer (one item under both spellings) is given by ``same_item``,
# the rest is the real code on a real folder.


def _one_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_tree, "same_item", lambda fd, name, other_fd, other: True)


def _killed_between_the_renames(
    monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]
) -> None:
    """``run()`` in a child process killed right after a case-only rename's
    first rename (to the temporary name)."""
    rename_new = local_at.rename_new

    def dying(source: str, target: str, *folders: int | None) -> None:
        if source.startswith(local_case.CASE):
            os._exit(9)
        rename_new(source, target, *folders)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the process that is killed
        try:
            _one_name(monkeypatch)
            monkeypatch.setattr(local_at, "rename_new", dying)
            run()
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 9


def _listed(place: LocalReplica) -> list[Entry]:
    return [e for e in place.scan() if isinstance(e, Entry)]


def _odd(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob(f"{local_case.CASE}*")
        if ".accord" not in p.relative_to(root).parts
    )


def test_the_next_listing_puts_back_an_item_left_under_the_temporary_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "Readme.md").write_text("read me\n")

    def move() -> None:
        place = LocalReplica(str(tmp_path), case_sensitive=False)
        place.open()
        old = place.stat("docs/Readme.md")
        assert old is not None
        place.move("docs/Readme.md", "docs/README.md", expect=old)

    _killed_between_the_renames(monkeypatch, move)
    assert len(_odd(tmp_path)) == 1  # the user's file, under accord's name

    place = LocalReplica(str(tmp_path))
    place.open()
    listed = [e.key for e in _listed(place) if e.kind == FILE]
    place.close()
    assert listed == ["docs/Readme.md"]  # back under the name the archive knows
    assert _odd(tmp_path) == []
    assert (tmp_path / "docs" / "Readme.md").read_text() == "read me\n"
    assert not any((tmp_path / ".accord").rglob("case"))  # the note went too


def test_an_interrupted_sync_completes_the_case_only_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is made again by the next run; no temporary name is ever
    copied to the other side, nor the item deleted there."""
    left, right, state = tmp_path / "left", tmp_path / "right", tmp_path / "state"
    left.mkdir()
    (left / "Readme.md").write_text("read me\n")
    assert api.sync(str(left), str(right), state_dir=state).ok
    (left / "Readme.md").rename(left / "README.md")

    _killed_between_the_renames(
        monkeypatch, lambda: api.sync(str(left), str(right), state_dir=state)
    )
    assert len(_odd(right)) == 1

    again = api.sync(str(left), str(right), state_dir=state)
    assert again.ok, again.failed
    for side in (left, right):
        assert _odd(side) == []
        names = sorted(p.name for p in side.iterdir() if p.name != ".accord")
        assert names == ["README.md"]
        assert (side / "README.md").read_text() == "read me\n"


def test_the_listing_leaves_out_a_rename_under_way_or_one_it_cannot_put_back(
    tmp_path: Path,
) -> None:
    """A running process's temporary name is not an item; neither is one
    whose old name was taken meanwhile (it stays noted, and out of sight,
    rather than be copied as a file of the user's)."""
    running = tmp_path / ".accord" / "tmp" / f"{os.getpid()}-0000aaaa"
    ended = tmp_path / ".accord" / "tmp" / "999999999-0000bbbb"
    for own, temp, name in (
        (running, f"{local_case.CASE}{running.name}-0", "one.txt"),
        (ended, f"{local_case.CASE}{ended.name}-0", "two.txt"),
    ):
        own.mkdir(parents=True)
        local_case.note(f"{own}/", "", temp, name)
        (tmp_path / temp).write_text(name)
    (tmp_path / "two.txt").write_text("taken meanwhile")
    (tmp_path / f"{local_case.CASE}mine").write_text("a file of the user's")

    place = LocalReplica(str(tmp_path))
    place.open()
    listed = sorted(e.key for e in _listed(place))
    assert listed == [f"{local_case.CASE}mine", "two.txt"]
    place.clean_temp()  # an interrupted run's: every process has ended
    place.close()
    assert (tmp_path / "one.txt").read_text() == "one.txt"
    assert (tmp_path / "two.txt").read_text() == "taken meanwhile"
    assert (tmp_path / f"{local_case.CASE}{ended.name}-0").read_text() == "two.txt"
    assert (ended / "case").exists()  # still noted: still out of listings


def _stuck(root: Path) -> str:
    """An item a killed case-only rename left under its temporary name,
    whose old name another item took meanwhile: its temporary name."""
    own = root / ".accord" / "tmp" / "999999999-0000cccc"
    own.mkdir(parents=True)
    temp = f"{local_case.CASE}{own.name}-0"
    (root / "docs").mkdir()
    local_case.note(f"{own}/", "docs", temp, "Readme.md")
    (root / "docs" / temp).write_text("read me\n")
    (root / "docs" / "Readme.md").write_text("took the name meanwhile\n")
    return temp


def test_an_item_that_cannot_go_back_is_reported_where_it_is(tmp_path: Path) -> None:
    """Every listing names it, where it is and what to do; it stays out of
    the listing, and neither it nor the item that took its name is
    touched, until the user renames it."""
    temp = _stuck(tmp_path)
    place = LocalReplica(str(tmp_path))
    place.open()
    for _ in range(2):
        listed = list(place.scan())
        told = [p for p in listed if isinstance(p, Problem)]
        assert [p.key for p in told] == [f"docs/{temp}"]
        assert "this is docs/Readme.md" in told[0].message
        assert "another item is named Readme.md now" in told[0].message
        assert "until you rename it" in told[0].message
        keys = sorted(e.key for e in listed if isinstance(e, Entry))
        assert keys == ["docs", "docs/Readme.md"]
    place.clean_temp()
    assert (tmp_path / "docs" / temp).read_text() == "read me\n"
    assert (tmp_path / "docs" / "Readme.md").read_text() == "took the name meanwhile\n"

    (tmp_path / "docs" / temp).rename(tmp_path / "docs" / "Readme-old.md")
    listed = list(place.scan())
    place.close()
    assert not [p for p in listed if isinstance(p, Problem)]
    keys = sorted(e.key for e in listed if isinstance(e, Entry))
    assert keys == ["docs", "docs/Readme-old.md", "docs/Readme.md"]
    assert not any((tmp_path / ".accord").rglob("case"))  # the note went


def test_a_sync_tells_of_an_item_that_cannot_go_back(tmp_path: Path) -> None:
    left, right, state = tmp_path / "left", tmp_path / "right", tmp_path / "state"
    left.mkdir()
    temp = _stuck(left)
    report = api.sync(str(left), str(right), state_dir=state)
    assert [(p.key, p.side) for p in report.problems] == [(f"docs/{temp}", Side.LEFT)]
    assert (left / "docs" / temp).read_text() == "read me\n"
    assert sorted(p.name for p in (right / "docs").iterdir()) == ["Readme.md"]
