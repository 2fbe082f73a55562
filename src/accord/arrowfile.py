"""Arrow files accord keeps beside its state: written whole or not at all,
and mapped back only when they carry the stamp they were written with.

Both the archive's versions file (``state/store.py``) and the records kept
for a CSV file accord wrote (``records/written.py``) are such files: string
columns in one batch, a stamp in the schema's metadata. pyarrow is imported
when a file is read or written (it comes with the records extra).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import weakref
from pathlib import Path
from typing import Any

__all__ = ["let_go_mapped", "mapped_texts", "one_array", "write_table"]


def one_array(column: Any) -> Any:
    """A chunked column as one array: its chunk itself when it has one
    (``combine_chunks`` copies even then: 50 MB per million versions)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def mapped_texts(
    path: Path, name: bytes, stamp: bytes, width: int, *, labels: tuple[bytes, ...] = ()
) -> tuple[Any, ...] | None:
    """The ``width`` string columns of the Arrow file at ``path``, mapped
    (not copied), when its metadata ``name`` is ``stamp``; None when there
    is no such file, it cannot be read, or it has another stamp or shape.
    Each of ``labels``' metadata values (bytes, or None) comes after them."""
    try:
        import pyarrow as pa
        import pyarrow.ipc
    except ImportError:  # pragma: no cover - it comes with the records extra
        return None
    try:
        with open(path, "rb") as file:
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        reader = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(mapped)))
        metadata = reader.schema.metadata or {}
        if metadata.get(name) != stamp:
            return None
        table = reader.read_all()
    except (OSError, ValueError, pa.ArrowException):
        return None  # ValueError: an empty file (it cannot be mapped)
    if table.schema.types != [pa.string()] * width:
        return None
    _MAPPED.add(mapped)
    found = tuple(one_array(table.column(i)) for i in range(width))
    return (*found, *(metadata.get(label) for label in labels))


#: the files ``mapped_texts`` mapped, while their arrays live
_MAPPED: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()


def let_go_mapped() -> None:
    """Let the pages of every file ``mapped_texts`` mapped go from this
    process (``madvise(MADV_DONTNEED)``): they stay in the page cache, and
    a read of the arrays maps them again, a page fault at a time, from the
    same file (a mapping of a file read only, never written: nothing is
    lost). Called once a listing has been compared with them, so that the
    pages read then do not count in the process's size beside what it
    makes next (up to 60 MB a file at a million records)."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None:  # pragma: no cover - every Linux and BSD has it
        return
    for mapped in list(_MAPPED):
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(advice)


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
