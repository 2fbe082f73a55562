"""Names arrive byte for byte, in both directions.

A name is created on the other side in exactly its source's bytes: an NFD
spelling (``e`` + U+0301, as macOS writes it) stays NFD, a name that is not
UTF-8 or that holds a newline, a tab or 0x01 goes both ways between places
that can hold it (a local folder, SFTP through accord's agent and plain
SFTP, against a real sshd). Two spellings of one name are still one item:
a tree that went through a normalizing file system does not come back
doubled, and each side keeps its own spelling. Where a place cannot hold a
name (S3 keys are UTF-8; a place that normalizes names cannot hold two
spellings), the item is reported by its escaped name and why, nothing of it
is written, the rest is synced, and it stays pending for the next run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.engine import forked
from accord.engine.session import Session
from accord.engine.spelled import Spelled
from accord.replicas.local import LocalReplica

PLACES = ["local", "sftp-agent", "sftp-plain"]


def _place(kind: str, tmp: Path, sshd: Any) -> tuple[str, Path]:
    """A fresh, existing folder of ``kind``: its URL and its path on disk."""
    if kind == "local":
        folder = tmp / uuid.uuid4().hex[:10]
        folder.mkdir()
        return str(folder), folder
    url = sshd.url() + ("&agent=off" if kind == "sftp-plain" else "&agent=on")
    folder = sshd.path(url)
    folder.mkdir()
    return url, folder


def _put(root: Path, rel: bytes, data: bytes) -> None:
    path = os.path.join(os.fsencode(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def _tree(root: Path) -> dict[bytes, bytes | None]:
    """Every item under ``root`` by its path in bytes (None: a folder)."""
    top = os.fsencode(root)
    found: dict[bytes, bytes | None] = {}
    for folder, dirs, files in os.walk(top):
        if folder == top:
            dirs[:] = [d for d in dirs if d != b".accord"]
        rel = os.path.relpath(folder, top)
        for name in dirs:
            found[os.path.normpath(os.path.join(rel, name))] = None
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                found[os.path.normpath(os.path.join(rel, name))] = handle.read()
    return found


def _sync(left: str, right: str) -> Any:
    with Session(left, right) as session:
        plan = session.plan()
        return session.apply(plan)


def _pending(left: str, right: str) -> Any:
    with Session(left, right, read_only=True) as session:
        return session.plan()


# -- drawn names ------------------------------------------------------------------

_ACCENTED = st.builds(
    lambda base, mark, form: unicodedata.normalize(form, base + mark),
    st.sampled_from("aeiouncAEIOU"),
    st.sampled_from("\u0301\u0300\u0308\u0303\u0327\u030a"),
    st.sampled_from(["NFC", "NFD"]),
)
_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="/\0"),
    min_size=1,
    max_size=6,
)
_UNICODE = st.one_of(
    _TEXT.map(lambda t: unicodedata.normalize("NFC", t)),
    _TEXT.map(lambda t: unicodedata.normalize("NFD", t)),
    st.lists(st.one_of(_ACCENTED, _TEXT), min_size=1, max_size=3).map("".join),
).map(str.encode)
_CONTROLLED = st.builds(
    lambda a, c, b: a + c + b,
    st.binary(max_size=3),
    st.sampled_from([b"\n", b"\t", b"\x01", b"\r", b"\x1b", b"\x7f"]),
    st.binary(max_size=3),
)
NAME = (
    st.one_of(st.binary(min_size=1, max_size=10), _UNICODE, _CONTROLLED)
    .map(lambda raw: raw.replace(b"/", b"_").replace(b"\0", b"_"))
    .filter(
        lambda raw: (
            raw not in (b".", b"..")
            and not raw.lower().startswith(b".accord")
            and len(raw) <= 255
        )
    )
)


def _twins(raw: bytes) -> str:
    """What two spellings of one name have in common."""
    return unicodedata.normalize("NFC", os.fsdecode(raw))


@st.composite
def trees(draw: Any) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """Files for the left and the right side, under drawn names (some in a
    drawn folder). Spellings of one name stay on one side: across the two
    sides they would be one item, each side keeping its own spelling."""
    names = draw(st.lists(NAME, min_size=1, max_size=6, unique_by=_twins))
    sides: tuple[dict[bytes, bytes], dict[bytes, bytes]] = ({}, {})
    for number, name in enumerate(names):
        spellings = [name]
        if draw(st.booleans()):  # its other spelling too, as another item
            other = unicodedata.normalize("NFD", os.fsdecode(name))
            if other == os.fsdecode(name):
                other = unicodedata.normalize("NFC", other)
            spellings.append(os.fsencode(other))
        side = sides[draw(st.integers(0, 1))]
        for spelling in dict.fromkeys(spellings):
            if draw(st.booleans()):
                inner = draw(NAME)
                side[spelling + b"/" + inner] = b"%d in a folder" % number
            else:
                side[spelling] = spelling + b"!"
    return sides


@pytest.mark.parametrize("kind", PLACES)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=trees())
def test_names_arrive_byte_for_byte_both_ways(
    kind: str, drawn: Any, sshd: Any, tmp_path: Path
) -> None:
    mine, theirs = drawn
    left_url, left = _place("local", tmp_path, sshd)
    right_url, right = _place(kind, tmp_path, sshd)
    for rel, data in mine.items():
        _put(left, rel, data)
    for rel, data in theirs.items():
        _put(right, rel, data)
    report = _sync(left_url, right_url)
    assert not report.failed and not report.plan.problems
    files = {rel: data for rel, data in _tree(left).items() if data is not None}
    assert files == mine | theirs
    assert _tree(left) == _tree(right)
    assert _pending(left_url, right_url).is_empty


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drawn=trees())
def test_names_arrive_byte_for_byte_between_local_folders(
    drawn: Any, tmp_path: Path
) -> None:
    mine, theirs = drawn
    left_url, left = _place("local", tmp_path, None)
    right_url, right = _place("local", tmp_path, None)
    for rel, data in mine.items():
        _put(left, rel, data)
    for rel, data in theirs.items():
        _put(right, rel, data)
    report = _sync(left_url, right_url)
    assert not report.failed and not report.plan.problems
    assert _tree(left) == _tree(right)
    assert {k: v for k, v in _tree(right).items() if v is not None} == mine | theirs
    plan = _pending(left_url, right_url)
    assert plan.is_empty and not plan.problems


# -- examples ---------------------------------------------------------------------

NFD = "re\u0301sume\u0301"  # résumé, decomposed
NFC = unicodedata.normalize("NFC", NFD)


@pytest.mark.parametrize("kind", PLACES)
def test_a_first_sync_leaves_nfd_names_as_they_are(
    kind: str, sshd: Any, tmp_path: Path
) -> None:
    left_url, left = _place("local", tmp_path, sshd)
    right_url, right = _place(kind, tmp_path, sshd)
    (left / NFD).mkdir()
    (left / NFD / f"{NFD}.txt").write_bytes(b"cv")
    (right / "cafe\u0301.txt").write_bytes(b"coffee")
    report = _sync(left_url, right_url)
    assert not report.failed
    nfd = NFD.encode()
    assert sorted(os.listdir(os.fsencode(right))) == [
        b".accord",
        b"cafe\xcc\x81.txt",
        nfd,
    ]
    assert os.listdir(os.path.join(os.fsencode(right), nfd)) == [nfd + b".txt"]
    assert sorted(os.listdir(os.fsencode(left))) == sorted(
        os.listdir(os.fsencode(right))
    )
    assert _pending(left_url, right_url).is_empty


def test_two_spellings_of_one_name_are_one_item(tmp_path: Path) -> None:
    """A tree that went through a normalizing file system: nothing doubles,
    each side keeps its spelling, an edit reaches the other spelling."""
    left_url, left = _place("local", tmp_path, None)
    right_url, right = _place("local", tmp_path, None)
    (left / NFC).mkdir()
    (left / NFC / "a.txt").write_text("same")
    (right / NFD).mkdir()
    (right / NFD / "a.txt").write_text("same")
    (right / NFD / "new.txt").write_text("new on the right")
    report = _sync(left_url, right_url)
    assert not report.failed
    assert sorted(os.listdir(left)) == sorted([".accord", NFC])
    assert sorted(os.listdir(right)) == sorted([".accord", NFD])
    assert (left / NFC / "new.txt").read_text() == "new on the right"
    (right / NFD / "a.txt").write_text("edited on the right")
    _sync(left_url, right_url)
    assert (left / NFC / "a.txt").read_text() == "edited on the right"
    assert sorted(os.listdir(left / NFC)) == ["a.txt", "new.txt"]
    assert _pending(left_url, right_url).is_empty


def test_many_new_files_below_a_twin_folder_reach_its_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copied by the copying processes (a phase of many copies): each new
    file goes below the other side's own spelling of its folder."""
    monkeypatch.setattr(forked, "_FORK_MIN", 8)
    left_url, left = _place("local", tmp_path, None)
    right_url, right = _place("local", tmp_path, None)
    (left / NFC).mkdir()
    (left / NFC / "a.txt").write_text("same")
    (right / NFD).mkdir()
    (right / NFD / "a.txt").write_text("same")
    assert not _sync(left_url, right_url).failed
    for number in range(40):
        (left / NFC / f"n{number:02}.txt").write_text(str(number))
    report = _sync(left_url, right_url)
    assert not report.failed and len(report.done) == 40
    assert sorted(os.listdir(right)) == sorted([".accord", NFD])
    assert sorted(os.listdir(right / NFD)) == sorted(os.listdir(left / NFC))
    assert (right / NFD / "n39.txt").read_text() == "39"
    assert _pending(left_url, right_url).is_empty


