"""The two-way truth table of reconcile, case by case. Pure: no I/O."""

from __future__ import annotations

import pytest

from accord.engine import guards
from accord.engine.detect import CREATED, DELETED, META, MODIFIED, Change, ChangeSet
from accord.engine.plan import Plan
from accord.engine.policy import Policy
from accord.engine.reconcile import conflict_name, decide, reconcile, resolve
from accord.model import DIR, FILE, Entry, Side
from accord.state.store import ArchiveEntry

LEFT, RIGHT = Side.LEFT, Side.RIGHT


def entry(key="f", digest="d0", size=1, mtime=100, mode=0o644, kind=FILE, version="v"):
    return Entry(
        key, kind, size, mtime, mode, version, digest if kind == FILE else None
    )


BASE = ArchiveEntry("f", FILE, 1, 100, 0o644, "d0", None, "vl", "vr")
NEW_L = entry(digest="dL", size=2, mtime=200, version="vl2")
NEW_R = entry(digest="dR", size=3, mtime=300, version="vr2")


def ch(kind, now=None, base=BASE):
    return Change(kind, now, base)


def ops(outcome):
    assert isinstance(outcome, list), outcome
    return [(a.op, a.side and a.side.value) for a in outcome]


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        # one-sided changes propagate
        (ch(MODIFIED, NEW_L), None, [("copy", "right")]),
        (None, ch(MODIFIED, NEW_R), [("copy", "left")]),
        (ch(DELETED), None, [("delete", "right")]),
        (None, ch(DELETED), [("delete", "left")]),
        (ch(META, entry(mtime=5, version="x")), None, [("set_meta", "right")]),
        (ch(CREATED, NEW_L, None), None, [("copy", "right")]),
        # deleted on both: forget
        (ch(DELETED), ch(DELETED), [("forget", None)]),
        # delete vs modify keeps the modification
        (ch(DELETED), ch(MODIFIED, NEW_R), [("copy", "left")]),
        (ch(MODIFIED, NEW_L), ch(DELETED), [("copy", "right")]),
        # identical changes on both sides are not a conflict
        (
            ch(MODIFIED, entry(digest="dX", size=2, mtime=7, version="a")),
            ch(MODIFIED, entry(digest="dX", size=2, mtime=7, version="b")),
            [("mark_equal", None)],
        ),
        # same content, different mtimes: align metadata on the older side
        (
            ch(MODIFIED, entry(digest="dX", size=2, mtime=9, version="a")),
            ch(MODIFIED, entry(digest="dX", size=2, mtime=7, version="b")),
            [("set_meta", "right")],
        ),
        # content change wins over a metadata-only change
        (
            ch(META, entry(mtime=5, version="x")),
            ch(MODIFIED, NEW_R),
            [("copy", "left")],
        ),
        (
            ch(MODIFIED, NEW_L),
            ch(META, entry(mtime=5, version="y")),
            [("copy", "right")],
        ),
        # both modified differently: conflict, default keep-both on the older side
        (ch(MODIFIED, NEW_L), ch(MODIFIED, NEW_R), [("keep_both", "left")]),
    ],
)
def test_truth_table(left, right, expected):
    assert ops(decide("f", left, right, BASE, Policy())) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("newer", [("copy", "left")]),  # right (mtime 300) wins
        ("older", [("copy", "right")]),
        ("larger", [("copy", "left")]),  # right is 3 bytes
        ("left", [("copy", "right")]),
        ("right", [("copy", "left")]),
        ("keep-both", [("keep_both", "left")]),
    ],
)
def test_conflict_rules(rule, expected):
    outcome = decide(
        "f", ch(MODIFIED, NEW_L), ch(MODIFIED, NEW_R), BASE, Policy(on_conflict=rule)
    )
    assert ops(outcome) == expected


def test_ask_leaves_a_conflict_that_resolve_settles():
    outcome = decide(
        "f", ch(MODIFIED, NEW_L), ch(MODIFIED, NEW_R), BASE, Policy(on_conflict="ask")
    )
    assert not isinstance(outcome, list)
    plan = Plan([], [outcome])
    settled = resolve(plan, "f", "left")
    assert not settled.conflicts
    assert ops(settled.actions) == [("copy", "right")]
    assert ops(resolve(plan, "f", "keep-both").actions) == [("keep_both", "left")]
    assert resolve(plan, "f", "skip").is_empty


