"""The conformance suite every place passes (``Replica`` contract).

Use it from a test module of a place: subclass :class:`ReplicaContract` and
provide a ``place_url`` fixture that returns the URL of a fresh, empty
folder of that place (it need not exist yet)::

    import pytest
    from accord.testing.contract import ReplicaContract

    class TestLocal(ReplicaContract):
        @pytest.fixture
        def place_url(self, tmp_path):
            return str(tmp_path / "place")

Every test opens the place with ``create=True`` and checks one promise of
the contract (see :mod:`accord.replica`): create-only writes never clobber,
replacing writes check the expected version, stale expectations change
nothing, a failed write leaves nothing under the real name, scans report
unchanged items by key, ignored folders are not entered, deleted and
overwritten items are kept in the trash and come back, accord's own files
are created exclusively, names are kept byte for byte (NFD, control
characters, bytes that are not UTF-8, where the place can hold them), a
nested place's ``.accord`` folder is never
listed, and a place never writes, deletes, renames or reads outside its
root, whatever key it is handed and whatever links it holds. Optional
features are tested only where the place's capabilities claim them, and
what is claimed must work. A read-only place keeps the reading promises
(seeded through a ``behind`` fixture: files put there without accord) and
refuses every change.

The promise about the root needs to look around the place: the test class
also gives a ``surroundings`` fixture (a :class:`Surroundings`: a snapshot
of everything around the place, taken before and after, and where a link
could lead out of it). Put the place at least three folders below what the
snapshot sees, so that every hostile key would land inside it::

    @pytest.fixture
    def place_url(self, tmp_path):
        return str(tmp_path / "1" / "2" / "place")

    @pytest.fixture
    def surroundings(self, tmp_path):
        return Surroundings(lambda: disk_snapshot(tmp_path), str(tmp_path / "x"))

This module imports pytest; it is meant for test suites only (accord itself
never imports it).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

from accord.errors import (
    AlreadyExists,
    PermissionDenied,
    PreconditionFailed,
    ReplicaError,
    UnsafeName,
    Unsupported,
)
from accord.keys import IgnoreRules
from accord.model import DIR, FILE, LINK, Entry, permissions
from accord.registry import open_replica
from accord.replica import Replica, TrashItem, WriteItem

__all__ = [
    "EXACT_NAMES",
    "HOSTILE_KEYS",
    "Behind",
    "ReplicaContract",
    "Surroundings",
    "disk_snapshot",
]

#: keys that would leave a place (at most three folders up), or reach into
#: accord's own folder or a nested place's; every primitive refuses each
#: of them
HOSTILE_KEYS = (
    "..",
    ".",
    "",
    "../escape.txt",
    "../../escape.txt",
    "../../../escape.txt",
    "a/../../escape.txt",
    "a/b/../../../../escape.txt",
    "../2/escape.txt",
    "./escape.txt",
    "a/./b.txt",
    "a//b.txt",
    "a/",
    "a/..",
    "a\0b.txt",
    ".accord/escape.txt",
    ".accord/lock",
    ".ACCORD/escape.txt",
    "inner/.accord/lock",
    "inner/.ACCORD/escape.txt",
)
#: names a place holds byte for byte, where its capabilities say it can:
#: a decomposed (NFD) folder and file, a composed (NFC) twin, control
#: characters, and bytes that are not UTF-8 (surrogate escapes)
EXACT_NAMES = (
    "re\u0301sume\u0301/cafe\u0301.txt",
    "re\u0301sume\u0301/caf\u00e9.txt",
    "na\u00efve.txt",
    "tab\there.txt",
    "ctl\x01.txt",
    "caf\udce9.txt",
)
#: trash run stamps that would leave the trash
HOSTILE_RUNS = ("..", ".", "", "a/b", "../..", "../../..")


class Surroundings(NamedTuple):
    """Where a place under test lives, so the suite can watch around it."""

    #: everything around the place (and in it), comparable before and after
    snapshot: Callable[[], Any]
    #: an absolute name that would land where ``snapshot`` looks
    absolute: str
    #: link texts that lead from the place's root to a folder outside it
    #: (holding a file ``victim``); empty where links cannot exist
    outside: tuple[str, ...] = ()
    #: makes a link ``(key, target)`` in a place that cannot make links
    #: itself but may hold them (fsspec's local filesystem)
    plant_link: Callable[[str, str], None] | None = None


def disk_snapshot(top: str | os.PathLike[str]) -> dict[str, Any]:
    """Every file, folder and link below ``top`` on this machine's disk:
    content digest, mode and mtime of files, link texts, folders' modes."""
    found: dict[str, Any] = {}
    for folder, dirs, names in os.walk(top):
        for name in [*dirs, *names]:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, top)
            info = os.lstat(path)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif name in dirs:
                found[rel] = ("dir", info.st_mode)
            else:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                found[rel] = ("file", info.st_mode, info.st_mtime_ns, digest)
    return found


