"""A flush that fails is never recorded as synced: a local folder, and one
served by accord's agent over SSH (a real sshd on 127.0.0.1).

The disk here is "thin": an ext4 on a loop device whose image lives on a
16 MiB tmpfs, while the ext4 believes it has 256 MiB. Writes of 40 MiB
succeed (the page cache takes them); writing them back to the disk fails
(the kernel logs "lost async page write"), and only ``syncfs`` says so.
A run that did not read ``syncfs``'s answer recorded all 40 files as
synced while none of them reached the disk.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.cli import run_accord
from fixtures.disks import mount_tmpfs


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


@pytest.fixture
def thin_disk(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """(backing tmpfs, mount point, loop device): an ext4 of 256 MiB on
    an image in a 16 MiB tmpfs; unmounted and detached at the end."""
    back, mounted = tmp_path / "back", tmp_path / "disk"
    back.mkdir()
    mounted.mkdir()
    mount_tmpfs(back, "16m")
    device = ""
    try:
        image = back / "disk.img"
        _run("truncate", "-s", "256M", str(image))
        _run("mkfs.ext4", "-q", "-F", "-O", "^has_journal", str(image))
        device = subprocess.run(
            ["losetup", "--find", "--show", str(image)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        _run("mount", device, str(mounted))
        yield back, mounted, device
    finally:
        left = subprocess.run(["umount", str(mounted)], capture_output=True)
        if left.returncode != 0:  # still in use: gone once let go of
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True)
        if device:
            subprocess.run(["losetup", "-d", device], capture_output=True)
        subprocess.run(["umount", "-l", str(back)], capture_output=True)
    # a disk still in use (a descriptor left open) is left mounted: said
    assert left.returncode == 0 or b"not mounted" in left.stderr, left.stderr


def _remount(mounted: Path, device: str) -> None:
    """The disk unmounted and mounted again: what is read is what reached
    it, not the page cache."""
    _run("umount", str(mounted))
    _run("mount", device, str(mounted))


@pytest.fixture(params=["local", "agent"])
def where(request) -> Callable[[Path], str]:
    """How the target folder is named: a path, or an sftp:// URL served by
    the agent (the server is this machine)."""
    if request.param == "local":
        return str
    sshd = request.getfixturevalue("sshd")
    return lambda path: (
        f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{path}"
        f"?identity={sshd.key}&known_hosts={sshd.known_hosts}&agent=on"
    )


def test_a_write_back_that_fails_is_not_recorded(
    thin_disk, where, tmp_path: Path
) -> None:
    back, mounted, device = thin_disk
    source = tmp_path / "source"
    source.mkdir()
    for i in range(40):
        (source / f"f{i:02}.bin").write_bytes(os.urandom(1 << 20))
    target = mounted / "copy"

    lost = run_accord("mirror", str(source), where(target), "--yes")
    said = lost.stdout + lost.stderr
    assert lost.returncode == 3, said
    assert "back what was copied" in said, said  # EIO or ENOSPC, as told
    assert "the next run checks it and copies it again" in said, said

    # room on the disk again; the file system checked, as after a crash
    _run("mount", "-o", "remount,size=400m", str(back))
    _run("umount", str(mounted))
    subprocess.run(["e2fsck", "-fy", str(back / "disk.img")], capture_output=True)
    _run("mount", device, str(mounted))

    again = run_accord("mirror", str(source), where(target), "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    _remount(mounted, device)
    for i in range(40):
        name = f"f{i:02}.bin"
        assert (target / name).read_bytes() == (source / name).read_bytes(), name
    done = run_accord("mirror", str(source), where(target), "--yes")
    assert "nothing to do" in done.stdout, done.stdout + done.stderr


def test_a_failure_another_flush_saw_first_is_still_told(thin_disk) -> None:
    # the kernel tells each open descriptor once of a failed write-back; a
    # descriptor opened after someone else was told hears nothing. The place
    # holds one opened before it writes, so it is told all the same
    from accord.errors import ReplicaError
    from accord.replicas.local import LocalReplica
    from accord.replicas.local_at import syncfs

    _, mounted, _ = thin_disk
    place = LocalReplica(str(mounted / "copy"))
    place.open(create=True)
    try:
        for i in range(40):
            (mounted / "copy" / f"f{i:02}.bin").write_bytes(os.urandom(1 << 20))
        with pytest.raises(OSError):
            syncfs(str(mounted))  # another program's flush, told first
        syncfs(str(mounted))  # told once: a new descriptor hears nothing now
        with pytest.raises(ReplicaError, match="back what was copied"):
            place.flush()
    finally:
        place.close()


def test_the_hubs_blob_store_tells_a_failed_write_back_and_keeps_telling(
    thin_disk,
) -> None:
    # the hub's blobs on the thin disk: a failure another flush saw first is
    # still told, and every later flush fails too (which blobs were lost
    # cannot be told) until the hub is restarted
    from accord.errors import ReplicaError
    from accord.hub.blobs import FolderBlobs
    from accord.replicas.local_at import syncfs

    _, mounted, _ = thin_disk
    blobs = FolderBlobs(mounted / "blobs")
    try:
        for _ in range(40):
            blobs.put(io.BytesIO(os.urandom(1 << 20)))
        with pytest.raises(OSError):
            syncfs(str(mounted))  # another program's flush, told first
        for _ in range(2):
            with pytest.raises(ReplicaError, match="back what was copied") as failed:
                blobs.flush()
            assert "restart the hub" in str(failed.value)
    finally:
        blobs.close()  # the disk is unmounted next
