"""What a local disk can hold and tell apart: a local folder's
``Capabilities``, found out on first use.

Whether names differing only by case, or Unicode spellings (NFC, NFD), are
two names on this disk is read from the names already at the root; when
the root holds no name that tells, the place probes with a file of its own
in ``.accord``, once per folder (the verdict is kept in the pair's archive:
``recall``, ``learned``). The longest name is the disk's, the longest key
what the kernel takes in a path less the trash's own part.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

from accord.capabilities import Capabilities
from accord.keys import nfc

__all__ = ["LocalProbes", "case_by_listing", "unicode_by_listing"]

_PATH_MAX = 4095  # bytes in a path the kernel takes (4096 with the final NUL)
# what a trashed item's path adds: "/trash/<run stamp>/" and ".<8 hex>"
_TRASH_ROOM = len("/trash/20260101T000000Z-aaaaaa/") + 9


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


class LocalProbes:
    """The capabilities of :class:`~accord.replicas.local.LocalReplica`
    (which holds ``root``, ``_meta``, the ``case_sensitive`` and
    ``unicode_exact`` it was given, and the verdicts recalled and learned)."""

    @property
    def capabilities(self) -> Capabilities:
        """Probed on first use, not when opened: a run refused by a guard
        before it looks at them leaves the place untouched."""
        if self._caps is None:
            self._caps = Capabilities(
                case_sensitive=self._probe_case(),
                unicode_exact=self._probe_unicode(),
                parallel_transfers=False,
                max_name_bytes=self._name_max(),
                # the longest path the kernel takes, less the trash's own part
                max_key_bytes=_PATH_MAX - len(os.fsencode(self._meta)) - _TRASH_ROOM,
            )
        return self._caps

    def _name_max(self) -> int:
        """The longest name this disk holds, in bytes (255 almost everywhere)."""
        for folder in (self.root, os.path.dirname(self.root)):
            with contextlib.suppress(OSError, ValueError):
                return int(os.pathconf(folder, "PC_NAME_MAX"))
        return 255

    @capabilities.setter
    def capabilities(self, caps: Capabilities) -> None:
        self._caps = caps

    def _probe_case(self) -> bool:
        """Whether names differing only by case are different names here."""
        if self._case_sensitive is not None:
            return self._case_sensitive
        with contextlib.suppress(OSError):
            found = case_by_listing(self.root)
            if found is not None:
                return found
            return self._case_by_probe()
        return True

    def _case_by_probe(self) -> bool:
        """Case sensitivity told by a probe file (see ``_probe``)."""
        name = f"case-probe-{os.urandom(4).hex()}"
        return self._probe_once("case", name, name.upper())

    def _probe_unicode(self) -> bool:
        """Whether two Unicode spellings of a name (NFC, NFD) are two names
        here: told by a name at the root that is not NFC, else by a probe.
        A disk that normalizes (macOS, ZFS with ``normalization``, ext4
        casefolded folders) takes both spellings for one name."""
        if self._unicode_exact is not None:
            return self._unicode_exact
        with contextlib.suppress(OSError):
            found = unicode_by_listing(self.root)
            if found is not None:
                return found
            tag = os.urandom(4).hex()
            return self._probe_once(
                "unicode", f"nfd-probe-e\u0301-{tag}", f"nfd-probe-\u00e9-{tag}"
            )
        return True

    def recall(self, facts: Mapping[str, str]) -> None:
        self._recalled = dict(facts)

    def learned(self) -> dict[str, str]:
        return dict(self._learned)

    def _probe_once(self, what: str, name: str, other: str) -> bool:
        """``_probe``'s verdict, found on an earlier run of the pair for
        this very folder (same device and inode: not a disk mounted in its
        place, not a folder made anew), else probed now; kept for the next
        run either way (``learned``)."""
        root = os.stat(self.root)
        where = f"{root.st_dev}:{root.st_ino}"
        known = self._recalled.get(what, "")
        if known[:-2] == where and known[-2:] in (" 1", " 0"):
            verdict = known[-1] == "1"
        else:
            verdict = self._probe(name, other)
        self._learned[what] = f"{where} {int(verdict)}"
        return verdict

    def _probe(self, name: str, other: str) -> bool:
        """Create ``name`` in accord's folder, look for it as ``other``, and
        remove it (and the folder, if made for it): True when ``other`` is
        not found, so the disk tells the two names apart."""
        made = not os.path.isdir(self._meta)
        os.makedirs(self._meta, exist_ok=True)
        probe = os.path.join(self._meta, name)
        try:
            with open(probe, "x"):
                pass
            return not os.path.exists(os.path.join(self._meta, other))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(self._meta)
