"""The name gate: every name a place lists is checked before it is used.

Names come from someone else: an S3 key anyone with write access to the
bucket chose, a listing from an SSH server, a peer's hub. Before a listed
name reaches detection (and so the plan and the archive), a :class:`Gate`
asks two questions, both pure:

* is it a name inside a place at all (``keys.unsafe_reason``: no ``..``
  or ``.`` part, no empty part, not absolute, no NUL, not inside
  ``.accord/`` at the root or deeper, in a nested place)?
* can it exist on the side it would be copied to
  (``Capabilities.unfit_reason`` of that place: longest name and key in
  bytes, UTF-8 only, forbidden characters)? The target answers from its
  declared capabilities; the engine never asks what kind of place it is.

A refused name is never planned and never archived (so it is reported
again on the next run); it is reported as a :class:`~accord.model.Problem`
with ``refused=True`` (its escaped name, the place it came from, why, and
what to do), and the run goes on with the rest and ends as partial. It
infers no deletion: a refused name counts as seen. Only the deepest refused
names are reported: a folder refused for a part that every item inside it
shares is not repeated above them.

The gate is in the engine, at the one point where listings enter it
(``detect.scan_side``), so a new place cannot forget it. Trash listings
pass through :func:`checked_trash` before a command uses them. The places
keep their own last line of defence (``replica.check_key``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from accord.capabilities import Capabilities
from accord.keys import unsafe_reason
from accord.model import Problem, Side, parent_of
from accord.replica import TrashItem

__all__ = ["Gate", "archived", "checked_trash", "refused"]


class Gate:
    """Checks the names one place lists; ``target``: the capabilities of
    the place its items may be copied to (None: they are never copied)."""

    def __init__(
        self, url: str, target: Capabilities | None = None, target_url: str = ""
    ) -> None:
        self.url = url
        self.target = target
        self.target_url = target_url

    def __call__(self, key: str) -> str | None:
        """Why ``key`` is refused, or None."""
        why = unsafe_reason(key)
        if why is None and self.target is not None:
            unfit = self.target.unfit_reason(key)
            if unfit is not None:
                return f"the name cannot exist in {self.target_url}: {unfit}"
        return why

    def problems(
        self, names: list[tuple[str, str]], side: Side | None
    ) -> list[Problem]:
        """The problems to report for refused ``(key, why)`` pairs."""
        return [refused(key, why, side, self.url) for key, why in _deepest(names)]


def refused(key: str, why: str, side: Side | None, url: str) -> Problem:
    """The problem that reports a refused name."""
    return Problem(
        key,
        side,
        f"not synced: {why}; rename or delete it in {url} (or ask the owner "
        "of that place to)",
        refused=True,
    )


def archived(key: str) -> Problem:
    """The problem that reports an unsafe name found in the archive (kept
    there by an accord that had no gate): nothing is inferred from it."""
    return Problem(
        key,
        None,
        "left alone: the archive of this pair holds this name from an earlier "
        "run, but it does not name an item inside a place; 'accord reset' "
        "forgets it",
        refused=True,
    )


def _deepest(names: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The refused names that hold no other refused name."""
    holders: set[str] = set()
    for key, _ in names:
        parent = parent_of(key)
        while parent and parent not in holders:
            holders.add(parent)
            parent = parent_of(parent)
    return sorted((key, why) for key, why in names if key not in holders)


def checked_trash(
    items: Iterable[TrashItem], url: str
) -> Iterator[TrashItem | Problem]:
    """A place's trash listing with each unusable name as a Problem."""
    for item in items:
        why = unsafe_reason(item.key)
        if why is None and ("/" in item.run or unsafe_reason(item.run)):
            why = "its run stamp is not a plain name"
        if why is None:
            yield item
        else:
            yield Problem(
                item.key,
                None,
                f"left alone in the trash: {why}; remove it in {url} (or ask "
                "the owner of that place to)",
                refused=True,
            )