def test_keep_both_names_the_loser_and_keeps_the_newer():
    outcome = decide(
        "dir/report.txt", ch(MODIFIED, NEW_L), ch(MODIFIED, NEW_R), BASE, Policy()
    )
    (action,) = outcome
    assert action.entry == NEW_R and action.expect == NEW_L
    assert action.new_key.startswith("dir/report.conflict-")
    assert action.new_key.endswith("-left.txt")


def test_folder_always_keeps_the_name_in_a_kind_conflict():
    folder = entry(kind=DIR, version="d")
    outcome = decide(
        "f",
        ch(CREATED, folder, None),
        ch(CREATED, NEW_R, None),
        None,
        Policy(),
        first_sync=True,
    )
    (action,) = outcome
    assert action.op == "keep_both" and action.side is RIGHT and action.entry == folder


def test_conflict_names_are_unique():
    taken = {"a.conflict-19700101-000000-left.txt"}
    name = conflict_name("a.txt", LEFT, 0, taken)
    assert name == "a.conflict-19700101-000000-left-2.txt"
    assert (
        conflict_name(".bashrc", RIGHT, 0, set())
        == ".bashrc.conflict-19700101-000000-right"
    )


def test_first_sync_always_keeps_both():
    outcome = decide(
        "f",
        ch(CREATED, NEW_L, None),
        ch(CREATED, NEW_R, None),
        None,
        Policy(on_conflict="left"),
        first_sync=True,
    )
    assert ops(outcome) == [("keep_both", "left")]


def changeset(side, **changes):
    return ChangeSet(side, dict(changes), [], [], [], len(changes))


def test_renames_propagate_as_moves():
    base = ArchiveEntry("old", FILE, 1, 100, 0o644, "d0", None, "vl", "vr")
    moved = entry("new", digest="d0", version="vl9")
    left = changeset(
        LEFT, old=Change(DELETED, None, base), new=Change(CREATED, moved, None)
    )
    plan = reconcile(left, changeset(RIGHT), {"old": base}, Policy())
    (action,) = plan.actions
    assert (action.op, action.side, action.key, action.new_key) == (
        "move",
        RIGHT,
        "old",
        "new",
    )
    assert plan.deletes(RIGHT) == 0


def test_rename_with_edit_on_the_other_side_keeps_the_edit():
    base = ArchiveEntry("old", FILE, 1, 100, 0o644, "d0", None, "vl", "vr")
    moved = entry("new", digest="d0", version="vl9")
    left = changeset(
        LEFT, old=Change(DELETED, None, base), new=Change(CREATED, moved, None)
    )
    right = changeset(RIGHT, old=Change(MODIFIED, NEW_R._replace(key="old"), base))
    plan = reconcile(left, right, {"old": base}, Policy())
    assert sorted(ops(plan.actions)) == [("copy", "left"), ("copy", "right")]


def test_a_folder_deleted_on_one_side_that_gains_items_on_the_other_is_kept():
    folder = ArchiveEntry("d", DIR, 0, 0, 0o755, None, None, "d755", "d755")
    child = ArchiveEntry("d/a", FILE, 1, 1, 0o644, "x", None, "l", "r")
    left = changeset(
        LEFT, d=Change(DELETED, None, folder), **{"d/a": Change(DELETED, None, child)}
    )
    right = changeset(RIGHT, **{"d/new": Change(CREATED, entry("d/new"), None)})
    plan = reconcile(left, right, {"d": folder, "d/a": child}, Policy())
    got = sorted((a.op, a.side.value, a.key) for a in plan.actions)
    assert got == [
        ("copy", "left", "d"),
        ("copy", "left", "d/new"),
        ("delete", "right", "d/a"),
    ]


def test_mirror_overwrites_the_right_and_deletes_only_when_asked():
    right_only = changeset(RIGHT, extra=Change(CREATED, entry("extra"), None))
    keep = reconcile(changeset(LEFT), right_only, {}, Policy(mode="mirror"))
    assert keep.is_empty
    gone = reconcile(
        changeset(LEFT), right_only, {}, Policy(mode="mirror", delete=True)
    )
    assert ops(gone.actions) == [("delete", "right")]
    edited = changeset(RIGHT, f=Change(MODIFIED, NEW_R, BASE))
    plan = reconcile(changeset(LEFT), edited, {"f": BASE}, Policy(mode="mirror"))
    (action,) = plan.actions
    assert action.op == "copy" and action.side is RIGHT and action.expect == NEW_R