_MTIME = 1_700_000_000_123_456_789


def like(key: str, data: bytes, *, mtime_ns: int = _MTIME, mode: int = 0o640) -> Entry:
    """The entry a write should produce (no version, no digest yet)."""
    return Entry(key, FILE, len(data), mtime_ns, mode, "")


class _Breaks(io.RawIOBase):
    """A source stream that fails half-way, like a dropped connection."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._sent:
            self._sent = True
            return self._data[: len(self._data) // 2]
        raise OSError("the source went away")


#: the promises a read-only place keeps too (it is seeded behind its back)
_READING = frozenset(
    {
        "test_scan_lists_everything_once",
        "test_scan_reports_unchanged_items_by_key",
        "test_ignored_folders_are_not_entered",
        "test_digest_matches_what_was_written",
        "test_a_nested_places_own_folder_is_not_listed",
        "test_a_read_only_place_refuses_every_change",
        "test_hostile_keys_touch_nothing_anywhere",
    }
)
#: the primitives that only read (all a read-only place offers)
_READS = frozenset({"stat", "open_read", "digest"})

#: writes put behind a place's back: ``behind({key: bytes})``
Behind = Callable[[dict[str, bytes]], None]


class ReplicaContract:
    """Subclass with a ``place_url`` fixture; every test is one promise.

    Optionally, a ``behind`` fixture returns a function that puts files
    into the place without accord (on the served disk, with the store's own
    client): tests of what a scan must not list use it, and a read-only
    place needs it to be seeded at all.
    """

    @pytest.fixture
    def surroundings(self) -> Surroundings:
        pytest.fail(
            "a place's test class gives a 'surroundings' fixture (see "
            "accord.testing.contract.Surroundings)",
            pytrace=False,
        )

    @pytest.fixture
    def place(self, place_url: str) -> Iterator[Replica]:
        replica = open_replica(place_url)
        replica.open(create=True)
        try:
            yield replica
        finally:
            replica.close()

    @pytest.fixture
    def behind(self) -> Behind | None:
        return None

    @pytest.fixture(autouse=True)
    def _read_only_reads(self, request: pytest.FixtureRequest, place: Replica) -> None:
        """A read-only place keeps the reading promises only."""
        name = getattr(request.node, "originalname", request.node.name)
        if place.capabilities.read_only and name not in _READING:
            pytest.skip("a read-only place: nothing is written there")

    @pytest.fixture
    def seed(self, place: Replica, behind: Behind | None) -> Behind:
        """Puts files (their folders too) into the place: through the place,
        or behind it when it is read-only."""
        if place.capabilities.read_only:
            if behind is None:
                pytest.skip("a read-only place with no way to seed it")
            return behind

        def put_all(files: dict[str, bytes]) -> None:
            for key, data in files.items():
                folder = ""
                for part in key.split("/")[:-1]:
                    folder = f"{folder}/{part}" if folder else part
                    if place.stat(folder) is None:
                        like_dir = Entry(folder, DIR, 0, 0, 0o755, "")
                        place.make_dir(folder, like=like_dir, expect=None)
                place.write(key, io.BytesIO(data), like=like(key, data), expect=None)

        return put_all

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def put(
        place: Replica, key: str, data: bytes, expect: Entry | None = None
    ) -> Entry:
        return place.write(key, io.BytesIO(data), like=like(key, data), expect=expect)

    def _trashed(self, place: Replica) -> TrashItem | None:
        """An item in the place's trash (None where it keeps none)."""
        if not place.capabilities.trash:
            return None
        old = self.put(place, "t.txt", b"t")
        place.delete("t.txt", expect=old, trash="20260101T000000Z-dddddd")
        (kept,) = [i for i in place.trash_list() if i.key == "t.txt"]
        return kept

    @staticmethod
    def read(place: Replica, key: str) -> bytes:
        with place.open_read(key) as stream:
            return stream.read()

    # -- writing ---------------------------------------------------------------
    def test_an_item_trashed_twice_in_one_run_keeps_both(self, place: Replica) -> None:
        if not place.capabilities.trash:
            pytest.skip("this place keeps no trash")
        first = self.put(place, "a.txt", b"one")
        second = place.write(
            "a.txt",
            io.BytesIO(b"two"),
            like=like("a.txt", b"two"),
            expect=first,
            trash="run1",
        )
        place.write(
            "a.txt",
            io.BytesIO(b"three!"),
            like=like("a.txt", b"three!"),
            expect=second,
            trash="run1",
        )
        kept = sorted(i.entry.size for i in place.trash_list() if i.run == "run1")
        assert kept == [3, 3], kept  # "one" and "two": neither overwritten

    def test_a_batch_writes_each_file_and_fails_each_on_its_own(
        self, place: Replica
    ) -> None:
        old = place.write("b", io.BytesIO(b"old"), like=like("b", b"old"), expect=None)
        items = [
            WriteItem("a", b"first", like("a", b"first"), None),
            WriteItem("b", b"clobber?", like("b", b"clobber?"), None),  # exists
            WriteItem("c", b"", like("c", b""), None),
            WriteItem("b2", b"new", like("b2", b"new"), None),
        ]
        results = place.write_batch(items)
        assert [type(r).__name__ for r in results] == [
            "Entry",
            type(results[1]).__name__,
            "Entry",
            "Entry",
        ]
        assert isinstance(results[1], (AlreadyExists, PreconditionFailed))
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Entry):
                assert result.size == len(item.data)
                assert self.read(place, item.key) == item.data
                now = place.stat(item.key)
                assert now is not None and now.version == result.version
        assert self.read(place, "b") == b"old"
        now = place.stat("b")
        assert now is not None and now.version == old.version

    def test_write_creates_with_digest_and_metadata(self, place: Replica) -> None:
        entry = self.put(place, "a.txt", b"hello")
        assert entry.kind == FILE and entry.size == 5
        assert entry.digest and entry.digest.startswith("sha256:")
        assert self.read(place, "a.txt") == b"hello"
        now = place.stat("a.txt")
        assert now is not None and now.version == entry.version
        precision = place.capabilities.mtime_precision_ns
        if precision:
            assert abs(now.mtime_ns - _MTIME) < precision
        if place.capabilities.modes:
            assert now.mode == 0o640

    def test_no_permission_at_all_is_kept(self, place: Replica) -> None:
        """A file with no permission bits (``/etc/shadow`` on some systems)
        is listed with its type's bits (``model.permissions``), as 0 says
        "no modes kept here"; written, batched or set so, it keeps none,
        and is never given the default 0644."""
        if not place.capabilities.modes:
            pytest.skip("this place keeps no modes")
        locked = permissions(0o100000)
        shape = like("w", b"secret", mode=locked)
        made = place.write("w", io.BytesIO(b"secret"), like=shape, expect=None)
        opened = place.set_meta("w", like=made._replace(mode=0o600), expect=made)
        assert opened.mode == 0o600
        shut = place.set_meta("w", like=opened._replace(mode=locked), expect=opened)
        (batched,) = place.write_batch(
            [WriteItem("b", b"s", like("b", b"s", mode=locked), None)]
        )
        for entry in (made, shut, place.stat("w"), batched, place.stat("b")):
            assert isinstance(entry, Entry) and entry.mode == locked, entry

    def test_create_only_write_never_clobbers(self, place: Replica) -> None:
        self.put(place, "a.txt", b"first")
        with pytest.raises(PreconditionFailed):
            self.put(place, "a.txt", b"second")
        assert self.read(place, "a.txt") == b"first"

    def test_replacing_write_checks_the_expected_version(self, place: Replica) -> None:
        old = self.put(place, "a.txt", b"one")
        new = self.put(place, "a.txt", b"two, longer", expect=old)
        assert self.read(place, "a.txt") == b"two, longer"
        with pytest.raises(PreconditionFailed):
            self.put(place, "a.txt", b"three", expect=old)  # stale
        assert self.read(place, "a.txt") == b"two, longer"
        assert place.stat("a.txt").version == new.version  # type: ignore[union-attr]

    def test_a_write_is_checked_against_the_source_digest(self, place: Replica) -> None:
        wrong = like("a.txt", b"abc")._replace(digest="sha256:" + "0" * 64)
        with pytest.raises(PreconditionFailed):
            place.write("a.txt", io.BytesIO(b"abc"), like=wrong, expect=None)
        assert place.stat("a.txt") is None

    def test_a_failed_write_leaves_nothing_under_the_name(self, place: Replica) -> None:
        data = os.urandom(256 * 1024)
        with pytest.raises((OSError, ReplicaError)):
            place.write("b.bin", _Breaks(data), like=like("b.bin", data), expect=None)
        assert place.stat("b.bin") is None
        old = self.put(place, "c.bin", b"old content")
        with pytest.raises((OSError, ReplicaError)):
            place.write("c.bin", _Breaks(data), like=like("c.bin", data), expect=old)
        assert self.read(place, "c.bin") == b"old content"
        place.clean_temp()

    # -- names -----------------------------------------------------------------
    def test_names_are_kept_byte_for_byte(self, place: Replica) -> None:
        """A name is written, listed and read as given, never normalized:
        every one of ``EXACT_NAMES`` the place's capabilities say it can
        hold (with ``unicode_exact``, both spellings of one name)."""
        caps = place.capabilities
        names = [name for name in EXACT_NAMES if caps.unfit_reason(name) is None]
        if not caps.unicode_exact:
            names = [name for name in names if "\u0301" not in name]
        folder = Entry("re\u0301sume\u0301", DIR, 0, 0, 0o755, "")
        if any("/" in name for name in names):
            place.make_dir(folder.key, like=folder, expect=None)
        for name in names:
            data = name.encode("utf-8", "surrogateescape")
            assert self.put(place, name, data).key == name
        listed = {e.key for e in place.entries() if e.kind == FILE}
        assert listed == set(names)
        for name in names:
            assert self.read(place, name) == name.encode("utf-8", "surrogateescape")

    # -- reading ---------------------------------------------------------------
    def test_scan_lists_everything_once(self, place: Replica, seed: Behind) -> None:
        seed({"a.txt": b"a", "d/b.txt": b"bb"})
        found = {e.key: e for e in place.entries()}
        assert set(found) == {"a.txt", "d", "d/b.txt"}
        assert found["d"].kind == DIR and found["d/b.txt"].size == 2

    def test_scan_reports_unchanged_items_by_key(
        self, place: Replica, seed: Behind
    ) -> None:
        seed({"a.txt": b"a", "b.txt": b"b"})
        a = place.stat("a.txt")
        assert a is not None
        known = {"a.txt": a.version, "b.txt": "some other version"}
        items = list(place.scan(None, known))
        assert "a.txt" in items
        assert [i.key for i in items if isinstance(i, Entry)] == ["b.txt"]

    def test_ignored_folders_are_not_entered(
        self, place: Replica, seed: Behind
    ) -> None:
        seed({"skip/x.txt": b"x", "keep.txt": b"k"})
        keys = {e.key for e in place.entries(IgnoreRules(["skip/"]))}
        assert keys == {"keep.txt"}

    def test_digest_matches_what_was_written(
        self, place: Replica, seed: Behind
    ) -> None:
        seed({"a.txt": b"some bytes"})
        listed = next(e for e in place.entries() if e.key == "a.txt")
        digest = "sha256:" + hashlib.sha256(b"some bytes").hexdigest()
        assert place.digest(listed).digest == digest

    def test_accords_own_folder_is_not_listed(self, place: Replica) -> None:
        assert place.meta_create("probe", b"x")
        assert all(not e.key.startswith(".accord") for e in place.entries())

    def test_a_nested_places_own_folder_is_not_listed(
        self, place: Replica, behind: Behind | None
    ) -> None:
        """A folder named .accord deeper in the tree belongs to another
        accord place nested there: never listed (so never copied or
        deleted); a file of that name is an ordinary file."""
        if behind is None:
            pytest.skip("no way to write behind this place")
        behind({"inner/.accord/lock": b"theirs", "inner/a.txt": b"a"})
        behind({"other/.accord": b"a file of that name"})
        keys = {e.key for e in place.entries()}
        assert keys == {"inner", "inner/a.txt", "other", "other/.accord"}

    def test_a_read_only_place_refuses_every_change(
        self, place: Replica, seed: Behind
    ) -> None:
        if not place.capabilities.read_only:
            pytest.skip("this place can be written")
        seed({"a.txt": b"a"})
        a = place.stat("a.txt")
        assert a is not None
        attempts = [
            lambda: self.put(place, "new.txt", b"n"),
            lambda: self.put(place, "a.txt", b"changed", expect=a),
            lambda: place.delete("a.txt", expect=a),
            lambda: place.move("a.txt", "b.txt", expect=a),
            lambda: place.make_dir("d", like=Entry("d", DIR), expect=None),
            lambda: place.meta_create("lock", b"mine"),
        ]
        for attempt in attempts:
            with pytest.raises((PermissionDenied, Unsupported)):
                attempt()
        assert self.read(place, "a.txt") == b"a"
        assert {e.key for e in place.entries()} == {"a.txt"}

    # -- deleting, moving, trash ---------------------------------------------------
    def test_delete_checks_expect_and_keeps_a_copy(self, place: Replica) -> None:
        old = self.put(place, "a.txt", b"keep me")
        self.put(place, "a.txt", b"changed behind our back", expect=old)
        with pytest.raises(PreconditionFailed):
            place.delete("a.txt", expect=old, trash="run1")
        current = place.stat("a.txt")
        assert current is not None
        if not place.capabilities.trash:
            place.delete("a.txt", expect=current)
            assert place.stat("a.txt") is None
            return
        place.delete("a.txt", expect=current, trash="20260101T000000Z-aaaaaa")
        assert place.stat("a.txt") is None
        items = [i for i in place.trash_list() if i.key == "a.txt"]
        assert len(items) == 1
        place.trash_restore(items[0], "a.txt")
        assert self.read(place, "a.txt") == b"changed behind our back"

    def test_overwritten_content_goes_to_the_trash(self, place: Replica) -> None:
        if not place.capabilities.trash:
            pytest.skip("this place keeps no trash")
        old = self.put(place, "a.txt", b"version one")
        place.write(
            "a.txt",
            io.BytesIO(b"version two"),
            like=like("a.txt", b"version two"),
            expect=old,
            trash="20260101T000000Z-bbbbbb",
        )
        (item,) = [i for i in place.trash_list() if i.key == "a.txt"]
        place.trash_restore(item, "restored.txt")
        assert self.read(place, "restored.txt") == b"version one"
        assert place.trash_purge("20260101T000000Z-bbbbbb") >= 0
        assert not [i for i in place.trash_list() if i.run == "20260101T000000Z-bbbbbb"]

    def test_restore_never_overwrites(self, place: Replica) -> None:
        if not place.capabilities.trash:
            pytest.skip("this place keeps no trash")
        old = self.put(place, "a.txt", b"gone")
        place.delete("a.txt", expect=old, trash="20260101T000000Z-cccccc")
        self.put(place, "a.txt", b"new one")
        (item,) = [i for i in place.trash_list() if i.key == "a.txt"]
        with pytest.raises(AlreadyExists):
            place.trash_restore(item, "a.txt")

    def test_move_checks_both_names(self, place: Replica) -> None:
        a = self.put(place, "a.txt", b"moving")
        self.put(place, "taken.txt", b"here first")
        with pytest.raises(PreconditionFailed):
            place.move("a.txt", "taken.txt", expect=a)
        moved = place.move("a.txt", "b.txt", expect=a)
        assert moved.key == "b.txt" and place.stat("a.txt") is None
        assert self.read(place, "b.txt") == b"moving"
        assert self.read(place, "taken.txt") == b"here first"

    def test_a_non_empty_folder_is_not_deleted(self, place: Replica) -> None:
        if not place.capabilities.empty_dirs:
            pytest.skip("this place has no folders of its own")
        folder = place.make_dir("d", like=Entry("d", DIR, 0, 0, 0o755, ""), expect=None)
        self.put(place, "d/x.txt", b"x")
        with pytest.raises(PreconditionFailed):
            place.delete("d", expect=folder)
        assert place.stat("d/x.txt") is not None

    def test_folders_made_at_once_each_on_its_own(self, place: Replica) -> None:
        """``make_dirs``, where a place makes several folders in one call:
        each as ``make_dir`` makes it with nothing expected, parents before
        their folders, and a name already taken refused on its own."""
        if not place.capabilities.empty_dirs:
            pytest.skip("this place has no folders of its own")
        self.put(place, "taken", b"a file")
        keys = ["d", "d/e", "taken", "f"]
        results = place.make_dirs([(k, Entry(k, DIR, 0, 0, 0o755, "")) for k in keys])
        if results is None:
            pytest.skip("this place makes folders one by one")
        assert len(results) == len(keys)
        assert isinstance(results[2], (AlreadyExists, PreconditionFailed))
        for key, result in zip(keys, results, strict=True):
            if key != "taken":
                assert isinstance(result, Entry) and result.kind == DIR, (key, result)
                now = place.stat(key)
                assert now is not None and now.kind == DIR
                assert now.version == result.version
        assert self.read(place, "taken") == b"a file"

    # -- optional features ----------------------------------------------------------
    def test_links_when_claimed(self, place: Replica) -> None:
        if not place.capabilities.symlinks:
            pytest.skip("no symbolic links here")
        target = Entry("l", LINK, 0, 0, 0, "", None, "../outside")
        made = place.make_link("l", like=target, expect=None)
        assert made.kind == LINK and made.target == "../outside"
        with pytest.raises(PreconditionFailed):
            place.make_link("l", like=target, expect=None)

    def test_metadata_only_changes(self, place: Replica) -> None:
        entry = self.put(place, "a.txt", b"same")
        wanted = entry._replace(mode=0o600, mtime_ns=_MTIME - 10**12)
        done = place.set_meta("a.txt", like=wanted, expect=entry)
        assert self.read(place, "a.txt") == b"same"
        if place.capabilities.modes:
            assert done.mode == 0o600
        precision = place.capabilities.mtime_precision_ns
        if precision:
            assert abs(done.mtime_ns - wanted.mtime_ns) < precision

    # -- accord's own files -----------------------------------------------------------
    def test_meta_files_are_created_exclusively(self, place: Replica) -> None:
        assert place.meta_create("lock", b"mine")
        assert not place.meta_create("lock", b"theirs")
        assert place.meta_read("lock") == b"mine"
        place.meta_delete("lock")
        assert place.meta_read("lock") is None
        assert place.meta_create("history/r1.json", b"{}")
        assert place.meta_list("history/") == ["history/r1.json"]

    # -- never outside the root -------------------------------------------------------
    def test_hostile_keys_touch_nothing_anywhere(
        self, place: Replica, surroundings: Surroundings, seed: Behind
    ) -> None:
        """A place never writes, deletes, renames or reads outside its root,
        whatever key it is handed: each primitive refuses a key that would
        leave it, with UnsafeName and a message free of errno text (a
        read-only place: each reading primitive)."""
        seed({"a.txt": b"a"})
        a = place.stat("a.txt")
        assert a is not None
        read_only = place.capabilities.read_only
        kept = None if read_only else self._trashed(place)
        before = surroundings.snapshot()
        wrong: list[str] = []  # what was not refused, or not clearly
        for key in (*HOSTILE_KEYS, surroundings.absolute):
            for what, attempt in _hostile_attempts(place, key, a, kept):
                if not read_only or what in _READS:
                    wrong += _refused(what, key, attempt)
        if place.capabilities.trash:
            for run in HOSTILE_RUNS:
                wrong += _refused("trash_purge", run, lambda: place.trash_purge(run))  # noqa: B023
        assert surroundings.snapshot() == before, "something changed around the place"
        assert not wrong, "\n".join(wrong)
        assert self.read(place, "a.txt") == b"a"

    def test_links_that_lead_out_are_never_followed(
        self, place: Replica, surroundings: Surroundings
    ) -> None:
        """A symbolic link is data: making one that points out of the place
        is fine, but nothing is ever written, deleted, renamed or read
        through it, and a scan does not enter it."""
        if not surroundings.outside:
            pytest.skip("no symbolic link can exist in this place")
        if not place.capabilities.symlinks and surroundings.plant_link is None:
            pytest.skip("this place makes no links, and none can be planted")
        a = self.put(place, "a.txt", b"a")
        kept = self._trashed(place)
        links = [f"l{number}" for number in range(len(surroundings.outside))]
        for link, target in zip(links, surroundings.outside, strict=True):
            if place.capabilities.symlinks:
                entry = Entry(link, LINK, 0, 0, 0, "", None, target)
                place.make_link(link, like=entry, expect=None)
            else:
                assert surroundings.plant_link is not None
                surroundings.plant_link(link, target)
        listed = {e.key for e in place.entries()}
        assert not [k for k in listed if k.split("/")[0] in links and "/" in k]
        before = surroundings.snapshot()
        went: list[str] = []
        for link in links:
            for what, attempt in _through_link(place, link, a, kept):
                try:
                    attempt()
                except ReplicaError:
                    continue
                went.append(f"{what} went through the link {link}")
        assert surroundings.snapshot() == before, "something changed around the place"
        assert not went, "\n".join(went)


