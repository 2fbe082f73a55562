"""Temporary files made beside their targets (a folder on another device
than ``.accord/tmp``): a run killed while writing one leaves it there, and
the next run removes it before it lists anything, so it is never taken
for a file of the user's and copied to the other side."""

from __future__ import annotations

import os
from pathlib import Path

from accord import api
from accord.replicas.local import LocalReplica


def _beside(root: Path) -> list[str]:
    found = []
    for folder, _, files in os.walk(root):
        if "/.accord" in folder + "/":
            continue
        found += [
            os.path.join(folder, f) for f in files if f.startswith(".accord-tmp-")
        ]
    return sorted(found)


def test_a_write_killed_beside_its_target_is_cleaned_by_the_next_run(
    tmp_path: Path, monkeypatch
):
    source, target, state = tmp_path / "a", tmp_path / "b", tmp_path / "state"
    (source / "sub").mkdir(parents=True)
    (source / "one.txt").write_bytes(b"one")
    (source / "sub" / "two.txt").write_bytes(b"two" * 1000)
    # every folder of the target on another device than .accord/tmp
    monkeypatch.setattr(LocalReplica, "_on_tmp_device", lambda self, fd: False)
    install = LocalReplica._install

    def dying(self, temp, temp_fd, key, *args, **kwargs):  # type: ignore[no-untyped-def]
        if key == "sub/two.txt":
            os._exit(9)  # killed between writing the file and renaming it
        return install(self, temp, temp_fd, key, *args, **kwargs)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the run that is killed
        try:
            monkeypatch.setattr(LocalReplica, "_install", dying)
            api.sync(str(source), str(target), state_dir=state)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 9
    left = _beside(target)
    assert [os.path.dirname(p) for p in left] == [str(target / "sub")]
    assert Path(left[0]).read_bytes() == b"two" * 1000
    # a file of the user's with a name like accord's is the user's
    (target / "sub" / ".accord-tmp-mine").write_bytes(b"mine")

    again = api.sync(str(source), str(target), state_dir=state)
    assert again.ok, again.failed
    assert _beside(target) == [str(target / "sub" / ".accord-tmp-mine")]
    assert (source / "sub" / ".accord-tmp-mine").read_bytes() == b"mine"
    assert (target / "sub" / "two.txt").read_bytes() == b"two" * 1000
    assert (target / "one.txt").read_bytes() == b"one"
    assert not (target / ".accord" / "tmp").exists() or not any(
        (target / ".accord" / "tmp").rglob("*")
    )


def test_clean_temp_removes_only_the_names_its_processes_noted(tmp_path: Path):
    """Only ``.accord-tmp-<own>-`` names of a process whose folder in
    ``.accord/tmp`` noted that folder go; other folders are not walked."""
    root = tmp_path / "place"
    (root / "x").mkdir(parents=True)
    (root / "y").mkdir()
    place = LocalReplica(str(root))
    place.open()
    try:
        place._on_tmp_device = lambda fd: False  # type: ignore[method-assign]
        temp, fd = place._temp_for("x/file.txt")
        assert fd is not None
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
        os.close(fd)
        own = temp[len(".accord-tmp-") :].rsplit("-", 1)[0]
        other = root / "x" / ".accord-tmp-1-00000000-0"  # no note names it
        other.write_bytes(b"")
        unnoted = root / "y" / f".accord-tmp-{own}-7"  # a folder not noted
        unnoted.write_bytes(b"")
        assert (root / "x" / temp).exists()
        place.clean_temp()
        assert not (root / "x" / temp).exists()
        assert other.exists() and unnoted.exists()
        assert not (root / ".accord" / "tmp").exists()
    finally:
        place.close()
