"""Any fsspec filesystem as a place: memory://, and real FTP, WebDAV and
HTTP servers on loopback, opened the way fsspec opens them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest

import accord
from accord.errors import ConfigError, MissingDependency
from accord.registry import open_replica


def test_sync_with_a_memory_filesystem(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    (local / "d").mkdir()
    (local / "d" / "b.txt").write_text("b\n")
    url = f"memory://sync-{tmp_path.name}/x"
    assert accord.sync(str(local), url).ok
    place = open_replica(url)
    place.open()
    with place.open_read("d/b.txt") as stream:
        assert stream.read() == b"b\n"
    assert place.capabilities.conditional_writes is False
    (local / "a.txt").unlink()
    report = accord.sync(str(local), url)
    assert report.ok and place.stat("a.txt") is None
    assert [i.key for i in place.trash_list()] == ["a.txt"]
    assert accord.sync(str(local), url, dry_run=True).is_empty


def test_an_unknown_scheme_is_still_a_clear_error() -> None:
    with pytest.raises(ConfigError) as caught:
        open_replica("nosuchproto://x/y")
    assert "unknown place type" in caught.value.message
    assert "fsspec" not in (caught.value.hint or "")  # installed here


def test_without_fsspec_an_fsspec_type_says_how_to_get_it(monkeypatch) -> None:
    # ``pip install .`` leaves fsspec out: memory:// is then no known type,
    # and the hint says which package opens it
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec fails
    monkeypatch.setitem(sys.modules, "accord.replicas.fsspec", None)
    with pytest.raises(ConfigError) as caught:
        open_replica("memory://x/y")
    assert "unknown place type 'memory://'" in caught.value.message
    assert "pip install 'accord[fsspec]'" in (caught.value.hint or "")


# -- fsspec URLs opened the way fsspec opens them, against real servers -------
def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "Exception ignored" not in done.stderr, done.stderr
    return done


def no_login(ftp_server, name: str) -> str:
    return f"ftp://{ftp_server.address}/{name}"


def test_an_ftp_url_without_a_login_is_refused_cleanly(
    ftp_server, tmp_path: Path
) -> None:
    """`accord sync ftp://host/path /tmp/y` ended in a TypeError (fsspec's
    FTP takes host as an argument) and a destructor's traceback."""
    done = cli("sync", no_login(ftp_server, "p"), str(tmp_path / "y"), "--yes")
    assert done.returncode == 1
    assert "refused the login" in done.stderr
    assert not (tmp_path / "y").exists()


def test_an_ftp_server_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    done = cli("sync", f"ftp://127.0.0.1:{port}/x", str(tmp_path / "y"), "--yes")
    assert done.returncode == 1
    assert "cannot connect" in done.stderr and "hint:" in done.stderr
    assert "cannot connect: Connection refused" in done.stderr  # not "[Errno 111]"


def test_an_ftp_folder_syncs_both_ways_from_the_cli(ftp_server, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "d").mkdir(parents=True)
    (local / "a.txt").write_text("a\n")
    (local / "d" / "b.txt").write_text("b\n")
    url = ftp_server.url("both-ways")
    done = cli("sync", str(local), url, "--yes")
    assert done.returncode == 0, done.stderr
    assert ftp_server.password not in done.stdout + done.stderr
    served = ftp_server.path("both-ways")
    assert (served / "d" / "b.txt").read_text() == "b\n"
    (served / "c.txt").write_text("from the server\n")
    (local / "a.txt").write_text("edited, longer\n")
    done = cli("sync", str(local), url, "--yes")
    assert done.returncode == 0, done.stderr
    assert (local / "c.txt").read_text() == "from the server\n"
    assert (served / "a.txt").read_text() == "edited, longer\n"
    assert [i.key for i in open_replica(url).trash_list()] == ["a.txt"]
    assert cli("status", str(local), url).returncode == 0


