"""The merge of pulled changes into a node's own: pure decisions.

Both sides arrive *compressed*: at most one change per row (``i`` insert,
``u`` update, ``d`` delete), decided from the row's first logged operation
and whether it exists now, so that insert-then-update is an insert,
insert-then-delete is nothing, update-then-delete is a delete and
delete-then-insert is an update (see :func:`compress`).

Conflicts, and how each is resolved:

====================  ==================================================
remote, local         resolution
====================  ==================================================
update, update        the table's policy: ``local-wins``, ``server-wins``,
                      ``field-merge`` (columns changed on one side only
                      are merged; a column changed on both sides falls
                      back to ``local-wins`` or, written
                      ``field-merge/server-wins``, to the server), or a
                      callback returning the row to keep
update, delete        the update wins: the row comes back from the server
                      (``server-wins``: same)
delete, update        the update wins: the row is pushed back
                      (``server-wins``: the row is deleted here)
delete, delete        nothing to do
insert, insert        same key created on two nodes: the local row gets
                      a fresh key (foreign keys pointing to it follow)
                      when the key is an integer; otherwise the policy
dependency            a parent deleted remotely while a local change
                      points to it: the parent stays and is pushed back
reverse dependency    a parent deleted here while a pulled row points to
                      it: the parent is restored from the server
unique                a unique value taken by a pulled row and by a row
                      changed here: the local change is undone when the
                      pull is applied (``Local``), and so are the local
                      changes of rows pointing to it
====================  ==================================================

Every conflict becomes a :class:`Conflict`, kept in ``accord_conflicts``
on the node and sent to the hub with the next push.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "POLICIES",
    "Change",
    "Conflict",
    "Outcome",
    "Policy",
    "compress",
    "merge",
]

POLICIES = ("local-wins", "server-wins", "field-merge", "field-merge/server-wins")

#: a callback policy: (table, key, local row, remote row, base row or None)
#: -> the row to keep
Policy = str | Callable[[str, str, dict[str, Any], dict[str, Any], Any], dict[str, Any]]
Key = tuple[str, str]  # (table, key text)


@dataclass(frozen=True)
class Change:
    """One side's net change to a row: ``op`` and the row now (None when
    deleted); ``base``: the row before the first local change, if known."""

    op: str
    row: dict[str, Any] | None
    base: dict[str, Any] | None = None


@dataclass(frozen=True)
class Conflict:
    table: str
    key: str
    kind: str
    resolution: str
    local: dict[str, Any] | None = None
    remote: dict[str, Any] | None = None
    #: the table's policy when it decided (``callback`` for a function)
    policy: str = ""


@dataclass
class Outcome:
    """What the merge decided: rows to write here (``None``: delete),
    local changes forgotten (the server's state stands) or to push (a row
    kept or merged here), rows to restore from the server, local inserts to
    give a fresh key, and the conflicts."""

    write: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    forget: set[Key] = field(default_factory=set)
    push: set[Key] = field(default_factory=set)
    restore: set[Key] = field(default_factory=set)
    rekey: set[Key] = field(default_factory=set)
    conflicts: list[Conflict] = field(default_factory=list)


def compress(first_op: str, exists: bool) -> str | None:
    """A row's net change from its first logged op and whether it exists
    now: insert (then anything) is an insert, or nothing once deleted;
    anything else is an update, or a delete once deleted."""
    if first_op == "i":
        return "i" if exists else None
    return "u" if exists else "d"


def merge(
    local: dict[Key, Change],
    remote: dict[Key, Change],
    *,
    descriptions: dict[str, dict[str, Any]],
    policies: dict[str, Policy],
    default: Policy = "local-wins",
) -> Outcome:
    """Decide, for every pulled change, what happens here."""
    out = Outcome()
    held = _held_parents(local, remote, descriptions)
    for key, theirs in remote.items():
        mine = local.get(key)
        policy = policies.get(key[0], default)
        if theirs.op == "d" and key in held:
            out.push.add(key)
            out.conflicts.append(
                Conflict(
                    *key,
                    "dependency",
                    "kept: a local change refers to it",
                    mine.row if mine else None,
                    None,
                )
            )
            continue
        if mine is None:
            out.write[key] = theirs.row
            continue
        start = len(out.conflicts)
        _direct(out, key, mine, theirs, policy)
        named = "callback" if callable(policy) else policy
        out.conflicts[start:] = [
            replace(x, policy=named) for x in out.conflicts[start:]
        ]
    _restore_parents(out, local, remote, descriptions)
    return out


def _direct(
    out: Outcome, key: Key, mine: Change, theirs: Change, policy: Policy
) -> None:
    if mine.op == "d" and theirs.op == "d":
        out.forget.add(key)
        return
    if mine.row == theirs.row:
        out.forget.add(key)
        return
    server = policy == "server-wins"
    if theirs.op == "d":  # delete, update
        if server:
            out.write[key] = None
            out.forget.add(key)
            _note(out, key, "delete/update", "server's delete kept", mine, theirs)
        else:
            out.push.add(key)
            _note(
                out,
                key,
                "delete/update",
                "local update kept; row pushed back",
                mine,
                theirs,
            )
        return
    if mine.op == "d":  # update, delete
        out.write[key] = theirs.row
        out.forget.add(key)
        _note(
            out,
            key,
            "update/delete",
            "server's update kept; row restored",
            mine,
            theirs,
        )
        return
    if mine.op == "i" and theirs.op == "i" and not server:
        out.rekey.add(key)
        out.write[key] = theirs.row
        _note(
            out,
            key,
            "insert/insert",
            "both kept; the local row got a new key",
            mine,
            theirs,
        )
        return
    _update_update(out, key, mine, theirs, policy)


def _update_update(
    out: Outcome, key: Key, mine: Change, theirs: Change, policy: Policy
) -> None:
    assert mine.row is not None and theirs.row is not None
    kind = "update/update" if mine.op == theirs.op == "u" else "insert/insert"
    if callable(policy):
        row = policy(key[0], key[1], mine.row, theirs.row, mine.base)
        _keep(out, key, row, theirs.row)
        _note(out, key, kind, "resolved by the application's callback", mine, theirs)
        return
    if policy == "server-wins":
        out.write[key] = theirs.row
        out.forget.add(key)
        _note(out, key, kind, "server's row kept", mine, theirs)
        return
    if policy.startswith("field-merge") and mine.base is not None:
        row, clash = _field_merge(mine.row, theirs.row, mine.base, policy)
        _keep(out, key, row, theirs.row)
        how = "fields merged" + (
            f"; both changed {', '.join(clash)}: "
            + ("server's" if policy.endswith("server-wins") else "local")
            + " values kept"
            if clash
            else ""
        )
        _note(out, key, kind, how, mine, theirs)
        return
    if policy.endswith("server-wins"):
        _update_update(out, key, mine, theirs, "server-wins")
        return
    out.push.add(key)
    _note(out, key, kind, "local row kept (local-wins)", mine, theirs)


def _keep(out: Outcome, key: Key, row: dict[str, Any], theirs: dict[str, Any]) -> None:
    out.write[key] = row
    if row == theirs:
        out.forget.add(key)
    else:
        out.push.add(key)


def _field_merge(
    mine: dict[str, Any], theirs: dict[str, Any], base: dict[str, Any], policy: str
) -> tuple[dict[str, Any], list[str]]:
    row = dict(theirs)
    clash = []
    for name, value in mine.items():
        local_changed = value != base.get(name)
        remote_changed = theirs.get(name) != base.get(name)
        if local_changed and remote_changed and value != theirs.get(name):
            clash.append(name)
            if not policy.endswith("server-wins"):
                row[name] = value
        elif local_changed:
            row[name] = value
    return row, clash


def _note(
    out: Outcome, key: Key, kind: str, how: str, mine: Change, theirs: Change
) -> None:
    out.conflicts.append(Conflict(key[0], key[1], kind, how, mine.row, theirs.row))


def _fk_target(row: dict[str, Any], fk: dict[str, Any], parent: dict[str, Any]) -> Any:
    """The parent's key text a row's foreign key points to, or None."""
    from accord.replication.values import key_text

    values = {c: row.get(c) for c in fk["columns"]}
    if any(v is None for v in values.values()):
        return None
    if list(fk["refcolumns"]) != list(parent["pk"]):
        return None  # refers to a unique column, not the key: not followed
    return key_text([values[c] for c in fk["columns"]])


def _references(
    changes: dict[Key, Change], descriptions: dict[str, dict[str, Any]]
) -> dict[Key, list[Key]]:
    """Parent key -> the changed (non-deleted) rows pointing to it."""
    found: dict[Key, list[Key]] = {}
    for key, change in changes.items():
        if change.row is None or key[0] not in descriptions:
            continue
        for fk in descriptions[key[0]]["fks"]:
            parent = descriptions.get(fk["table"])
            if parent is None:
                continue
            target = _fk_target(change.row, fk, parent)
            if target is not None:
                found.setdefault((fk["table"], target), []).append(key)
    return found


def _held_parents(
    local: dict[Key, Change],
    remote: dict[Key, Change],
    descriptions: dict[str, dict[str, Any]],
) -> set[Key]:
    """Parents deleted remotely that a local change still points to."""
    pointed = _references(local, descriptions)
    return {k for k, c in remote.items() if c.op == "d" and k in pointed}


def _restore_parents(
    out: Outcome,
    local: dict[Key, Change],
    remote: dict[Key, Change],
    descriptions: dict[str, dict[str, Any]],
) -> None:
    """Parents deleted here that a pulled row points to come back."""
    for parent, children in _references(remote, descriptions).items():
        mine = local.get(parent)
        if mine is None or mine.op != "d" or parent in remote:
            continue
        out.restore.add(parent)
        out.forget.add(parent)
        out.conflicts.append(
            Conflict(
                *parent,
                "reverse dependency",
                f"local delete undone: {len(children)} pulled row(s) refer to it",
                None,
                None,
            )
        )
