"""plantdb's REST server as a place, against a real ``fsdb_rest_api``
(plantdb-server 0.17.0) on 127.0.0.1, rate limits on, serving databases
built with plantdb's own API."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from accord import api
from accord.errors import ConfigError
from accord.registry import open_replica
from fixtures.plantdb_server import (
    ALICE_PASSWORD,
    PlantdbServer,
    build_fsdb,
)

#: plantdb's bookkeeping at the root of a database: not data, not the API's
ROOT_FILES = ["/romidb", "/users.json", "/groups.json", ".locks/", "*.tmp"]
_NOT_DATA = {"romidb", "users.json", "groups.json", ".locks"}


def tree(root: Path) -> dict[str, bytes]:
    """Every scan file under an FSDB, by relative path."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in _NOT_DATA or rel.parts[0].startswith("."):
            continue
        if "webcache" in rel.parts:
            continue
        if path.is_file():
            found[rel.as_posix()] = path.read_bytes()
    return found


def accord(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def empty_server(tmp_path):
    server = PlantdbServer(build_fsdb(tmp_path / "served", scans=0)).start()
    yield server
    server.stop()


@pytest.fixture
def local_db(tmp_path) -> Path:
    return build_fsdb(tmp_path / "local", prefix="plant_")


def test_a_server_mirrors_to_a_folder_byte_for_byte_and_a_no_op_fetches_no_data(
    plantdb_server, tmp_path
):
    target = tmp_path / "copy"
    place = open_replica(plantdb_server.place(user=None))
    report = api.mirror(place, str(target))
    assert not report.failed
    assert tree(target) == tree(plantdb_server.folder)
    # one archive per scan, plus /health, /scans and each scan's files.json
    assert place.requests <= 3 + 2 * 2
    again = open_replica(plantdb_server.place(user=None))
    report = api.mirror(again, str(target))
    assert not report.done and not report.failed
    # health, scans (asked at most twice), one files.json per scan; no archive
    assert again.requests <= 1 + 2 + 2


def test_local_to_rest_to_local_round_trips_byte_for_byte(
    empty_server, local_db, tmp_path, plantdb_password
):
    place = open_replica(empty_server.place())
    report = api.mirror(str(local_db), place, exclude=ROOT_FILES)
    assert not report.failed, [o.message for o in report.failed]
    # each new scan went up as one archive
    assert place.requests <= 3 + 3 * 2
    served = tree(empty_server.folder)
    assert served == tree(local_db)
    assert httpx.get(empty_server.base + "/api/v1/scans").json() == [
        "plant_000",
        "plant_001",
    ]
    report = api.mirror(str(local_db), empty_server.place(), exclude=ROOT_FILES)
    assert not report.done and not report.failed
    back = tmp_path / "back"
    report = api.mirror(empty_server.place(), str(back))
    assert not report.failed
    assert tree(back) == tree(local_db)


def add_files(root: Path, scan: str, count: int) -> None:
    """New image files in an existing scan, with plantdb's API."""
    script = (
        "import os, sys\n"
        "from plantdb.commons.fsdb.core import FSDB\n"
        "db = FSDB(sys.argv[1]); db.connect(); db.login('alice', sys.argv[4])\n"
        "fs = db.get_scan(sys.argv[2]).get_fileset('images')\n"
        "for i in range(int(sys.argv[3])):\n"
        "    f = fs.create_file(f'extra_{i:03d}')\n"
        "    f.write_raw(os.urandom(3000), ext='png')\n"
        "    f.set_metadata({'extra': i})\n"
        "db.disconnect()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), scan, str(count), ALICE_PASSWORD],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_new_files_in_an_existing_scan_go_one_request_each(
    empty_server, local_db, plantdb_password, tmp_path
):
    assert not api.mirror(
        str(local_db), empty_server.place(), exclude=ROOT_FILES
    ).failed
    add_files(local_db, "plant_000", 2)
    place = open_replica(empty_server.place())
    report = api.mirror(str(local_db), place, exclude=ROOT_FILES)
    assert not report.failed, [o.message for o in report.failed]
    for i in range(2):
        got = httpx.get(
            f"{empty_server.base}/api/v1/files/plant_000/images/extra_{i:03d}"
        )
        assert (
            got.content
            == (local_db / f"plant_000/images/extra_{i:03d}.png").read_bytes()
        )
        meta = httpx.get(
            f"{empty_server.base}/api/v1/files/plant_000/images/extra_{i:03d}/metadata"
        ).json()["metadata"]
        assert meta["extra"] == i
    # then nothing is left to do, and a no-op does not download the scan
    again = open_replica(empty_server.place())
    report = api.mirror(str(local_db), again, exclude=ROOT_FILES)
    assert not report.done and not report.failed, [o.message for o in report.failed]
    assert again.requests <= 2 + 2 + 2  # health, login, scans, files.json each
    # what accord sent is what a copy back holds, byte for byte, and stays so
    back = tmp_path / "back"
    assert not api.mirror(empty_server.place(), str(back)).failed
    assert tree(back) == tree(local_db)
    again = open_replica(empty_server.place())
    report = api.mirror(again, str(back))
    assert not report.done and not report.failed
    assert again.requests <= 2 + 2 + 2


def test_what_the_api_cannot_do_is_refused_per_item_and_kept_pending(
    empty_server, local_db, plantdb_password
):
    assert not api.mirror(
        str(local_db), empty_server.place(), exclude=ROOT_FILES
    ).failed
    changed = local_db / "plant_000/images/images_000.png"
    changed.write_bytes(b"new content")
    (local_db / "plant_001/masks/masks_000.png").unlink()
    for _ in range(2):  # reported again by the next run: still pending
        report = api.mirror(
            str(local_db), empty_server.place(), exclude=ROOT_FILES, delete=True
        )
        errors = {o.action.key: o.message for o in report.failed}
        assert "cannot overwrite" in errors["plant_000/images/images_000.png"]
        assert "no delete" in errors["plant_001/masks/masks_000.png"]
    served = empty_server.folder / "plant_000/images/images_000.png"
    assert served.read_bytes() != b"new content"


def test_a_guest_reads_but_cannot_write(empty_server, local_db, tmp_path):
    with pytest.raises(ConfigError, match="read-only"):
        api.mirror(str(local_db), empty_server.place(user=None), exclude=ROOT_FILES)
    done = accord("mirror", str(local_db), empty_server.place(user=None), "--yes")
    assert done.returncode != 0
    assert "read-only" in done.stderr
    assert httpx.get(empty_server.base + "/api/v1/scans").json() == []


def test_a_wrong_password_is_a_clear_error(empty_server, local_db):
    done = accord(
        "mirror", str(local_db), empty_server.place(), "--yes",
        env={"PLANTDB_PASSWORD": "not-the-password"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "refused the login of 'alice'" in done.stderr
    done = accord("mirror", str(local_db), empty_server.place(), "--yes",
                  env={"PLANTDB_PASSWORD": ""})  # fmt: skip
    assert done.returncode != 0


def test_the_password_may_come_from_the_config_file(
    empty_server, local_db, tmp_path, monkeypatch
):
    config = tmp_path / "accord.toml"
    config.write_text(
        f'[plantdb."127.0.0.1:{empty_server.port}"]\n'
        f'user = "alice"\npassword = "{ALICE_PASSWORD}"\n'
    )
    monkeypatch.setenv("ACCORD_CONFIG", str(config))
    monkeypatch.delenv("PLANTDB_PASSWORD", raising=False)
    url = empty_server.place(user=None)
    report = api.mirror(str(local_db), url, exclude=ROOT_FILES)
    assert not report.failed
    assert len(httpx.get(empty_server.base + "/api/v1/scans").json()) == 2


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("plantdb+http://127.0.0.1:{closed}", "cannot connect"),
        ("plantdb+http://alice:pw@127.0.0.1:5000", "password in the URL"),
        ("plantdb+http://127.0.0.1:5000/some/path", "HOST:PORT"),
        ("plantdb+ftp://127.0.0.1:5000", "unknown place type"),
        ("plantdb+http://127.0.0.1:notaport", "port"),
    ],
)
def test_bad_urls_and_unreachable_servers_are_clear_errors(url, says, tmp_path):
    from fixtures.hub import free_port

    done = accord("mirror", url.format(closed=free_port()), str(tmp_path / "t"), "-y")
    assert done.returncode != 0, done.stderr
    assert says in done.stderr


def test_a_non_plantdb_server_is_a_clear_error(tmp_path):
    from fixtures.hub import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        done = accord(
            "mirror", f"plantdb+http://127.0.0.1:{port}", str(tmp_path / "t"), "-y"
        )
        assert done.returncode != 0
        assert "no plantdb REST API" in done.stderr
    finally:
        proc.kill()
        proc.wait()


def test_rate_limits_are_waited_out(tmp_path):
    """The server takes 5 archive downloads a minute per client: a copy of
    six new scans meets 429, waits, and completes."""
    server = PlantdbServer(build_fsdb(tmp_path / "served", scans=6, files=1)).start()
    try:
        place = open_replica(server.place(user=None))
        report = api.mirror(place, str(tmp_path / "copy"))
        assert not report.failed
        assert place.throttled >= 1
        assert tree(tmp_path / "copy") == tree(server.folder)
    finally:
        server.stop()


def test_a_server_killed_mid_sync_shows_no_half_scan_and_the_next_run_completes(
    tmp_path, plantdb_password, request
):
    """Six new scans go up as archives, five a minute: the server is killed
    while the sixth waits; every scan it holds is whole, the run says what is
    kept for later, and the next run (server back) sends the rest."""
    local = build_fsdb(tmp_path / "local", scans=6, files=1, prefix="plant_")
    server = PlantdbServer(build_fsdb(tmp_path / "served", scans=0)).start()
    request.addfinalizer(server.stop)
    env = {"PLANTDB_PASSWORD": ALICE_PASSWORD}
    args = ["mirror", str(local), server.place(), "--yes"]
    args += [f"--exclude={pattern}" for pattern in ROOT_FILES]
    run = subprocess.Popen(
        [sys.executable, "-m", "accord", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            scans = httpx.get(server.base + "/api/v1/scans").json()
            if len(scans) >= 5:
                break
            time.sleep(0.2)
        server.kill()
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    check_kept_and_resent(server, local, out + err, args, env)


def check_kept_and_resent(server, local, said, args, env) -> None:
    assert "Traceback" not in said
    assert "next run" in said, said
    held = sorted(
        p.name for p in server.folder.iterdir() if p.name.startswith("plant_")
    )
    assert 5 <= len(held) < 6
    for name in held:  # whole scans only
        assert (server.folder / name / "files.json").is_file()
        assert (server.folder / name / "metadata" / "metadata.json").is_file()
    server.start()
    done = accord(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert tree(server.folder) == tree(local)


def test_hostile_keys_are_refused_by_every_primitive(plantdb_server, plantdb_password):
    """The conformance suite's hostile keys (accord.testing.contract): the
    plantdb place holds only plantdb's layout, so the suite's other promises
    (arbitrary names, trash, overwrite, delete) are declared away in its
    capabilities (``trash=False``, ``conditional_writes=False``) or refused
    per item; this one it keeps like every place."""
    from accord.errors import UnsafeName
    from accord.model import FILE, Entry
    from accord.testing.contract import HOSTILE_KEYS

    before = tree(plantdb_server.folder)
    place = open_replica(plantdb_server.place())
    place.open()
    try:
        list(place.scan())
        for key in HOSTILE_KEYS:
            entry = Entry(key, FILE, 1, 0, 0, "v")
            calls = [
                lambda k=key: place.stat(k),
                lambda k=key: place.open_read(k),
                lambda e=entry: place.digest(e._replace(digest=None)),
                lambda k=key, e=entry: place.write(
                    k, io.BytesIO(b"x"), like=e, expect=None
                ),
                lambda k=key, e=entry: place.make_dir(k, like=e, expect=None),
                lambda k=key, e=entry: place.delete(k, expect=e),
                lambda k=key, e=entry: place.set_meta(k, like=e, expect=e),
            ]
            for call in calls:
                with pytest.raises(UnsafeName):
                    call()
        place.finish()
    finally:
        place.close()
    assert tree(plantdb_server.folder) == before


def post_files(base: str, scan: str, count: int) -> None:
    """New files on the server, sent through its API by another client."""
    with httpx.Client(base_url=base + "/api/v1", timeout=60) as http:
        token = http.post(
            "/auth/login", json={"username": "alice", "password": ALICE_PASSWORD}
        ).json()["access_token"]
        for i in range(count):
            answer = http.post(
                f"/files/{scan}/images/other_{i:03d}",
                files={"file": (f"other_{i:03d}.png", os.urandom(5000))},
                data={"ext": "png"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 201, answer.text


def test_a_few_new_files_on_the_server_come_one_request_each(plantdb_server, tmp_path):
    target = tmp_path / "copy"
    assert not api.mirror(plantdb_server.place(user=None), str(target)).failed
    post_files(plantdb_server.base, "scan_001", 2)
    place = open_replica(plantdb_server.place(user=None))
    report = api.mirror(place, str(target))
    assert not report.failed
    assert tree(target) == tree(plantdb_server.folder)
    # health, scans (at most twice), two files.json, each new file and its
    # metadata (plantdb made none here: 404): no archive
    assert place.requests <= 1 + 2 + 2 + 2 * 2


def test_a_two_way_sync_carries_new_scans_both_ways(
    plantdb_server, local_db, plantdb_password
):
    report = api.sync(str(local_db), plantdb_server.place(), exclude=ROOT_FILES)
    assert not report.failed, [o.message for o in report.failed]
    assert tree(local_db) == tree(plantdb_server.folder)
    assert {"scan_000", "plant_000"} <= {p.name for p in local_db.iterdir()}
    report = api.sync(str(local_db), plantdb_server.place(), exclude=ROOT_FILES)
    assert not report.done and not report.failed


def test_a_token_near_its_expiry_is_refreshed_before_use(
    plantdb_server, plantdb_password
):
    place = open_replica(plantdb_server.place())
    place.open()
    try:
        client = place.client
        first = client._access
        client._expires = time.time() + 5  # inside the refresh margin
        answer = client.send("POST", "/auth/token/validation")
        assert answer.status_code == 200
        assert client._access and client._access != first
        assert client._expires > time.time() + 60
    finally:
        place.close()


@pytest.mark.parametrize("step", [5, 25, 45])
def test_accord_killed_mid_run_sends_no_half_scan(
    empty_server, local_db, plantdb_password, step
):
    """accord itself dies (SIGKILL) while it stages new scans: the server
    holds no scan of that run, and the next run sends them whole."""
    args = ["mirror", str(local_db), empty_server.place(), "--yes"]
    args += [f"--exclude={pattern}" for pattern in ROOT_FILES]
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        env={**os.environ, "ACCORD_KILL_AT_STEP": str(step)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert httpx.get(empty_server.base + "/api/v1/scans").json() == []
    done = accord(*args)
    assert done.returncode == 0, done.stderr
    assert tree(empty_server.folder) == tree(local_db)


def test_a_run_killed_after_staging_everything_is_finished_by_the_next(
    empty_server, local_db, plantdb_password
):
    args = ["mirror", str(local_db), empty_server.place(), "--yes"]
    args += [f"--exclude={pattern}" for pattern in ROOT_FILES]
    for step in range(44, 80, 4):  # the last steps of the run, before it ends
        done = subprocess.run(
            [sys.executable, "-m", "accord", *args],
            env={**os.environ, "ACCORD_KILL_AT_STEP": str(step)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode == 0:
            break
        assert httpx.get(empty_server.base + "/api/v1/scans").json() == []
    done = accord(*args)
    assert done.returncode == 0, done.stderr
    assert tree(empty_server.folder) == tree(local_db)
