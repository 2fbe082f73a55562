"""accord's FSDB mode against plantdb 0.17's own libraries.

Each test is named after what was wrong before the FSDB mode existed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from plantdb_db import build, contents, new_db

import accord
import accord.fsdb
from accord.errors import ConfigError, LockHeld

# plantdb 0.17 leaves files open for the garbage collector to close
pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every item below ``root``: mtime and bytes (None for folders)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            found[rel] = (0, None)
        else:
            found[rel] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


def scans_of(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


# -- the data moves, and plantdb reads it back the same -----------------------------
def test_fsdb_mirrored_by_accord_opens_in_plantdb_identical(source, target) -> None:
    done = cli("mirror", str(source), str(target), "--yes", "--delete")
    assert done.returncode == 0, done.stderr
    assert "FSDB" not in done.stderr
    mine, theirs = contents(source), contents(target)
    assert sorted(mine) == sorted(theirs) == ["scan_000", "scan_001", "scan_002"]
    for scan, (meta, filesets) in mine.items():
        their_meta, their_filesets = theirs[scan]
        assert their_meta == meta, scan
        assert sorted(their_filesets) == sorted(filesets)
        for fileset, (fs_meta, files) in filesets.items():
            assert their_filesets[fileset][0] == fs_meta
            assert their_filesets[fileset][1] == files, (scan, fileset)
    again = cli("mirror", str(source), str(target), "--yes", "--delete")
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr


def test_changes_inside_existing_scan_propagate(source, target) -> None:
    assert cli("mirror", str(source), str(target), "--yes").returncode == 0
    db = __import__("plantdb_db").open_db(source)
    try:
        scan = db.get_scan("scan_001")
        file = scan.get_fileset("images").get_file("images_002")
        file.write_raw(b"changed" * 100, ext="png")
        file.set_metadata({"angle": 999})
    finally:
        db.disconnect()
    assert cli("mirror", str(source), str(target), "--yes").returncode == 0
    assert contents(target) == contents(source)


# -- bookkeeping is not data ------------------------------------------------
def test_copies_bookkeeping__users_groups_locks_webcache_never_moved(
    source, target
) -> None:
    (source / "users.tmp").write_text("{}")
    (source / "scan_000" / "webcache").mkdir()
    (source / "scan_000" / "webcache" / "thumb.jpg").write_bytes(b"t")
    (source / ".locks" / "lock_manager.log").write_text("source log\n")
    (target / "users.json").write_text('{"target": "users"}')
    (target / "groups.json").write_text('{"target": "groups"}')
    (target / ".locks" / "scan_009.lock").write_text("")
    (target / ".locks" / "scan_009.info").write_text('{"user": "someone"}')
    (target / ".locks" / "lock_manager.log").write_text("target log\n")
    (target / "groups.tmp").write_text("x")
    before = {
        name: (target / name).read_bytes()
        for name in ("users.json", "groups.json", "groups.tmp", "romidb")
    }
    done = cli("mirror", str(source), str(target), "--yes", "--delete")
    assert done.returncode == 0, done.stderr
    for name, data in before.items():
        assert (target / name).read_bytes() == data, name
    assert not (target / "users.tmp").exists()
    assert not (target / "scan_000" / "webcache").exists()
    assert (target / ".locks" / "lock_manager.log").read_text() == "target log\n"
    assert (target / ".locks" / "scan_009.lock").exists()
    assert (target / ".locks" / "scan_009.info").exists()
    trash = target / ".accord" / "trash"
    assert not trash.exists() or not any(p.is_file() for p in trash.rglob("*"))
    # and the source keeps its own, untouched
    assert (source / ".locks" / "lock_manager.log").read_text() == "source log\n"
    assert (source / "scan_000" / "webcache" / "thumb.jpg").exists()


def test_empty_accord_folder_left_in_mirror_source(source, target) -> None:
    assert cli("mirror", str(source), str(target), "--yes").returncode == 0
    assert not (source / ".accord").exists()


def test_fsdb_mode_found_by_marker_or_refused_without_it(source, tmp_path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    done = cli("mirror", str(source), str(plain), "--yes", "--fsdb")
    assert done.returncode != 0
    assert "not a plantdb database" in done.stderr
    assert not any(plain.iterdir())
    # without --fsdb and without the marker: an ordinary mirror, all of it
    assert cli("mirror", str(source), str(plain), "--yes").returncode == 0
    assert (plain / "users.json").exists()


# -- plantdb's locks ---------------------------------------------------------------
def test_ignores_plantdb_locks__waits_then_refuses_scan_held_by_plantdb(
    source, target, plantdb_holds
) -> None:
    assert cli("mirror", str(source), str(target), "--yes").returncode == 0
    data = source / "scan_001" / "images" / "images_000.png"
    data.write_bytes(b"new bytes")
    holder = plantdb_holds(target, "scan_001")
    held = tree(target)
    started = time.monotonic()
    done = cli("mirror", str(source), str(target), "--yes", "--lock-timeout", "1.5")
    waited = time.monotonic() - started
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert "scan 'scan_001'" in message and "busy" in message, message
    assert "plantdb-user" in message and "since" in message, message
    assert waited >= 1.5
    assert tree(target) == held, "nothing changed, plantdb's lock files included"
    holder.release()
    assert cli("mirror", str(source), str(target), "--yes").returncode == 0
    assert (
        target / "scan_001" / "images" / "images_000.png"
    ).read_bytes() == b"new bytes"
    assert not list((target / ".locks").glob("*.lock")), "accord's locks are gone"


def test_ignores_plantdb_locks__source_scan_written_by_plantdb_is_not_read(
    source, target, plantdb_holds
) -> None:
    plantdb_holds(source, "scan_002")
    with pytest.raises(LockHeld, match="scan_002"):
        accord.fsdb.sync(str(source), str(target), lock_timeout=0.5)
    assert scans_of(target) == set()


def test_ignores_plantdb_locks__accord_holds_scan_and_fileset_locks_writing(
    source, target
) -> None:
    seen: list[tuple[bool, bool, dict]] = []

    def probe(done: int, total: int) -> None:
        if seen or done == 0:
            return
        locks = target / ".locks"
        seen.append(
            (
                _blocked(locks / "scan_000.lock"),
                _blocked(locks / "scan_000_images.lock"),
                json.loads((locks / "scan_000.info").read_text()),
            )
        )
        assert _blocked(source / ".locks" / "scan_000.lock", shared=False)
        assert not _blocked(source / ".locks" / "scan_000.lock", shared=True)

    accord.fsdb.sync(str(source), str(target), scans=["scan_000"], progress=probe)
    scan_locked, fileset_locked, note = seen[0]
    assert scan_locked and fileset_locked
    assert note["level"] == "scan" and note["lock_type"] == "exclusive"
    assert note["resource_id"] == "scan_000" and note["pid"] == os.getpid()
    assert not list((target / ".locks").glob("scan_000*"))
    assert not list((source / ".locks").glob("scan_000*"))


def _blocked(path: Path, *, shared: bool = False) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_old_plantdb_root_lock_file_means_busy(source, target) -> None:
    (target / "lock").write_text("plantdb 0.14")
    done = cli("mirror", str(source), str(target), "--yes")
    assert done.returncode != 0 and "busy" in done.stderr
    assert scans_of(target) == set()
    assert (target / "lock").read_text() == "plantdb 0.14"
    (target / "lock").unlink()
    assert cli("mirror", str(source), str(target), "--yes").returncode == 0
    assert not (target / "lock").exists(), "accord's own root lock is removed"


# -- a new scan appears whole --------------------------------------------------------
def test_half_copied_scan__interrupted_copy_never_shows_plantdb_half_a_scan(
    tmp_path,
) -> None:
    source = build(tmp_path / "big", scans=4, files=40, size=256 << 10)
    target = new_db(tmp_path / "target")
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accord",
            "mirror",
            str(source),
            str(target),
            "--yes",
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        staged = list(target.glob(".accord-new-*/*/*"))
        if len(staged) > 5:
            break
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait(30)
    assert list(target.glob(".accord-new-*")), "killed while a scan was being built"
    shown = contents(target)  # plantdb opens the database: no half scan in it
    for scan, (_meta, filesets) in shown.items():
        assert filesets == contents(source)[scan][1], scan
    done = cli("mirror", str(source), str(target), "--yes", "--break-lock")
    assert done.returncode == 0, done.stderr
    assert not list(target.glob(".accord-new-*"))
    assert contents(target) == contents(source)


def test_half_copied_scan__hidden_scan_left_whole_is_put_in_place_next_run(
    source, target
) -> None:
    # killed after its last copy, before the rename: nothing left to copy
    shutil.copytree(source / "scan_001", target / ".accord-new-scan_001")
    shutil.copytree(source / "scan_002", target / ".accord-new-scan_002")
    shutil.rmtree(target / ".accord-new-scan_002" / "metadata")
    assert "scan_001" not in contents(target)
    done = cli("mirror", str(source), str(target), "--yes", "--scan", "scan_001")
    assert done.returncode == 0, done.stderr
    assert not (target / ".accord-new-scan_001").exists()
    assert contents(target)["scan_001"] == contents(source)["scan_001"]
    # a hidden scan that is not whole yet is completed first, then renamed
    done = cli("mirror", str(source), str(target), "--yes")
    assert done.returncode == 0, done.stderr
    assert not list(target.glob(".accord-new-*"))
    assert contents(target) == contents(source)


def test_new_scan_of_many_files__copied_by_the_copying_processes_into_staging(
    tmp_path, monkeypatch
) -> None:
    """A copy phase big enough for the copying processes: each new file
    still goes into its scan's staging folder, and the scan is put in place
    whole (each file used to go to the scan's own name, not there yet)."""
    monkeypatch.setenv("ACCORD_FORK_MIN", "64")
    source = build(tmp_path / "many", scans=2, files=200, size=512)
    target = new_db(tmp_path / "target")
    done = cli("mirror", str(source), str(target), "--yes")
    assert done.returncode == 0, done.stderr
    assert not list(target.glob(".accord-new-*"))
    assert contents(target) == contents(source)
    again = cli("mirror", str(source), str(target), "--yes")
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr


# -- scan selection -------------------------------------------------------------------
def test_scan_selection_by_name_and_filter(source, target) -> None:
    done = cli("mirror", str(source), str(target), "--yes", "--scan", "scan_001")
    assert done.returncode == 0, done.stderr
    assert scans_of(target) == {"scan_001"}
    done = cli("mirror", str(source), str(target), "--yes", "--scan-filter", "_00[02]$")
    assert done.returncode == 0, done.stderr
    assert scans_of(target) == {"scan_000", "scan_001", "scan_002"}
    # a scan only the target has is outside the selection: --delete leaves it
    (target / "scan_001").rename(target / "scan_keep")
    done = cli(
        "mirror", str(source), str(target), "--yes", "--delete", "--scan", "scan_000"
    )
    assert done.returncode == 0
    assert "scan_keep" in scans_of(target)


def test_unknown_scan_name_is_reported_not_ignored(source, target) -> None:
    done = cli(
        "mirror",
        str(source),
        str(target),
        "--yes",
        "--scan",
        "scan_001",
        "--scan",
        "no_such_scan",
    )
    assert done.returncode != 0
    assert "no scan named 'no_such_scan'" in done.stderr
    assert "scan_000" in done.stderr  # the scans there
    assert scans_of(target) == set()
    with pytest.raises(ConfigError, match="no_such"):
        accord.fsdb.sync(str(source), str(target), scans=["no_such"])
    bad = cli("mirror", str(source), str(target), "--scan-filter", "(")
    assert bad.returncode != 0 and "regular expression" in bad.stderr


# -- the Python API plantdb users call ---------------------------------------
def test_python_api_sync_and_background_form(source, target, tmp_path) -> None:
    steps: list[tuple[int, int]] = []
    report = accord.fsdb.sync(
        str(source),
        str(target),
        scans=["scan_000"],
        progress=lambda done, total: steps.append((done, total)),
    )
    assert report.ok and scans_of(target) == {"scan_000"}
    assert steps[0][0] == 0 and steps[-1][0] == steps[-1][1] > 0
    job = accord.fsdb.FSDBSync(str(source), str(target))
    assert job.sync(thread=True) is None
    assert job.wait_for_sync(timeout=60)
    assert job.get_sync_error() is None and job.get_sync_progress() == 100.0
    assert contents(target) == contents(source)
    failing = accord.fsdb.FSDBSync(str(source), str(tmp_path / "nowhere"))
    failing.sync(thread=True)
    assert failing.wait_for_sync(timeout=60)
    assert isinstance(failing.get_sync_error(), Exception)


def test_profile_keys_choose_fsdb_mode(source, target, tmp_path, monkeypatch) -> None:
    config = tmp_path / "accord.toml"
    config.write_text(
        f'[pairs.lab]\nleft = "{source}"\nright = "{target}"\nmode = "mirror"\n'
        'fsdb = true\nscans = ["scan_002"]\nlock_timeout = 5\n'
    )
    monkeypatch.setenv("ACCORD_CONFIG", str(config))
    done = subprocess.run(
        [sys.executable, "-m", "accord", "mirror", "lab", "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert scans_of(target) == {"scan_002"}


# -- the layout, as a table ------------------------------------------------------
#: what plantdb data is, as gitignore rules: the reference for layout.hidden
AS_RULES = [
    "/*",
    "!/*/",
    "/.*/",
    "!/.accord-new-*/",
    "/*/webcache/",
    "/*/*/webcache/",
]


@pytest.mark.parametrize(
    ("key", "is_dir"),
    [
        ("users.json", False), ("groups.tmp", False), ("romidb", False),
        ("lock", False), ("scan1", True), ("configs", True), (".locks", True),
        (".locks/scan1.lock", False), (".accord-new-s", True),
        (".accord-new-s/webcache", True), (".accord-new-s/files.json", False),
        ("scan1/webcache", True), ("scan1/webcache/a.jpg", False),
        ("scan1/images", True), ("scan1/files.json", False),
        ("scan1/images/webcache", True), ("tl/s/webcache/x", False),
        ("tl/s/images/webcache", True), ("scan1/images/x.png", False),
        ("a/webcachex", True), (".hidden/x", False),
    ],
)  # fmt: skip
def test_copies_bookkeeping__layout_hides_what_the_rules_say(key, is_dir) -> None:
    from accord.fsdb.layout import hidden
    from accord.keys import IgnoreRules

    assert hidden(key, is_dir) == IgnoreRules(AS_RULES).excludes(key, is_dir)
