"""A SQL table as a record place (a SQLAlchemy URL and ``table = ...``):
read into Arrow by connectorx when it can, else through the driver; each
batch of changes is one transaction, every change stating the row it
expects to replace (``accord.records.places`` names the interface).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from accord.errors import (
    BadData,
    ConfigError,
    MissingDependency,
    PreconditionFailed,
    ReplicaError,
)
from accord.records import sqlvalues
from accord.records.kept import kept_whole, read_whole
from accord.records.mapping import Entity, PlaceSpec
from accord.records.rows import Rows, collect
from accord.records.values import to_text
from accord.sqlurls import driver_url, missing_sqlite_file, sql_reason

__all__ = ["SQLPlace"]

Key = tuple[Any, ...]
Records = dict[Key, dict[str, Any]]


class SQLPlace:
    """A SQL table through SQLAlchemy; each apply is one transaction."""

    def __init__(self, spec: PlaceSpec, entity: Entity, fields: tuple[str, ...]):
        try:
            import sqlalchemy
        except ImportError as exc:
            raise MissingDependency(
                "SQL places need SQLAlchemy", hint="pip install 'accord[records]'"
            ) from exc
        if not spec.table:
            raise ConfigError(f"{spec.url}: a SQL place needs table = ...")
        self.sa = sqlalchemy
        self.spec, self.entity, self.fields = spec, entity, fields
        self.label = spec.label
        missing = missing_sqlite_file(spec.url)
        if missing is not None:  # connecting would make an empty database
            raise ConfigError(
                f"{self.label}: no SQLite database at {missing!r}",
                hint="check the path (a relative one is from the current "
                "folder); accord makes no database or table: create them first",
            )
        try:
            # no pool: a run opens a few connections and closes them at once
            self.engine = sqlalchemy.create_engine(
                driver_url(spec.url), poolclass=sqlalchemy.pool.NullPool
            )
            self.table = sqlalchemy.Table(
                spec.table, sqlalchemy.MetaData(), autoload_with=self.engine
            )
        except sqlalchemy.exc.NoSuchTableError:
            columns = ", ".join(spec.column(f) for f in fields)
            raise ConfigError(
                f"{self.label}: no table {spec.table!r}",
                hint=f"accord makes no table: create {spec.table!r} (with the "
                f"mapped columns {columns}), or name an existing one",
            ) from None
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
            raise ConfigError(
                f"cannot open {self.label}: {sql_reason(exc)}",
                hint="check the URL, that the server runs and that the database exists",
            ) from None
        unknown = [spec.column(f) for f in fields if spec.column(f) not in self.table.c]
        if unknown:
            raise BadData(
                self.label, [f"the table has no column {c!r}" for c in unknown]
            )

    def _col(self, name: str) -> Any:
        return self.table.c[self.spec.column(name)]

    def check(self, actions: list[Any]) -> list[str]:
        """What the table would refuse, found before anything is written:
        no value for a NOT NULL column, a text longer than its column."""
        mapped = {self.spec.column(f) for f in self.fields}
        problems = []
        if any(a.op == "create" for a in actions):
            problems += [
                f"{self.label}: column {c.name!r} needs a value (NOT NULL, no "
                "default) and no field maps to it"
                for c in self.table.c
                if c.name not in mapped
                and not c.nullable
                and c.default is None
                and c.server_default is None
                and not (c.primary_key and c.autoincrement in (True, "auto"))
            ]
        for action in actions:
            if action.op == "delete":
                continue
            key = "/".join(to_text(part) for part in action.key)
            for name, value in (action.after or {}).items():
                why = self._refused(name, value)
                if why:
                    problems.append(f"{self.label}: {key}: field {name}: {why}")
        return problems

    def _refused(self, name: str, value: Any) -> str | None:
        column = self._col(name)
        stored = self._stored(name, value)
        if stored is None:
            if not column.nullable and not column.primary_key:
                return f"no value, and column {column.name!r} is NOT NULL"
            return None
        length = getattr(column.type, "length", None)
        if isinstance(stored, str) and length and len(stored) > length:
            return (
                f"{len(stored)} characters, and column {column.name!r} holds "
                f"at most {length}"
            )
        return None

    def read(self) -> Records:
        return self.read_rows().records()

    def read_rows(self) -> Rows:
        """Every row: fetched into Arrow when connectorx can (fast), else
        through the driver in batches (the reference, which says what is
        wrong where)."""
        from accord.records import fastsql

        query = self.sa.select(*(self._col(f) for f in self.fields))
        sql = str(query.compile(dialect=self.engine.dialect))
        entity = self.entity
        found = None
        if self._typed_alike():
            found = fastsql.canonical_columns(
                self.engine.url,
                sql,
                [entity.types.get(f, "str") for f in self.fields],
                [self.fields.index(k) for k in entity.key],
                entity.empty == "text",
            )
        if found is not None:
            return Rows(self.fields, entity.types, entity.key, found)
        with self.engine.connect() as conn:
            cursor = conn.exec_driver_sql(sql).cursor
            return collect(entity, self.fields, self.label, _batches(cursor))

    def _typed_alike(self) -> bool:
        """Whether the fast reader may read this table: a SQLite column holds
        any type whatever it declares, and the reader guesses from values
        (a NULL in a TEXT column of numbers came back as 0), so there each
        column must declare the type its field has."""
        if self.engine.url.get_backend_name() != "sqlite":
            return True
        sa = self.sa
        wanted = {
            "int": (sa.Integer,),
            "str": (sa.String,),
            "bool": (sa.Integer,),
            "date": (sa.Date, sa.String),
        }
        for name in self.fields:
            kinds = wanted.get(self.entity.types.get(name, "str"))
            column_type = self._col(name).type
            if kinds is None or not isinstance(column_type, kinds):
                return False
            if isinstance(column_type, sa.Boolean):
                return False
        return True

    def _stored(self, name: str, value: Any) -> Any:
        return to_text(value) if isinstance(value, tuple) else value

    def _match(self, key: Key, before: dict[str, Any], names: Iterable[str]) -> Any:
        """WHERE key = ... AND each named field still holds its old value."""
        terms = [
            self._col(k) == part for k, part in zip(self.entity.key, key, strict=True)
        ]
        for name in names:
            value = self._stored(name, before.get(name))
            column = self._col(name)
            terms.append(column.is_(None) if value is None else column == value)
        return self.sa.and_(*terms)

    keep_going = False  # a refused record fails alone (else the batch goes)
    _conn: Any = None
    _tx: Any = None
    _refusal: str | None = None

    def change(self, op: str, key: Key, before: Any, after: Any) -> None:
        """One change inside the open transaction (``commit`` ends it).
        PreconditionFailed when the row is not as expected; ReplicaError when
        the database refuses it: then, unless ``keep_going``, the whole
        transaction is rolled back and every later change refused."""
        self._execute(self._statement(op, key, before, after), op != "create")

    def keep_whole(self, key: Key, before: dict[str, Any]) -> str | None:
        """The row a delete is about to remove, every column of it (the
        mapping may name only some), as the trash keeps it (an
        ``accord.records.kept`` text); read in the transaction the delete
        runs in, and locked there where the database can (``FOR UPDATE``).
        None when the row is not as expected (the delete then says so)."""
        query = self.sa.select(self.table).where(self._match(key, before, self.fields))
        if self.engine.url.get_backend_name() != "sqlite":  # locks the file
            query = query.with_for_update()
        try:
            rows = self._connection().execute(query).mappings().all()
        except self.sa.exc.SQLAlchemyError as exc:
            reason = sql_reason(exc, whole=True)
            raise ReplicaError(
                f"could not read the row to keep it in the trash: {reason}; "
                "not deleted",
                where=self.label,
            ) from None
        if len(rows) != 1:
            return None
        return kept_whole(
            "sql", {name: sqlvalues.encoded(value) for name, value in rows[0].items()}
        )

    def put_back(
        self, key: Key, before: dict[str, Any] | None, record: dict[str, Any], kept: str
    ) -> None:
        """A record restored from the trash with its whole row (``kept``):
        inserted, or written over the row that holds its key now
        (``before``: its record, as expected there), every column as the
        row had it and the mapped ones as ``record``. ConfigError, and
        nothing written, when the table lost a column the row had a value
        in."""
        whole = read_whole(kept, "sql")
        if whole is None:
            self.change("update" if before else "create", key, before, record)
            return
        lost = [c for c, v in whole.items() if v is not None and c not in self.table.c]
        if lost:
            raise ConfigError(
                f"{self.label}: the row kept in the trash has values in columns"
                f" the table no longer has: {', '.join(map(repr, lost))}",
                hint="add them to the table to restore the row whole",
            )
        mapped = self._row(record)
        values = {
            c: sqlvalues.decoded(v) for c, v in whole.items() if c in self.table.c
        }
        values.update(mapped)
        if before is None:
            self._execute(self.table.insert().values(**values), False)
            return
        # over a row there now: its own identity stays (rows elsewhere may
        # point at it), unless the mapping writes it
        for column in self.table.primary_key.columns:
            if column.name not in mapped:
                values.pop(column.name, None)
        match = self._match(key, before, self.fields)
        self._execute(self.table.update().where(match).values(**values), True)

    def _connection(self) -> Any:
        """The connection of the open transaction (begun on first use)."""
        if self._refusal is not None:
            raise self._refused_error()
        if self._conn is None:
            self._conn = self.engine.connect()
            self._tx = self._conn.begin()
        return self._conn

    def _execute(self, statement: Any, one_row: bool) -> None:
        """Run ``statement`` in the open transaction (``change`` says how a
        refusal is handled); with ``one_row``, it must touch exactly one."""
        conn = self._connection()
        savepoint = conn.begin_nested() if self.keep_going else None
        try:
            done = conn.execute(statement)
        except self.sa.exc.SQLAlchemyError as exc:
            reason = sql_reason(exc, whole=True)
            if savepoint is not None:
                savepoint.rollback()
                raise ReplicaError(
                    f"the database refused it: {reason}", where=self.label
                ) from None
            self.rollback()
            self._refusal = reason
            raise self._refused_error() from None
        if savepoint is not None:
            savepoint.commit()
        if one_row and done.rowcount != 1:
            raise PreconditionFailed(
                "changed since it was read; left alone", where=self.label
            )

    def _statement(self, op: str, key: Key, before: Any, after: Any) -> Any:
        if op == "create":
            return self.table.insert().values(**self._row(after))
        if op == "delete":
            return self.table.delete().where(self._match(key, before, self.fields))
        values = {self.spec.column(f): self._stored(f, v) for f, v in after.items()}
        return (
            self.table.update().where(self._match(key, before, after)).values(**values)
        )

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        """The mapped columns' values of ``record``, as stored."""
        column, stored = self.spec.column, self._stored
        return {column(f): stored(f, record.get(f)) for f in self.fields}

    def _refused_error(self) -> ReplicaError:
        return ReplicaError(
            f"the database refused the changes: {self._refusal}",
            where=self.label,
            hint="nothing was written to this table since the last commit (the "
            "transaction was rolled back); fix the data or the table and run "
            "again, or use --keep-going to write the other records",
        )

    def commit(self) -> None:
        if self._refusal is not None:
            raise self._refused_error()
        if self._tx is not None:
            try:
                self._tx.commit()
            except self.sa.exc.SQLAlchemyError as exc:
                self._refusal = sql_reason(exc, whole=True)
                self.rollback()
                raise self._refused_error() from None
            self._conn.close()
            self._conn = self._tx = None

    def rollback(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(self.sa.exc.SQLAlchemyError):
                self._tx.rollback()
                self._conn.close()
            self._conn = self._tx = None


def _batches(cursor: Any, size: int = 10_000) -> Any:
    """The rows of a DB-API cursor, fetched many at a time."""
    while rows := cursor.fetchmany(size):
        yield from rows