def test_mirror_first_run_compares_size_and_mtime():
    same = Change(CREATED, entry(digest=None), None)
    plan = reconcile(
        changeset(LEFT, f=same), changeset(RIGHT, f=same), {}, Policy(mode="mirror")
    )
    assert ops(plan.actions) == [("mark_equal", None)]


def test_plan_json_round_trip_and_order():
    folder = entry("d", kind=DIR, version="d")
    left = changeset(
        LEFT,
        d=Change(CREATED, folder, None),
        **{
            "d/x": Change(CREATED, entry("d/x", digest="dd"), None),
            "gone": Change(DELETED, None, BASE._replace(key="gone")),
        },
    )
    plan = reconcile(
        left, changeset(RIGHT), {"gone": BASE._replace(key="gone")}, Policy()
    )
    assert [a.key for a in plan.ordered()] == ["d", "d/x", "gone"]
    again = Plan.from_json(plan.to_json())
    assert again.actions == plan.actions
    assert again.summary() == plan.summary()


def _changes(side, **changes):
    return ChangeSet(side, changes, [], [], [], 0)


def _row(key):
    return ArchiveEntry(key, FILE, 1, 100, 0o644, "d0", None, "vl", "vr")


@pytest.mark.parametrize(
    ("archived", "left", "right", "clashing"),
    [
        # a rename that changed only the case: the old name goes, no clash
        (["Readme.md"], {"Readme.md": DELETED, "README.md": CREATED}, {}, []),
        (["Readme.md"], {}, {"Readme.md": DELETED, "README.md": CREATED}, []),
        # both spellings stay: a clash
        (["Readme.md"], {"README.md": CREATED}, {}, ["README.md", "Readme.md"]),
        # the old name is edited on the other side: it stays, so a clash
        (
            ["Readme.md"],
            {"Readme.md": DELETED, "README.md": CREATED},
            {"Readme.md": MODIFIED},
            ["README.md", "Readme.md"],
        ),
        # two new spellings: a clash
        ([], {"a.txt": CREATED}, {"A.txt": CREATED}, ["A.txt", "a.txt"]),
        # deleted on both sides: gone
        (["a.txt"], {"a.txt": DELETED, "A.txt": CREATED}, {"a.txt": DELETED}, []),
    ],
)
def test_name_clashes_leave_out_names_the_plan_removes(archived, left, right, clashing):
    archive = {key: _row(key) for key in archived}

    def change(key, kind):
        base = archive.get(key)
        now = None if kind == DELETED else entry(key)
        return Change(kind, now, None if kind == CREATED else base)

    lc = _changes(LEFT, **{k: change(k, v) for k, v in left.items()})
    rc = _changes(RIGHT, **{k: change(k, v) for k, v in right.items()})
    found = guards.name_clashes(lc, rc, archive)
    assert [p.key for p in found] == clashing


KEPT = ArchiveEntry("d", DIR, 0, 0, 0o755, None, None, "-", "d755")  # left: ABSENT


@pytest.mark.parametrize(
    ("right", "expected"),
    [
        (None, []),  # kept on the right, absent on the left: settled
        (Change(DELETED, None, KEPT), [("forget", None)]),
        (Change(META, entry("d", kind=DIR, mode=0o700), KEPT), []),
    ],
)
def test_a_folder_kept_on_one_side_only_settles(right, expected):
    assert ops(decide("d", None, right, KEPT, Policy())) == expected


def test_new_content_in_a_folder_kept_on_one_side_brings_the_folder_back():
    new = entry("d/new.c", version="n")
    plan = reconcile(
        _changes(LEFT),
        _changes(RIGHT, **{"d/new.c": Change(CREATED, new, None)}),
        {"d": KEPT},
        Policy(),
    )
    assert [(a.op, a.key, a.side.value) for a in plan.actions] == [
        ("copy", "d", "left"),
        ("copy", "d/new.c", "left"),
    ]


def test_a_folder_absent_by_agreement_is_not_a_deletion():
    from accord.engine.detect import Scanned, compare

    unseen = Scanned(LEFT, [], ["d"], [], 0, None)
    assert compare(unseen, {"d": KEPT}, None).changes == {}  # type: ignore[arg-type]
    gone = Scanned(RIGHT, [], ["d"], [], 0, None)
    assert compare(gone, {"d": KEPT}, None).changes["d"].kind == DELETED  # type: ignore[arg-type]
