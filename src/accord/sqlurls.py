"""SQL URLs as users write them, with the drivers accord installs.

``postgresql://`` (or ``postgres://``) means psycopg 3, ``mysql://`` (or
``mariadb://``) PyMySQL: SQLAlchemy's own defaults for these schemes are
drivers accord does not install (psycopg2, mysqlclient), and a URL that
names its driver (``postgresql+psycopg://``) is left as written. One
function for every part that opens a database: record places, ``accord
db`` and the hub.
"""

from __future__ import annotations

import os

__all__ = ["driver_url", "missing_sqlite_file", "sql_reason"]

_DRIVERS = (
    ("postgresql://", "postgresql+psycopg://"),
    ("postgres://", "postgresql+psycopg://"),
    ("mysql://", "mysql+pymysql://"),
    ("mariadb://", "mysql+pymysql://"),
)


def driver_url(url: str) -> str:
    """The URL with the driver accord installs for its scheme."""
    for plain, driver in _DRIVERS:
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def sql_reason(exc: BaseException, *, whole: bool = False) -> str:
    """What a database said, in its own words: the driver's message (not
    SQLAlchemy's wrapping, its statement and its "Background on this
    error" link); its first line, or ``whole`` (a refusal's ``DETAIL``)."""
    said = str(getattr(exc, "orig", None) or exc).strip()
    if not said:
        return type(exc).__name__
    return said if whole else said.splitlines()[0]


def missing_sqlite_file(url: str) -> str | None:
    """The file a ``sqlite:`` URL names (as an absolute path) when it is
    not there: SQLite would make it, empty, on connecting. None for any
    other URL, an in-memory database or a file that exists."""
    import sqlalchemy

    try:
        made = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return None  # create_engine says what is wrong with it
    database = made.database
    if made.get_backend_name() != "sqlite" or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return None if os.path.exists(database) else os.path.abspath(database)
