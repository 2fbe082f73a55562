"""Outgoing messages of one session: CmdIDs, size limits, statuses expected.

Both roles queue what they have to say (statuses first, then commands and
the items of Sync and Map commands) and ask for the next message with
:meth:`Outbox.next_message`. A message never exceeds the peer's
``MaxMsgSize``: what does not fit waits for the next one, and an item too
big for any message is cut into chunks marked ``MoreData`` (a large object)
when the peer said it takes them. Every command sent is remembered with a
reference of the sender's choosing, so the statuses that come back find
what they answer (:meth:`Outbox.answered`).
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from accord.syncml import message as m
from accord.syncml import wbxml
from accord.syncml.tree import to_xml

__all__ = ["Outbox", "SyncPiece"]

_MARGIN = 256  # bytes kept free under the limit (CmdIDs, rounding)
_MIN_CHUNK = 1024


class SyncPiece(NamedTuple):
    """One change of a Sync, or one MapItem of a Map, with its group."""

    group: str  # "Sync" or "Map"
    target: str | None
    source: str | None
    change: m.Change | tuple[str, str]
    ref: Any = None
    number_of_changes: int | None = None


class _Single(NamedTuple):
    command: m.Command
    ref: Any


class Outbox:
    """What one side of a session still has to send."""

    def __init__(self, *, wbxml_encoding: bool = False) -> None:
        self.wbxml = wbxml_encoding
        self.statuses: deque[m.Status] = deque()
        self.queue: deque[_Single | SyncPiece] = deque()
        #: (msg_id, cmd_id) -> (command name, ref) of commands awaiting a status
        self.pending: dict[tuple[int, int], tuple[str, Any]] = {}
        self.large_objects = True
        self.max_obj_size: int | None = None
        self.chunks_sent: dict[Any, int] = {}

    # -- queueing --------------------------------------------------------------
    def status(self, status: m.Status) -> None:
        self.statuses.append(status)

    def command(self, command: m.Command, ref: Any = None) -> None:
        self.queue.append(_Single(command, ref))

    def piece(self, piece: SyncPiece) -> None:
        self.queue.append(piece)

    @property
    def empty(self) -> bool:
        return not self.statuses and not self.queue

    @property
    def has_commands(self) -> bool:
        return bool(self.queue)

    # -- statuses that come back -----------------------------------------------
    def answered(self, status: m.Status) -> tuple[str, Any] | None:
        """What ``status`` answers (its command's name and ref), or None."""
        return self.pending.pop((status.msg_ref, status.cmd_ref), None)

    def unanswered(self) -> list[tuple[str, Any]]:
        return list(self.pending.values())

    # -- building --------------------------------------------------------------
    def next_message(
        self, header: m.Header, limit: int | None, *, final: bool
    ) -> m.Message:
        """The next message: as much as fits under ``limit``. ``final`` is
        the caller's wish; it holds only when everything queued went out."""
        budget = (limit or 1 << 30) - self._size(m.Message(header, (), True)) - _MARGIN
        commands: list[m.Command] = []
        ids = _Ids(header.msg_id)
        while self.statuses:
            status = self.statuses[0]
            cost = self._size_of(status) + 16
            if commands and cost > budget:
                break
            self.statuses.popleft()
            commands.append(status._replace(cmd_id=ids.next()))
            budget -= cost
        if not self.statuses:
            budget = self._commands(commands, ids, budget)
        done = not self.statuses and not self.queue
        self.pending.update(ids.expect)
        return m.Message(header, tuple(commands), final and done)

    def _commands(self, out: list[m.Command], ids: _Ids, budget: int) -> int:
        while self.queue:
            entry = self.queue[0]
            if isinstance(entry, SyncPiece):
                taken, budget = self._group(out, ids, budget)
                if not taken:
                    break
                continue
            cost = self._size_of(entry.command) + 16
            if out and cost > budget:
                break
            self.queue.popleft()
            cmd_id = ids.next()
            out.append(entry.command._replace(cmd_id=cmd_id))  # type: ignore[union-attr]
            if not isinstance(entry.command, m.Status):
                ids.expect[(ids.msg_id, cmd_id)] = (_name(entry.command), entry.ref)
            budget -= cost
        return budget

    def _group(self, out: list[m.Command], ids: _Ids, budget: int) -> tuple[bool, int]:
        """One Sync (or Map) command holding as many queued pieces as fit."""
        head = self.queue[0]
        assert isinstance(head, SyncPiece)
        wrapper_id = ids.next()
        inner: list[Any] = []
        budget -= 160
        while self.queue:
            piece = self.queue[0]
            if not isinstance(piece, SyncPiece) or (piece.group, piece.target) != (
                head.group,
                head.target,
            ):
                break
            if piece.group == "Map":
                cost = 40 + sum(len(x) for x in piece.change)
                if (out or inner) and cost > budget:
                    break
                self.queue.popleft()
                inner.append(piece.change)
                budget -= cost
                continue
            change = piece.change
            assert isinstance(change, m.Change)
            cost = self._size_of(change) + 16
            if cost > budget:
                chunk = self._chunk(piece, budget, first=not (out or inner))
                if chunk is None:
                    break
                change, piece_done = chunk
                cost = self._size_of(change) + 16
                if not piece_done:
                    cmd_id = ids.next()
                    inner.append(change._replace(cmd_id=cmd_id))
                    ids.expect[(ids.msg_id, cmd_id)] = (change.name, piece.ref)
                    budget -= cost
                    break  # the rest of this item opens the next message
            self.queue.popleft()
            self.chunks_sent.pop(piece.ref, None)
            cmd_id = ids.next()
            inner.append(change._replace(cmd_id=cmd_id))
            ids.expect[(ids.msg_id, cmd_id)] = (change.name, piece.ref)
            budget -= cost
        if not inner and (out or head.group == "Map"):
            ids.release()
            return False, budget
        if head.group == "Map":
            out.append(m.Map(wrapper_id, head.target, head.source, tuple(inner)))
            ids.expect[(ids.msg_id, wrapper_id)] = ("Map", None)
        else:
            out.append(
                m.Sync(
                    wrapper_id,
                    head.target,
                    head.source,
                    tuple(inner),
                    head.number_of_changes,
                )
            )
            ids.expect[(ids.msg_id, wrapper_id)] = ("Sync", None)
            self._drop_number_of_changes(head)
        return True, budget

    def _drop_number_of_changes(self, head: SyncPiece) -> None:
        """NumberOfChanges goes in the first Sync of a package only."""
        self.queue = deque(
            p._replace(number_of_changes=None)
            if isinstance(p, SyncPiece) and p.target == head.target
            else p
            for p in self.queue
        )

    def _chunk(
        self, piece: SyncPiece, budget: int, *, first: bool
    ) -> tuple[m.Change, bool] | None:
        """The part of a large item that fits in ``budget``, and whether it
        is the last part. None: wait for an emptier message."""
        change = piece.change
        assert isinstance(change, m.Change)
        item = change.items[0]
        data = item.data
        if not isinstance(data, bytes) or not self.large_objects:
            return (change, True) if first else None
        room = (
            budget
            - self._size_of(change._replace(items=(item._replace(data=b""),)))
            - 64
        )
        if room < _MIN_CHUNK and not first:
            return None
        if not m.text_safe(data):
            room = room * 3 // 4 - 4  # sent as base64
        room = max(room, _MIN_CHUNK)
        offset = self.chunks_sent.get(piece.ref, 0)
        part = data[offset : offset + room]
        last = offset + len(part) >= len(data)
        meta = item.meta or m.Meta()
        if offset == 0:
            meta = meta._replace(size=len(data))
        elif meta.size is not None:
            meta = meta._replace(size=None)
        new_item = item._replace(data=part, more_data=not last, meta=meta)
        self.chunks_sent[piece.ref] = offset + len(part)
        if not last:
            # the head of the queue keeps the item; the next message goes on
            return change._replace(items=(new_item,)), False
        return change._replace(items=(new_item,)), True

    def _size(self, msg: m.Message) -> int:
        return len(m.render(msg, wbxml_encoding=self.wbxml))

    def _size_of(self, command: m.Command | m.Change) -> int:
        node = m._command_node(command)
        return len(wbxml.encode(node)) if self.wbxml else len(to_xml(node)) - 38


class _Ids:
    def __init__(self, msg_id: int) -> None:
        self.msg_id = msg_id
        self.last = 0
        self.expect: dict[tuple[int, int], tuple[str, Any]] = {}

    def next(self) -> int:
        self.last += 1
        return self.last

    def release(self) -> None:
        self.last -= 1


def _name(command: m.Command) -> str:
    if isinstance(command, (m.Change, m.Exchange, m.Other)):
        return command.name
    return type(command).__name__
