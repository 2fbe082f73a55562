"""What a local disk tells apart, read from the names already at the root.

Whether names differing only by case, or Unicode spellings (NFC, NFD), are
two names on this disk; None when the root holds no name that tells, and
the place then probes with a file of its own.
"""

from __future__ import annotations

import os

from accord.keys import nfc

__all__ = ["case_by_listing", "unicode_by_listing"]


def case_by_listing(root: str) -> bool | None:
    """Case sensitivity told by a name at the root (ASCII letters), looked up
    under its other case; None when the root holds no such name."""
    with os.scandir(root) as listing:
        for item in listing:
            name = item.name
            other = name.swapcase()
            if not name.isascii() or other == name:
                continue
            try:
                found = os.stat(os.path.join(root, other), follow_symlinks=False)
            except FileNotFoundError:
                return True
            mine = item.stat(follow_symlinks=False)
            return (found.st_dev, found.st_ino) != (mine.st_dev, mine.st_ino)
    return None


def unicode_by_listing(root: str) -> bool | None:
    """Whether Unicode spellings are told apart, from a name at the root
    that is not NFC, looked up in NFC; None when the root holds none."""
    with os.scandir(root) as listing:
        for item in listing:
            name = item.name
            if name.isascii() or nfc(name) == name:
                continue
            try:
                found = os.stat(os.path.join(root, nfc(name)), follow_symlinks=False)
            except (FileNotFoundError, UnicodeEncodeError):
                return True
            mine = item.stat(follow_symlinks=False)
            return (found.st_dev, found.st_ino) != (mine.st_dev, mine.st_ino)
    return None
