"""Any fsspec filesystem as a place: round trip through memory://."""

from __future__ import annotations

from pathlib import Path

import pytest

import accord
from accord.errors import ConfigError
from accord.registry import open_replica


def test_sync_with_a_memory_filesystem(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    (local / "d").mkdir()
    (local / "d" / "b.txt").write_text("b\n")
    url = f"memory://sync-{tmp_path.name}/x"
    assert accord.sync(str(local), url).ok
    place = open_replica(url)
    place.open()
    with place.open_read("d/b.txt") as stream:
        assert stream.read() == b"b\n"
    assert place.capabilities.conditional_writes is False
    (local / "a.txt").unlink()
    report = accord.sync(str(local), url)
    assert report.ok and place.stat("a.txt") is None
    assert [i.key for i in place.trash_list()] == ["a.txt"]
    assert accord.sync(str(local), url, dry_run=True).is_empty


def test_an_unknown_scheme_is_still_a_clear_error() -> None:
    with pytest.raises(ConfigError) as caught:
        open_replica("nosuchproto://x/y")
    assert "unknown place type" in caught.value.message
