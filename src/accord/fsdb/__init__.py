"""plantdb FSDB databases: accord's FSDB mode and the calls plantdb users know.

    import accord.fsdb
    accord.fsdb.sync("/data/fsdb", "sftp://lab/srv/fsdb")          # every scan
    accord.fsdb.sync(src, dst, scans=["arabido_1"], progress=print)

    job = accord.fsdb.FSDBSync(src, dst)
    job.sync(thread=True)            # returns at once
    job.get_sync_progress()          # 0..100
    job.wait_for_sync(timeout=60)    # True when done
    job.get_sync_error()             # the error, or None

Only scan data moves: plantdb's bookkeeping (users, groups, locks, web
caches, the marker) stays on each side; plantdb's scan locks are honoured;
a new scan appears whole. See ``layout``, ``locks``, ``place``, ``hook``.
"""

from __future__ import annotations

from accord.fsdb.api import FSDBSync, sync
from accord.fsdb.hook import FSDBHook
from accord.fsdb.layout import MARKER

__all__ = ["MARKER", "FSDBHook", "FSDBSync", "sync"]
