"""A SQL table read column by column: connectorx fetches it into Arrow (in
Rust, without a Python object per value) and ``accord.records.arrow`` makes
the canonical texts. Measured against the DB-API cursor and ADBC in
docs/architecture.md. Anything it cannot read exactly as the reference
(a driver it does not know, a column type whose conversion could differ, a
value that does not convert) returns None, and the caller reads the table
row by row, which says what is wrong where.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from accord.records.arrow import canonical_column, texts_columns

__all__ = ["canonical_columns", "canonical_texts"]

_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}


def canonical_columns(
    url: Any,
    sql: str,
    kinds: Sequence[str],
    key_at: Sequence[int],
    empty_text: bool,
) -> tuple[Any, Any] | None:
    """(key texts, record texts), as two Arrow string arrays, of the rows
    ``sql`` selects (columns in field order) from the database at ``url``
    (a SQLAlchemy URL), or None."""
    try:
        import connectorx
    except ImportError:  # pragma: no cover - it comes with the records extra
        return None
    where = _connectorx_url(url)
    if where is None:
        return None
    try:
        table = connectorx.read_sql(where, sql, return_type="arrow")
    except Exception:
        return None
    if table.num_columns != len(kinds):
        return None
    loose = url.get_backend_name() == "sqlite"
    made = []
    for column, kind in zip(table.columns, kinds, strict=True):
        texts = canonical_column(column, kind, empty_text, loose_bools=loose)
        if texts is None:
            return None
        made.append(texts)
    del table
    return texts_columns(made, key_at)


def canonical_texts(*args: Any) -> dict[str, str] | None:
    """{key text: record text}: ``canonical_columns`` as one dict."""
    found = canonical_columns(*args)
    if found is None:
        return None
    return dict(zip(found[0].to_pylist(), found[1].to_pylist(), strict=True))


def _connectorx_url(url: Any) -> str | None:
    """The connectorx spelling of a SQLAlchemy URL, or None."""
    scheme = _SCHEMES.get(url.get_backend_name())
    if scheme is None:
        return None
    if scheme == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:" or url.query:
            return None
        return f"sqlite://{database}" if database.startswith("/") else None
    if url.query:
        return None
    return url.set(drivername=scheme).render_as_string(hide_password=False)
