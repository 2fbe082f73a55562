"""The watcher in this process, with a folder whose file changes while it
is copied (a writer that was not finished): the copy is refused by the
engine's check of the source, and the watcher runs again for it."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from accord.registry import register
from accord.replicas.local import LocalReplica
from accord.watch import Pair, Watcher

_EDITS: list[str] = []


class EditingFolder(LocalReplica):
    """A local folder in which ``doc.txt`` grows once, as it is first read."""

    scheme = "editing"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> EditingFolder:
        return cls(url.removeprefix("editing://"), **options)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        with super().open_read(key) as stream:
            if key == "doc.txt" and not _EDITS:
                _EDITS.append(key)
                with open(os.path.join(self.root, key), "ab") as handle:
                    handle.write(b"the end of the sentence\n")
            yield stream


register("editing", f"{__name__}:EditingFolder", replace=True)


def test_a_source_changed_during_its_copy_is_copied_again(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "doc.txt").write_bytes(b"the start, ")
    events = []

    def seen(event) -> None:
        events.append(event)
        if event.kind == "done" and (b / "doc.txt").exists():
            watcher.stop()
        if len(events) > 200:
            watcher.stop()

    watcher = Watcher(
        [Pair(f"editing://{a}", str(b))], quiet=0.05, retry_first=0.1, on_event=seen
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    done = [e.data for e in events if e.kind == "done"]
    assert done[0]["skipped"] == 1 and done[0]["changed"] == 0, done
    assert (b / "doc.txt").read_bytes() == b"the start, the end of the sentence\n"
    assert _EDITS == ["doc.txt"]


def test_what_no_run_looks_at_is_not_a_change(tmp_path: Path) -> None:
    from accord.engine.policy import Policy
    from accord.replica import Touched

    pair = Pair(
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        Policy(db_lock="lock"),
        exclude=("*.log", "build/"),
    )
    watcher = Watcher([pair])
    touched = watcher._touch(watcher._slots[0])
    for key in ("x.log", "build/out.o", "lock"):  # excluded, the run's own lock
        touched(Touched(key, writing=True))
    assert watcher.status()[0].pending == 0
    touched(Touched("sub/lock"))
    touched(Touched(None))
    assert watcher.status()[0].pending == 2
