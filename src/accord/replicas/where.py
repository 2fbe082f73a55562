"""Where a local folder lies: its spots, for telling whether two places overlap.

A folder is named three ways, and two folders overlap when any of them says
one lies inside the other (see :class:`accord.model.Spot`):

* from each folder above it, by that folder's device and inode
  (``inode:DEV:INO`` and the names below it): links are resolved, and a
  folder reached through a bind mount is the same folder;
* within its file system (``fs:MAJOR:MINOR`` and the path from that file
  system's top, read from ``/proc/self/mountinfo``): a bind mount of a
  folder deep inside another tree is seen where it really lies;
* the names of a part not created yet are taken as written.

Reads only (``stat`` and one small file); also runs on an SSH server inside
accord's agent, so it keeps to Python 3.8.
"""

from __future__ import annotations

import os
import re

from accord.model import Spot
from accord.tuples import NamedTuple

__all__ = ["local_spots"]

_MOUNTINFO = "/proc/self/mountinfo"
#: an octal escape in a mountinfo path (compiled by ``re`` when first met)
_ESCAPE = r"\\([0-7]{3})"


class _Mount(NamedTuple):
    """One line of mountinfo."""

    device: str  # MAJOR:MINOR of the file system
    top: tuple[str, ...]  # the folder of that file system mounted here
    point: tuple[str, ...]  # where it is mounted


def local_spots(path: str) -> tuple[Spot, ...]:
    """The spots of the folder ``path`` (absolute; it need not exist yet)."""
    real = os.path.realpath(path)
    names = [name for name in real.split("/") if name]
    spots: list[Spot] = []
    for depth in range(len(names) + 1):
        try:
            info = os.stat("/" + "/".join(names[:depth]))
        except OSError:
            break  # the rest is not there yet: named as written
        spots.append(Spot(f"inode:{info.st_dev}:{info.st_ino}", tuple(names[depth:])))
    mounted = _in_file_system(real)
    if mounted is not None:
        spots.append(mounted)
    return tuple(spots)


def _in_file_system(real: str) -> Spot | None:
    """``real`` within the file system that holds it, bind mounts resolved."""
    mounts = _mounts()
    if mounts is None:
        return None
    names = tuple(name for name in real.split("/") if name)
    best: _Mount | None = None
    for mount in mounts:  # the last of equally deep mounts is the one on top
        point = mount.point
        if names[: len(point)] == point and (
            best is None or len(point) >= len(best.point)
        ):
            best = mount
    if best is None:
        return None
    return Spot(f"fs:{best.device}", best.top + names[len(best.point) :])


#: the mount table last read, and its lines as read: a run asks for the
#: spots of each place twice (before and after opening them), and reading
#: the table again is a quarter of what parsing it costs
_last_read: tuple[str, list[_Mount]] = ("", [])


def _mounts() -> list[_Mount] | None:
    """The mount table now (None: it cannot be read)."""
    global _last_read
    try:
        with open(_MOUNTINFO, encoding="utf-8", errors="surrogateescape") as table:
            text = table.read()
    except OSError:
        return None
    if text != _last_read[0] or not text:
        mounts = [m for m in map(_mount, text.split("\n")) if m is not None]
        _last_read = (text, mounts)
    return _last_read[1]


def _mount(line: str) -> _Mount | None:
    """(device, root inside the file system, mount point) of a mountinfo line."""
    fields = line.split()
    if len(fields) < 5:
        return None
    return _Mount(fields[2], _parts(fields[3]), _parts(fields[4]))


def _parts(field: str) -> tuple[str, ...]:
    """The names of a mountinfo path (octal escapes such as ``\\040`` undone)."""
    if "\\" in field:
        field = re.sub(_ESCAPE, lambda found: chr(int(found.group(1), 8)), field)
    return tuple(name for name in field.split("/") if name)
