"""New folders on a place across a network are made a level of the tree at
a time on worker threads (``engine/transfer.py: folders_threaded``): each
folder's parent exists before it is made, all are made, and the report
lists them in the plan's order."""

from __future__ import annotations

import threading
from pathlib import Path

from accord import api
from accord.engine.spelled import spelled
from accord.errors import AccordError, PreconditionFailed
from accord.fsdb.place import FSDBView
from accord.model import Entry
from accord.replicas.local import LocalReplica


class Networked(LocalReplica):
    """A local folder that declares transfers in parallel, as a remote
    place does, and notes where its folders are made."""

    def open(self, create: bool = False) -> None:
        super().open(create)
        self.capabilities = self.capabilities._replace(parallel_transfers=True)
        self.made: list[tuple[str, bool, str]] = []

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        parent = key.rpartition("/")[0]
        there = not parent or (Path(self.root) / parent).is_dir()
        self.made.append((key, there, threading.current_thread().name))
        return super().make_dir(key, like=like, expect=expect)


#: 4 + 12 + 36 folders, a file in each of the deepest
NAMES = [f"{a}/{b}/{c}" for a in "abcd" for b in "xyz" for c in "123"]


def _trees(tmp_path: Path) -> tuple[Path, Path]:
    left, right = tmp_path / "l", tmp_path / "r"
    for name in NAMES:
        (left / name).mkdir(parents=True)
        (left / name / "f.txt").write_text(name)
    right.mkdir()
    return left, right


def test_folders_are_made_level_by_level_on_threads(tmp_path: Path) -> None:
    left, right = _trees(tmp_path)
    target = Networked(str(right))
    report = api.mirror(str(left), target, state_dir=tmp_path / "s")
    folders = [o.action.key for o in report.done if o.action.entry.kind == "dir"]
    assert len(folders) == 4 + 12 + 36
    assert folders == sorted(folders)  # the plan's order
    assert all(there for _, there, _ in target.made)
    assert len({thread for _, _, thread in target.made}) > 1
    for name in NAMES:
        assert (right / name / "f.txt").read_text() == name


class Batched(Networked):
    """A networked place that makes several new folders at once
    (``make_dirs``), noting each call, and refuses one name."""

    refuse = "b/y"

    def make_dirs(self, items):  # type: ignore[no-untyped-def]
        self.calls = [*getattr(self, "calls", []), [key for key, _ in items]]
        found = []
        for key, like in items:
            if key == self.refuse:
                found.append(
                    PreconditionFailed("refused here", where=self.url, key=key)
                )
                continue
            try:
                found.append(self.make_dir(key, like=like, expect=None))
            except AccordError as exc:
                found.append(exc)
        return found


def test_folders_go_in_one_call_where_the_place_takes_several(tmp_path: Path) -> None:
    left, right = _trees(tmp_path)
    target = Batched(str(right))
    report = api.mirror(str(left), target, state_dir=tmp_path / "s")
    (sent,) = target.calls
    assert len(sent) == 4 + 12 + 36
    depth = [key.count("/") for key in sent]
    assert depth == sorted(depth)  # each folder's parent before it
    assert all(there for key, there, _ in target.made if not key.startswith("b/y/"))
    folders = [o.action.key for o in report.outcomes if o.action.entry.kind == "dir"]
    assert folders == sorted(folders)  # the plan's order
    assert [o.action.key for o in report.skipped] == ["b/y"]
    failed = {o.action.key for o in report.failed}
    assert {f"b/y/{c}" for c in "123"} <= failed  # nothing made inside
    for name in NAMES:
        if not name.startswith("b/y/"):
            assert (right / name / "f.txt").read_text() == name
    assert not (right / "b" / "y").exists()


def test_views_that_rename_keys_make_folders_one_by_one(tmp_path: Path) -> None:
    """A place seen through a view that maps keys to other names (twins
    spelled otherwise, an fsdb scan built in its staging folder) is never
    handed a batch of folders under the run's keys: the view says None,
    and its own ``make_dir`` maps each name."""
    place = Batched(str(tmp_path))
    place.open()
    folder = Entry("a", "dir", 0, 0, 0o755, None)
    assert place.make_dirs([("a", folder)]) is not None  # the place itself
    assert spelled(place, {"b": "B"}).make_dirs([("a", folder)]) is None
    assert FSDBView(place).make_dirs([("a", folder)]) is None  # type: ignore[arg-type]
