"""What a place can do, declared rather than guessed.

The engine consults these flags and never asks which kind of place it has.
``disable()`` turns features off so tests can force the fallback paths.

The names a place can hold are declared here too (longest name and key in
bytes, UTF-8 only, forbidden characters): :meth:`Capabilities.unfit_reason`
is how the engine asks a *target* whether a name from the other side can
exist there, before anything is planned.
"""

from __future__ import annotations

from accord.tuples import NamedTuple

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
    #: ``merge()`` combines two versions of an item changed on both sides
    #: against their last agreed version (records, field by field)
    merge: bool = False
    #: the place names new items itself, from their content (a SyncML
    #: server's plain-text notes): on a first sync, an item it holds with
    #: the same content as a new item of the other side is that item, and
    #: takes the other side's name
    derived_names: bool = False
    #: writes become durable all at once, in ``flush()`` (a file rewritten
    #: whole): the engine flushes the place, and records what was written
    #: there in the archive, once, at the end of the run (not per batch)
    flush_at_end: bool = False
    #: ``scan_columns()`` gives the whole listing as columns (records): the
    #: engine compares it column by column and makes entries only of the
    #: items that differ
    listed_columns: bool = False
    #: the place is a plantdb database served by plantdb itself: an FSDB by
    #: nature (the FSDB mode needs no marker there), its bookkeeping out of
    #: reach, each request locked by the server, new scans built whole by
    #: the place (no hidden staging folder, no lock files to take)
    fsdb_server: bool = False
    #: the longest name (one part of a key) the place holds, in bytes as
    #: stored (UTF-8; an undecodable byte kept as a surrogate escape is one)
    max_name_bytes: int | None = None
    #: the longest key it holds, in bytes (S3: 1,024 minus the prefix)
    max_key_bytes: int | None = None
    #: names must be valid UTF-8 (S3 keys); False: any bytes but NUL and '/'
    utf8_names: bool = False
    #: characters no name can hold here
    forbidden_chars: str = ""

    def disable(self, *names: str) -> Capabilities:
        """A copy with the named boolean features turned off."""
        for name in names:
            if not isinstance(getattr(self, name, None), bool):
                raise ValueError(f"not a boolean capability: {name}")
        return self._replace(**{name: False for name in names})

    def unfit_reason(self, key: str) -> str | None:
        """Why this place cannot hold ``key`` (a key that passed
        ``keys.unsafe_reason``), or None when it can. Pure and cheap."""
        if self.forbidden_chars:
            bad = sorted({ch for ch in key if ch in self.forbidden_chars})
            if bad:
                listed = " ".join(repr(ch) for ch in bad)
                return f"it holds characters that names cannot hold there ({listed})"
        longest = self.max_key_bytes
        part = self.max_name_bytes
        if key.isascii():
            if (longest is None or len(key) <= longest) and (
                part is None or len(key) <= part
            ):
                return None
            raw = key.encode("ascii")
        else:
            try:
                raw = key.encode("utf-8")
            except UnicodeEncodeError:
                if self.utf8_names:
                    return "it is not valid UTF-8, and names there must be"
                try:
                    raw = key.encode("utf-8", "surrogateescape")
                except UnicodeEncodeError:
                    return "it holds a character no name can hold (a lone surrogate)"
        if longest is not None and len(raw) > longest:
            return f"it is {len(raw)} bytes long; names there hold at most {longest}"
        if part is not None:
            size = max(len(name) for name in raw.split(b"/"))
            if size > part:
                return (
                    f"a part of it is {size} bytes long; a name there holds at "
                    f"most {part}"
                )
        return None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = dict(self._asdict())
        data["listed_digests"] = sorted(self.listed_digests)
        return data