def test_a_new_ftp_root_is_made_only_in_a_folder_that_is_there(
    ftp_server, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    url = ftp_server.url("typo/notes")
    done = cli("mirror", str(local), url, "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the folder /typo does not exist" in done.stderr
    assert not ftp_server.path("typo").exists()
    # a memory filesystem's folders are only names: it cannot tell
    assert open_replica("memory://nowhere/x/y").missing_parent() is None
    ftp_server.path("typo").mkdir()
    assert cli("mirror", str(local), url, "--yes", "-q").returncode == 0
    assert (ftp_server.path("typo") / "notes" / "a.txt").read_text() == "a\n"


@pytest.mark.parametrize("source", ["environment", "netrc"])
def test_ftp_credentials_come_from_the_usual_places(
    ftp_server, tmp_path: Path, source: str
) -> None:
    """fsspec's own configuration (FSSPEC_FTP_USERNAME...), or ~/.netrc."""
    if source == "environment":
        env = {
            "FSSPEC_FTP_USERNAME": ftp_server.user,
            "FSSPEC_FTP_PASSWORD": ftp_server.password,
        }
    else:
        home = tmp_path / "home"
        home.mkdir()
        netrc = home / ".netrc"
        netrc.write_text(
            f"machine 127.0.0.1 login {ftp_server.user} "
            f"password {ftp_server.password}\n"
        )
        netrc.chmod(0o600)
        env = {"HOME": str(home)}
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    name = f"creds-{source}"
    done = cli("mirror", str(local), no_login(ftp_server, name), "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert (ftp_server.path(name) / "a.txt").read_text() == "a\n"


def test_query_parameters_are_storage_options(ftp_server) -> None:
    place = open_replica(ftp_server.url("query") + "?timeout=7&encoding=utf-8")
    assert place.target.options["timeout"] == 7  # JSON: a number
    assert "timeout" not in place.identity and "?" not in place.root
    place.open(create=True)
    assert place.fs.timeout == 7
    place.close()


def test_the_ftp_lock_is_exclusive_without_an_exclusive_create(ftp_server) -> None:
    """FTP has no O_EXCL: a claim is written, the claims listed, and ours
    renamed into place only when it is alone."""
    url = ftp_server.url("lock")
    first, second = open_replica(url), open_replica(url)
    first.open(create=True)
    second.open()
    assert first.meta_create("lock", b"first")
    assert not second.meta_create("lock", b"second")
    assert second.meta_read("lock") == b"first"
    first.meta_delete("lock")
    # a claim of someone else's in flight: we back off, and leave it be
    meta = ftp_server.path("lock") / ".accord"
    (meta / "lock.claim-theirs").write_bytes(b"theirs")
    assert not second.meta_create("lock", b"second")
    assert (meta / "lock.claim-theirs").exists()
    assert second.meta_read("lock") is None
    assert second.meta_list("") == sorted(second.meta_list(""))
    assert "lock.claim-theirs" not in " ".join(second.meta_list(""))


def test_a_webdav_folder_syncs_from_the_cli(webdav_server, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("a\n")
    url = webdav_server.url("dav-cli")
    done = cli("sync", str(local), url, "--yes")
    assert done.returncode == 0, done.stderr
    assert webdav_server.password not in done.stdout + done.stderr
    served = webdav_server.path("dav-cli")
    assert (served / "a.txt").read_text() == "a\n"
    (served / "a.txt").write_text("changed on the server\n")
    assert cli("sync", str(local), url, "--yes").returncode == 0
    assert (local / "a.txt").read_text() == "changed on the server\n"
    # the login from fsspec's configuration instead of the URL
    bare = url.split("&auth=")[0]
    env = {
        "FSSPEC_WEBDAV_AUTH": f'["{webdav_server.user}", "{webdav_server.password}"]'
    }
    assert cli("status", str(local), bare, env=env).returncode == 0


def test_an_http_folder_is_a_read_only_mirror_source(
    http_server, tmp_path: Path
) -> None:
    served = http_server.path("site")
    (served / "sub").mkdir(parents=True)
    (served / "page.html").write_text("<p>hi</p>\n")
    (served / "sub" / "a b é.txt").write_text("x\n")
    url = http_server.url("site")
    target = tmp_path / "www"
    done = cli("mirror", url, str(target), "--yes")
    assert done.returncode == 0, done.stderr
    assert (target / "sub" / "a b é.txt").read_text() == "x\n"
    assert (target / "page.html").read_text() == "<p>hi</p>\n"
    assert cli("mirror", url, str(target), "--yes").stdout.startswith("nothing")
    refused = cli("sync", url, str(tmp_path / "other"), "--yes")
    assert refused.returncode == 1 and "read-only" in refused.stderr
    assert not (tmp_path / "other").exists()
    refused = cli("mirror", str(target), url, "--yes")
    assert refused.returncode == 1 and "read-only" in refused.stderr
    assert sorted(p.name for p in served.rglob("*")) == [
        "a b é.txt",
        "page.html",
        "sub",
    ]


def test_a_missing_protocol_package_is_named(monkeypatch) -> None:
    fsspec.register_implementation(
        "nopkg",
        "accord_missing_package_xyz.FileSystem",
        clobber=True,
        errtxt="Install accord-missing-package-xyz to access nopkg",
    )
    with pytest.raises(MissingDependency) as caught:
        open_replica("nopkg://somewhere/x")
    assert "accord-missing-package-xyz" in caught.value.message
    assert caught.value.hint


def test_a_missing_protocol_package_is_named_by_the_cli(tmp_path: Path) -> None:
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    done = cli("sync", "gcs://bucket/x", str(tmp_path / "y"))
    assert done.returncode == 1
    assert "pip install gcsfs" in done.stderr
