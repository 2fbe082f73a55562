"""The name gate: every name a place lists is checked before the engine uses it.

Pure tables for the checks (``keys.unsafe_reason``, ``keys.shown``,
``Capabilities.unfit_reason``), then whole runs between local folders where
one side is a place that lists names it should not (a peer that lies): the
names are refused and reported, nothing is planned for them, nothing is
written outside the target, no deletion is inferred, the emptied-side guard
is neither tripped nor disabled by them, and they stay out of the archive.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.capabilities import Capabilities
from accord.engine.detect import scan_side
from accord.engine.names import Gate, checked_trash
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import SafetyLimitExceeded, UnsafeName
from accord.keys import IgnoreRules, shown, unsafe_reason
from accord.model import DIR, FILE, Entry, Problem, Side
from accord.replica import TrashItem, check_key, check_run
from accord.replicas.local import LocalReplica
from accord.testing.contract import disk_snapshot

# -- the checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("a", None),
        ("a/b/c.txt", None),
        ("a/.hidden", None),
        (".hidden", None),
        ("..a", None),
        ("a..", None),
        ("a/...", None),
        (".accordion/x", None),
        ("tab\there", None),
        ("new\nline", None),
        ("caf\udce9", None),  # an undecodable byte: a question for the target
        ("", "empty"),
        ("..", "leave"),
        ("../x", "leave"),
        ("a/../b", "leave"),
        ("a/..", "leave"),
        (".", "'.'"),
        ("./x", "'.'"),
        ("a/./b", "'.'"),
        ("a//b", "empty or"),
        ("a/", "empty or"),
        ("/abs", "absolute"),
        ("a\0b", "NUL"),
        (".accord", "accord's own"),
        (".accord/lock", "accord's own"),
        (".ACCORD/x", "accord's own"),
        (".Accord", "accord's own"),
        ("x/.accord/y", "nested here"),  # another accord place's own folder
        ("x/y/.ACCORD/z", "nested here"),
        ("x/.accord", None),  # a file of that name is an ordinary file
        ("x/.accordion/y", None),
    ],
)
def test_unsafe_reason_table(key: str, why: str | None) -> None:
    found = unsafe_reason(key)
    if why is None:
        assert found is None
    else:
        assert found is not None and why in found


def _reference(key: str) -> bool:
    """True when ``key`` is unsafe: the rule, written the plain way."""
    parts = key.split("/")
    return (
        "\0" in key
        or any(part in ("", ".", "..") for part in parts)
        or parts[0].lower() == ".accord"
        or any(part.lower() == ".accord" for part in parts[1:-1])
    )


@given(st.text(alphabet="ab./\0A\tC\u00e9", max_size=12))
@settings(max_examples=400, deadline=None)
def test_the_fast_path_agrees_with_the_rule(key: str) -> None:
    assert (unsafe_reason(key) is not None) == _reference(key)


@pytest.mark.parametrize(
    ("name", "seen"),
    [
        ("plain.txt", "plain.txt"),
        ("../escape.txt", "../escape.txt"),
        ("a\nb", "'a\\nb'"),
        ("a\tb", "'a\\tb'"),
        ("a\x01b", "'a\\x01b'"),
        ("a\0b", "'a\\x00b'"),
        ("caf\udce9", "'caf\\xe9'"),
        ("it's\n", "'it\\'s\\n'"),
        (" lead", "' lead'"),
        ("", "''"),
        ("caf\u00e9", "caf\u00e9"),
    ],
)
def test_shown_makes_every_character_visible(name: str, seen: str) -> None:
    assert shown(name) == seen


def test_a_target_says_which_names_it_cannot_hold() -> None:
    disk = Capabilities(max_name_bytes=255, max_key_bytes=4000)
    assert disk.unfit_reason("a/" + "x" * 255) is None
    assert "300 bytes" in (disk.unfit_reason("a/" + "x" * 300) or "")
    assert "bytes" in (disk.unfit_reason("é" * 128) or "")  # 256 bytes in UTF-8
    assert disk.unfit_reason("caf\udce9") is None  # one byte on such a disk
    store = Capabilities(utf8_names=True, max_key_bytes=20)
    assert "UTF-8" in (store.unfit_reason("caf\udce9") or "")
    assert "21 bytes" in (store.unfit_reason("x" * 21) or "")
    assert store.unfit_reason("tab\there") is None
    picky = Capabilities(forbidden_chars=':*?"<>|\\')
    assert "':'" in (picky.unfit_reason("a:b") or "")
    assert Capabilities().unfit_reason("x" * 10_000) is None


def test_a_gate_asks_both_questions() -> None:
    gate = Gate("s3://team/in", Capabilities(max_name_bytes=8), "/data")
    assert gate("fine") is None
    assert "leave" in (gate("../x") or "")
    assert "cannot exist in /data" in (gate("far-too-long") or "")
    assert Gate("s3://team/in")("far-too-long") is None  # copied nowhere


def test_places_refuse_unsafe_keys_and_run_stamps() -> None:
    assert check_key("a/b", "here") == "a/b"
    with pytest.raises(UnsafeName) as caught:
        check_key("a/../../b", "sftp://host/data")
    text = str(caught.value)
    assert "refused" in text and "sftp://host/data" in text and "rrno" not in text
    assert check_run("20260101T000000Z-abcdef", "here")
    for run in ("..", "a/b", "", "."):
        with pytest.raises(UnsafeName):
            check_run(run, "here")


def test_a_trash_listing_passes_the_gate() -> None:
    entry = Entry("x", FILE)
    items = [
        TrashItem("r1", "ok.txt", entry),
        TrashItem("r1", "../../x", entry),
        TrashItem("..", "ok.txt", entry),
    ]
    checked = list(checked_trash(items, "s3://b/p"))
    assert checked[0] == items[0]
    assert all(isinstance(i, Problem) and i.refused for i in checked[1:])


# -- whole runs, with a place that lists what it should not ----------------------------


class Lying(LocalReplica):
    """A local folder that also lists names no folder can hold (as a peer
    might): each read or write of them goes to the local place, which
    refuses them."""

    def __init__(self, path: str, extra: list[Entry]) -> None:
        super().__init__(path)
        self.extra = extra

    def scan(
        self, ignore: IgnoreRules | None = None, known: dict[str, str] | None = None
    ) -> Iterator[Entry | Problem | str]:
        yield from super().scan(ignore, known)
        yield from self.extra


HOSTILE = [
    "..",
    "../escape1.txt",
    "a/../../../escape3.txt",
    "/tmp/escape-abs.txt",
    "a//b.txt",
    "./dot.txt",
    "a\0b.txt",
    ".accord/lock",
    ".ACCORD/x.txt",
]
REPORTED = sorted(set(HOSTILE) - {".."})  # '..' holds '../escape1.txt': the deeper one


def _file(key: str) -> Entry:
    return Entry(key, FILE, 3, 1_700_000_000_000_000_000, 0o644, f"v-{key}")


def _pair(tmp_path: Path, hostile: list[str]) -> tuple[Lying, LocalReplica, Path]:
    top = tmp_path / "top"
    source, target = top / "1" / "2" / "source", top / "1" / "2" / "target"
    source.mkdir(parents=True)
    target.mkdir(parents=True)
    (source / "good.txt").write_text("good")
    (source / "a").mkdir()
    extra = [Entry(k, DIR) if k == ".." else _file(k) for k in hostile]
    return Lying(str(source), extra), LocalReplica(str(target)), top


def _around(top: Path) -> dict[str, object]:
    """Everything but the target and accord's own folders."""
    return {
        k: v
        for k, v in disk_snapshot(top).items()
        if not k.startswith("1/2/target") and ".accord" not in k
    }


