"""The Replica contract: what every place implements.

A replica is one place (a local folder, an SFTP directory, an S3 prefix...)
opened once for a run. The engine only ever talks to this contract and to
:class:`~accord.capabilities.Capabilities`; it never asks which place it has.

Rules every implementation keeps:

* ``scan()`` streams every entry below the root except accord's own area
  (``.accord/`` at the root) in no particular order. A subtree that cannot be
  listed is reported as a :class:`~accord.model.Problem` (with the subtree's
  key), never raised, so the engine infers no deletion under it.
* Every write and delete takes ``expect``: the entry the caller believes is
  there now (``None``: nothing is there). If the place holds something else,
  the call raises :class:`~accord.errors.PreconditionFailed` and changes
  nothing. A changed-behind-our-back item is never overwritten.
* ``write()`` is atomic: readers see the old item or the new one, never a
  half-written one, and a failed write leaves no file under the real name.
  It verifies the bytes it wrote against ``like.digest`` before they replace
  anything, and returns the new entry (with its digest).
* When ``trash`` is given, what a delete removes or a write overwrites is
  moved into the place's trash under that run stamp, restorable later.
* Every primitive that reads, writes, renames or deletes an item (and the
  trash's restore and purge) first refuses, with :func:`check_key`, a key
  that would leave the root or reach into accord's own folder, whatever
  the caller passed; and none of them reads, writes or deletes through a
  symbolic link that leads out of the place. The engine never asks for
  such a key (it checks every name a place lists), so this is the last
  line of defence, not the first.
* Foreign exceptions are translated into :mod:`accord.errors` at the boundary.
"""

from __future__ import annotations

import abc
import io
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager

from accord.errors import (
    AccordError,
    InvalidInput,
    PreconditionFailed,
    UnsafeName,
    Unsupported,
)
from accord.keys import META_DIR, unsafe_reason
from accord.model import Entry, Spot
from accord.tuples import NamedTuple

# typing.TYPE_CHECKING, without importing typing: accord's agent runs this
# module at each start on an SSH server, where that import costs more than
# the module (see accord/tuples.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, ClassVar, Protocol

    from accord.capabilities import Capabilities
    from accord.keys import IgnoreRules
    from accord.model import Problem
else:
    Protocol = object  # Watching is a protocol to type checkers only

__all__ = [
    "DIGEST",
    "META_DIR",
    "Columns",
    "HashingReader",
    "Replica",
    "Touched",
    "TrashItem",
    "Watching",
    "WriteItem",
    "check_digest",
    "check_expected",
    "check_key",
    "check_run",
    "hash_stream",
    "link_refused",
    "read_all",
    "source_changed",
    "source_gone",
    "user_key",
]

#: the digest algorithm accord uses to compare content across places
DIGEST = "sha256"
_CHUNK = 1 << 20


def user_key(path: str, option: str = "PATH") -> str:
    """``path`` given by a user, as a key of a place; refused unless it is a
    clean relative path that stays inside the place (and out of accord's own
    folder). A trailing ``/`` is allowed."""
    key = path[:-1] if path.endswith("/") else path
    why = unsafe_reason(key)
    if why is not None:
        raise InvalidInput(
            f"{option} {path!r} is not a path inside the place: {why}",
            hint="give a relative path like 'docs/report.txt', with no '..', "
            "'.', empty parts or leading '/'",
        )
    return key


def check_key(key: str, where: str) -> str:
    """``key``, or UnsafeName when it would leave the place (``..``, an
    absolute path, an empty part, a NUL) or reach into accord's own folder.
    Every place calls this first in each primitive that touches an item."""
    why = unsafe_reason(key)
    if why is not None:
        raise UnsafeName(
            f"refused: {why}; nothing was done",
            where=where,
            key=key,
            hint="accord never plans such a name: if a program handed it to "
            "this place, that program is at fault",
        )
    return key


def check_run(run: str, where: str) -> str:
    """``run``, or UnsafeName unless it is one plain name (a trash run stamp)."""
    if "/" in run or unsafe_reason(run) is not None:
        raise UnsafeName(
            "refused: not the stamp of a run in the trash; nothing was done",
            where=where,
            key=run,
        )
    return run