def test_small_files_read_at_once_below_a_twin_folder(tmp_path: Path) -> None:
    """A batch's sources read under their real spelling, not their keys'."""
    (tmp_path / NFD).mkdir()
    (tmp_path / NFD / "a.txt").write_bytes(b"cv")
    place = LocalReplica.from_url(str(tmp_path))
    place.open()
    try:
        listed = place.stat(f"{NFD}/a.txt")
        assert listed is not None
        view = Spelled(place, {NFC: NFD})
        assert view.read_small([listed._replace(key=f"{NFC}/a.txt")]) == [b"cv"]
        assert view.copy_new(place, f"{NFC}/b.txt", listed) is None
    finally:
        place.close()


def test_a_tree_renormalized_since_the_last_sync_is_not_doubled(
    tmp_path: Path,
) -> None:
    left_url, left = _place("local", tmp_path, None)
    right_url, right = _place("local", tmp_path, None)
    (left / NFC).mkdir()
    (left / NFC / "a.txt").write_text("kept")
    _sync(left_url, right_url)
    (right / NFC).rename(right / NFD)  # a trip through a normalizing disk
    plan = _pending(left_url, right_url)
    assert plan.is_empty and not plan.problems
    assert sorted(os.listdir(right)) == sorted([".accord", NFD])
    assert sorted(os.listdir(left)) == sorted([".accord", NFC])


