"""The emptied-side guard understands renames (golden scenarios show the
plans: guard_renamed_tree, guard_really_gone, both_emptied, mirror_rename).

An item whose content is still on its side under another name (told by the
place's lasting identity of an item, else size and digest) is present; the
guard fires only when content is really gone, and says which flag
overrides it; both sides emptied is agreement.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import accord
from accord.engine import guards
from accord.engine.detect import CREATED, DELETED, Change, ChangeSet
from accord.engine.policy import Policy
from accord.errors import SafetyLimitExceeded
from accord.model import FILE, Entry, Side
from accord.replicas.local_entries import local_persistent_id
from accord.state.store import ArchiveEntry


def row(
    key: str, version: str, digest: str = "sha256:x", size: int = 3
) -> ArchiveEntry:
    return ArchiveEntry(key, FILE, size, 1, 0o644, digest, None, version, version)


def changes(*items: Change, seen: int = 2) -> ChangeSet:
    return ChangeSet(
        Side.LEFT,
        {c.base.key if c.base else c.now.key: c for c in items},
        [],
        [],
        [],
        seen,
    )  # type: ignore[union-attr]


def test_a_renamed_file_is_found_by_the_places_lasting_identity() -> None:
    archive = {"a": row("a", "1:10:3:5:7"), "b": row("b", "1:11:3:5:7")}
    now = changes(
        Change(DELETED, None, archive["a"]),
        Change(DELETED, None, archive["b"]),
        Change(CREATED, Entry("x/a", FILE, 3, 5, 0o644, "1:10:3:5:99"), None),
        Change(CREATED, Entry("x/c", FILE, 3, 6, 0o644, "1:11:3:6:99"), None),
    )
    found, unsure = guards.renamed_away(now, local_persistent_id)
    assert found == {"a"}  # b's inode went to a new file (another mtime)
    assert [base.key for base in unsure] == ["b"]
    assert guards.all_gone(now, archive)
    assert not guards.all_gone(now, archive, moved=len(found))
    guards.check_emptied(now, "/x", archive, Policy(), moved=len(found))


def test_content_is_found_by_size_and_digest_once_each() -> None:
    unsure = [row("a", "v", "sha256:same"), row("b", "v", "sha256:same")]
    created = [Entry("c", FILE, 3, 1, 0o644, "w", "sha256:same")]
    assert len(guards.same_content(unsure, created)) == 1
    assert guards.same_content(unsure, [created[0]._replace(size=4)]) == set()


def test_the_guard_names_its_flag_and_both_emptied_is_agreement() -> None:
    archive = {"a": row("a", "v1"), "b": row("b", "v2")}
    gone = changes(
        Change(DELETED, None, archive["a"]), Change(DELETED, None, archive["b"]), seen=1
    )
    with pytest.raises(SafetyLimitExceeded) as caught:
        guards.check_emptied(gone, "/x", archive, Policy())
    assert "--allow-empty" in caught.value.message
    guards.check_emptied(gone, "/x", archive, Policy(allow_empty=True))
    empty = gone._replace(changes={}, seen=0)
    assert guards.all_gone(empty, archive, least=1)
    one = {"a": archive["a"]}
    assert not guards.all_gone(gone, one)  # one file renamed: no sign
    assert guards.all_gone(gone, one, least=1)


def test_an_s3_prefix_reshaped_behind_accord_moves_as_renames(
    s3_server, tmp_path: Path
) -> None:
    """Objects copied to new names and the old ones deleted (how S3 renames):
    their ETags are still there, so the guard lets the run go on, and the
    local side gets renames."""
    local, url = tmp_path / "local", s3_server.url("reshaped")
    (local / "project").mkdir(parents=True)
    (local / "project" / "a.txt").write_text("alpha\n")
    (local / "project" / "b.txt").write_text("beta, longer\n")
    assert accord.sync(str(local), url).ok
    client, bucket = s3_server.client(), s3_server.bucket
    for name in ("a.txt", "b.txt"):
        old, new = f"reshaped/project/{name}", f"reshaped/renamed/{name}"
        client.copy_object(
            Bucket=bucket,
            Key=new,
            CopySource={"Bucket": bucket, "Key": old},
            MetadataDirective="COPY",
        )
        client.delete_object(Bucket=bucket, Key=old)
    client.delete_object(Bucket=bucket, Key="reshaped/project/")
    plan = accord.sync(str(local), url, dry_run=True)
    assert not plan.guards
    moves = sorted((a.key, a.new_key) for a in plan.actions if a.op == "move")
    assert moves == [
        ("project/a.txt", "renamed/a.txt"),
        ("project/b.txt", "renamed/b.txt"),
    ]
    assert accord.sync(str(local), url).ok
    assert (local / "renamed" / "b.txt").read_text() == "beta, longer\n"
    assert not (local / "project").exists()
