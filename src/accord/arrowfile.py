"""Arrow files accord keeps beside its state: written whole or not at all,
and mapped back only when they carry the stamp they were written with.

Both the archive's versions file (``state/store.py``) and the records kept
for a CSV file accord wrote (``records/written.py``) are such files: string
columns in one batch, a stamp in the schema's metadata. pyarrow is imported
when a file is read or written (it comes with the records extra).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

__all__ = ["mapped_texts", "one_array", "write_table"]


def one_array(column: Any) -> Any:
    """A chunked column as one array: its chunk itself when it has one
    (``combine_chunks`` copies even then: 50 MB per million versions)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def mapped_texts(
    path: Path, name: bytes, stamp: bytes, width: int
) -> tuple[Any, ...] | None:
    """The ``width`` string columns of the Arrow file at ``path``, mapped
    (not copied), when its metadata ``name`` is ``stamp``; None when there
    is no such file, it cannot be read, or it has another stamp or shape."""
    try:
        import pyarrow as pa
        import pyarrow.ipc
    except ImportError:  # pragma: no cover - it comes with the records extra
        return None
    try:
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_file(source)
            metadata = reader.schema.metadata or {}
            if metadata.get(name) != stamp:
                return None
            table = reader.read_all()
    except (OSError, pa.ArrowException):
        return None
    if table.schema.types != [pa.string()] * width:
        return None
    return tuple(one_array(table.column(i)) for i in range(width))


def write_table(table: Any, path: Path, temp: Path, *, durable: bool) -> None:
    """Write ``table`` to ``temp``, fsynced when ``durable``, and rename it
    to ``path``; ``temp`` is removed when anything fails."""
    import pyarrow as pa
    import pyarrow.ipc

    try:
        with (
            pa.OSFile(str(temp), "wb") as sink,
            pa.ipc.new_file(sink, table.schema) as writer,
        ):
            writer.write_table(table)
        if durable:
            with open(temp, "rb") as done:
                os.fsync(done.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