@pytest.mark.parametrize(
    ("names", "option", "why"),
    [
        ((NFC, NFD), "unicode_exact=false", "Unicode normalization"),
        (("Readme\n.txt", "README\n.txt"), "case_sensitive=false", "case"),
    ],
    ids=["normalizing", "case-insensitive"],
)
def test_both_spellings_toward_a_place_that_cannot_hold_both(
    names: tuple[str, str], option: str, why: str, tmp_path: Path
) -> None:
    left_url, left = _place("local", tmp_path, None)
    _, right = _place("local", tmp_path, None)
    right_url = f"file://{right}?{option}"
    for name in names:
        (left / name).write_text(name)
    (left / "plain.txt").write_text("fine")
    for _ in range(2):  # reported again: still pending
        report = _sync(left_url, right_url)
        clashes = [p for p in report.plan.problems if p.refused]
        assert sorted(p.key for p in clashes) == sorted(names)
        assert all(f"differ only by {why}" in p.message for p in clashes)
        assert all("'" in str(p) for p in clashes) == (why == "case")  # escaped
        assert sorted(os.listdir(right)) == [".accord", "plain.txt"]
    for name in names:
        assert (left / name).read_text() == name


def _accord(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=120,
        env={**os.environ, "ACCORD_STATE_DIR": str(state)},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_a_name_that_is_not_utf8_toward_s3_stays_pending(
    s3_server: Any, tmp_path: Path
) -> None:
    left_url, left = _place("local", tmp_path, None)
    _put(left, b"caf\xe9.txt", b"latin-1")
    _put(left, b"good.txt", b"fine")
    _put(left, b"tab\there.txt", b"tab")
    bucket = s3_server.url()
    state = tmp_path / "state"
    for _ in range(2):
        done = _accord("sync", left_url, bucket, "--yes", state=state)
        assert done.returncode == 3, done.stdout + done.stderr
        text = done.stdout + done.stderr
        assert "'caf\\xe9.txt': not synced" in text
        assert "not valid UTF-8" in text
        assert s3_server.objects(bucket) == {
            "good.txt": b"fine",
            "tab\there.txt": b"tab",
        }
    again = _accord("sync", left_url, bucket, "--yes", "--json", state=state)
    events = [json.loads(line) for line in again.stdout.splitlines()]
    (problem,) = [e for e in events if e["event"] == "problem"]
    assert os.fsencode(problem["key"]) == b"caf\xe9.txt" and problem["refused"]


def test_a_saved_plan_and_json_keep_names_that_are_not_utf8(tmp_path: Path) -> None:
    left_url, left = _place("local", tmp_path, None)
    right_url, right = _place("local", tmp_path, None)
    names = [b"caf\xe9.txt", b"line\nbreak", b"ctl\x01", NFD.encode()]
    for name in names:
        _put(left, name, name)
    state = tmp_path / "state"
    saved = tmp_path / "plan.json"
    done = _accord("plan", left_url, right_url, "-o", str(saved), state=state)
    assert done.returncode in (0, 6), done.stdout + done.stderr
    done = _accord("apply", str(saved), "--yes", state=state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _tree(right) == _tree(left) == {name: name for name in names}
    status = _accord("status", left_url, right_url, "--json", state=state)
    assert status.returncode == 0, status.stdout + status.stderr
    for line in status.stdout.splitlines():
        json.loads(line)


def test_a_conflict_on_a_name_that_is_not_utf8_keeps_both(tmp_path: Path) -> None:
    left_url, left = _place("local", tmp_path, None)
    right_url, right = _place("local", tmp_path, None)
    _put(left, b"d\xff/caf\xe9.txt", b"first")
    _sync(left_url, right_url)
    _put(left, b"d\xff/caf\xe9.txt", b"left edit")
    _put(right, b"d\xff/caf\xe9.txt", b"right edit, longer")
    report = _sync(left_url, right_url)
    assert not report.failed
    assert _tree(left) == _tree(right)
    names = sorted(os.listdir(os.path.join(os.fsencode(left), b"d\xff")))
    assert len(names) == 2 and all(name.startswith(b"caf\xe9.") for name in names)
    assert _pending(left_url, right_url).is_empty


def test_a_local_disk_is_asked_whether_it_tells_spellings_apart(
    tmp_path: Path,
) -> None:
    from accord.registry import open_replica

    place = open_replica(str(tmp_path))
    place.open()
    assert place.capabilities.unicode_exact  # probed: this disk keeps bytes
    assert os.listdir(tmp_path) == []  # the probe left nothing behind
    (tmp_path / NFD).write_text("x")  # told by a name the root holds
    place.open()
    assert place.capabilities.unicode_exact
    told = open_replica(f"file://{tmp_path}?unicode_exact=false")
    told.open()
    assert not told.capabilities.unicode_exact
