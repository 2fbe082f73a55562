"""Places that overlap are refused before anything is written.

One place inside the other would copy the tree into itself, again on every
run; the same place under two names would sync it with itself. Both are
refused, naming both places, before any lock, ``.accord`` folder or archive
exists. A place the run's ``--exclude`` keeps out of the outer one is
allowed (as rclone allows it). A nested accord place inside a tree is no
overlap, but its ``.accord`` folder is its own: never copied, never deleted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import accord
from accord.errors import PlacesOverlap
from accord.model import Nesting, Spot, nesting
from accord.registry import open_replica
from fixtures.cli import run_accord as cli


def tree(root: Path) -> list[str]:
    """Every path below ``root``, accord's folders included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def archives(state_dir: Path) -> list[Path]:
    return sorted(state_dir.rglob("*.db"))


# -- the pure question -----------------------------------------------------------
def test_spots_nest_by_whole_names() -> None:
    outer = [Spot("fs:1", ("home", "a"))]
    assert nesting(outer, [Spot("fs:1", ("home", "a", "x", "y"))]) == Nesting(0, "x/y")
    assert nesting([Spot("fs:1", ("home", "a", "x"))], outer) == Nesting(1, "x")
    assert nesting(outer, [Spot("fs:1", ("home", "a"))]) == Nesting(0, "")
    assert nesting(outer, [Spot("fs:1", ("home", "ab"))]) is None
    assert nesting(outer, [Spot("fs:2", ("home", "a", "x"))]) is None


def test_the_same_place_wins_over_a_nesting_seen_elsewhere() -> None:
    one = [Spot("inode:1:2", ("x",)), Spot("inode:1:5", ())]
    other = [Spot("inode:1:2", ()), Spot("inode:1:5", ())]
    assert nesting(one, other) == Nesting(0, "")


# -- the reproductions, as a user types them --------------------------------------
def test_a_mirror_target_inside_its_source_is_refused(
    tmp_path: Path, state_dir: Path
) -> None:
    """`accord mirror ~/src ~/src/sub --yes`, three times: it grew a level a
    run (sub/a.txt, sub/sub/a.txt, ...). Now refused, nothing written."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    for _ in range(3):
        done = cli("mirror", str(src), str(src / "sub"), "--yes")
        assert done.returncode == 2, done.stderr
        assert f"{src / 'sub'} lies inside {src} (as 'sub')" in done.stderr
        assert "--exclude '/sub/'" in done.stderr
    assert tree(src) == ["a.txt"]  # no sub/, no .accord/
    assert archives(state_dir) == []


def test_a_mirror_source_inside_its_target_is_refused(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    (outer / "in").mkdir(parents=True)
    (outer / "in" / "a.txt").write_text("a\n")
    done = cli("mirror", str(outer / "in"), str(outer), "--delete", "--yes")
    assert done.returncode == 2, done.stderr
    assert f"{outer / 'in'} lies inside {outer}" in done.stderr
    assert tree(outer) == ["in", "in/a.txt"]


def test_a_sync_into_a_folder_of_itself_is_refused(
    tmp_path: Path, state_dir: Path
) -> None:
    """`accord sync ~/a ~/a/inner` grew two-way, copying inner/.accord/lock."""
    a = tmp_path / "a"
    (a / "inner").mkdir(parents=True)
    (a / "x.txt").write_text("x\n")
    done = cli("sync", str(a), str(a / "inner"), "--yes")
    assert done.returncode == 2, done.stderr
    assert "lies inside" in done.stderr and "nothing was changed" in done.stderr
    assert tree(a) == ["inner", "x.txt"]
    assert archives(state_dir) == []


def test_a_target_not_made_yet_deep_inside_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    done = cli("mirror", str(src), str(src / "new" / "deeper"), "--yes")
    assert done.returncode == 2, done.stderr
    assert "(as 'new/deeper')" in done.stderr
    assert tree(src) == ["a.txt"]


def test_an_excluded_inner_place_is_synced_once_and_never_into_itself(
    tmp_path: Path,
) -> None:
    """With --exclude of the inner place, as rclone allows: the outer one's
    scan never enters it, so it is not copied into itself, run after run,
    and the inner place's own .accord/ is never copied."""
    a = tmp_path / "a"
    (a / "inner").mkdir(parents=True)
    (a / "x.txt").write_text("x\n")
    for _ in range(3):
        done = cli("sync", str(a), str(a / "inner"), "--exclude", "/inner/", "--yes")
        assert done.returncode == 0, done.stderr
        assert "it is excluded" in done.stderr
    visible = [p for p in tree(a) if ".accord" not in p.split("/")]
    assert visible == ["inner", "inner/x.txt", "x.txt"]
    assert not (a / "inner" / "inner").exists()


def test_the_same_folder_through_a_link_is_the_same_place(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PlacesOverlap, match="same place"):
        accord.sync(str(real), str(tmp_path / "link"))
    (real / "sub").mkdir()
    with pytest.raises(PlacesOverlap, match="lies inside"):
        accord.sync(str(tmp_path / "link" / "sub"), str(real))