class Picky(LocalReplica):
    """A local folder that says it cannot hold names with a ':'."""

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return LocalReplica.capabilities.fget(self)._replace(forbidden_chars=":")  # type: ignore[attr-defined]

    @capabilities.setter
    def capabilities(self, caps: Capabilities) -> None:
        LocalReplica.capabilities.fset(self, caps)  # type: ignore[attr-defined]


def _run(left, right, state: Path, **policy) -> tuple[object, object]:
    with Session(left, right, policy=Policy(**policy), state_dir=state) as session:
        plan = session.plan()
        report = session.apply(plan)
    return plan, report


def _archived(state: Path) -> set[str]:
    keys: set[str] = set()
    for db in state.glob("pairs/*.db"):
        with sqlite3.connect(db) as conn:
            keys |= {row[0] for row in conn.execute("SELECT key FROM entries")}
    return keys


@pytest.mark.parametrize("mode", ["sync", "mirror"])
def test_refused_names_are_reported_never_planned_never_archived(
    tmp_path: Path, mode: str
) -> None:
    left, right, top = _pair(tmp_path, HOSTILE)
    before = _around(top)
    state = tmp_path / "state"
    plan, report = _run(left, right, state, mode=mode)
    refused = sorted(p.key for p in plan.problems if p.refused)
    assert refused == REPORTED
    assert all(p.side is Side.LEFT for p in plan.problems)
    assert {a.key for a in plan.actions} == {"good.txt", "a"}
    assert not report.failed and report.refused and not report.ok
    assert (right.root and (Path(right.root) / "good.txt").read_text()) == "good"
    assert _around(top) == before  # nothing outside the target, not even the source
    message = next(p.message for p in plan.problems if p.key == "../escape1.txt")
    assert "leave the target folder" in message and left.url in message
    assert not _archived(state) & set(HOSTILE)
    again, _ = _run(left, right, state, mode=mode)  # reported again, nothing to do
    assert sorted(p.key for p in again.problems if p.refused) == REPORTED
    assert not again.changes


def test_only_the_deepest_refused_names_are_reported(tmp_path: Path) -> None:
    left, right, _ = _pair(tmp_path, [])
    left.extra = [Entry("x/..", DIR), Entry("x/../y", DIR), _file("x/../y/z.txt")]
    plan, _ = _run(left, right, tmp_path / "state")
    assert [p.key for p in plan.problems if p.refused] == ["x/../y/z.txt"]


