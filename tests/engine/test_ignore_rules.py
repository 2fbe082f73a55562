"""Whose ignore rules apply: a changed ``.accordignore`` is accepted, not obeyed.

``.accordignore`` travelled like any file: mirrored in from a shared S3
prefix, a teammate's rules then decided what this side scanned and deleted
(S3Synchrony leaked one user's ignores to the whole team). Now each place's
rules file is its own, the pair keeps the rules it accepted, and a changed
file is reported, held back and not applied until the user accepts it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import accord
from accord.engine import rules
from accord.model import Side

L, R = Side.LEFT, Side.RIGHT
URLS = {L: "/left", R: "/right"}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "ACCORD_CONFIG": str(cwd / "accord.toml")} if cwd else None,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


# -- the pure rules -----------------------------------------------------------------
def test_a_first_run_accepts_what_it_finds() -> None:
    now = {L: "*.log\n", R: ""}
    assert rules.changes(now, {L: None, R: None}, URLS) == []
    assert rules.in_effect(now, {L: None, R: None}, False) == now


def test_a_change_keeps_the_accepted_rules_until_it_is_accepted() -> None:
    accepted: dict[Side, str | None] = {L: "secrets/\n", R: "secrets/\n"}
    now = {L: "secrets/\n", R: "# team rules\n*.tmp\n"}
    (change,) = rules.changes(now, accepted, URLS)
    assert change.side is R and change.added == ["*.tmp"]
    assert change.removed == ["secrets/"]
    assert rules.in_effect(now, accepted, False) == {L: "secrets/\n", R: "secrets/\n"}
    # accepted: the file reaches the other side in the same run, so do its rules
    assert rules.in_effect(now, accepted, True) == {L: now[R], R: now[R]}
    # a mirror's target does not send its file to the source
    assert rules.in_effect(now, accepted, True, mirror=True) == now
    assert "does not apply" not in rules.describe(change, accepted=True)
    assert "--accept-rules" in rules.describe(change, accepted=False)


def test_comments_and_blank_lines_are_no_change() -> None:
    accepted: dict[Side, str | None] = {L: "a/\n", R: "a/\n"}
    now = {L: "# mine\n\na/\n", R: "a/"}
    assert rules.changes(now, accepted, URLS) == []


# -- real places ----------------------------------------------------------------------
@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders in agreement, with 'secrets/' ignored on both sides."""
    left, right = tmp_path / "left", tmp_path / "right"
    (left / "secrets").mkdir(parents=True)
    (left / "secrets" / "key.pem").write_text("private\n")
    (left / "a.txt").write_text("a\n")
    (left / ".accordignore").write_text("secrets/\n")
    assert accord.sync(str(left), str(right)).ok
    assert (right / ".accordignore").read_text() == "secrets/\n"
    assert not (right / "secrets").exists()
    return left, right


def test_a_peers_rules_file_never_unhides_your_files(pair) -> None:
    """A peer drops 'secrets/' from the shared rules: this side's secrets
    stay here, and the changed file does not spread, until accepted."""
    left, right = pair
    (right / ".accordignore").write_text("*.tmp\n")  # the peer's edit
    report = accord.sync(str(left), str(right))
    assert report.ok
    assert not (right / "secrets").exists()
    assert (left / ".accordignore").read_text() == "secrets/\n"
    (notice,) = [n for n in report.notices if "ignore rules" in n]
    assert "- secrets/" in notice and "+ *.tmp" in notice
    assert "until you accept them" in notice
    # the next run says so again, and still holds it back
    report = accord.sync(str(left), str(right))
    assert any("until you accept them" in n for n in report.notices)
    assert not (right / "secrets").exists()


def test_a_peers_rules_file_never_hides_your_files(pair) -> None:
    """A peer adds '*.txt': this side's text files keep syncing, and a
    deletion of one still reaches the other side."""
    left, right = pair
    (right / ".accordignore").write_text("secrets/\n*.txt\n")
    (left / "new.txt").write_text("new\n")
    (left / "a.txt").unlink()
    assert accord.sync(str(left), str(right)).ok
    assert (right / "new.txt").read_text() == "new\n"
    assert not (right / "a.txt").exists()


def test_accepted_rules_apply_and_the_file_syncs(pair) -> None:
    left, right = pair
    (right / ".accordignore").write_text("secrets/\n*.tmp\n")
    (left / "x.tmp").write_text("scratch\n")
    report = accord.sync(str(left), str(right), accept_rules=True)
    assert report.ok
    assert any("accepted: they apply" in n for n in report.notices)
    assert (left / ".accordignore").read_text() == "secrets/\n*.tmp\n"
    assert not (right / "x.tmp").exists()  # ignored at once, on both sides
    report = accord.sync(str(left), str(right))  # nothing more to accept
    assert report.ok and not [n for n in report.notices if "ignore rules" in n]
    assert accord.sync(str(left), str(right), dry_run=True).is_empty


