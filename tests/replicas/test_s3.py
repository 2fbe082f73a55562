"""The S3 place against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _trees import files

import accord
from accord.engine.policy import Policy
from accord.engine.session import Session
from accord.errors import ConfigError, LockHeld, PermissionDenied, Unreachable
from accord.registry import open_replica
from accord.replicas.s3 import bucket_name_problem
from fixtures.cli import run_accord


def test_two_way_sync_with_a_prefix(s3_server, tmp_path: Path) -> None:
    local, url = tmp_path / "local", s3_server.url()
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    (local / "docs").mkdir()
    (local / "docs" / "b.txt").write_text("b\n")
    (local / "empty").mkdir()
    assert accord.sync(str(local), url).ok
    assert s3_server.objects(url) == files(local)
    # a change on each side, a deletion, a rename
    client = s3_server.client()
    prefix = url.split("accord-test/", 1)[1].split("?", 1)[0]
    client.put_object(Bucket="accord-test", Key=f"{prefix}/docs/b.txt", Body=b"b2\n")
    (local / "c.txt").write_text("c\n")
    (local / "a.txt").rename(local / "renamed.txt")
    report = accord.sync(str(local), url)
    assert not report.failed, [o.message for o in report.failed]
    assert s3_server.objects(url) == files(local)
    assert (local / "docs" / "b.txt").read_text() == "b2\n"
    assert accord.sync(str(local), url, dry_run=True).is_empty


def test_a_name_the_server_will_not_store_is_told_as_such(
    s3_server, tmp_path: Path
) -> None:
    """A newline in a key: S3 takes it, moto_server answers its upload 404.
    Either the object arrives, or the item fails saying the server refused
    the name (not "not found"), and the other files go on."""
    local, url = tmp_path / "local", s3_server.url()
    local.mkdir()
    (local / "a\nb").write_text("x")
    (local / "fine.txt").write_text("ok")
    report = accord.sync(str(local), url)
    assert s3_server.objects(url).get("fine.txt") == b"ok"
    if "a\nb" in s3_server.objects(url):
        assert report.ok
        return
    (failed,) = report.failed
    assert failed.action.key == "a\nb"
    assert "the server refused to store this name" in failed.message


def test_the_cli_with_endpoint_url(s3_server, tmp_path: Path) -> None:
    local = tmp_path / "site"
    local.mkdir()
    (local / "index.html").write_text("<h1>hi</h1>")
    bare = s3_server.url().split("?", 1)[0]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accord",
            "mirror",
            str(local),
            bare,
            "--yes",
            "-q",
            "--endpoint-url",
            s3_server.endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert s3_server.objects(bare) == {"index.html": b"<h1>hi</h1>"}


def test_every_command_that_opens_an_s3_place_takes_endpoint_url(
    s3_server, tmp_path: Path
) -> None:
    # status, plan, apply, log, trash and reset opened s3:// places without
    # the option sync and mirror take: only AWS_ENDPOINT_URL reached them
    local = tmp_path / "site"
    local.mkdir()
    (local / "index.html").write_text("<h1>hi</h1>")
    bare = s3_server.url().split("?", 1)[0]
    endpoint = ["--endpoint-url", s3_server.endpoint]
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}

    def accord_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_accord(*args, env=env)

    assert accord_cli("sync", str(local), bare, "-y", "-q", *endpoint).returncode == 0
    (local / "index.html").unlink()
    (local / "new.html").write_text("new")
    plan = tmp_path / "plan.json"
    status = accord_cli("status", str(local), bare, *endpoint)
    assert status.returncode == 6, status.stderr
    assert "new.html" in status.stdout and "index.html" in status.stdout
    made = accord_cli("plan", str(local), bare, "-o", str(plan), *endpoint)
    assert made.returncode == 0, made.stderr
    applied = accord_cli("apply", str(plan), "--yes", "-q", *endpoint)
    assert applied.returncode == 0, applied.stderr
    assert s3_server.objects(bare) == {"new.html": b"new"}
    trashed = accord_cli("trash", "list", bare, *endpoint)
    assert trashed.returncode == 0 and "index.html" in trashed.stdout, trashed.stderr
    log = accord_cli("log", str(local), bare, *endpoint)
    assert log.returncode == 0 and log.stdout.count("\n") == 2, log.stdout
    # a profile's endpoint_url reaches them too
    profiles = tmp_path / "accord.toml"
    profiles.write_text(
        f'[pairs.site]\nleft = "{local}"\nright = "{bare}"\n'
        f'endpoint_url = "{s3_server.endpoint}"\n'
    )
    env["ACCORD_CONFIG"] = str(profiles)
    agreed = accord_cli("status", "site")
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    reset = accord_cli("reset", str(local), bare, "--yes", *endpoint)
    assert reset.returncode == 0, reset.stderr


def test_big_objects_go_up_in_parts(s3_server, tmp_path: Path, monkeypatch) -> None:
    from accord.replicas import s3

    monkeypatch.setattr(s3, "_SINGLE_PUT", 1 << 20)
    monkeypatch.setattr(s3, "_PART", 5 << 20)
    local, url = tmp_path / "big", s3_server.url()
    local.mkdir()
    data = os.urandom(12 << 20)
    (local / "big.bin").write_bytes(data)
    assert accord.mirror(str(local), url).ok
    assert s3_server.objects(url)["big.bin"] == data
    place = open_replica(url)
    place.open()
    entry = place.stat("big.bin")
    assert entry.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert place.meta_list("tmp/") == []


def test_wrong_credentials_and_missing_bucket(s3_server, tmp_path, monkeypatch):
    missing = s3_server.url().replace("accord-test", "no-such-bucket")
    with pytest.raises(Unreachable) as caught:
        open_replica(missing).open()
    assert "does not exist" in caught.value.message
    done = subprocess.run(
        [sys.executable, "-m", "accord", "mirror", str(tmp_path), missing, "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_endpoint_down_is_a_clear_error(tmp_path: Path) -> None:
    url = "s3://bucket/x?endpoint_url=http://127.0.0.1:1"
    done = subprocess.run(
        [sys.executable, "-m", "accord", "mirror", str(tmp_path), url, "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_MAX_ATTEMPTS": "1",
        },
    )
    assert done.returncode == 1, done.stderr
    assert "cannot reach the S3 endpoint" in done.stderr
    assert "(Connection refused)" in done.stderr  # the system's reason
    assert ": ''" not in done.stderr  # the place's root is no item to name
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "name",
    [
        "accord-test",  # the names the tests and scripts/servers/s3.sh use
        "locked-bucket",
        "killed",
        "bucket",
        "team",
        "accord-src-0123456789",
        "accord-outside-abcdef0123",
        "my-bucket",
        "a.b.c",
        "123",
        "a" * 63,
        "1.2.3",  # three numbers are no IP address
        "my-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias",  # an access point alias
        "my-olap-abc--ol-s3",  # an Object Lambda access point alias
        "my-dir--usw2-az1--x-s3",  # a directory bucket
    ],
)
def test_a_valid_bucket_name_passes(name: str) -> None:
    assert bucket_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ab", "it has 2 characters; a bucket name has 3 to 63"),
        ("a" * 64, "it has 64 characters; a bucket name has 3 to 63"),
        ("My_Bucket", "it contains 'M', '_', 'B'; only lowercase letters"),
        ("mybucketA", "it contains 'A'; only lowercase"),
        ("my_bucket", "it contains '_'"),
        ("bucket:9000", "it contains ':'"),
        ("-bad-", "it begins with '-', not a letter or digit"),
        (".bucket", "it begins with '.'"),
        ("bucket-", "it ends with '-', not a letter or digit"),
        ("bucket.", "it ends with '.'"),
        ("a..b", "it has two dots in a row"),
        ("192.168.5.4", "it is shaped like an IP address"),
        ("xn--bucket", "it begins with 'xn--', which S3 keeps for itself"),
        ("sthree-bucket", "it begins with 'sthree-'"),
        ("sthree-configurator", "it begins with 'sthree-'"),
        ("bucket.mrap", "it ends with '.mrap', which S3 keeps for itself"),
    ],
)
def test_an_invalid_bucket_name_is_told_why(name: str, reason: str) -> None:
    assert (bucket_name_problem(name) or "").startswith(reason)


def test_a_name_no_bucket_can_have_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    """A name no store can hold (a port or a user in the bucket's place):
    one line naming the rule, and the rules, before any request (the
    endpoint here answers nothing)."""
    url = "s3://bucket:9000/p?endpoint_url=http://127.0.0.1:1"
    done = run_accord("mirror", str(tmp_path), url, "--yes")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "error: 'bucket:9000' is not a valid S3 bucket name: it contains ':'; "
        "only lowercase letters, digits, '.' and '-' are allowed"
    ), done.stderr
    assert lines[1:] == [
        "  hint: a bucket name has 3-63 characters: lowercase letters, digits, "
        "dots and hyphens; it begins and ends with a letter or digit"
    ], done.stderr
    assert "Traceback" not in done.stderr and "cannot reach" not in done.stderr
    for bad in ("s3://u@bucket/x", "s3://ab/x", f"s3://{'a' * 256}/x"):
        with pytest.raises(ConfigError, match="not a valid S3 bucket name"):
            open_replica(bad)  # parsed, not opened
    from accord.hub.blobs import S3Blobs  # a hub's content in S3: the same rule

    with pytest.raises(ConfigError, match="not a valid S3 bucket name"):
        S3Blobs.from_url("s3://bucket:9000/hub")


def test_an_invalid_name_not_found_says_why(s3_server, tmp_path: Path) -> None:
    """A name the rules refuse but an old bucket may hold (AWS still serves
    capitals and underscores made before 2018) is tried; not there, it is
    told as invalid, with the reason, not only as missing."""
    url = f"s3://My_Bucket/p?endpoint_url={s3_server.endpoint}"
    done = run_accord("mirror", str(tmp_path), url, "--yes")
    assert done.returncode != 0, done.stderr
    assert (
        "no bucket My_Bucket here, and 'My_Bucket' is not a valid S3 bucket "
        "name: it contains 'M', '_', 'B'" in done.stderr
    ), done.stderr
    assert "hint: a bucket name has 3-63 characters" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_concurrent_writer_is_never_clobbered(s3_server, tmp_path: Path) -> None:
    """The If-Match condition: an object replaced behind our back after the
    plan was made is left alone (skipped), not overwritten."""
    local, url = tmp_path / "local", s3_server.url()
    local.mkdir()
    (local / "a.txt").write_text("v1\n")
    accord.sync(str(local), url)
    (local / "a.txt").write_text("v2 from here\n")
    with Session(str(local), url) as session:
        plan = session.plan()
        client = s3_server.client()
        prefix = url.split("accord-test/", 1)[1].split("?", 1)[0]
        client.put_object(
            Bucket="accord-test", Key=f"{prefix}/a.txt", Body=b"someone else\n"
        )
        report = session.apply(plan)
    assert [o.status for o in report.outcomes if o.action.key == "a.txt"] == ["skipped"]
    assert s3_server.objects(url)["a.txt"] == b"someone else\n"


# -- several people, one prefix ---------------------------------------------------
PEOPLE = ("ana", "ben", "cho")


def run_for(person: str, folder: Path, url: str, state: Path) -> None:
    """One person's sync; waits while another person's run holds the lock."""
    for _ in range(200):
        try:
            with Session(
                str(folder), url, policy=Policy(), state_dir=state / person, who=person
            ) as session:
                session.apply(session.plan())
            return
        except LockHeld:
            time.sleep(0.05)
    raise AssertionError(f"{person} never got the lock")


def edit(rng: random.Random, folder: Path, person: str, written: set[bytes]) -> None:
    """A few creations, edits and deletions, as a person would make."""
    names = sorted(p for p in folder.rglob("*.txt") if ".accord" not in p.parts)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.45 or not names:
            data = f"{person} {rng.random()}\n".encode()
            (folder / f"{person}-{rng.randint(0, 30)}.txt").write_bytes(data)
            written.add(data)
        elif choice < 0.85:
            data = f"{person} edit {rng.random()}\n".encode()
            rng.choice(names).write_bytes(data)
            written.add(data)
        else:
            rng.choice(names).unlink()


def everything_kept(folders: list[Path], s3_server, url: str) -> set[bytes]:
    kept: set[bytes] = set()
    for folder in folders:
        kept |= {p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    client = s3_server.client()
    prefix = url.split("accord-test/", 1)[1].split("?", 1)[0] + "/"
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket="accord-test", Prefix=prefix
    ):
        for item in page.get("Contents", ()):
            body = client.get_object(Bucket="accord-test", Key=item["Key"])
            kept.add(body["Body"].read())
    return kept


def test_three_people_share_one_prefix(s3_server, tmp_path: Path) -> None:
    url = s3_server.url("team-" + os.urandom(3).hex())
    folders = [tmp_path / person for person in PEOPLE]
    for folder in folders:
        folder.mkdir()
    state = tmp_path / "state"
    rng = random.Random(20261123)
    written: set[bytes] = set()
    for round_number in range(6):
        for person, folder in zip(PEOPLE, folders, strict=True):
            edit(rng, folder, person, set())
        # what exists when the runs start must survive them (what a person
        # overwrote or deleted before syncing was never accord's to keep)
        written |= {f for folder in folders for f in files(folder).values()}
        if round_number % 2:
            threads = [
                threading.Thread(target=run_for, args=(p, f, url, state))
                for p, f in zip(PEOPLE, folders, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        else:
            for person, folder in zip(PEOPLE, folders, strict=True):
                run_for(person, folder, url, state)
    for _ in range(2):  # everyone syncs until nothing moves
        for person, folder in zip(PEOPLE, folders, strict=True):
            run_for(person, folder, url, state)
    views = [files(folder) for folder in folders]
    assert views[0] == views[1] == views[2], "everyone sees the same files"
    assert views[0] == s3_server.objects(url), "and so does the prefix"
    lost = written - everything_kept(folders, s3_server, url)
    assert not lost, f"{len(lost)} contents lost"
    log = subprocess.run(
        [sys.executable, "-m", "accord", "log", str(folders[0]), url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ACCORD_STATE_DIR": str(state / "ana")},
    )
    assert log.returncode == 0, log.stderr
    assert "  ben  " in log.stdout and "  cho  " in log.stdout


def test_permission_denied_is_reported(s3_server, tmp_path, monkeypatch):
    """moto accepts any key pair; a bucket policy is what denies here."""
    import json

    client = s3_server.client()
    client.create_bucket(Bucket="locked-bucket")
    client.put_bucket_policy(
        Bucket="locked-bucket",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::locked-bucket/*",
                    }
                ],
            }
        ),
    )
    local = tmp_path / "l"
    local.mkdir()
    (local / "a.txt").write_text("a")
    url = f"s3://locked-bucket/p?endpoint_url={s3_server.endpoint}"
    try:
        report = accord.mirror(str(local), url)
    except PermissionDenied:
        return  # the lock object could not even be written: clear enough
    assert report.failed and "denied" in report.failed[0].message


def test_server_killed_mid_run(tmp_path: Path, monkeypatch) -> None:
    """The S3 server dies during an upload: a clear error, nothing under a
    real name that is not whole, and the next run (server back) completes."""
    from fixtures._servers import start, stop

    settings, env = start("s3.sh", tmp_path / "moto", "ACCORD_S3_DIR")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, settings[name])
    endpoint = settings["S3_ENDPOINT"]
    url = f"s3://killed/data?endpoint_url={endpoint}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="killed")
    local = tmp_path / "local"
    local.mkdir()
    for i in range(3000):  # enough that the run is still going at 1.5 s
        (local / f"f{i:04}.bin").write_bytes(os.urandom(4000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", "mirror", str(local), url, "--yes", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    stop("s3.sh", env)
    try:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (1, 3), err
        assert "Traceback" not in err
        assert "S3 endpoint" in err or "reach" in err, err
    finally:
        stop("s3.sh", env)
    # the server comes back (moto keeps nothing: an empty bucket again)
    settings, env = start("s3.sh", tmp_path / "moto2", "ACCORD_S3_DIR")
    try:
        endpoint = settings["S3_ENDPOINT"]
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="killed")
        url = f"s3://killed/data?endpoint_url={endpoint}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "accord",
                "mirror",
                str(local),
                url,
                "--yes",
                "-q",
                "--break-lock",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    finally:
        stop("s3.sh", env)


def test_both_sides_remote_s3_and_sftp(s3_server, sshd, tmp_path: Path) -> None:
    """A bucket prefix and an SFTP folder synced directly, streamed through
    memory (nothing staged on the local disk)."""
    bucket_url, server_url = s3_server.url(), sshd.url()
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "a.txt").write_text("from the bucket\n")
    (seed / "d").mkdir()
    (seed / "d" / "b.bin").write_bytes(os.urandom(300_000))
    assert accord.mirror(str(seed), bucket_url).ok
    assert accord.sync(bucket_url, server_url).ok
    remote = sshd.path(server_url)
    assert files(remote) == files(seed)
    (remote / "c.txt").write_text("from the server\n")
    time.sleep(1.1)
    assert accord.sync(bucket_url, server_url).ok
    assert s3_server.objects(bucket_url)["c.txt"] == b"from the server\n"


def test_times_and_modes_survive_a_round_trip(s3_server, tmp_path: Path) -> None:
    """A listing tells only upload times: a download still gets the mtime
    and mode kept in the object's metadata (a newcomer joining a team
    prefix gets everyone's times and executable bits)."""
    first, second, url = tmp_path / "first", tmp_path / "second", s3_server.url()
    first.mkdir()
    (first / "run.sh").write_text("#!/bin/sh\n")
    (first / "run.sh").chmod(0o755)
    (first / "notes.txt").write_text("n\n")
    stamp = 1_600_000_000_123_456_789
    for name in ("run.sh", "notes.txt"):
        os.utime(first / name, ns=(stamp, stamp))
    assert accord.sync(str(first), url).ok
    second.mkdir()
    report = accord.sync(str(second), url)
    assert report.ok, report.summary()
    for name in ("run.sh", "notes.txt"):
        got = (second / name).stat()
        assert got.st_mtime_ns == stamp, name
        assert got.st_mode & 0o777 == (first / name).stat().st_mode & 0o777, name
    again = accord.sync(str(second), url)
    assert again.ok and again.summary()["changed"] == 0, again.summary()
