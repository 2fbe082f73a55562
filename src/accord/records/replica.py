"""A record place behind the Replica contract: the engine syncs records as
it syncs files.

    records:///srv/school/mapping.toml#students              the entity's source
    records:///srv/school/mapping.toml#students/lms          its target "lms"
    records:///srv/school/mapping.toml#students/lms/source   the source, as "lms"
                                                             sees it (its computed
                                                             fields and defaults)

A target is named by its ``name`` in the mapping, or its number (1, 2...).
Each record is one item: its key is the record's key (key parts joined by
``/``, each percent-quoted where it holds ``/`` or ``%`` or starts with a
dot), and its entry carries the record text (``accord.records.canon``) as
its ``version``, and as its ``digest`` the part of it that the target's rules
compare (a field set only on creation is left out; a kept field counts only
as set or empty). Entries hold no content: ``open_read`` gives the record
text, ``write`` applies one under the target's rules, stating the record it
expects to replace (SQL: ``UPDATE ... WHERE`` every field still holds its
old value; LDAP: delete the old value and add the new in one request).

Writes are staged and made durable by ``flush`` (one SQL transaction per
batch of the engine; a CSV file rewritten atomically, once per run, as its
``flush_at_end`` capability tells the engine), so the archive never claims
more than is written. The records are also listed as columns
(``scan_columns``): the engine compares them in Arrow and makes entries
only of the records that differ. The lock, the shared history and the trash of
a record place live in accord's state folder (``accord.records.meta``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import quote, unquote

from accord.capabilities import Capabilities
from accord.config import default_state_dir
from accord.errors import (
    AccordError,
    ConfigError,
    InvalidInput,
    ReplicaError,
    Unsupported,
)
from accord.keys import IgnoreRules, unsafe_reason
from accord.model import FILE, Entry, Problem
from accord.records.canon import NULL, SEP, canonical, decode
from accord.records.handlers import load_handler
from accord.records.mapping import Entity, Mapping, PlaceSpec, load_mapping
from accord.records.meta import PlaceStore
from accord.records.places import writes_whole
from accord.records.plan import RecordAction
from accord.records.rows import Rows
from accord.records.rules import changes_under, target_view
from accord.records.twoway import merge_fields
from accord.records.values import BadValue
from accord.replica import (
    Columns,
    Replica,
    TrashItem,
    are_numbers,
    check_key,
    source_changed,
)

__all__ = ["Merged", "RecordReplica", "record_url"]

Key = tuple[Any, ...]

_SAFE = "!$&'()*+,;=:@-_.~ "
#: a key text that is already its engine name (``_plain_name``), as RE2
_PLAIN = r"^[^./%\\\x00][^/%\\\x00]*$"


class Merged(NamedTuple):
    """A three-way merge of one record: the merged entry, or None and why."""

    entry: Entry | None
    reason: str


def record_url(
    mapping: Path, entity: str, target: str | None = None, source: bool = False
) -> str:
    """The URL of an entity's source, of one of its targets, or of its source
    as that target sees it."""
    fragment = entity if target is None else f"{entity}/{target}"
    if source and target is not None:
        fragment += "/source"
    return f"records://{mapping.resolve()}#{fragment}"


class RecordReplica(Replica):
    """The records of one entity in one place (a CSV file, a table, ...)."""

    scheme = "records"

    def __init__(
        self,
        mapping: Mapping,
        entity: Entity,
        target: int | None,
        role: str,
        *,
        keep_going: bool = False,
        state_dir: Path | None = None,
    ) -> None:
        self.mapping, self.entity, self.role = mapping, entity, role
        self.target = entity.targets[target] if target is not None else None
        self.spec: PlaceSpec = self.target if role == "target" else entity.source
        self.keep_going = keep_going
        name = _target_name(entity, target) if target is not None else None
        self.url = record_url(mapping.path, entity.name, name, role == "view")
        self.label = self.spec.label
        two_way = entity.mode == "two-way"
        self.rules: dict[str, str] = {}
        if self.target is not None and not two_way:
            self.rules = dict(self.target.rules)
        view = f">{self.target.label}" if role == "view" and self.target else ""
        self.identity = f"records:{self.label}#{entity.name}{view}"
        self.fields = (
            entity.target_fields(self.target)
            if self.target is not None and not two_way
            else entity.fields
        )
        self.capabilities = Capabilities(
            listed_digests=frozenset({"record"}),
            mtime_precision_ns=None,
            modes=False,
            case_sensitive=not self.spec.url.startswith(("ldap", "mysql")),
            empty_dirs=False,
            symlinks=False,
            server_side_move=False,
            parallel_transfers=False,
            merge=two_way,
            listed_columns=not self.rules,  # rules: compared record by record
            flush_at_end=writes_whole(self.spec),
        )
        self.store = PlaceStore(self.identity, state_dir)
        self.place: Any = None
        self.handler: Any = None
        self.handled = 0  # actions a site's handler did itself
        self._rows: Rows | None = None
        self._state_dir = state_dir
        #: records trashed whose rows leave a file at the next flush:
        #: {the place's key text: (run, key)} (``_keep_rows``)
        self._trashed: dict[str, tuple[str, str]] = {}

    # -- opening ---------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, **options: Any) -> RecordReplica:
        rest = url.split("://", 1)[1]
        path, _, fragment = rest.partition("#")
        parts = fragment.split("/") if fragment else []
        if (
            not path
            or not parts
            or len(parts) > 3
            or (len(parts) == 3 and parts[2] != "source")
        ):
            raise InvalidInput(
                f"{url!r} does not name records",
                hint="records:///path/mapping.toml#ENTITY, #ENTITY/TARGET or "
                "#ENTITY/TARGET/source",
            )
        mapping = load_mapping(Path(unquote(path)).expanduser())
        entity = mapping.entities.get(parts[0])
        if entity is None:
            raise ConfigError(
                f"no entity {parts[0]!r} in {mapping.path}",
                hint="entities: " + ", ".join(mapping.entities),
            )
        if len(parts) == 1:
            return cls(mapping, entity, None, "source", **options)
        target = _target_index(entity, parts[1])
        role = "view" if len(parts) == 3 else "target"
        return cls(mapping, entity, target, role, **options)

    def open(self, create: bool = False) -> None:
        from accord.records.places import open_place

        if self.place is None:
            fields = self.fields if self.role == "target" else self.entity.fields
            self.place = open_place(self.spec, self.entity, fields)
            self.place.keep_going = self.keep_going
            if hasattr(self.place, "on_removed"):  # a file: its rows kept whole
                self.place.on_removed = self._keep_rows
            remember = getattr(self.place, "remember_writes", None)
            if remember is not None:
                remember((self._state_dir or default_state_dir()) / "records-files")
            writes = self.role == "target" or self.entity.mode == "two-way"
            if writes and self.handler is None:
                self.handler = load_handler(
                    self.entity.handler, self.mapping.path.parent
                )

    def close(self) -> None:
        if self.place is not None:
            self.place.rollback()
            close = getattr(self.place, "close", None)
            if close is not None:
                close()
        self.store.close()

    def _load(self) -> Rows:
        if self._rows is None:
            self.open()
            rows = self.place.read_rows()
            if self.role == "view" and self.target is not None:
                rows = target_view(self.entity, self.target, rows)
            self._rows = rows
        return self._rows

    # -- names -------------------------------------------------------------------
    def key_name(self, key_text: str) -> str:
        """The engine's key of a record: its key parts, quoted where needed."""
        parts = decode(key_text)
        name = "/".join(_quoted(part or "") for part in parts)
        why = unsafe_reason(name)
        if why is not None:  # pragma: no cover - quoting leaves none
            raise ReplicaError(f"a record key cannot name an item: {why}", key=name)
        return name

    def key_text(self, name: str) -> str:
        """The record's key text of an engine key (UnsafeName for a name
        that could not be one: every primitive passes here first)."""
        check_key(name, self.label)
        canon = self._key_canon
        if canon is None:
            canon = self._key_canon = [
                canonical(self.entity.types.get(k, "str"), True)
                for k in self.entity.key
            ]
        parts = [unquote(part) for part in name.split("/")]
        if len(parts) != len(canon):
            raise InvalidInput(f"{name!r} is not a key of {self.entity.name}")
        return SEP.join(f(part) for f, part in zip(canon, parts, strict=True))

    #: the key fields' conversions (``canonical``), picked once
    _key_canon: list[Any] | None = None

    def key_of(self, name: str) -> tuple[Any, ...]:
        """The record key (Python values) of an engine key."""
        return self._load().key(self.key_text(name))

    def record_of(self, text: str | None) -> dict[str, Any] | None:
        return None if text is None else self._load().record(text)

    def differ(self, text: str, other: str) -> bool:
        """Whether two record texts of this place hold different values."""
        return self._load().differ(text, other)

    # -- reading -----------------------------------------------------------------
    def _entry(self, name: str, text: str) -> Entry:
        digest = self._compared(text) if self.rules else text
        return Entry(name, FILE, 0, 0, 0, text, digest)

    def _compared(self, text: str) -> str:
        """The part of a record its target compares: a field set only on
        creation is left out; a kept field counts as set or empty."""
        values = text.split(SEP)
        for at, name in enumerate(self.fields):
            rule = self.rules.get(name)
            if rule == "on_create":
                values[at] = ""
            elif rule == "keep":
                values[at] = "set" if values[at] not in (NULL, "") else NULL
        return SEP.join(values)

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        rows = self._load()
        kinds = self.entity.types
        simple = len(self.entity.key) == 1 and kinds.get(self.entity.key[0]) != "list"
        make = tuple.__new__  # an Entry without NamedTuple's Python-level __new__
        compared = self._compared if self.rules else None
        known_get = known.get if known else None
        for key, text in rows.by_key.items():
            name = key if simple and _plain_name(key) else self.key_name(key)
            if known_get is not None and known_get(name) == text:
                yield name
                continue
            digest = compared(text) if compared is not None else text
            yield make(Entry, (name, FILE, 0, 0, 0, text, digest, None))

    def scan_columns(self) -> Columns | None:
        """The records as columns: names, and the record texts as versions
        and digests (None under a target's rules, whose compared part is
        made record by record in ``scan``)."""
        if self.rules:
            return None
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
        except ImportError:  # pragma: no cover - it comes with the records extra
            return None
        return self._listed(self._load(), pa, pc)

    def kept_columns(self) -> Columns | None:
        """The records as columns as the next ``scan_columns`` would list
        them, when they come from a kept file (``Rows.origin``) that still
        holds what the place holds now (no parse); else None."""
        if self.rules or self.role == "view":
            return None
        self.open()
        kept_rows = getattr(self.place, "kept_rows", None)
        try:
            import pyarrow as pa
            import pyarrow.compute as pc

            rows = kept_rows() if kept_rows is not None else None
        except (ImportError, AccordError):
            return None
        return None if rows is None else self._listed(rows, pa, pc)

    def _listed(self, rows: Rows, pa: Any, pc: Any) -> Columns:
        keys, texts = rows.columns()
        simple = (
            len(self.entity.key) == 1
            and self.entity.types.get(self.entity.key[0]) != "list"
        )
        if not (
            simple
            and (  # numbers are plain names
                are_numbers(keys)
                or pc.all(pc.match_substring_regex(keys, _PLAIN)).as_py()
            )
        ):
            keys = pa.array([self.key_name(k) for k in keys.to_pylist()], pa.string())
        origin = rows.origin if self.role != "view" else None
        return Columns(keys, texts, texts, origin)

    def stat(self, key: str) -> Entry | None:
        try:
            wanted = self.key_text(key)
        except (InvalidInput, BadValue):
            return None  # not a key of these records
        if self.key_name(wanted) != key:
            return None  # not a record's name (.accordignore, say): no reading
        text = self._load().by_key.get(wanted)
        return None if text is None else self._entry(key, text)

    def is_empty_root(self) -> bool:
        """Known only once read: the read is left to the scan (both sides
        at once), and an emptied side is caught after it (check_emptied)."""
        return self._rows is not None and len(self._rows) == 0

    def digest(self, entry: Entry) -> Entry:
        return entry

    def open_read(self, key: str) -> AbstractContextManager[IO[bytes]]:
        entry = self.stat(key)
        if entry is None:
            from accord.errors import NotFound

            raise NotFound("no such record", where=self.label, key=key)
        return io.BytesIO(entry.version.encode())

    # -- writing -----------------------------------------------------------------
    def write(
        self,
        key: str,
        data: IO[bytes],
        *,
        like: Entry,
        expect: Entry | None,
        trash: str | None = None,
    ) -> Entry:
        text = data.read().decode()
        if (self.rules and self._compared(text) != like.digest) or (
            not self.rules and like.digest and text != like.digest
        ):
            raise source_changed(self.label, key)
        rows = self._load()
        wanted = rows.record(text)
        record_key = self.key_of(key)
        if expect is None:
            action = RecordAction(
                "create", self.entity.name, self.label, record_key, None, wanted
            )
            if self._handled(action):
                return self._entry(key, text)
            self.place.change("create", record_key, None, wanted)
            return self._entry(key, text)
        before = rows.record(expect.version)
        changes = changes_under(wanted, before, self.rules)
        if not changes:
            return expect
        action = RecordAction(
            "update", self.entity.name, self.label, record_key, before, changes
        )
        if self._handled(action):
            return expect
        if trash:
            self.store.trash(trash, key, expect.version)
        self.place.change("update", record_key, before, changes)
        merged = {**before, **changes}
        return self._entry(key, self._text(merged))

    def _text(self, record: dict[str, Any]) -> str:
        empty_text = self.entity.empty == "text"
        return SEP.join(
            canonical(self.entity.types.get(n, "str"), empty_text)(record.get(n))
            for n in self.fields
        )

    def delete(self, key: str, *, expect: Entry, trash: str | None = None) -> None:
        before = self._load().record(expect.version)
        action = RecordAction(
            "delete", self.entity.name, self.label, self.key_of(key), before, None
        )
        if self._handled(action):
            return
        if trash:
            self._trash(trash, key, expect.version, action.key, before)
        self.place.change("delete", action.key, before, None)

    def _trash(
        self,
        run: str,
        key: str,
        text: str,
        record_key: tuple[Any, ...],
        before: dict[str, Any],
    ) -> None:
        """Keep a record that leaves the place (``before``: its record) in
        the trash: a table's row or a directory's entry whole, read first
        (one that cannot be read does not leave: the error is raised); a
        file's row whole when the file is written (``_keep_rows``)."""
        keep_whole = getattr(self.place, "keep_whole", None)
        whole = keep_whole(record_key, before) if keep_whole else None
        self.store.trash(run, key, text)
        if whole is not None:
            self.store.keep_row(run, key, whole)
        if hasattr(self.place, "on_removed"):
            self._trashed[self.place.key_text(record_key)] = (run, key)

    def _keep_rows(self, removed: dict[str, str]) -> None:
        """The rows leaving a file (``CSVPlace.on_removed``), each kept with
        its record in the trash, before the file is replaced."""
        for key_text, kept in removed.items():
            trashed = self._trashed.pop(key_text, None)
            if trashed is not None:
                self.store.keep_row(*trashed, kept)

    def _handled(self, action: RecordAction) -> bool:
        """Call the site's handler first: True when it did the work itself.
        A handler that raises makes this record failed."""
        method = getattr(self.handler, action.op, None) if self.handler else None
        if method is None:
            return False
        try:
            outcome = method(action)
        except Exception as exc:
            reason = f"the handler failed: {type(exc).__name__}: {exc}"
            self.tell_failed(action, reason)
            raise ReplicaError(reason, where=self.label) from None
        if outcome == "handled":
            self.handled += 1
            return True
        return False

    def tell_failed(self, action: RecordAction, reason: str) -> None:
        method = getattr(self.handler, "failed", None) if self.handler else None
        if method is not None:
            with suppress(Exception):
                method(action, reason)

    def flush(self) -> None:
        if self.place is not None:
            self.place.commit()

    def clean_temp(self) -> None:
        if self.place is not None:
            self.place.rollback()

    def make_dir(self, key: str, *, like: Entry, expect: Entry | None) -> Entry:
        raise Unsupported("records hold no folders", where=self.label)

    def set_meta(self, key: str, *, like: Entry, expect: Entry) -> Entry:
        return expect  # a record has no mtime or mode

    # -- merging (two-way) ---------------------------------------------------------
    def merge(self, base: Entry | None, left: Entry, right: Entry) -> Merged:
        """Field by field against the last agreed record; clashes settled by
        the entity's ``conflict`` rule, or left for a person. Pure."""
        rows = self._load()
        old = rows.record(base.digest) if base is not None and base.digest else {}
        lv, rv = rows.record(left.version), rows.record(right.version)
        merged, clashes = merge_fields(old, lv, rv, self.entity.conflict)
        if clashes and self.entity.conflict == "skip":
            return Merged(
                None,
                f"{', '.join(clashes)} changed differently on both "
                "sides; left for a person (or set conflict = left/right)",
            )
        text = self._text(merged)
        return Merged(Entry(left.key, FILE, 0, 0, 0, text, text, text), "")

    # -- accord's own files and the trash -------------------------------------------
    def meta_create(self, name: str, data: bytes) -> bool:
        return self.store.create(name, data)

    def meta_read(self, name: str) -> bytes | None:
        return self.store.read(name)

    def meta_delete(self, name: str) -> None:
        self.store.delete(name)

    def meta_list(self, prefix: str) -> list[str]:
        return self.store.names(prefix)

    def trash_list(self) -> Iterator[TrashItem]:
        for run, key, text in self.store.trashed():
            yield TrashItem(run, key, Entry(key, FILE, len(text), 0, 0, text, text))

    def trash_restore(self, item: TrashItem, key: str) -> Entry:
        """Put a deleted (or overwritten) record back, as it was: a row
        deleted from a file whole, where it was, as the trash kept it."""
        text = item.entry.version
        current = self.stat(key)
        record = self._load().record(text)
        record_key = self.key_of(key)
        if key != item.key:
            raise InvalidInput("a record is restored under its own key only")
        kept = self.store.kept(item.run, item.key)
        before = None
        if current is not None:
            # the record there now goes to the trash in turn, whole as a
            # delete keeps it: the restore writes over all of it
            before = self._load().record(current.version)
            replaced = _restore_run(item.run)
            self._trash(replaced, key, current.version, record_key, before)
        if kept is not None and hasattr(self.place, "put_back"):
            self.place.put_back(record_key, before, record, kept)
        elif before is not None:
            changes = {n: v for n, v in record.items() if before.get(n) != v}
            if changes:
                self.place.change("update", record_key, before, changes)
        else:
            self.place.change("create", record_key, None, record)
        self.place.commit()
        self.store.untrash(item.run, item.key)
        return self._entry(key, text)

    def trash_purge(self, run: str) -> int:
        return self.store.purge(run)

    def forget_meta(self) -> None:
        self.store.forget()


def _restore_run(run: str) -> str:
    return f"{run}-replaced"


def _plain_name(key: str) -> bool:
    """True when a key text is already a clean engine key (most are)."""
    return not (
        not key
        or "/" in key
        or "%" in key
        or "\\" in key
        or "\0" in key
        or key[0] == "."
    )


def _quoted(part: str) -> str:
    text = quote(part, safe=_SAFE)
    return "%2E" + text[1:] if text[:1] == "." else text


def _target_name(entity: Entity, index: int) -> str:
    target = entity.targets[index]
    return str(target.options.get("name") or index + 1)


def _target_index(entity: Entity, name: str) -> int:
    for index, target in enumerate(entity.targets):
        if name in (str(index + 1), str(target.options.get("name", ""))):
            return index
    names = [_target_name(entity, i) for i in range(len(entity.targets))]
    raise ConfigError(
        f"entity {entity.name!r} has no target {name!r}",
        hint="targets: " + ", ".join(names),
    )
