"""One exception tree for all of accord.

Every error a user can meet says what went wrong, where, and what to do
(``hint``). Places translate their own libraries' exceptions at their
boundary, chaining the original; the engine asks only ``is_retryable()``.

    AccordError
    ├── ConfigError                 bad URL, option or profile
    │   ├── InvalidInput            a malformed value or file given by the user
    │   │   └── PlacesOverlap       one place inside the other, or the same twice
    │   ├── BadData                 records that cannot be used: every problem, where
    │   └── MissingDependency       a place's extra is not installed
    ├── ReplicaError                carries the (redacted) place and key
    │   ├── NotFound
    │   ├── AlreadyExists
    │   ├── PreconditionFailed      the item changed behind our back
    │   │   └── PullFirst           a push refused: the hub has newer versions
    │   ├── UnsafeName              a name that would leave the place
    │   ├── Unsupported             optional operation not offered
    │   ├── PermissionDenied
    │   ├── NoSpace                 disk full or quota exceeded
    │   ├── Unreachable             the place is missing, unmounted, offline
    │   ├── ProtocolError           a peer broke the protocol or refused a session
    │   └── TransientError          timeouts, dropped connections: retryable
    ├── StateError
    │   ├── LockHeld
    │   ├── ArchiveCorrupt
    │   └── SchemaTooNew
    ├── PlanError                   a stale, unresolved or malformed plan
    │   ├── NotAPlan                the file given is not an accord plan
    │   └── SafetyLimitExceeded     too many deletes, or one side emptied
    └── Aborted                     the user said no
"""

from __future__ import annotations

import re

from accord.keys import shown

__all__ = [
    "Aborted",
    "AccordError",
    "AlreadyExists",
    "ArchiveCorrupt",
    "BadData",
    "ConfigError",
    "InvalidInput",
    "LockHeld",
    "MissingDependency",
    "NoSpace",
    "NotAPlan",
    "NotEmpty",
    "NotFound",
    "PermissionDenied",
    "PlacesOverlap",
    "PlanError",
    "PreconditionFailed",
    "ProtocolError",
    "PullFirst",
    "RepairNeeded",
    "ReplicaError",
    "SafetyLimitExceeded",
    "SchemaTooNew",
    "StateError",
    "TransientError",
    "Unreachable",
    "UnsafeName",
    "Unsupported",
    "connection_reason",
    "is_retryable",
]


class AccordError(Exception):
    """Root of every error accord raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt field by field: errors cross process boundaries (a scan run
        # in a child process) with their place, key and hint intact.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[AccordError], args: tuple[object, ...], fields: dict[str, object]
) -> AccordError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


class ConfigError(AccordError):
    """A URL, option or profile that cannot be used as given."""


class InvalidInput(ConfigError):
    """A path, value or file given by the user that is malformed (a usage error)."""


class BadData(ConfigError):
    """Records that cannot be used as they are (a short row, a bad value, a
    duplicate key): every problem found, each with where it is; found before
    anything is written."""

    def __init__(
        self, where: str, problems: list[str], *, hint: str | None = None
    ) -> None:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        counted = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        super().__init__(
            f"{where}: {counted} in the data; nothing was written\n  {shown}{more}",
            hint=hint or "fix the data (or the mapping) and run again",
        )
        self.where = where
        self.problems = problems


class PlacesOverlap(InvalidInput):
    """The two places overlap: syncing them would copy a tree into itself."""


class MissingDependency(ConfigError):
    """A place needs an optional package that is not installed."""


class ReplicaError(AccordError):
    """Something went wrong in one place; ``where`` names it (redacted)."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        detail = message
        if key:  # the place's root ("") is named by ``where``
            detail = f"{detail}: {shown(key)}"
        if where is not None:
            detail = f"{detail} (in {where})"
        super().__init__(detail, hint=hint)
        self.reason = message  # the message without the key and place
        self.where = where
        self.key = key


class NotFound(ReplicaError):
    """The item or the place does not exist."""


class AlreadyExists(ReplicaError):
    """A create-only write found something already there."""


class PreconditionFailed(ReplicaError):
    """The item is not the version we expected: it changed behind our back."""


class PullFirst(PreconditionFailed):
    """A database push refused: the hub has versions this node has not pulled."""


class NotEmpty(PreconditionFailed):
    """A folder to delete still holds items (ignored ones, or new ones)."""


class UnsafeName(ReplicaError):
    """A place was handed a name that would leave its root (``..``, an
    absolute path, an empty part, a NUL) or reach into accord's own folder;
    nothing was done. The engine never plans such a name: this is the
    places' own last line of defence."""


class Unsupported(ReplicaError):
    """The place does not offer this optional operation."""


class PermissionDenied(ReplicaError):
    """The place refused access."""


class NoSpace(ReplicaError):
    """The disk is full or a quota is exceeded."""


class Unreachable(ReplicaError):
    """The place cannot be reached or is not mounted."""


class ProtocolError(ReplicaError):
    """A peer broke the protocol (a malformed or unexpected message) or
    refused the session (an error status); ``status`` is its code, if any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        where: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, where=where, key=key, hint=hint)
        self.status = status


class TransientError(ReplicaError):
    """A failure that may go away if retried (timeouts, dropped links)."""


class StateError(AccordError):
    """accord's own state (archive, journal, lock) is in the way."""


class LockHeld(StateError):
    """Another run holds the lock of a place."""


class ArchiveCorrupt(StateError):
    """The archive of a pair cannot be read."""


class SchemaTooNew(StateError):
    """The archive was written by a newer accord."""


class RepairNeeded(StateError):
    """A database node that cannot pull any more (expired, or behind the
    trimmed log): ``accord db repair`` gives it a fresh copy."""


class PlanError(AccordError):
    """A plan that cannot be applied as it is."""


class NotAPlan(PlanError):
    """The file given as a plan is not one (not JSON, or not a plan's shape)."""


class SafetyLimitExceeded(PlanError):
    """A guard stopped the run: mass deletion, or a side that vanished."""


class Aborted(AccordError):
    """The user declined to go on."""


def is_retryable(exc: BaseException) -> bool:
    """The only question the executor asks about an error."""
    return isinstance(exc, TransientError)


def connection_reason(exc: BaseException) -> str | None:
    """Why a connection failed, in the system's words ("Connection
    refused", "Name or service not known"): the reason of the first
    system error inside ``exc`` (its cause, its context, paramiko's
    errors by address, botocore's ``error``), each said once; None when
    there is none. Libraries wrap these in words of their own, such as
    paramiko's "[Errno None] Unable to connect to port 1 on 127.0.0.1"."""
    reasons: dict[str, None] = {}
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        found = todo.pop(0)
        if id(found) in seen:
            continue
        seen.add(id(found))
        inner = getattr(found, "errors", None)  # paramiko: by address
        if isinstance(inner, dict):
            todo += [e for e in inner.values() if isinstance(e, BaseException)]
            continue
        if isinstance(found, OSError) and found.strerror and found.errno is not None:
            reasons[found.strerror] = None
            continue
        kwargs = getattr(found, "kwargs", None)  # botocore
        if isinstance(kwargs, dict) and isinstance(kwargs.get("error"), BaseException):
            todo.append(kwargs["error"])
        todo += [e for e in (found.__cause__, found.__context__) if e is not None]
    if not reasons:  # an error only quoted in the text (ldap3's, paramiko's)
        reasons = dict.fromkeys(_ERRNO.findall(str(exc)))
    return "; ".join(reasons) or None


#: "[Errno 111] Connection refused" quoted in a library's message
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\[\]()\n]+?)\s*(?=$|[\]()\n])")
