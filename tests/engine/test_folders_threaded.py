"""New folders on a place across a network are made a level of the tree at
a time on worker threads (``engine/transfer.py: folders_threaded``): each
folder's parent exists before it is made, all are made, and the report
lists them in the plan's order."""

from __future__ import annotations

import threading
from pathlib import Path

from accord import api
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


def test_folders_are_made_level_by_level_on_threads(tmp_path: Path) -> None:
    left, right = tmp_path / "l", tmp_path / "r"
    names = [f"{a}/{b}/{c}" for a in "abcd" for b in "xyz" for c in "123"]
    for name in names:
        (left / name).mkdir(parents=True)
        (left / name / "f.txt").write_text(name)
    right.mkdir()
    target = Networked(str(right))
    report = api.mirror(str(left), target, state_dir=tmp_path / "s")
    folders = [o.action.key for o in report.done if o.action.entry.kind == "dir"]
    assert len(folders) == 4 + 12 + 36
    assert folders == sorted(folders)  # the plan's order
    assert all(there for _, there, _ in target.made)
    assert len({thread for _, _, thread in target.made}) > 1
    for name in names:
        assert (right / name / "f.txt").read_text() == name
