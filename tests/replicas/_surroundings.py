"""Where each kind of place lives in the tests, for the conformance suite's
"never outside the root" promises (``accord.testing.contract.Surroundings``).

Every place is put three folders below what is watched (``<top>/1/2/place``),
so that any hostile key the suite tries would land inside the watched area;
a folder ``<top>/outside`` holding a file ``victim`` is what hostile links
point at.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from accord.testing.contract import ReplicaContract, Surroundings, disk_snapshot

DEPTH = "1/2/place"


def put_on_disk(root: Path):
    """``behind`` for a place whose files are the folder ``root`` on this
    machine's disk (local, or served by a server on 127.0.0.1)."""

    def put_all(files: dict[str, bytes]) -> None:
        for key, data in files.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    return put_all


def on_disk(top: Path, place: Path) -> Surroundings:
    """A place whose files are on this machine's disk (local, SFTP served
    by the sshd on 127.0.0.1), at ``place`` below ``top``."""
    outside = top / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "victim").write_bytes(b"victim")
    relative = os.path.relpath(outside, place)
    return Surroundings(
        lambda: disk_snapshot(top),
        str(top / "escape.txt"),
        outside=(str(outside), relative),
    )


def planted_on_disk(top: Path, place: Path) -> Surroundings:
    """``on_disk``, for a place that holds links but cannot make them."""

    def plant(key: str, target: str) -> None:
        os.symlink(target, place / key)

    return on_disk(top, place)._replace(plant_link=plant)


def bucket(s3_server: Any) -> tuple[str, Surroundings]:
    """A fresh bucket of its own, watched whole; the place's URL in it."""
    name = f"accord-outside-{uuid.uuid4().hex[:10]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)

    def snapshot() -> dict[str, Any]:
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", ()):
                found[item["Key"]] = (item["ETag"], item["Size"], item["LastModified"])
        return found

    url = f"s3://{name}/{DEPTH}?endpoint_url={s3_server.endpoint}"
    return url, Surroundings(snapshot, "/escape.txt")


def memory() -> Surroundings:
    """fsspec's memory filesystem, watched whole."""
    from fsspec.implementations.memory import MemoryFileSystem

    def snapshot() -> tuple[dict[str, bytes], list[str]]:
        store = MemoryFileSystem.store
        files = {path: bytes(item.getvalue()) for path, item in store.items()}
        return files, sorted(MemoryFileSystem.pseudo_dirs)

    return Surroundings(snapshot, "/escape.txt")


def hub_surroundings(hub: Any) -> Surroundings:
    """The whole of a hub: every collection's items and trash (as its admin
    sees them) and every content file of its blob folder. Links in a
    collection are data; the suite checks nothing goes through them."""
    from accord.replicas.hub_client import HubClient

    def snapshot() -> dict[str, Any]:
        found: dict[str, Any] = {}
        with HubClient(hub.base, ca=hub.ca, admin=True) as client:
            for col in client.api("GET", "/collections")["collections"]:
                name = col["name"]
                lines = client.send("GET", f"/api/v1/c/{name}/entries").text
                found[name] = sorted(lines.splitlines()[1:])
                found[name + "/trash"] = client.api("GET", f"/c/{name}/trash")
        blobs = hub.folder / "blobs"
        found["blobs"] = sorted(str(p) for p in blobs.rglob("*") if p.is_file())
        return found

    return Surroundings(snapshot, "/escape.txt", outside=("../../outside", "/tmp"))


class OnServer(ReplicaContract):
    """A folder on the sshd of 127.0.0.1 (this machine's disk), three
    folders below a watched folder of its own."""

    options = ""

    @pytest.fixture
    def top(self, sshd):
        return uuid.uuid4().hex[:12]

    @pytest.fixture
    def place_url(self, sshd, top):
        return sshd.url(f"{top}/{DEPTH}") + self.options

    @pytest.fixture
    def surroundings(self, sshd, top):
        return on_disk(sshd.root / top, sshd.root / top / DEPTH)

    @pytest.fixture
    def behind(self, sshd, top):
        return put_on_disk(sshd.root / top / DEPTH)