@pytest.fixture
def bind_mount(tmp_path: Path):
    """``mount --bind`` a folder elsewhere (needs root); unmounted after."""
    made: list[Path] = []

    def bind(source: Path, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "--bind", str(source), str(target)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
        made.append(target)

    yield bind
    for target in reversed(made):
        subprocess.run(["umount", str(target)], capture_output=True)


def test_bind_mounts_are_seen_through(tmp_path: Path, bind_mount) -> None:
    """By device and inode, and by the file system's own paths: a bind mount
    of a folder is that folder, and a bind mount of a folder deep inside a
    tree lies inside that tree."""
    if os.geteuid() != 0:
        pytest.skip("bind mounts need root")
    home = tmp_path / "home"
    (home / "deep" / "er").mkdir(parents=True)
    (home / "a.txt").write_text("a\n")
    bind_mount(home, tmp_path / "same")
    bind_mount(home / "deep", tmp_path / "elsewhere")
    with pytest.raises(PlacesOverlap, match="same place"):
        accord.sync(str(home), str(tmp_path / "same"))
    with pytest.raises(PlacesOverlap, match=r"\(as 'deep/er'\)"):
        accord.sync(str(home), str(tmp_path / "same" / "deep" / "er"))
    with pytest.raises(PlacesOverlap, match=r"\(as 'deep'\)"):
        accord.mirror(str(home), str(tmp_path / "elsewhere"))
    with pytest.raises(PlacesOverlap, match=r"\(as 'deep/er'\)"):
        accord.mirror(str(tmp_path / "elsewhere" / "er"), str(home))
    assert tree(home) == ["a.txt", "deep", "deep/er"]


def test_neighbours_with_a_common_prefix_are_apart(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    assert accord.sync(str(tmp_path / "data"), str(tmp_path / "data2")).ok


# -- a nested accord place inside a tree --------------------------------------------
def test_a_nested_places_own_folder_is_never_copied_or_deleted(
    tmp_path: Path,
) -> None:
    """Someone's ~/notes pair inside a ~ backup: notes/ is synced like any
    folder, notes/.accord/ stays where it is, on either side."""
    home, backup, elsewhere = tmp_path / "home", tmp_path / "backup", tmp_path / "n2"
    (home / "notes").mkdir(parents=True)
    (home / "notes" / "todo.txt").write_text("todo\n")
    (home / "keep.txt").write_text("keep\n")
    assert accord.sync(str(home / "notes"), str(elsewhere)).ok  # a real pair
    assert (home / "notes" / ".accord").is_dir()
    assert accord.sync(str(home), str(backup)).ok
    assert (backup / "notes" / "todo.txt").read_text() == "todo\n"
    assert not (backup / "notes" / ".accord").exists()
    # a nested place's folder on the other side (left by an older accord)
    (backup / "notes" / ".accord").mkdir()
    (backup / "notes" / ".accord" / "lock").write_text("theirs\n")
    assert accord.sync(str(home), str(backup), dry_run=True).is_empty
    assert accord.sync(str(home), str(backup)).ok
    assert not (home / "notes" / ".accord" / "lock").exists()
    # notes/ deleted at home: its files go, the nested place's folder stays
    for path in sorted((home / "notes").rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() else path.rmdir()
    (home / "notes").rmdir()
    assert accord.sync(str(home), str(backup)).ok
    assert not (backup / "notes" / "todo.txt").exists()
    assert (backup / "notes" / ".accord" / "lock").read_text() == "theirs\n"
    # and the next run is quiet
    assert accord.sync(str(home), str(backup), dry_run=True).is_empty


# -- every kind of place -----------------------------------------------------------
def test_sftp_places_on_one_server_overlap_by_path(sshd) -> None:
    url = sshd.url()
    base, _, query = url.partition("?")
    with pytest.raises(PlacesOverlap, match="lies inside"):
        accord.sync(url, f"{base}/sub?{query}")
    with pytest.raises(PlacesOverlap, match="same place"):
        accord.sync(url, f"{base}/?{query}")
    assert not sshd.path(url).exists()


@pytest.mark.parametrize("agent", ["on", "off"])
def test_sftp_roots_are_resolved_on_the_server(sshd, agent: str) -> None:
    """A link on the server leads into the other place: seen once connected
    (the agent's devices and inodes, or plain SFTP's real path)."""
    url = sshd.url()
    folder = sshd.path(url)
    (folder / "in").mkdir(parents=True)
    (folder / "in" / "a.txt").write_text("a\n")
    link = folder.parent / f"{folder.name}-link"
    link.symlink_to(folder)
    base, _, query = url.partition("?")
    other = f"{base}-link/in?{query}&agent={agent}"
    with pytest.raises(PlacesOverlap, match=r"\(as 'in'\)"):
        accord.mirror(f"{url}&agent={agent}", other)
    assert sorted(p.name for p in folder.rglob("*")) == ["a.txt", "in"]


def test_s3_prefixes_overlap_by_bucket_and_prefix(s3_server, tmp_path: Path) -> None:
    url = s3_server.url("team")
    inner = s3_server.url("team/alice")
    with pytest.raises(PlacesOverlap, match="lies inside"):
        accord.sync(url, inner)
    (tmp_path / "a.txt").write_text("a\n")
    assert accord.sync(str(tmp_path), url).ok
    assert accord.sync(url, s3_server.url("team2")).ok  # a neighbour, apart
    assert open_replica(url).spots() != open_replica(s3_server.url("team2")).spots()


def test_fsspec_places_overlap_by_url(tmp_path: Path) -> None:
    url = f"memory://overlap-{tmp_path.name}/x"
    with pytest.raises(PlacesOverlap, match="lies inside"):
        accord.sync(url, f"{url}/y")
    with pytest.raises(PlacesOverlap, match="same place"):
        accord.sync(url, f"{url}/")


def test_ftp_folders_overlap_by_server_and_path(ftp_server) -> None:
    with pytest.raises(PlacesOverlap, match=r"\(as 'in'\)"):
        accord.sync(ftp_server.url("ov"), ftp_server.url("ov/in"))
    assert not ftp_server.path("ov").exists()