def link_refused(key: str, where: str, *, item: bool = False) -> PreconditionFailed:
    """The error for a change or read below (with ``item``: of) a symbolic
    link, for places whose server or library would follow it."""
    what = "the item" if item else "a folder on its path"
    return PreconditionFailed(
        f"{what} is a symbolic link (or was replaced by one); left alone, "
        "nothing is written or read through it",
        where=where,
        key=key,
    )


class WriteItem(NamedTuple):
    """One small file of a :meth:`Replica.write_batch`."""

    key: str
    data: bytes
    like: Entry
    expect: Entry | None
    trash: str | None = None


#: a number in its one decimal spelling (no sign, zero or space in front)
NUMBER = "^(0|-?[1-9][0-9]*)$"

#: ``are_numbers`` answers, by array: id -> (a weak reference, the answer)
_NUMBERS: dict[int, tuple[Any, bool]] = {}
#: held while ``_NUMBERS`` is swept and added to: both sides' listings ask
#: on their own threads, and a garbage collector pass inside the sweep can
#: run Python code (a weak reference's callback) that lets the other in
_NUMBERS_LOCK = threading.Lock()


def are_numbers(keys: Any) -> bool:
    """Whether each of ``keys`` (an Arrow string array) is the decimal
    spelling of its number, at most 18 characters (so that two keys are
    equal exactly when their numbers are, and int64 holds them).
    Remembered for the same array while it lives: a listing's keys are
    asked about by the reader, the place and the engine in turn, each a
    pass of a regular expression over a million."""

    held = _NUMBERS.get(id(keys))
    if held is not None and held[0]() is keys:
        return held[1]
    import weakref  # here: the agent's start never needs it

    import pyarrow as pa
    import pyarrow.compute as pc

    found = bool(
        len(keys)
        and not keys.null_count
        and pa.types.is_string(keys.type)
        and pc.max(pc.binary_length(keys)).as_py() <= 18
    )
    if found:  # each the text of its int64 (``NUMBER``): not "007", "+7", "x"
        try:
            ints = keys.cast(pa.int64())
        except pa.ArrowInvalid:
            found = False
        else:  # two thirds of an RE2 pass, and the ints are made once
            found = ints.cast(pa.string()).equals(keys)
            if found:
                _LAST_INTS[:] = [(weakref.ref(keys, _forget_ints), ints)]
    _remember(keys, found)
    return found


def _remember(keys: Any, found: bool) -> None:
    import weakref

    try:
        reference = weakref.ref(keys)
    except TypeError:  # pragma: no cover - Arrow arrays take weak references
        return
    with _NUMBERS_LOCK:
        for key in [k for k, (ref, _) in list(_NUMBERS.items()) if ref() is None]:
            _NUMBERS.pop(key, None)
        _NUMBERS[id(keys)] = (reference, found)


#: the metadata of a kept Arrow file whose keys ``are_numbers``
NUMBERS_MARK = b"accord-numbers"


def numbers_mark(keys: Any) -> dict[bytes, bytes]:
    """The metadata to keep with ``keys`` in an Arrow file (``marked``)."""
    return {NUMBERS_MARK: b"1"} if are_numbers(keys) else {}


def marked(keys: Any, mark: bytes | None) -> None:
    """``keys`` mapped from a kept file accord wrote with ``numbers_mark``
    (``mark``: its ``NUMBERS_MARK`` value): ``are_numbers`` is then known
    without a pass over them (a regular expression over a million keys,
    0.03-0.04 s). The file is trusted as its texts are: accord wrote it,
    and maps it only under the stamp it wrote it with."""
    if mark == b"1" and not keys.null_count:
        _remember(keys, True)


#: the last ``number_keys`` made: [(a weak reference to the keys, ints)]
_LAST_INTS: list[tuple[Any, Any]] = []


def number_keys(keys: Any) -> Any:
    """``keys`` as int64 when ``are_numbers(keys)``, else None. The last
    array's ints are remembered while it lives (8 MB a million): a
    listing's keys are checked unique by the reader (on its thread), then
    matched by the engine."""
    for reference, ints in list(_LAST_INTS):
        if reference() is keys:
            return ints
    if not are_numbers(keys):
        return None
    import weakref

    import pyarrow as pa

    ints = keys.cast(pa.int64())
    _LAST_INTS[:] = [(weakref.ref(keys, _forget_ints), ints)]
    return ints


def held_ints() -> list[tuple[Any, Any]]:
    """The remembered ints (``number_keys``)."""
    return list(_LAST_INTS)


