"""Policy: how a run decides what the change sets do not settle by themselves."""

from __future__ import annotations

from accord.errors import ConfigError
from accord.tuples import NamedTuple

__all__ = ["CONFLICT_RULES", "Policy"]

#: what to do when both sides changed one item differently
CONFLICT_RULES = ("keep-both", "newer", "older", "larger", "left", "right", "ask")


class _Rules(NamedTuple):
    #: "sync" (two-way) or "mirror" (left to right only)
    mode: str = "sync"
    #: sync only: "left" or "right" when only that side's changes travel
    #: (the other side's stay where they are, and lose to them on conflict)
    one_way: str | None = None
    on_conflict: str = "keep-both"
    #: mirror only: delete what is on the right but not on the left
    delete: bool = False
    #: the mass-deletion guard trips when deletes on one side exceed BOTH
    #: this many items and this share of the items that side held
    max_delete: int = 100
    max_delete_percent: float = 50.0
    #: let a side that became empty propagate its emptiness
    allow_empty: bool = False
    #: mirror: compare content digests rather than size and mtime
    checksum: bool = False
    #: how many transfers run at once
    workers: int = 4
    #: keep deleted and overwritten files in the trash
    trash: bool = True
    #: days a trash run is kept before it is purged at the end of a run
    trash_days: float = 30.0
    #: a file that must be at both roots (a file-system database's marker)
    marker: str | None = None
    #: the database's own lock file at both roots: created exclusively for
    #: the run (refused when present: the database is busy), then removed
    db_lock: str | None = None
    #: apply a changed ``.accordignore`` (a peer's, or one's own edit): its
    #: rules apply and the file syncs from this run on (engine/rules.py)
    accept_rules: bool = False


class Policy(_Rules):
    """The rules of one run (immutable; checked when made)."""

    __slots__ = ()

    def __new__(cls, *args: object, **kwargs: object) -> Policy:
        self = super().__new__(cls, *args, **kwargs)  # type: ignore[arg-type]
        self._check()
        return self

    def _check(self) -> None:
        if self.mode not in ("sync", "mirror"):
            raise ConfigError(f"unknown mode {self.mode!r}", hint="use sync or mirror")
        if self.one_way not in (None, "left", "right") or (
            self.one_way and self.mode != "sync"
        ):
            raise ConfigError(
                f"one_way must be left or right, in sync mode (not {self.one_way!r})"
            )
        if self.on_conflict not in CONFLICT_RULES:
            raise ConfigError(
                f"unknown conflict rule {self.on_conflict!r}",
                hint="use one of: " + ", ".join(CONFLICT_RULES),
            )
        if self.max_delete < 0 or not 0 <= self.max_delete_percent <= 100:
            raise ConfigError("the deletion limits must be positive (percent: 0-100)")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        for option, name in (("--marker", self.marker), ("--db-lock", self.db_lock)):
            if name is not None and (not name or "/" in name or name in (".", "..")):
                raise ConfigError(
                    f"{option} takes a file name at the root, not {name!r}",
                    hint="for example --marker romidb --db-lock lock",
                )
