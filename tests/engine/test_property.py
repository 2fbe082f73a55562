"""Property: random edits on both sides between random syncs.

After every sync both sides are identical, a second sync has nothing to do,
and no content that existed before the sync is lost: it is on a side (under
its name or as a conflict copy) or in a side's trash.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import accord

NAMES = ["a", "b", "c.txt"]
CONTENTS = [b"", b"one", b"two", b"three" * 50, b"four"]

paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
op = st.one_of(
    st.tuples(st.just("write"), paths, st.sampled_from(CONTENTS)),
    st.tuples(st.just("delete"), paths, st.just(b"")),
    st.tuples(st.just("rename"), paths, paths),
    st.tuples(st.just("mkdir"), paths, st.just(b"")),
    st.tuples(st.just("chmod"), paths, st.sampled_from([0o600, 0o644, 0o755])),
    st.tuples(st.just("touch"), paths, st.integers(0, 2)),
    st.tuples(st.just("symlink"), paths, st.sampled_from(["a", "../x", "/etc"])),
)
side_ops = st.lists(op, max_size=5)
rounds = st.lists(st.tuples(side_ops, side_ops), min_size=1, max_size=4)


def apply_op(root: Path, item: tuple) -> None:
    """Carry out one user edit; an edit that makes no sense here is skipped."""
    kind, rel, arg = item
    path = root / rel
    if _through_link(root, path) or (
        kind == "rename" and _through_link(root, root / arg)
    ):
        return  # never edit through a symlink (it may point out of the tree)
    try:
        if kind == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(arg)
        elif kind == "delete":
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        elif kind == "rename":
            target = root / arg
            if (
                path.exists()
                and not target.exists()
                and not str(target).startswith(str(path) + "/")
            ):
                target.parent.mkdir(parents=True, exist_ok=True)
                path.rename(target)
        elif kind == "mkdir":
            path.mkdir(parents=True, exist_ok=True)
        elif kind == "chmod" and path.is_file():
            path.chmod(arg)
        elif kind == "touch" and path.is_file():
            os.utime(path, ns=(arg * 10**9, 1_600_000_000 * 10**9 + arg))
        elif kind == "symlink" and not path.is_symlink():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(arg)
    except OSError:
        pass


def _through_link(root: Path, path: Path) -> bool:
    """True when a folder on the way from root to path is a symlink."""
    return any(p.is_symlink() for p in path.parents if p != root and root in p.parents)


def tree(root: Path) -> dict[str, object]:
    """Every item under root (accord's own area left out)."""
    items: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        if rel == ".":
            dirs[:] = [d for d in dirs if d != ".accord"]
        for name in dirs + files:
            path = Path(folder, name)
            key = os.path.normpath(os.path.join(rel, name))
            if path.is_symlink():
                items[key] = ("link", os.readlink(path))
            elif path.is_dir():
                items[key] = ("dir", path.stat().st_mode)
            else:
                stat = path.stat()
                items[key] = path.read_bytes()
                items[key + "//meta"] = (stat.st_mode, stat.st_mtime_ns)
    return items


def contents(root: Path, *, trash: bool) -> list[bytes]:
    found = [v for v in tree(root).values() if isinstance(v, bytes)]
    if trash and (root / ".accord" / "trash").is_dir():
        found += [
            p.read_bytes()
            for p in (root / ".accord" / "trash").rglob("*")
            if p.is_file() and not p.is_symlink()
        ]
    return found


@settings(
    max_examples=int(os.environ.get("ACCORD_PROPERTY_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rounds=rounds)
def test_random_edits_converge_and_lose_nothing(tmp_path_factory, rounds):
    base = tmp_path_factory.mktemp("pair")
    left, right, state = base / "left", base / "right", base / "state"
    left.mkdir()
    right.mkdir()
    for left_ops, right_ops in rounds:
        for item in left_ops:
            apply_op(left, item)
        for item in right_ops:
            apply_op(right, item)
        before = contents(left, trash=False) + contents(right, trash=False)
        report = accord.sync(
            str(left), str(right), state_dir=state, allow_empty=True, max_delete=10**6
        )
        assert report.ok, [o.message for o in report.failed + report.skipped]
        assert tree(left) == tree(right)
        kept = contents(left, trash=True) + contents(right, trash=True)
        for content in before:
            assert content in kept, f"lost content {content[:20]!r}"
        again = accord.sync(str(left), str(right), state_dir=state, dry_run=True)
        assert again.is_empty, [a.reason for a in again.actions]