def _forget_ints(reference: Any) -> None:
    """The remembered keys are gone: so are their ints."""
    _LAST_INTS[:] = [kept for kept in list(_LAST_INTS) if kept[0] is not reference]


class Columns(NamedTuple):
    """A listing column by column: what ``scan()`` would yield as entries,
    for a place that lists millions of small items (records). Three Arrow
    string arrays of one length, without nulls: each item's key, version and
    digest; every item is a FILE of size, mtime and mode 0. The engine
    compares such listings with each other and with the archive column by
    column, and makes entries only of the items that differ."""

    keys: Any
    versions: Any
    digests: Any
    #: the name of the file these very columns were kept in and mapped
    #: from, when they were (``records/written.py``); else None
    origin: str | None = None


class TrashItem(NamedTuple):
    """One deleted or overwritten item kept in a place's trash."""

    run: str  # the run stamp it was trashed under (sortable, UTC)
    key: str  # where it was
    entry: Entry  # what it was (size, mtime, kind)


class Touched(NamedTuple):
    """A place says something in it may have changed (``Replica.watch``)."""

    key: str | None = None  # None: somewhere, not said where
    writing: bool = False  # the file is still open for writing
    count: int = 1  # how many changes this stands for
    settled: bool = False  # complete (a committed transaction): no need to wait


class Watching(Protocol):
    """A running watch (``Replica.watch``); ``stop()`` ends it."""

    def stop(self) -> None: ...


