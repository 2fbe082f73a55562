"""New folders over SSH in one call (``make_dirs``): the agent makes each
in the order sent with the local place's ``make_dir``, nothing expected
there; one folder's failure does not stop the others, and a first copy
makes its folders with one call instead of one each.

Against the real OpenSSH sshd of the ``sshd`` fixture (the server's folder
is on this machine, so a test changes it directly).
"""

from __future__ import annotations

from pathlib import Path

import accord
from accord.errors import PreconditionFailed, UnsafeName
from accord.model import DIR, Entry
from accord.registry import open_replica
from accord.replicas.ssh import AgentReplica, SSHReplica


def _open(url: str) -> SSHReplica:
    place = open_replica(url)
    assert isinstance(place, SSHReplica)
    place.open(create=True)
    return place


def _folder(key: str) -> Entry:
    return Entry(key, DIR, 0, 0, 0o750, None)


def test_folders_are_made_in_order_each_on_its_own(sshd) -> None:
    url = sshd.url()
    remote = sshd.path(url)
    place = _open(url)
    try:
        (remote / "taken").write_bytes(b"a file where a folder is asked for")
        (remote / "there").mkdir()
        keys = ["a", "a/b", "a/b/c", "taken", "../out", "there", "z"]
        made = place.make_dirs([(key, _folder(key)) for key in keys])
        assert made is not None and len(made) == len(keys)
        for key, result in zip(keys, made, strict=True):
            if key in ("taken", "../out"):
                continue
            assert isinstance(result, Entry), (key, result)
            assert result.key == key and result.kind == DIR
            assert place.stat(key) == result
        assert isinstance(made[3], PreconditionFailed) and made[3].key == "taken"
        assert isinstance(made[4], UnsafeName)
        assert (remote / "taken").is_file()
        assert not (remote.parent / "out").exists()
        assert (remote / "a" / "b" / "c").stat().st_mode & 0o777 == 0o750
    finally:
        place.close()


def test_plain_sftp_has_no_folders_call(sshd) -> None:
    place = _open(sshd.url() + "&agent=off")
    try:
        assert place.make_dirs([("a", _folder("a"))]) is None
    finally:
        place.close()


def test_a_first_copy_makes_its_folders_in_one_call(
    sshd, tmp_path: Path, monkeypatch
) -> None:
    local, url = tmp_path / "local", sshd.url()
    for name in ("a/x/1", "a/y", "b/z/2/3", "c"):
        (local / name).mkdir(parents=True)
        (local / name / "f.txt").write_text(name)
    calls: list[list[str]] = []
    one_by_one: list[str] = []
    make_dirs, make_dir = AgentReplica.make_dirs, AgentReplica.make_dir

    def counted(self, items):  # type: ignore[no-untyped-def]
        calls.append([key for key, _ in items])
        return make_dirs(self, items)

    def single(self, key, *, like, expect):  # type: ignore[no-untyped-def]
        one_by_one.append(key)
        return make_dir(self, key, like=like, expect=expect)

    monkeypatch.setattr(AgentReplica, "make_dirs", counted)
    monkeypatch.setattr(AgentReplica, "make_dir", single)
    report = accord.mirror(str(local), url)
    assert report.ok
    assert one_by_one == []
    (sent,) = calls
    assert sorted(sent) == [
        "a",
        "a/x",
        "a/x/1",
        "a/y",
        "b",
        "b/z",
        "b/z/2",
        "b/z/2/3",
        "c",
    ]
    depth = [key.count("/") for key in sent]
    assert depth == sorted(depth)  # parents first
    remote = sshd.path(url)
    for name in ("a/x/1", "a/y", "b/z/2/3", "c"):
        assert (remote / name / "f.txt").read_text() == name
    again = accord.mirror(str(local), url)
    assert again.ok and not again.done
