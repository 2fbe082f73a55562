"""Case-only renames that a killed run can leave half done.

On a disk that takes two spellings for one name, a case-only rename goes
through a temporary name (``local_at.rename_case``):
``.accord-case-<own>-<n>``, ``<own>`` being the folder in ``.accord/tmp`` of
the process that renames. Before the first rename, that process notes it in
its folder (``case``: the item's folder, the temporary name and the old
name, each ending in NUL; flushed to disk). A process killed between the
two renames leaves the item under the temporary name, and its note:

- ``settle`` (at the start of every listing, and in ``clean_temp``) puts
  each such item back under its old name once the process that noted it
  has ended; the archive, not advanced for the unfinished move, expects
  the item there, and the next run makes the rename again;
- until then, and where the old name has been taken meanwhile, the listing
  leaves the temporary name out (``settle``'s answer): it is never reported
  as a file of the user's, so never copied to the other side;
- an item that cannot go back (its old name taken meanwhile, say) is
  reported by every listing, as a problem (``problems``) that names it,
  where it is and what to do, until the user renames or removes it; it is
  never overwritten, nor the item that took its name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from accord.keys import shown
from accord.model import Problem, join
from accord.replicas.local_at import open_folder, rename_new
from accord.tuples import NamedTuple

__all__ = ["CASE", "Settled", "ended", "note", "problems", "settle", "temp_name"]

#: how a temporary name of a case-only rename begins
CASE = ".accord-case-"
_NOTE = "case"


def temp_name(own_folder: str, number: int) -> str:
    """The temporary name of a case-only rename by the process whose folder
    in ``.accord/tmp`` is ``own_folder`` (a path ending in ``/``)."""
    own = os.path.basename(os.path.dirname(own_folder))
    return f"{CASE}{own}-{number}"


def note(own_folder: str, folder: str, temp: str, name: str) -> None:
    """Note, before it begins, that ``name`` in ``folder`` (a key) goes
    through ``temp``: appended to the process's note and flushed, so the
    note is on disk before the item leaves its name."""
    record = b"".join(
        part.encode("utf-8", "surrogateescape") + b"\0" for part in (folder, temp, name)
    )
    fd = os.open(
        os.path.join(own_folder, _NOTE),
        os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
        0o600,
    )
    try:
        os.write(fd, record)  # one small write: whole or not at all
        os.fsync(fd)
    finally:
        os.close(fd)


def ended(own: str) -> bool:
    """Whether the process whose folder in ``.accord/tmp`` is ``own``
    (``<pid>-<hex>``) has ended (or the folder is no process's)."""
    pid = own.partition("-")[0]
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return True
    except OSError:
        return False  # running, as another user
    return False


class Settled(NamedTuple):
    """What ``settle`` left: the temporary names still noted, by folder key
    (for the listing to leave out), and the items among them that could not
    go back: (folder key, temporary name, old name, why)."""

    hidden: dict[str, set[str]]
    stuck: list[tuple[str, str, str, str]]


def settle(
    tmp: str, root: Callable[[], int], *, done: str = "", all_ended: bool = False
) -> Settled:
    """Put back, under its old name, every item that a process which has
    ended (or whose folder is ``done``; every process, with ``all_ended``)
    left under a temporary name in ``tmp`` (``.accord/tmp``) of the place
    whose root ``root()`` opens; drop the notes whose items are all back.
    The answer: the temporary names still noted (a running process's, or
    one that could not go back, its old name taken meanwhile, say)."""
    hidden: dict[str, set[str]] = {}
    stuck: list[tuple[str, str, str, str]] = []
    owners: list[str] = []
    with contextlib.suppress(OSError), os.scandir(tmp) as listing:
        owners = [folder.name for folder in listing]
    for own in owners:
        noted = _read(os.path.join(tmp, own, _NOTE))
        if noted and (all_ended or own == done or ended(own)):
            left = [(item, _put_back(root(), *item)) for item in noted]
            stuck += [(*item, why) for item, why in left if why]
            noted = [item for item, why in left if why]
            if not noted:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(tmp, own, _NOTE))
        for folder, temp, _ in noted:
            hidden.setdefault(folder, set()).add(temp)
    return Settled(hidden, stuck)


def problems(stuck: list[tuple[str, str, str, str]]) -> list[Problem]:
    """A problem for each item ``settle`` could not put back, at its
    temporary name: what it is, why it stays there, and what to do."""
    return [
        Problem(
            join(folder, temp),
            None,
            f"this is {shown(join(folder, name))}, left under this name by an"
            f" interrupted case-only rename; it cannot go back ({why}), and"
            " accord leaves it out of every sync until you rename it (or"
            " remove it); nothing was overwritten",
        )
        for folder, temp, name, why in stuck
    ]


def _read(path: str) -> list[tuple[str, str, str]]:
    """The renames a note holds: (folder, temporary name, old name)."""
    try:
        with open(path, "rb") as stream:
            parts = [os.fsdecode(part) for part in stream.read().split(b"\0")[:-1]]
    except OSError:
        return []
    return [
        (parts[at], parts[at + 1], parts[at + 2]) for at in range(0, len(parts) - 2, 3)
    ]


def _put_back(root_fd: int, folder: str, temp: str, name: str) -> str:
    """``temp`` in ``folder`` renamed back to ``name`` (never replacing
    one): "" when it is done or nothing is left under ``temp``, else why
    it is left where it is."""
    try:
        fd = open_folder(root_fd, folder)
    except FileNotFoundError:
        return ""  # the folder went, and the item with it
    except OSError as exc:
        return f"its folder cannot be opened: {exc.strerror or exc}"
    try:
        rename_new(temp, name, fd, fd)
    except FileNotFoundError:
        return ""  # renamed to its new name, or already put back
    except FileExistsError:
        return f"another item is named {name} now"
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)
    return ""
