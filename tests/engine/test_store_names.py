"""The archive keeps names byte for byte: one that is not UTF-8 (a
surrogate-escaped ``str``) is stored as its bytes and read back as it was."""

from __future__ import annotations

from pathlib import Path

from accord.state.store import ArchiveEntry, ArchiveStore

ODD = "d\udcff/caf\udce9.txt"  # b"d\xff/caf\xe9.txt"
NFD = "cafe\u0301.txt"


def _row(key: str, target: str | None = None) -> ArchiveEntry:
    return ArchiveEntry(key, "file", 1, 2, 0o644, "sha256:x", target, "a", "b")


def test_names_that_are_not_utf8_round_trip(tmp_path: Path) -> None:
    store = ArchiveStore.open(tmp_path, "/left", "/right")
    rows = [_row(ODD), _row(NFD), _row("plain.txt"), _row("ln", "to\udce9")]
    store.record(put=rows, log=[("run", "left", "copy", ODD, "why \udce9")])
    assert store.load() == {row.key: row for row in rows}
    assert store.versions("left") == {row.key: "a" for row in rows}
    assert store.versions("right", own_connection=True) == {
        row.key: "b" for row in rows
    }
    assert store.rows([ODD, NFD, "missing"]) == {ODD: rows[0], NFD: rows[1]}
    (line,) = store.log_lines("run")
    assert line.key == ODD and line.detail == "why \udce9"
    store.journal_add("run", [f"copy left {ODD}"])
    assert [action for _, _, action in store.journal_pending()] == [f"copy left {ODD}"]
    store.record(forget=[ODD])
    assert ODD not in store.load() and ODD not in store.versions("left")


def test_recording_clears_exactly_the_journal_lines_done(tmp_path: Path) -> None:
    """Done lines are cleared a run of consecutive ones at a time, in any
    order they finished; the others stay pending."""
    store = ArchiveStore.open(tmp_path, "L", "R")
    seqs = list(store.journal_add("run", [f"copy left {n}" for n in range(10)]))
    done = [seqs[7], seqs[2], seqs[3], seqs[0], seqs[8], seqs[4], seqs[3]]
    store.record(done=done)
    left = [action for _, _, action in store.journal_pending()]
    assert left == ["copy left 1", "copy left 5", "copy left 6", "copy left 9"]
    store.record(done=[])
    assert len(store.journal_pending()) == 4


def test_the_archive_and_its_listing_token_keep_their_names(tmp_path: Path) -> None:
    """The pair's archive, and the token a place keeps its listing under,
    are named by SHA-256 digests made without ``hashlib`` (OpenSSL's start
    costs a no-op of local folders, which hashes nothing): the same names
    as ever, so an archive made before is found again."""
    import hashlib

    name = hashlib.sha256(b"/left\0/right").hexdigest()[:24]
    assert ArchiveStore.path_for(tmp_path, "/right", "/left") == (
        tmp_path / "pairs" / f"{name}.db"
    )
    store = ArchiveStore.open(tmp_path, "/left", "/right")
    text = f"{store.path}\0{store._created}\0ver_a".encode()
    assert store.listing_token("left") == hashlib.sha256(text).hexdigest()[:32]


def test_a_no_op_of_local_folders_loads_no_hashlib(tmp_path: Path) -> None:
    """Nothing in a no-op of two local folders hashes: ``hashlib`` (and
    OpenSSL with it) is imported only where a file's bytes are hashed."""
    import os
    import subprocess
    import sys

    for side in ("left", "right"):
        (tmp_path / side).mkdir()
    (tmp_path / "left" / "notes.txt").write_text("n\n")
    code = (
        "import sys\n"
        "from accord.engine.session import Session\n"
        "def run():\n"
        "    with Session(sys.argv[1], sys.argv[2], state_dir=sys.argv[3]) as s:\n"
        "        plan = s.plan()\n"
        "        if not plan.is_empty:\n"
        "            s.apply(plan)\n"
        "    return 'hashlib' in sys.modules\n"
        "print(run())\n"
    )
    places = (str(tmp_path / name) for name in ("left", "right", "state"))
    argv = [sys.executable, "-c", code, *places]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    copy = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    assert copy.stdout.split() == ["True"]  # the first copy hashed the file
    noop = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    assert noop.stdout.split() == ["False"], noop.stderr
