"""A local folder's changes as the operating system tells them (inotify on
Linux, FSEvents on macOS, through ``watchdog``). Imported only by a
watcher.

Each change becomes a :class:`~accord.replica.Touched` with the item's key.
A file written to and not yet closed is told as ``writing`` (the watcher
waits for its close); a close after writing ends that. Opening and reading
are not changes (accord's own reads would wake it), and neither are the
changes in accord's own folders (``.accord/``, at any depth) or its
temporary files (``.accord-tmp-*``, and ``.accord-case-*`` of a case-only
rename), which every run makes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from accord.errors import Unsupported
from accord.keys import META_DIR
from accord.replica import Touched

__all__ = ["FolderWatch", "key_of"]

_TEMP = (".accord-tmp-", ".accord-case-")
#: watchdog's event types that say nothing changed
_QUIET = frozenset({"opened", "closed_no_write"})
#: what is asked of the operating system (not opens and reads: a run's own
#: reads of ten thousand files would be twenty thousand events)
_WANTED = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    DirAttribEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileClosedEvent,
    EventsLostEvent,
]


def key_of(root: str, path: str) -> str | None:
    """The key of ``path`` below ``root``; None for the root itself, for a
    path outside it, and for accord's own files."""
    rel = os.path.relpath(path, root)
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        return None
    parts = rel.split(os.sep)
    if META_DIR in parts or parts[-1].startswith(_TEMP):
        return None
    return "/".join(parts)


class FolderWatch:
    """A running watch of one folder and everything below it."""

    def __init__(self, root: str, touched: Callable[[Touched], None]) -> None:
        self.root = root
        self._touched = touched
        self._observer: Any = Observer()
        self._observer.daemon = True
        try:
            self._observer.schedule(
                _Handler(self), root, recursive=True, event_filter=_WANTED
            )
            self._observer.start()
        except OSError as exc:
            raise Unsupported(
                f"cannot watch this folder: {exc.strerror or exc}",
                where=root,
                hint="for many folders, raise fs.inotify.max_user_watches; "
                "until then it is polled",
            ) from exc

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(5)

    def event(self, kind: str, path: str, is_dir: bool) -> None:
        if kind in _QUIET or (kind == "modified" and is_dir):
            return  # a folder's own "modified" only echoes its entries' changes
        key = key_of(self.root, path)
        if key is None:
            if os.path.normpath(path) == os.path.normpath(self.root):
                self._touched(Touched(None))  # the root itself went or came
            return
        self._touched(Touched(key, writing=kind == "modified" and not is_dir))


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: FolderWatch) -> None:
        super().__init__()
        self._watch = watch

    def on_any_event(self, event: Any) -> None:
        src = os.fsdecode(event.src_path)
        self._watch.event(event.event_type, src, event.is_directory)
        dest = getattr(event, "dest_path", "")
        if dest:
            self._watch.event("created", os.fsdecode(dest), event.is_directory)
