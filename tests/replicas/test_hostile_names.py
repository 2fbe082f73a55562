"""Names from a peer never lead outside the target, on any kind of place.

An S3 prefix that someone else can write to holds keys like
``evil/../escape1.txt`` or ``evil/a/../../../escape3.txt``. Mirrored or
synced into a local folder, an SFTP folder (plain, and through accord's
agent), another S3 prefix or an fsspec filesystem, such a name is refused
and reported (escaped, with the place it came from and why), the good names
arrive, the run ends as partial (exit 3), and nothing outside the target
changes. First the reproduction as a user runs it, from the shell; then a
property test over drawn hostile names into every kind of place.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from _surroundings import bucket, memory, on_disk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import accord
from accord.registry import open_replica

REPRODUCTION = {
    "evil/good.txt": b"good",
    "evil/../escape1.txt": b"pwned 1",
    "evil/a/../../../escape3.txt": b"pwned 3",
}
TARGETS = ["local", "sftp-plain", "sftp-agent", "s3", "fsspec-local", "memory"]


class Target:
    """A fresh target of one kind, and a look at everything around it."""

    def __init__(self, kind: str, tmp: Path, sshd: Any, s3_server: Any) -> None:
        self.kind = kind
        top = uuid.uuid4().hex[:10]
        if kind in ("local", "fsspec-local"):
            folder = tmp / top / "srv" / "data" / "in"
            folder.parent.mkdir(parents=True)
            self.url = str(folder) if kind == "local" else f"local://{folder}"
            self.around = on_disk(tmp / top, folder).snapshot
            self.inside = "srv/data/in"
        elif kind.startswith("sftp"):
            folder = sshd.root / top / "srv" / "data" / "in"
            folder.parent.mkdir(parents=True)
            agent = "&agent=off" if kind == "sftp-plain" else "&agent=on"
            self.url = sshd.url(f"{top}/srv/data/in") + agent
            self.around = on_disk(sshd.root / top, folder).snapshot
            self.inside = "srv/data/in"
        elif kind == "s3":
            url, surroundings = bucket(s3_server)
            self.url = url  # <fresh bucket>/1/2/place
            self.around = surroundings.snapshot
            self.inside = "1/2/place"
        else:
            from fsspec.implementations.memory import MemoryFileSystem

            MemoryFileSystem().makedirs(f"/accord-{top}/srv/data")
            self.url = f"memory://accord-{top}/srv/data/in"
            self.around = memory().snapshot
            self.inside = f"/accord-{top}/srv/data/in"

    def outside(self) -> Any:
        """The snapshot, without the target itself."""
        found = self.around()
        if isinstance(found, tuple):  # fsspec memory: (files, folders)
            files, folders = found
            return (
                {k: v for k, v in files.items() if not k.startswith(self.inside)},
                [k for k in folders if not k.startswith(self.inside)],
            )
        return {k: v for k, v in found.items() if not k.startswith(self.inside)}

    def files(self) -> dict[str, bytes]:
        place = open_replica(self.url)
        place.open()
        try:
            found = {}
            for entry in place.entries():
                if entry.kind == "file":
                    with place.open_read(entry.key) as stream:
                        found[entry.key] = stream.read()
            return found
        finally:
            place.close()


def _source(s3_server: Any, objects: dict[str, bytes]) -> str:
    """A fresh bucket holding ``objects``; the URL of its ``evil`` prefix."""
    name = f"accord-src-{uuid.uuid4().hex[:10]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return f"s3://{name}/evil?endpoint_url={s3_server.endpoint}"


def _accord(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ACCORD_STATE_DIR": str(state)},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.mark.parametrize("kind", TARGETS[:-1])  # memory: not across processes
def test_the_reproduction_from_the_shell(
    kind: str, sshd: Any, s3_server: Any, tmp_path: Path
) -> None:
    source = _source(s3_server, REPRODUCTION)
    target = Target(kind, tmp_path, sshd, s3_server)
    before = target.outside()
    done = _accord("mirror", source, target.url, "--yes", state=tmp_path / "st")
    assert done.returncode == 3, done.stdout + done.stderr
    text = done.stdout + done.stderr
    for name in ("../escape1.txt", "a/../../../escape3.txt"):
        assert (
            f"left {name}: not synced: the name would leave the target folder" in text
        )
    assert source.split("?")[0] in text and "rrno" not in text
    assert target.files() == {"good.txt": b"good"}
    assert target.outside() == before
    again = _accord(
        "mirror", source, target.url, "--yes", "--json", state=tmp_path / "st"
    )
    assert again.returncode == 3
    events = [json.loads(line) for line in again.stdout.splitlines()]
    problems = [e for e in events if e["event"] == "problem"]
    assert sorted(e["key"] for e in problems) == [
        "../escape1.txt",
        "a/../../../escape3.txt",
    ]
    assert all(e["refused"] and e["place"] == source.split("?")[0] for e in problems)
    assert events[-1]["refused"] == 2
    assert target.outside() == before


# -- drawn names, into every kind of place -------------------------------------------

SEGMENT = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=5)
# control characters are names like any other (no newline: moto's server
# cannot take one in a key)
CONTROLLED = st.builds(
    lambda a, c, b: a + c + b, SEGMENT, st.sampled_from("\t\x01\x1b\x7f"), SEGMENT
)
PART = st.one_of(SEGMENT, CONTROLLED)
HOSTILITY = [
    "..",
    ".",
    "empty",
    "leading /",
    "NUL",
    ".ACCORD",
    "nested .ACCORD",
    "too long",
]


@st.composite
def names(draw: Any) -> list[tuple[str, str | None]]:
    """Unique names (each ends in its own ``<n>.txt``), some made hostile."""
    drawn = []
    for number in range(draw(st.integers(2, 6))):
        parts = draw(st.lists(PART, max_size=2))
        how = draw(st.one_of(st.none(), st.sampled_from(HOSTILITY)))
        at = draw(st.integers(0, len(parts)))
        if how in ("..", "."):
            parts.insert(at, how)
        elif how == "empty":
            parts.insert(at, "")
        elif how == "NUL":
            parts.insert(at, "a\0b")
        elif how == ".ACCORD":
            parts.insert(0, draw(st.sampled_from([".ACCORD", ".Accord"])))
        elif how == "nested .ACCORD":  # a nested place's own folder, in any case
            parts.insert(at, "in/" + draw(st.sampled_from([".ACCORD", ".Accord"])))
        elif how == "too long":
            parts.insert(at, "x" * draw(st.integers(256, 300)))
        name = "/".join([*parts, f"{number}.txt"])
        drawn.append(("/" + name if how == "leading /" else name, how))
    return drawn


@pytest.mark.parametrize("kind", TARGETS)
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=names())
def test_hostile_names_into_every_kind_of_place(
    kind: str,
    drawn: list[tuple[str, str | None]],
    sshd: Any,
    s3_server: Any,
    tmp_path: Path,
) -> None:
    objects = {
        f"evil/{name}": name.encode("utf-8", "backslashreplace") for name, _ in drawn
    }
    source = _source(s3_server, objects)
    disk = kind in ("local", "fsspec-local") or kind.startswith("sftp")
    refused = {n for n, how in drawn if how and (how != "too long" or disk)}
    arrive = {n: objects[f"evil/{n}"] for n, _ in drawn if n not in refused}
    for command in ("mirror", "sync"):
        target = Target(kind, tmp_path / uuid.uuid4().hex[:6], sshd, s3_server)
        before = target.outside()
        state = tmp_path / uuid.uuid4().hex[:6]
        run = getattr(accord, command)
        report = run(source, target.url, state_dir=state)
        told = {p.key for p in report.problems if p.refused}
        assert told == refused, (command, told, refused)
        assert not report.failed, [o.message for o in report.failed]
        assert target.files() == arrive
        assert target.outside() == before
        if command == "sync":  # told again, and nothing to do: none was archived
            again = run(source, target.url, state_dir=state)
            assert {p.key for p in again.problems if p.refused} == refused
            assert not again.plan.changes


def test_the_trash_leaves_unusable_names_alone(s3_server: Any, tmp_path: Path) -> None:
    run = "20260101T000000Z-aaaaaa"
    source = _source(
        s3_server,
        {
            f"evil/.accord/trash/{run}/ok.txt": b"ok",
            f"evil/.accord/trash/{run}/../../../x.txt": b"no",
            "evil/.accord/trash/../y.txt": b"no",
        },
    )
    listed = _accord("trash", "list", source, "--json", state=tmp_path)
    assert listed.returncode == 0, listed.stderr
    events = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["key"] for e in events if e["event"] == "trashed"] == ["ok.txt"]
    refused = [e for e in events if e["event"] == "problem"]
    assert sorted(e["key"] for e in refused) == ["../../../x.txt", "y.txt"]
    assert all(e["refused"] and e["place"] == source.split("?")[0] for e in refused)
    done = _accord("trash", "restore", source, "../../../x.txt", state=tmp_path)
    assert done.returncode == 2 and "not a path inside the place" in done.stderr
