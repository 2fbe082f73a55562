"""A case-only rename on a local place that takes both spellings for one name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from accord.replicas import local, local_at
from accord.replicas.local import LocalReplica


def test_rename_case_stores_the_new_spelling(tmp_path: Path) -> None:
    (tmp_path / "Readme.md").write_text("read me\n")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        local_at.rename_case(fd, "Readme.md", fd, "README.md")
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["README.md"]
    assert (tmp_path / "README.md").read_text() == "read me\n"


def test_rename_case_puts_the_item_back_when_it_fails(tmp_path: Path) -> None:
    (tmp_path / "Readme.md").write_text("read me\n")
    (tmp_path / "README.md").write_text("another file\n")
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(FileExistsError):
            local_at.rename_case(fd, "Readme.md", fd, "README.md")
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["README.md", "Readme.md"]
    assert (tmp_path / "Readme.md").read_text() == "read me\n"


def test_move_to_a_spelling_the_disk_takes_for_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a case-insensitive disk the new spelling already names the item;
    the move goes through a temporary name instead of being refused."""
    (tmp_path / "Readme.md").write_text("read me\n")
    place = LocalReplica(str(tmp_path), case_sensitive=False)
    place.open()
    old = place.stat("Readme.md")
    assert old is not None
    seen = []

    def same_item(fd: int, name: str, other_fd: int, other: str) -> bool:
        seen.append((name, other))
        return True  # what a case-insensitive disk answers

    monkeypatch.setattr(local, "same_item", same_item)
    moved = place.move("Readme.md", "README.md", expect=old)
    place.close()
    assert seen == [("Readme.md", "README.md")]
    assert moved.key == "README.md"
    assert os.listdir(tmp_path) == ["README.md"]