def test_ones_own_edit_is_held_too(pair) -> None:
    """Which side is 'yours' is not for accord to guess: any change waits."""
    left, right = pair
    (left / ".accordignore").write_text("")  # unhide secrets/ here
    report = accord.sync(str(left), str(right))
    assert report.ok and not (right / "secrets").exists()
    assert (right / ".accordignore").read_text() == "secrets/\n"
    assert accord.sync(str(left), str(right), accept_rules=True).ok
    assert (right / "secrets" / "key.pem").read_text() == "private\n"


def test_a_dry_run_accepts_nothing(pair) -> None:
    left, right = pair
    (right / ".accordignore").write_text("")
    accord.sync(str(left), str(right), dry_run=True, accept_rules=True)
    report = accord.sync(str(left), str(right))
    assert any("until you accept them" in n for n in report.notices)
    assert not (right / "secrets").exists()


def test_a_shared_s3_prefix_cannot_rule_a_teammates_folder(
    s3_server, tmp_path: Path
) -> None:
    """The issue's case: Alice and Bob share a prefix; Bob's rules file,
    synced up, is reported to Alice and rules nothing of hers until she
    accepts it."""
    team = s3_server.url("team-rules")
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    (alice / "private").mkdir(parents=True)
    (alice / "private" / "diary.txt").write_text("dear diary\n")
    (alice / "data.csv").write_text("1,2\n")
    (alice / ".accordignore").write_text("private/\n")
    assert accord.sync(str(alice), team).ok
    assert accord.sync(str(bob), team, state_dir=tmp_path / "bob-state").ok
    assert (bob / "data.csv").exists() and not (bob / "private").exists()
    # Bob rewrites the shared rules: csv files hidden, private/ unhidden
    (bob / ".accordignore").write_text("*.csv\n")
    report = accord.sync(str(bob), team, state_dir=tmp_path / "bob-state")
    assert any("until you accept them" in n for n in report.notices)
    report = accord.sync(
        str(bob), team, state_dir=tmp_path / "bob-state", accept_rules=True
    )
    assert report.ok
    assert s3_server.objects(team)[".accordignore"] == b"*.csv\n"
    # Alice: her private/ stays hers, her csv files keep syncing
    (alice / "data.csv").write_text("1,2\n3,4\n")
    report = accord.sync(str(alice), team)
    assert report.ok
    (notice,) = [n for n in report.notices if "ignore rules" in n]
    assert "+ *.csv" in notice and "- private/" in notice
    objects = s3_server.objects(team)
    assert objects["data.csv"] == b"1,2\n3,4\n"
    assert not [name for name in objects if name.startswith("private")]
    assert (alice / ".accordignore").read_text() == "private/\n"


def test_a_profile_can_accept_rules_changes(pair, tmp_path: Path) -> None:
    """The explicit setting: accept_rules = true in accord.toml."""
    left, right = pair
    (tmp_path / "accord.toml").write_text(
        f'[pairs.p]\nleft = "{left}"\nright = "{right}"\naccept_rules = true\n'
    )
    (right / ".accordignore").write_text("")
    done = cli("sync", "p", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "accepted: they apply" in done.stderr
    assert (right / "secrets" / "key.pem").exists()


def test_the_cli_reports_a_held_change(pair) -> None:
    left, right = pair
    (right / ".accordignore").write_text("")
    done = cli("sync", str(left), str(right), "--yes")
    assert done.returncode == 0, done.stderr
    assert "- secrets/" in done.stderr and "--accept-rules" in done.stderr
    assert done.stderr.count("ignore rules") == 1


# -- a pattern and a name in two Unicode spellings ------------------------------


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("caf\u00e9/", "caf\u0065\u0301"),  # pattern NFC, name NFD (macOS)
        ("caf\u0065\u0301/", "caf\u00e9"),  # pattern NFD, name NFC
        ("*\u00e9.tmp", "r\u0065\u0301.tmp"),
    ],
)
def test_a_pattern_matches_a_name_in_either_spelling(pattern: str, name: str) -> None:
    ignore = accord.keys.IgnoreRules([pattern])
    is_dir = pattern.endswith("/")
    assert ignore.matches(name, is_dir)
    assert ignore.excludes(f"{name}/inside.txt" if is_dir else name, False)
    assert not ignore.matches("cafe", True)


def test_an_exclude_typed_in_nfc_leaves_an_nfd_folder_alone(tmp_path: Path) -> None:
    left, right = tmp_path / "left", tmp_path / "right"
    nfd = "caf\u0065\u0301"
    (left / nfd).mkdir(parents=True)
    (left / nfd / "menu.txt").write_text("x")
    (left / "kept.txt").write_text("y")
    right.mkdir()
    done = cli("sync", str(left), str(right), "--yes", "--exclude", "caf\u00e9/")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(right)) == [".accord", "kept.txt"]
    # the name on the left is left exactly as it was
    assert nfd.encode() in os.listdir(os.fsencode(left))
