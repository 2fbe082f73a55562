"""The garbage collector paused for a stretch of a run that makes many
long-lived objects and no cycles worth collecting (a listing, an apply,
the copiers' phase): its passes would walk them again and again for next
to nothing to free. Reference counts still free what is dropped; the rare
cycle waits for the end of the stretch."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """The collector off (and, with ``freeze``, the objects made so far
    moved out of its passes) for the block; as it was before, afterwards."""
    collecting = gc.isenabled()
    gc.disable()
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()
        if collecting:
            gc.enable()
