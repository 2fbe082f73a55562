"""What a place can do, declared rather than guessed.

The engine consults these flags and never asks which kind of place it has.
``disable()`` turns features off so tests can force the fallback paths.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Capabilities"]


class Capabilities(NamedTuple):
    """Declared features of one place."""

    #: digests the place reports without reading content (e.g. ``md5`` ETags)
    listed_digests: frozenset[str] = frozenset()
    #: can compute ``sha256`` of an item (reading it, locally or server-side)
    digest: bool = True
    #: mtime is kept to this many nanoseconds (1 = exact, None = not kept)
    mtime_precision_ns: int | None = 1
    #: permission bits are kept
    modes: bool = True
    case_sensitive: bool = True
    #: a Unicode name is stored as given (False: the place normalises names)
    unicode_exact: bool = True
    empty_dirs: bool = True
    symlinks: bool = True
    #: a write replaces the target in one step (temp + rename, or a PUT)
    atomic_replace: bool = True
    #: writes and deletes check ``expect`` natively (If-Match, re-stat)
    conditional_writes: bool = True
    #: ``move()`` is offered (else the engine copies then deletes)
    server_side_move: bool = True
    #: deleted and overwritten items go to a trash that can be restored
    trash: bool = True
    read_only: bool = False
    #: transfers gain from running several at once (network latency); a
    #: local disk does not: threads only fight over the GIL there
    parallel_transfers: bool = True
    #: ``write_batch()`` takes many small files in one request (a round trip
    #: per batch, not per file)
    batch_writes: bool = False
    #: the place names new items itself, from their content (a SyncML
    #: server's plain-text notes): on a first sync, an item it holds with
    #: the same content as a new item of the other side is that item, and
    #: takes the other side's name
    derived_names: bool = False

    def disable(self, *names: str) -> Capabilities:
        """A copy with the named boolean features turned off."""
        for name in names:
            if not isinstance(getattr(self, name, None), bool):
                raise ValueError(f"not a boolean capability: {name}")
        return self._replace(**{name: False for name in names})

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = dict(self._asdict())
        data["listed_digests"] = sorted(self.listed_digests)
        return data
