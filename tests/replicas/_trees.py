"""Helpers shared by the place tests."""

from __future__ import annotations

from pathlib import Path


def files(root: Path) -> dict[str, bytes]:
    """relative path -> content of every file, accord's own folder left out."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".accord" not in p.relative_to(root).parts
    }
