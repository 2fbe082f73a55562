"""A place seen as an FSDB: only scan data, new scans built hidden.

Listings leave out what is plantdb's own (``layout.hidden``: users,
groups, locks, web caches, the marker), so it is never copied, deleted or
trashed on either side.

accord creates a new scan under a hidden name (``layout.staging_name``),
invisible to plantdb, and renames it into place once whole
(:meth:`FSDBView.finish_scans`). Until then, for accord, the staging folder
*is* the scan: listings show it under the scan's name and every operation
on the scan's keys goes to it, so an interrupted run's archive and the
place agree, and the next run completes the same folder. A place that
builds new scans whole itself (``capabilities.fsdb_server``: plantdb's REST
server) is only filtered, never staged.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from accord.errors import AccordError, PreconditionFailed
from accord.fsdb import layout
from accord.keys import IgnoreRules
from accord.model import DIR, Entry, Problem
from accord.replica import Replica, TrashItem, WriteItem

if TYPE_CHECKING:
    from accord.engine.plan import Action

__all__ = ["FSDBView"]


@functools.cache
def _tops() -> IgnoreRules:
    """Rules for a listing of the root's folders only (made on first use:
    pathspec is not imported by a run that lists no FSDB)."""
    return IgnoreRules(["/*/*"])


class FSDBView:
    """Wraps a place; forwards everything, mapping the keys of scans being
    built to their staging folder."""

    def __init__(self, inner: Replica) -> None:
        self.inner = inner
        #: new scans are built hidden here (else the place builds them whole)
        self.staging = not inner.capabilities.fsdb_server
        #: scans that exist only as their staging folder
        self.staged: set[str] = set()

    #: its listing maps staged names back to the scans' own: not in key order,
    #: so the engine gives it a dict of versions (see Replica.scan_in_order)
    scan_in_order = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # -- names ----------------------------------------------------------------
    def _in(self, key: str) -> str:
        top = layout.scan_of(key)
        if top in self.staged:
            return layout.staging_name(top) + key[len(top) :]
        return key

    def _e(self, entry: Entry | None) -> Any:
        return None if entry is None else entry._replace(key=self._in(entry.key))

    @staticmethod
    def _out(item: Any) -> Any:
        if item is None or isinstance(item, str):
            return item
        top = layout.scan_of(item.key)
        real = layout.real_name(top)
        if real is None:
            return item
        return item._replace(key=real + item.key[len(top) :])

    def tops(self) -> set[str]:
        """The names of the folders at the root, as they are on disk."""
        return {
            item.key
            for item in self.inner.scan(_tops())
            if isinstance(item, Entry) and item.kind == DIR and "/" not in item.key
        }

    def scans(self) -> set[str]:
        """The scans here (being built or not)."""
        tops = self.tops()
        found = {t for t in tops if not t.startswith(".")}
        return found | {r for t in tops if (r := layout.real_name(t)) is not None}

    # -- reading --------------------------------------------------------------
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        if not self.staging:
            yield from self._filtered(ignore, known)
            return
        tops = self.tops()
        self.staged = {
            real
            for top in tops
            if (real := layout.real_name(top)) is not None and real not in tops
        }
        hidden = layout.hidden
        for item in self.inner.scan(ignore, known):
            if isinstance(item, str):  # unchanged, its kind not said
                if not hidden(item, "/" in item or item in tops):
                    yield item
                continue
            key = item.key
            if isinstance(item, Entry):
                folder = item.kind == DIR
            else:  # a problem: its kind not said
                folder = "/" in key or key in tops
            if hidden(key, folder):
                continue  # plantdb's bookkeeping: never data
            top = layout.scan_of(item.key)
            real = layout.real_name(top)
            if real is None:
                yield item
            elif real in self.staged:  # else a leftover beside the real scan
                yield item._replace(key=real + item.key[len(top) :])

    def _filtered(
        self, ignore: IgnoreRules | None, known: dict[str, str] | None
    ) -> Iterator[Entry | Problem | str]:
        """The listing of a place that stages nothing, bookkeeping left out
        (a name at the root whose kind is not said is a scan's)."""
        for item in self.inner.scan(ignore, known):
            key = item if isinstance(item, str) else item.key
            folder = item.kind == DIR if isinstance(item, Entry) else True
            if not layout.hidden(key, folder):
                yield item

    def entries(self, ignore: IgnoreRules | None = None) -> Iterator[Entry]:
        for item in self.scan(ignore):
            if isinstance(item, Entry):
                yield item

    def scan_state(self) -> object:
        return (self.inner.scan_state(), sorted(self.staged))

    def set_scan_state(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            self.inner.set_scan_state(state[0])
            self.staged = set(state[1])

    def stat(self, key: str) -> Entry | None:
        return self._out(self.inner.stat(self._in(key)))  # type: ignore[no-any-return]

    def digest(self, entry: Entry) -> Entry:
        return self._out(self.inner.digest(self._e(entry)))  # type: ignore[no-any-return]

    def open_read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self.inner.open_read(self._in(key))

    # -- writing --------------------------------------------------------------
    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        new = self.inner.write(
            self._in(key), data, like=self._e(like), expect=self._e(expect), trash=trash
        )
        return self._out(new)  # type: ignore[no-any-return]

    def write_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        mapped = [
            item._replace(
                key=self._in(item.key),
                like=self._e(item.like),
                expect=self._e(item.expect),
            )
            for item in items
        ]
        return [
            result if isinstance(result, AccordError) else self._out(result)
            for result in self.inner.write_batch(mapped)
        ]

    def make_dirs(self, items: list[tuple[str, Entry]]) -> None:
        """None: the folders go one by one through ``make_dir``, which
        builds a new scan in its staging folder (not the place's own)."""
        return None

    def copy_new(self, source: Replica, key: str, entry: Entry) -> None:
        """None: a new file goes through ``write``, which puts it in its
        scan's staging folder (the place's own ``copy_new`` would take the
        scan's name, which does not exist yet, for the source's and the
        target's name alike)."""
        return None

    def read_small(self, entries: list[Entry]) -> list[bytes | AccordError] | None:
        return self.inner.read_small([self._e(entry) for entry in entries])

    def new_scan(self, key: str, expect: Entry | None) -> bool:
        """Whether making the folder ``key`` here starts a new scan (built
        hidden in its staging folder, renamed into place when whole)."""
        return self.staging and "/" not in key and expect is None and key[0] != "."

    def stage(self, actions: list[Action]) -> None:
        """The new scans that ``actions`` (this side's) make, noted as built
        hidden before any action is performed: the copying processes of a
        big copy phase start before its folders are made (in this process,
        meanwhile), and must name each new file by its scan's staging
        folder too."""
        for action in actions:
            entry = action.entry
            folder = action.op == "copy" and entry is not None and entry.kind == DIR
            if folder and self.new_scan(action.key, action.expect):
                self.staged.add(action.key)

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        if self.new_scan(key, expect):
            self.staged.add(key)  # a new scan: built hidden, renamed when whole
        new = self.inner.make_dir(self._in(key), like=self._e(like), expect=expect)
        return self._out(new)  # type: ignore[no-any-return]

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        new = self.inner.make_link(
            self._in(key), like=self._e(like), expect=self._e(expect), trash=trash
        )
        return self._out(new)  # type: ignore[no-any-return]

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        new = self.inner.set_meta(
            self._in(key), like=self._e(like), expect=self._e(expect)
        )
        return self._out(new)  # type: ignore[no-any-return]

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        self.inner.delete(self._in(key), expect=self._e(expect), trash=trash)
        if "/" not in key and key in self.staged:
            self.staged.discard(key)

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        new = self.inner.move(self._in(key), self._in(new_key), expect=self._e(expect))
        return self._out(new)  # type: ignore[no-any-return]

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        return self._out(self.inner.trash_restore(item, self._in(key)))  # type: ignore[no-any-return]

    # -- scans that are whole go into place --------------------------------------
    def finish_scans(self, unfinished: set[str]) -> list[str]:
        """Rename each scan being built into place, when whole and when no
        action of this run on it is left undone; what stays, as notices."""
        notices: list[str] = []
        before = len(self.staged)
        for scan in sorted(self.staged):
            hidden = layout.staging_name(scan)
            if scan in unfinished:
                if self.inner.stat(hidden) is None:  # the run stopped first
                    self.staged.discard(scan)
                    continue
                notices.append(
                    f"the new scan '{scan}' of {self.inner.url} is incomplete "
                    f"(kept hidden as '{hidden}'); the next run completes it"
                )
                continue
            if not self._whole(scan, hidden):
                notices.append(
                    f"the new scan '{scan}' of {self.inner.url} has no metadata/ "
                    f"or files.json, which plantdb needs; kept hidden as '{hidden}'"
                )
                continue
            notices += self._rename(scan, hidden)
        if len(self.staged) < before:
            self.inner.flush()  # the renames are durable
        return notices

    def _whole(self, scan: str, hidden: str) -> bool:
        if scan == "configs":
            return True
        names = {
            name
            for name in ("metadata", "files.json", "timelapse.json")
            if self.inner.stat(f"{hidden}/{name}") is not None
        }
        return layout.is_whole(names)

    def _rename(self, scan: str, hidden: str) -> list[str]:
        folder = self.inner.stat(hidden)
        if folder is None:
            self.staged.discard(scan)
            return []
        try:
            self.inner.move(hidden, scan, expect=folder)
        except PreconditionFailed:
            return [
                f"a scan '{scan}' appeared in {self.inner.url} during the run; "
                f"accord's copy is left as '{hidden}'"
            ]
        self.staged.discard(scan)
        return []