class Replica(abc.ABC):
    """One place, opened for a run. Use as a context manager."""

    scheme: ClassVar[str]

    #: user-facing name of the place, secrets removed
    url: str
    #: canonical identity: two URLs naming the same place give the same one
    identity: str
    capabilities: Capabilities
    #: what opening the place had to say (e.g. a slower fallback was used)
    notices: tuple[str, ...] = ()

    # -- lifetime ---------------------------------------------------------
    def open(self, create: bool = False) -> None:  # noqa: B027 - optional hook
        """Connect and check the root exists (creating it when asked).

        Raises Unreachable when the root is missing and ``create`` is false.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Safe to call twice."""

    def recall(self, facts: Mapping[str, str]) -> None:  # noqa: B027 - optional hook
        """What this place found out about itself on an earlier run of the
        pair (``learned``), kept in the pair's archive: given after ``open``
        and before ``capabilities`` is asked. A place checks that a fact
        still applies (it names what it was found on) before it trusts it."""

    def new_listing(self, token: str | None) -> None:  # noqa: B027 - optional hook
        """This run created the place, empty: what it writes there is all
        the place holds for the archive rows named ``token``
        (``ArchiveStore.listing_token``). A place that keeps what it lists
        for an archive (the SSH agent) starts that from nothing."""

    def learned(self) -> dict[str, str]:
        """Facts about the place that cost something to find again (a
        probe file written to its disk), for ``recall`` on the next run."""
        return {}

    def __enter__(self) -> Replica:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------
    @abc.abstractmethod
    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        """Every entry below the root (not the root itself), minus ignored ones.

        An ignored directory is not descended into. ``known`` maps keys to the
        versions the caller already knows; an item whose version is the known
        one may be reported as just its key (a ``str``), which saves building
        an entry for each unchanged item; when ``known`` has ``same()`` (a
        ``KnownInOrder``, for a place that lists in key order), a run of
        unchanged items it confirmed may be reported as their number (an
        ``int``). Without ``known``, only entries and problems are reported.
        """

    def scan_columns(self) -> Columns | None:
        """The whole listing as columns (see :class:`Columns`), or None when
        the place has none to offer (then ``scan()`` is used). Keys are
        names as ``scan()`` gives them: the engine's name gate checks them."""
        return None

    @abc.abstractmethod
    def stat(self, key: str) -> Entry | None:
        """The entry at ``key`` now, or None."""

    @abc.abstractmethod
    def digest(self, entry: Entry) -> Entry:
        """``entry`` with its content digest filled in (reads the content)."""

    @abc.abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream of the file at ``key``."""

    def spots(self) -> tuple[Spot, ...]:
        """Where the root lies, for telling whether two places overlap (see
        :class:`~accord.model.Spot`). Asked before anything is written,
        opened or not (an opened place may know more, e.g. a remote root's
        real path). Reads only. By default: the ``identity`` as one path
        (``scheme://a/b`` is the space ``scheme`` and the path ``a, b``)."""
        scheme, _, rest = self.identity.partition("://")
        return (Spot(scheme, tuple(part for part in rest.split("/") if part)),)

    def persistent_id(self, version: str) -> str | None:
        """What stays the same when the item of ``version`` is renamed (an
        inode, an ETag that names the content), read from the version; None
        when the version holds nothing of the kind. Lets the guards see
        renamed content without reading it. Pure."""
        return None

    def exists(self) -> bool:
        """False only when the root is known not to exist yet (so a first
        sync may create it). Places that cannot tell cheaply say True and
        let ``open()`` decide."""
        return True

    def missing_parent(self) -> str | None:
        """For a root that does not exist yet: the folder above it, when that
        is not there either. A run makes a new root only in a folder that
        exists, as ``rsync`` does (a mistyped path, or a disk not mounted,
        is not made on whatever disk is there); ``open(create=True)`` itself
        makes every folder missing. None where a place cannot tell, or has
        no folders."""
        return None

    def is_empty_root(self) -> bool:
        """True when the root holds nothing at all (a likely unmounted disk)."""
        return next(iter(self.scan()), None) is None

    #: True when ``scan()`` lists items in ascending key order (Python's
    #: ``str`` order of whole keys: a folder's own entry where its name
    #: sorts, its contents where ``name + "/"`` sorts) and asks ``known``
    #: with ``known.get(key)`` in that order, once per key. The engine then
    #: passes a ``known`` that reads the archive alongside (a merge of two
    #: sorted sequences) instead of a dict of every archived version, so a
    #: run holds memory for what changed, not for every item.
    scan_in_order: bool = False

    #: True when the place may be used from a forked child process (scans,
    #: copies): it holds no connection, thread or lock shared with the
    #: parent; what a child's scan learns comes back through
    #: ``scan_state()``, and ``forked()`` is called first in the child.
    fork_safe: bool = False

    #: True when ``flush()`` may run in a thread of its own while the
    #: archive prepares the transaction that records what it makes durable
    #: (committed only once it returns): it touches nothing the run's other
    #: calls use (a local folder: one ``syncfs``).
    flush_in_thread: bool = False

    def forked(self) -> None:
        """Called in a forked child before it uses this place."""
        return None

    def scan_state(self) -> object:
        """What a scan learned that later calls need (e.g. real spellings)."""
        return None

    def set_scan_state(self, state: object) -> None:
        """Adopt the ``scan_state()`` of a scan run elsewhere (a child process)."""
        return None

    def entries(self, ignore: IgnoreRules | None = None) -> Iterator[Entry]:
        """Every entry (problems left out): a plain listing."""
        for item in self.scan(ignore):
            if isinstance(item, Entry):
                yield item

    # -- writing ----------------------------------------------------------
    @abc.abstractmethod
    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        """Atomically put the bytes of ``data`` at ``key``, shaped like ``like``."""

    def copy_new(self, source: Replica, key: str, entry: Entry) -> Entry | None:
        """Make the new file ``key`` here (nothing may be there) a copy of
        ``entry`` in ``source``, the place doing the reading too; its new
        entry, or None when it cannot (the engine then reads through
        ``source.open_read`` and writes through ``write``). The guards are
        ``write``'s: the source checked unchanged once read, what was read
        checked against ``entry.digest`` if known, nothing replaced,
        nothing half-written under the real name."""
        return None

    def read_small(self, entries: list[Entry]) -> list[bytes | AccordError] | None:
        """The whole content of each small file of ``entries`` (as listed
        here), or the error that stopped it (PreconditionFailed when it
        changed since it was listed: a grown, shrunk or replaced file is
        never sent); None when the place has no cheaper way than
        ``open_read`` and ``stat`` (the engine then reads each so)."""
        return None

    def make_dirs(
        self, items: list[tuple[str, Entry]]
    ) -> list[Entry | AccordError] | None:
        """New folders ``(key, like)``, each made as ``make_dir`` makes it
        with nothing expected there, in the order given (a folder's parent
        before it): each one's new entry, or the error that stopped it (one
        folder's failure does not stop the others); None when the place has
        no cheaper way than ``make_dir`` one by one (the engine then makes
        them so). A place across a network makes them in one request."""
        return None

    def write_batch(self, items: list[WriteItem]) -> list[Entry | AccordError]:
        """Write several small files; for each, its new entry or the error
        that stopped it (one item's failure does not stop the others).
        Places that declare ``batch_writes`` do it in one request."""
        results: list[Entry | AccordError] = []
        for item in items:
            try:
                results.append(
                    self.write(
                        item.key,
                        io.BytesIO(item.data),
                        like=item.like,
                        expect=item.expect,
                        trash=item.trash,
                    )
                )
            except AccordError as exc:
                results.append(exc)
        return results

    def write_batched(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        """``write`` of one small file as a batch of one: for places whose
        ``write_batch`` is their cheaper path (content sent inline)."""
        item = WriteItem(key, read_all(data), like, expect, trash)
        (result,) = self.write_batch([item])
        if isinstance(result, AccordError):
            raise result
        return result

    @abc.abstractmethod
    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        """Create a directory (its parent exists)."""

    def make_link(
        self, key: str, *, like: Entry, expect: Entry | None, trash: str | None = None
    ) -> Entry:
        """Create a symbolic link with ``like.target`` as its text."""
        raise Unsupported("symbolic links are not supported", where=self.url)

    @abc.abstractmethod
    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        """Give ``key`` the mtime and mode of ``like`` without touching content."""

    @abc.abstractmethod
    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        """Remove ``key`` (an empty directory, a file or a link)."""

    def move(self, key: str, new_key: str, *, expect: Entry) -> Entry:
        """Rename ``key`` to ``new_key`` (which must not exist)."""
        raise Unsupported("server-side move is not supported", where=self.url)

    def merge(self, base: Entry | None, left: Entry, right: Entry) -> object:
        """Both sides changed an item: the merge of ``left`` and ``right``
        against ``base`` (their last agreed version), as an object with
        ``entry`` (the merged item, its content inline in ``target``; None
        when they cannot be merged) and ``reason``. Pure: no I/O. Offered by
        places that declare the ``merge`` capability (records)."""
        raise Unsupported("this place cannot merge items", where=self.url)

    def clean_temp(self) -> None:  # noqa: B027 - optional hook
        """Remove temporary files an interrupted run left (the lock is held)."""

    def leave_as_found(self) -> None:  # noqa: B027 - optional hook
        """After a refused run, once its lock is released: remove what the
        run made only for itself (an empty folder of accord's own)."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make every completed write durable (a barrier before the archive)."""

    def finish(self) -> list[str]:
        """Called once after a run's actions: a place that batches its writes
        for a peer (a SyncML session) delivers them now. What it has to say
        comes back as notices; an error means they wait for the next run
        (they are durable since ``flush``)."""
        return []

    # -- telling when something changed -----------------------------------
    def watch(self, touched: Callable[[Touched], None]) -> Watching | None:
        """Start telling ``touched`` (from another thread) when something
        in the place may have changed: a folder's notifications from the
        operating system, a server's pushed events. None when the place
        cannot tell: whoever watches it polls it. Not opened first; the
        changes of accord's own folder are not told."""
        return None

    # -- accord's own small files (lock, markers) ---------------------------
    @abc.abstractmethod
    def meta_create(self, name: str, data: bytes) -> bool:
        """Create ``.accord/<name>`` only if absent; False if it exists."""

    @abc.abstractmethod
    def meta_read(self, name: str) -> bytes | None:
        """The content of ``.accord/<name>``, or None."""

    @abc.abstractmethod
    def meta_delete(self, name: str) -> None:
        """Remove ``.accord/<name>`` if present."""

    def meta_list(self, prefix: str) -> list[str]:
        """Names of accord's own files under ``.accord/<prefix>``, sorted."""
        raise Unsupported("cannot list accord's own files here", where=self.url)

    def root_file_exists(self, name: str) -> bool:
        """True when a file named ``name`` is at the root (markers)."""
        entry = self.stat(name)
        return entry is not None

    # -- another program's lock files (a database's own locking) -------------
    def hold_lock(
        self,
        key: str,
        *,
        shared: bool,
        timeout: float,
        note_key: str | None = None,
        note: bytes = b"",
    ) -> str:
        """Hold the ``flock`` lock file ``key`` (created if missing; its
        folder too), waiting up to ``timeout`` seconds; then write ``note``
        to ``note_key`` (a file beside it) saying who holds it. A token for
        :meth:`drop_lock`. Raises ``LockHeld`` when it stays held."""
        raise Unsupported(
            "this place cannot hold another program's lock files (flock)",
            where=self.url,
        )

    def drop_lock(self, token: str) -> None:
        """Release a lock taken with :meth:`hold_lock`: its note and lock
        file are removed while it is still held (unless other readers hold
        a shared lock), then it is let go."""
        raise Unsupported("this place holds no lock files", where=self.url)

    # -- trash ------------------------------------------------------------
    def trash_list(self) -> Iterator[TrashItem]:
        """Everything in the trash, oldest run first."""
        raise Unsupported("this place keeps no trash", where=self.url)

    def trash_runs(self) -> list[str]:
        """The run stamps that have items in the trash, oldest first."""
        return sorted({item.run for item in self.trash_list()})

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        """Put a trashed item back at ``key`` (which must be free)."""
        raise Unsupported("this place keeps no trash", where=self.url)

    def trash_purge(self, run: str) -> int:
        """Delete one run's trash for good; the number of items removed."""
        raise Unsupported("this place keeps no trash", where=self.url)

    def forget_meta(self) -> None:
        """Remove accord's own area from the place (``accord reset``)."""
        raise Unsupported("cannot remove accord's files here", where=self.url)


def source_changed(where: str, key: str) -> PreconditionFailed:
    """A copy's source not as it was listed when it is read (``where``: the
    source place's url), or not when the copy ended: the item is skipped,
    left for the next run, which copies what it finds then."""
    return PreconditionFailed(
        "the source changed since it was listed; left for the next run",
        where=where,
        key=key,
    )


def source_gone(where: str, key: str) -> PreconditionFailed:
    """A copy's source not there when it is read (``where``: the source
    place's url): deleted or renamed since it was listed, as a stale saved
    plan finds too. The item is skipped, not failed; the next run sees
    what happened to it."""
    return PreconditionFailed(
        "the source is gone since it was listed; left for the next run",
        where=where,
        key=key,
    )


def check_digest(like: Entry, digest: str, where: str, key: str) -> None:
    """Raise PreconditionFailed when what was copied is not what was planned
    (the source changed while it was read)."""
    if like.digest and digest != like.digest:
        raise source_changed(where, key)


def check_expected(current: Entry | None, expect: Entry | None, where: str) -> None:
    """Raise PreconditionFailed unless ``current`` is what ``expect`` says."""
    if expect is None:
        if current is not None:
            raise PreconditionFailed(
                "something appeared here since the plan was made",
                where=where,
                key=current.key,
                hint="run accord again to see the new item",
            )
        return
    if current is None:
        raise PreconditionFailed(
            "the item vanished since the plan was made", where=where, key=expect.key
        )
    if current.kind != expect.kind or (
        current.kind != "dir" and current.version != expect.version
    ):
        raise PreconditionFailed(
            "the item changed since the plan was made; left alone",
            where=where,
            key=expect.key,
            hint="run accord again: the change will be synced too",
        )


class HashingReader:
    """Wraps a binary stream; hashes and counts what is read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        import hashlib  # here: OpenSSL's start costs a run that hashes nothing

        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        block = self._raw.read(n)
        self._hash.update(block)
        self.size += len(block)
        return block

    def readinto(self, buffer: bytearray | memoryview) -> int:
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._hash.update(memoryview(buffer)[:count])
            self.size += count
        return int(count or 0)

    @property
    def digest(self) -> str:
        return f"{DIGEST}:{self._hash.hexdigest()}"


def hash_stream(stream: IO[bytes]) -> tuple[str, int]:
    """The ``sha256:`` digest and size of everything left in ``stream``."""
    import hashlib  # here: OpenSSL's start costs a run that hashes nothing

    hasher = hashlib.sha256()
    size = 0
    while block := stream.read(_CHUNK):
        hasher.update(block)
        size += len(block)
    return f"{DIGEST}:{hasher.hexdigest()}", size


def read_all(data: IO[bytes]) -> bytes:
    """Everything up to the end of ``data`` (a short read is not the end:
    the source's own end-of-stream checks run only when it says so)."""
    blocks = []
    while block := data.read(_CHUNK):
        blocks.append(block)
    return b"".join(blocks)