def _hostile_attempts(
    place: Replica, key: str, a: Entry, kept: TrashItem | None
) -> list[tuple[str, Callable[[], object]]]:
    """Every primitive, handed ``key``."""
    data = b"escaped"
    item = Entry(key, FILE, len(data), _MTIME, 0o644, "1")
    folder = Entry(key, DIR, 0, 0, 0o755, "d")
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("stat", lambda: place.stat(key)),
        ("open_read", lambda: _read_all(place, key)),
        ("digest", lambda: place.digest(item)),
        (
            "write",
            lambda: place.write(
                key, io.BytesIO(data), like=like(key, data), expect=None
            ),
        ),
        ("replacing write", lambda: _replace(place, key, data, item)),
        ("write_batch", lambda: _batch(place, key, data)),
        ("make_dir", lambda: place.make_dir(key, like=folder, expect=None)),
        ("set_meta", lambda: place.set_meta(key, like=item, expect=item)),
        ("delete", lambda: place.delete(key, expect=item)),
        ("delete into the trash", lambda: place.delete(key, expect=item, trash="r1")),
        ("move to it", lambda: place.move("a.txt", key, expect=a)),
        ("move from it", lambda: place.move(key, "b.txt", expect=item)),
    ]
    if place.make_dirs([]) is not None:  # it makes several folders at once
        attempts.append(("make_dirs", lambda: _folders(place, key, folder)))
    if place.capabilities.symlinks:
        link = Entry(key, LINK, 0, 0, 0, "", None, "a.txt")
        attempts.append(
            ("make_link", lambda: place.make_link(key, like=link, expect=None))
        )
    if kept is not None:
        attempts += [
            ("trash_restore to it", lambda: place.trash_restore(kept, key)),
            (
                "trash_restore of it",
                lambda: place.trash_restore(kept._replace(key=key), "r.txt"),
            ),
        ]
        run = kept._replace(run=key)  # a run stamp that is not a plain name
        attempts.append(
            ("trash_restore from it", lambda: place.trash_restore(run, "r.txt"))
        )
    return attempts


