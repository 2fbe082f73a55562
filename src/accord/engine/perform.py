"""Perform one action of a plan through the Replica contract.

Every call states the entry it expects to replace; a copy reads its source
through a ``Stable`` stream, which checks at its end that the source did
not change while it was read. What an action did comes back as data (an
``Attempt``: archive rows to put and keys to forget, or why it failed), so
it can cross a pipe from a child process.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple

from accord.engine import faults
from accord.engine.plan import Action
from accord.engine.report import Event
from accord.errors import (
    AccordError,
    NoSpace,
    NotEmpty,
    NotFound,
    PreconditionFailed,
    ReplicaError,
    Unreachable,
    Unsupported,
)
from accord.keys import shown
from accord.model import DIR, LINK, Entry, Side
from accord.replica import Replica, source_changed, source_gone
from accord.state.store import ABSENT, ArchiveEntry

__all__ = ["Attempt", "Performer", "Stable", "failure"]

_LEFT, _RIGHT = Side.LEFT, Side.RIGHT


class Attempt(NamedTuple):
    """What performing one action did (picklable: it may come from a child)."""

    status: str  # done | skipped | failed | fatal
    puts: list[ArchiveEntry]
    forgets: list[str]
    message: str = ""
    error: AccordError | None = None


class Stable:
    """A source stream that, at its end, checks the source did not change."""

    def __init__(self, raw: IO[bytes], check: Callable[[], None]) -> None:
        self._raw = raw
        self._check = check
        self.size = 0
        #: what the source said of the item as it opened it, if anything
        #: (S3 lists only upload times; its GET carries the kept metadata)
        self.entry: Entry | None = getattr(raw, "entry", None)

    def like(self, planned: Entry) -> Entry:
        """``planned``, with the mtime and mode the source told on opening
        when they describe the same version."""
        told = self.entry
        if told is None or told.version != planned.version:
            return planned
        return planned._replace(
            mtime_ns=told.mtime_ns,
            mode=told.mode,
            digest=planned.digest or told.digest,
        )

    def read(self, n: int = -1) -> bytes:
        block = self._raw.read(n)
        if not block or (n < 0):
            self._check()
        self.size += len(block)
        return block


class Performer:
    """Carries out actions on a pair of places (one action at a time)."""

    def __init__(
        self,
        replicas: dict[Side, Replica],
        *,
        trash: str | None,
        on_event: Callable[[Event], None],
    ) -> None:
        self.replicas = replicas
        self.trash = trash
        self.on_event = on_event

    def attempt(self, action: Action) -> Attempt:
        """Perform one action; what happened, as data (it may cross a pipe)."""
        try:
            puts, forgets = self.perform(action)
        except (AccordError, OSError) as exc:
            return failure(action, exc)
        return Attempt("done", puts, forgets)

    def perform(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        op = action.op
        if op == "mark_equal":
            assert action.entry is not None and action.other is not None
            return [ArchiveEntry.agreed(action.entry, action.other)], []
        if op == "forget":
            return [], [action.key]
        assert action.side is not None
        target = self.replicas[action.side]
        if op == "delete":
            assert action.expect is not None
            try:
                target.delete(action.key, expect=action.expect, trash=self.trash)
            except NotEmpty:
                if action.expect.kind != DIR:
                    raise
                return [self._kept_folder(action.side, action.expect)], []
            return [], [action.key]
        assert action.entry is not None
        if op == "copy":
            new, like = self.put(action.side, action.key, action.entry, action.expect)
            return [self.agreed(action.side, like, new, action.key)], []
        if op == "set_meta":
            assert action.expect is not None
            new = target.set_meta(action.key, like=action.entry, expect=action.expect)
            return [self.agreed(action.side, action.entry, new, action.key)], []
        if op == "move":
            return self._move(action)
        if op == "keep_both":
            return self._keep_both(action)
        if op == "merge":
            return self._merge(action)
        raise AccordError(f"unknown action {op!r} in the plan")

    def _merge(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        """Write the merge to each side that does not hold it yet; one archive
        row once both do (a failure on the second side records nothing: the
        next run merges again, to the same result)."""
        merged, side = action.entry, action.side
        assert merged is not None and side is not None and action.expect
        assert action.other is not None
        data = (merged.target or "").encode()
        versions = {}
        for place, current in ((side, action.expect), (side.other, action.other)):
            if current.same_content(merged):
                versions[place] = current.version
                continue
            new = self.replicas[place].write(
                action.key,
                io.BytesIO(data),
                like=merged,
                expect=current,
                trash=self.trash,
            )
            versions[place] = new.version
        row = ArchiveEntry(
            action.key,
            merged.kind,
            merged.size,
            merged.mtime_ns,
            merged.mode,
            merged.digest,
            merged.target,
            versions[Side.LEFT],
            versions[Side.RIGHT],
        )
        return [row], []

    def _kept_folder(self, side: Side, folder: Entry) -> ArchiveEntry:
        """The archive row of a folder deleted on the other side but kept on
        ``side``, where it still holds items that are not synced (ignored
        ones): the other side holds nothing there, as agreed, so the next
        run does not try again. What is synced inside it later is copied
        across as usual (the folder is made again there)."""
        self.on_event(
            Event(
                "notice",
                None,
                f"{shown(folder.key)}: kept on the {side} side, where it still holds "
                "items that are not synced (ignored ones); its other contents "
                "were deleted",
            )
        )
        versions = (ABSENT, folder.version)
        if side is Side.LEFT:
            versions = versions[::-1]
        return ArchiveEntry(folder.key, DIR, 0, 0, folder.mode, None, None, *versions)

    def agreed(self, target: Side, source: Entry, new: Entry, key: str) -> ArchiveEntry:
        """The archive row once ``new`` on ``target`` matches ``source``; the
        place must have answered for ``key``, the name it was asked about
        (a row is never recorded under a name a place made up)."""
        if new.key != key:
            raise ReplicaError(
                f"the place answered for another name ({shown(new.key)})",
                where=self.replicas[target].url,
                key=key,
            )
        versions = (
            (source.version, new.version)
            if target is Side.RIGHT
            else (new.version, source.version)
        )
        return ArchiveEntry(
            new.key,
            source.kind,
            source.size,
            source.mtime_ns,
            source.mode,
            source.digest or new.digest,
            source.target,
            *versions,
        )

    def put(
        self, side: Side, key: str, entry: Entry, expect: Entry | None
    ) -> tuple[Entry, Entry]:
        """Make ``key`` on ``side`` hold ``entry`` (read from the other side):
        the new entry there, and what was copied (``entry`` with the times
        and mode the source told as it opened the item)."""
        target = self.replicas[side]
        if expect is not None and expect.kind == DIR and entry.kind != DIR:
            target.delete(key, expect=expect, trash=self.trash)
            expect = None
        if entry.kind == DIR:
            if expect is not None and expect.kind != DIR:
                target.delete(key, expect=expect, trash=self.trash)
                expect = None
            return target.make_dir(key, like=entry, expect=expect), entry
        if entry.kind == LINK:
            new = target.make_link(key, like=entry, expect=expect, trash=self.trash)
            return new, entry
        # not side.other (the enum's members looked up: ten times as long)
        source = self.replicas[_RIGHT if side is _LEFT else _LEFT]
        if expect is None:
            made = target.copy_new(source, key, entry)
            if made is not None:
                self.on_event(Event("bytes", size=made.size))
                return made, entry
        with self.stable_read(source, key, entry) as stream:
            like = stream.like(entry)
            new = target.write(key, stream, like=like, expect=expect, trash=self.trash)
        self.on_event(Event("bytes", size=new.size))
        return new, like

    @contextlib.contextmanager
    def stable_read(self, source: Replica, key: str, entry: Entry) -> Iterator[Stable]:
        def check() -> None:
            now = source.stat(key)
            if now is None or now.version != entry.version:
                raise source_changed(source.url, key)

        with contextlib.ExitStack() as opened:
            try:
                raw = opened.enter_context(source.open_read(key))
            except NotFound as exc:
                raise source_gone(source.url, key) from exc
            yield Stable(raw, check)  # type: ignore[misc]

    def _move(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        assert (
            action.side is not None
            and action.new_key
            and action.expect
            and action.entry
        )
        target = self.replicas[action.side]
        try:
            moved = target.move(action.key, action.new_key, expect=action.expect)
        except Unsupported:
            moved, _ = self.put(action.side, action.new_key, action.entry, None)
            target.delete(action.key, expect=action.expect, trash=None)
        row = self.agreed(action.side, action.entry, moved, action.new_key)
        return [row], [action.key]

    def _keep_both(self, action: Action) -> tuple[list[ArchiveEntry], list[str]]:
        """Set the loser aside on its side, then bring both versions across."""
        side, key, aside = action.side, action.key, action.new_key
        assert side is not None and aside and action.entry and action.expect
        loser_place = self.replicas[side]
        try:
            kept = loser_place.move(key, aside, expect=action.expect)
        except Unsupported:
            with self.stable_read(loser_place, key, action.expect) as stream:
                kept = loser_place.write(aside, stream, like=action.expect, expect=None)
            loser_place.delete(key, expect=action.expect, trash=None)
        kept = kept._replace(digest=kept.digest or action.expect.digest)
        faults.step(f"set aside {aside}")
        new, like = self.put(side, key, action.entry, None)
        faults.step(f"put {key}")
        across, _ = self.put(side.other, aside, kept, None)
        return [
            self.agreed(side, like, new, key),
            self.agreed(side.other, kept, across, aside),
        ], []


def failure(action: Action, exc: AccordError | OSError) -> Attempt:
    """What an error means for one action: skipped (it changed behind our
    back), fatal (no space, place gone: stop the run) or failed."""
    if isinstance(exc, PreconditionFailed):
        return Attempt("skipped", [], [], exc.message, exc)
    if isinstance(exc, (NoSpace, Unreachable)):
        return Attempt("fatal", [], [], str(exc), exc)
    if isinstance(exc, AccordError):
        return Attempt("failed", [], [], str(exc), exc)
    return Attempt("failed", [], [], f"{shown(action.key)}: {exc.strerror or exc}")
