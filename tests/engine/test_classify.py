"""classify(): what changed on one side, against the archived row (pure)."""

from __future__ import annotations

import pytest

from accord.engine.detect import META, MODIFIED, classify
from accord.model import FILE, Entry, Side
from accord.state.store import ArchiveEntry

NS = 1_700_000_000_123_456_789
DIGEST = "sha256:" + "0" * 64
BASE = ArchiveEntry("a", FILE, 5, NS, 0o644, DIGEST, None, "l1", "r1")


def _now(mtime_ns: int, *, mode: int = 0o644, size: int = 5) -> Entry:
    return Entry("a", FILE, size, mtime_ns, mode, "r2", DIGEST)


@pytest.mark.parametrize(
    ("now", "precision", "expected"),
    [
        # a place with exact times
        (_now(NS), 1, None),
        (_now(NS + 1), 1, META),
        # a place that keeps whole seconds (plain SFTP): the same second is
        # the same time; another second is a change
        (_now(NS // 10**9 * 10**9), 10**9, None),
        (_now((NS // 10**9 + 1) * 10**9), 10**9, META),
        (_now(NS - 10**9), 10**9, META),
        # a place that keeps no times: only the mode counts
        (_now(0), None, None),
        (_now(0, mode=0o600), None, META),
        # content first
        (_now(NS, size=6), 1, MODIFIED),
        (_now(NS)._replace(digest=None), 1, MODIFIED),
    ],
)
def test_classify_compares_times_at_the_place_precision(now, precision, expected):
    assert classify(BASE, now, Side.RIGHT, precision) == expected