def _through_link(
    place: Replica, link: str, a: Entry, kept: TrashItem | None
) -> list[tuple[str, Callable[[], object]]]:
    """Every change and read below ``link``, a link leading out of the place."""
    data = b"through the link"
    inside = f"{link}/new.txt"
    victim = Entry(f"{link}/victim", FILE, 6, _MTIME, 0o644, "any")
    folder = Entry(f"{link}/sub", DIR, 0, 0, 0o755, "d")
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("open_read", lambda: _read_all(place, victim.key)),
        (
            "write",
            lambda: place.write(
                inside, io.BytesIO(data), like=like(inside, data), expect=None
            ),
        ),
        ("replacing write", lambda: _replace(place, victim.key, data, victim)),
        ("write_batch", lambda: _batch(place, inside, data)),
        ("make_dir", lambda: place.make_dir(folder.key, like=folder, expect=None)),
        ("set_meta", lambda: place.set_meta(victim.key, like=victim, expect=victim)),
        ("delete", lambda: place.delete(victim.key, expect=victim)),
        ("move into it", lambda: place.move("a.txt", f"{link}/a.txt", expect=a)),
        ("move out of it", lambda: place.move(victim.key, "stolen.txt", expect=victim)),
    ]
    if place.capabilities.symlinks:
        other = Entry(f"{link}/x", LINK, 0, 0, 0, "", None, "a.txt")
        attempts.append(
            ("make_link", lambda: place.make_link(other.key, like=other, expect=None))
        )
    if kept is not None:
        attempts.append(
            ("trash_restore", lambda: place.trash_restore(kept, f"{link}/r.txt"))
        )
    return attempts


def _refused(what: str, key: str, attempt: Callable[[], object]) -> list[str]:
    """[] when ``attempt`` raised UnsafeName with a clear message, else why not."""
    try:
        attempt()
    except UnsafeName as exc:
        if "refused" in str(exc) and "rrno" not in str(exc):
            return []
        return [f"{what} {key!r}: unclear refusal: {exc}"]
    except Exception as exc:
        return [f"{what} {key!r}: not refused as unsafe, but {exc!r}"]
    return [f"{what} {key!r}: not refused"]


def _read_all(place: Replica, key: str) -> bytes:
    with place.open_read(key) as stream:
        return stream.read()


def _replace(place: Replica, key: str, data: bytes, expect: Entry) -> Entry:
    return place.write(key, io.BytesIO(data), like=like(key, data), expect=expect)


def _folders(place: Replica, key: str, folder: Entry) -> None:
    """``make_dirs`` of the one folder ``key``, its error raised."""
    (result,) = place.make_dirs([(key, folder)])  # type: ignore[misc]
    if isinstance(result, Exception):
        raise result


def _batch(place: Replica, key: str, data: bytes) -> None:
    (result,) = place.write_batch([WriteItem(key, data, like(key, data), None)])
    if isinstance(result, Exception):
        raise result