def test_a_name_the_target_cannot_hold_is_refused_there(tmp_path: Path) -> None:
    left, right, _ = _pair(tmp_path, [])
    (Path(left.root) / "x:y.txt").write_text("colon")
    right = Picky(right.root)
    plan, _ = _run(left, right, tmp_path / "state")
    (problem,) = [p for p in plan.problems if p.refused]
    assert problem.key == "x:y.txt" and right.url in problem.message
    assert not (Path(right.root) / "x:y.txt").exists()
    assert (Path(right.root) / "good.txt").exists()


def test_a_refused_name_infers_no_deletion_anywhere(tmp_path: Path) -> None:
    left, right, _ = _pair(tmp_path, [])
    for name in ("x:y.txt", "x:z.txt"):
        (Path(left.root) / name).write_text("colon")
    state = tmp_path / "state"
    _run(left, right, state)
    assert (Path(right.root) / "x:y.txt").exists()
    # the target now says it cannot hold ':' (a stricter rule than before)
    right = Picky(right.root)
    (Path(right.root) / "x:y.txt").unlink()  # deleted on the right...
    for name in ("x:y.txt", "x:z.txt"):  # ...and both edited on the left
        (Path(left.root) / name).write_text("edited")
    plan, _ = _run(left, right, state)
    assert [p.key for p in plan.problems if p.refused] == ["x:y.txt", "x:z.txt"]
    assert not [a for a in plan.actions if ":" in a.key]
    assert (Path(left.root) / "x:y.txt").read_text() == "edited"  # not deleted
    assert (Path(right.root) / "x:z.txt").read_text() == "colon"  # left alone


def test_an_archived_name_that_is_now_unsafe_is_never_deleted(tmp_path: Path) -> None:
    left, right, _ = _pair(tmp_path, [])
    state = tmp_path / "state"
    _run(left, right, state)
    with sqlite3.connect(next(state.glob("pairs/*.db"))) as conn:  # an old archive
        conn.execute(
            "INSERT INTO entries VALUES ('../old.txt', 'file', 1, 0, 420, NULL, "
            "NULL, 'l', 'r')"
        )
    plan, report = _run(left, right, state)
    assert not [a for a in plan.actions if a.key == "../old.txt"]
    assert [p.key for p in plan.problems if p.refused] == ["../old.txt"]
    assert not report.failed


def test_refused_names_neither_trip_nor_disable_the_emptied_guard(
    tmp_path: Path,
) -> None:
    left, right, _ = _pair(tmp_path, [])
    state = tmp_path / "state"
    _run(left, right, state)
    left.extra = [_file("../escape1.txt")]
    plan, _ = _run(left, right, state)  # everything still there: no guard
    assert not plan.guards and [p.key for p in plan.problems] == ["../escape1.txt"]
    for item in Path(left.root).iterdir():  # everything gone but the liar's names
        if item.name != ".accord":
            if item.is_dir():
                item.rmdir()
            else:
                item.unlink()
    with pytest.raises(SafetyLimitExceeded, match="2 items"):
        _run(left, right, state)
    assert (Path(right.root) / "good.txt").exists()


def test_scan_side_counts_a_refused_name_as_seen(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "ok").write_text("x")
    place = Lying(str(root), [_file("../x")])
    scanned = scan_side(place, {"../x": "v"}, Side.LEFT)  # no gate given: the basic one
    assert [e.key for e in scanned.fresh] == ["ok"]
    assert scanned.unseen == [] and scanned.seen == 2
    assert [p.key for p in scanned.problems] == ["../x"]


def test_a_place_that_answers_for_another_name_is_not_believed(
    tmp_path: Path,
) -> None:
    class Confused(LocalReplica):
        def write(self, key, data, **kwargs):  # type: ignore[no-untyped-def]
            new = super().write(key, data, **kwargs)
            return new._replace(key="../elsewhere.txt")

    source, target = tmp_path / "s", tmp_path / "t"
    source.mkdir()
    target.mkdir()
    (source / "a.txt").write_text("a")
    plan, report = _run(
        LocalReplica(str(source)), Confused(str(target)), tmp_path / "st"
    )
    assert [o.message for o in report.failed if "another name" in o.message]
    assert "../elsewhere.txt" not in _archived(tmp_path / "st")
    assert plan.actions


def test_a_batch_refuses_each_bad_key_alone(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    place = LocalReplica(str(root))
    place.open()
    from accord.replica import WriteItem

    like = Entry("ok.txt", FILE, 2, 1_700_000_000_000_000_000, 0o644, "")
    results = place.write_batch(
        [
            WriteItem("ok.txt", b"ok", like, None),
            WriteItem("../bad.txt", b"no", like._replace(key="../bad.txt"), None),
        ]
    )
    assert isinstance(results[0], Entry) and isinstance(results[1], UnsafeName)
    assert not (tmp_path / "bad.txt").exists()
    with pytest.raises(UnsafeName):
        place.write("../x", io.BytesIO(b"x"), like=like, expect=None)
