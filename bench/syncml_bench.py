"""SyncML notes: accord against SyncEvolution, both roles, timed.

    bash scripts/servers/syncevolution.sh start   # (the bench starts it if needed)
    .venv/bin/python bench/syncml_bench.py [--notes 10000] [--changes 100]

Three pairs, the same data (N notes of about 80 bytes, then C changes on
the client: half edits, a quarter new notes, a quarter deletes):

* SyncEvolution client -> SyncEvolution server (what a user has today),
* accord client (``accord sync``) -> SyncEvolution server,
* SyncEvolution client -> accord server (``accord syncml serve``),
* SyncEvolution client -> an accord hub's ``/syncml`` (``accord hub
  serve``, SQLite; the notes become files of a hub collection).

For each: the first sync (a slow sync of N notes into an empty store) and a
two-way sync of C changes, wall time of the client command, and peak RSS of
the client process and of the server (the server's largest process, read
sampled from /proc every 50 ms while the sync runs: the largest VmRSS of
SyncEvolution's server processes, or of accord's server process). Ratios are
SyncEvolution-to-SyncEvolution time / this pair's time (above 1: faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "servers" / "syncevolution.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(root: Path, shim: str | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "LD_PRELOAD")
    }
    env.update(
        HOME=f"{root}/home",
        XDG_CONFIG_HOME=f"{root}/config",
        XDG_DATA_HOME=f"{root}/data",
        XDG_CACHE_HOME=f"{root}/cache",
    )
    if shim:
        env["LD_PRELOAD"] = shim
    return env


def se(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        ["syncevolution", "--daemon=no", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=3600,
    )


class Sampler:
    """Peak RSS of processes whose command line matches, sampled."""

    def __init__(self, needles: tuple[str, ...]) -> None:
        self.needles = needles
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if not any(n.encode() in cmd for n in self.needles):
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except OSError:
                    continue
            time.sleep(0.05)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one command (its own process)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{cmd[:3]} failed:\n{out.read()[-3000:].decode()}")
    return seconds, usage.ru_maxrss / 1024


def make_notes(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"n{i}").write_text(
            f"Note {i}\nbody of note {i}, some filler text to make a realistic memo\n"
        )


def change(folder: Path, count: int) -> None:
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    edits, adds, deletes = count // 2, count // 4, count - count // 2 - count // 4
    for p in files[:edits]:
        p.write_text(p.read_text() + "edited\n")
    for p in files[edits : edits + deletes]:
        p.unlink()
    for i in range(adds):
        (folder / f"new{i}").write_text(f"New note {i}\nadded for the bench\n")


class SyncEvoServer:
    def __init__(self, work: Path) -> None:
        self.dir = work / "se"
        env = {
            **os.environ,
            "ACCORD_SYNCEVO_DIR": str(self.dir),
            "PYTHON": sys.executable,
        }
        out = subprocess.run(
            ["bash", str(SCRIPT), "start"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        values = dict(line.split("=", 1) for line in out.split())
        self.url, self.shim = values["SYNCEVO_URL"], values["SYNCEVO_SHIM"]
        self.env = env

    def store(self, name: str, device: str) -> Path:
        notes = self.dir / "stores" / name
        notes.mkdir(parents=True)
        senv = env_for(self.dir / "server")
        se(
            senv,
            "--configure",
            "--template",
            "none",
            "--sync-property",
            "keyring=no",
            "--datastore-property",
            "backend=file",
            "--datastore-property",
            "databaseFormat=text/plain",
            "--datastore-property",
            f"database=file://{notes}",
            f"@{name}",
            "notes",
        )
        se(
            senv,
            "--configure",
            "--template",
            "none",
            "--sync-property",
            "PeerIsClient=1",
            "--sync-property",
            "username=u",
            "--sync-property",
            "password=p",
            "--sync-property",
            f"remoteDeviceId={device}",
            "--sync-property",
            "RetryDuration=60",
            "--sync-property",
            "printChanges=0",
            "--sync-property",
            "dumpData=0",
            "--datastore-property",
            "sync=two-way",
            f"client@{name}",
            "notes",
        )
        return notes

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self.env, capture_output=True)


def se_client(
    root: Path, shim: str, url: str, device: str, user: str = "u", password: str = "p"
) -> tuple[Path, dict[str, str]]:
    env = env_for(root, shim)
    notes = root / "notes"
    notes.mkdir(parents=True)
    se(
        env,
        "--configure",
        "--template",
        "none",
        "--sync-property",
        f"syncURL={url}",
        "--sync-property",
        f"username={user}",
        "--sync-property",
        f"password={password}",
        "--sync-property",
        f"deviceId={device}",
        "--sync-property",
        "keyring=no",
        "--sync-property",
        "enableWBXML=0",
        "--sync-property",
        "printChanges=0",
        "--sync-property",
        "dumpData=0",
        "--sync-property",
        "preventSlowSync=0",
        "--datastore-property",
        "backend=file",
        "--datastore-property",
        "databaseFormat=text/plain",
        "--datastore-property",
        f"database=file://{notes}",
        "--datastore-property",
        "uri=notes",
        "--datastore-property",
        "sync=two-way",
        "srv",
        "notes",
    )
    return notes, env


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="accord-syncml-bench-"))
    rows: list[tuple[str, str, float, float, float]] = []
    server = SyncEvoServer(work)
    server_needles = (
        "syncevo-dbus-server",
        "syncevo-dbus-helper",
        "syncevo-http-server",
    )
    try:
        if "se-se" in args.only:
            se_se(args, work, server, server_needles, rows)
        if "accord-se" in args.only:
            accord_se(args, work, server, server_needles, rows)
        if "se-accord" in args.only:
            se_accord(args, work, server, rows)
        if "se-hub" in args.only:
            se_hub(args, work, server, rows)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(args, rows)


def se_se(
    args: argparse.Namespace,
    work: Path,
    server: SyncEvoServer,
    server_needles: tuple[str, ...],
    rows: list,
) -> None:
    """SyncEvolution's client and server: what a user has today."""
    server.store("a", "dev-a")
    notes, env = se_client(work / "ca", server.shim, server.url, "dev-a")
    make_notes(notes, args.notes)
    for label, mode in (("slow sync", ["--sync", "slow"]), ("changes", [])):
        if label == "changes":
            change(notes, args.changes)
        with Sampler(server_needles) as srv:
            sec, rss = timed(
                ["syncevolution", "--daemon=no", *mode, "srv", "notes"], env
            )
        rows.append(
            (
                "SyncEvolution -> SyncEvolution server",
                label,
                sec,
                rss,
                srv.peak_kib / 1024,
            )
        )


def accord_se(
    args: argparse.Namespace,
    work: Path,
    server: SyncEvoServer,
    server_needles: tuple[str, ...],
    rows: list,
) -> None:
    """accord's client (accord sync) against SyncEvolution's server."""
    server.store("b", "dev-b")
    local = work / "cb"
    make_notes(local, args.notes)
    aenv = {**os.environ, "PW": "p", "ACCORD_STATE_DIR": str(work / "state-b")}
    url = f"syncml+{server.url}?store=notes&device=dev-b"
    cmd = [
        sys.executable,
        "-m",
        "accord",
        "sync",
        str(local),
        url,
        "--user",
        "u",
        "--password-env",
        "PW",
        "--yes",
        "-q",
    ]
    for label in ("slow sync", "changes"):
        if label == "changes":
            change(local, args.changes)
        with Sampler(server_needles) as srv:
            sec, rss = timed(cmd, aenv)
        rows.append(
            ("accord -> SyncEvolution server", label, sec, rss, srv.peak_kib / 1024)
        )


def se_accord(
    args: argparse.Namespace, work: Path, server: SyncEvoServer, rows: list
) -> None:
    """SyncEvolution's client against accord's server (accord syncml serve)."""
    served = work / "served"
    served.mkdir()
    port = free_port()
    senv = {**os.environ, "PW": "p", "ACCORD_STATE_DIR": str(work / "state-c")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accord",
            "syncml",
            "serve",
            str(served),
            "--port",
            str(port),
            "--user",
            "u",
            "--password-env",
            "PW",
        ],
        env=senv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        notes, env = se_client(
            work / "cc", server.shim, f"http://127.0.0.1:{port}/syncml", "dev-c"
        )
        make_notes(notes, args.notes)
        for label, mode in (("slow sync", ["--sync", "slow"]), ("changes", [])):
            if label == "changes":
                change(notes, args.changes)
            with Sampler((f"--port\x00{port}",)) as srv:
                sec, rss = timed(
                    ["syncevolution", "--daemon=no", *mode, "srv", "notes"], env
                )
            rows.append(
                (
                    "SyncEvolution -> accord server",
                    label,
                    sec,
                    rss,
                    srv.peak_kib / 1024,
                )
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def make_hub(folder: Path, user: str, password: str) -> None:
    """A hub with ``user`` (MD5 digest kept) allowed to write ``notes``."""
    from accord.hub import accounts, init_hub, items
    from accord.hub.accounts import Account
    from accord.hub.store import open_hub

    init_hub(folder)
    hub = open_hub(folder)
    try:
        with hub.writer.begin() as conn:
            boss = accounts.find_user(conn, "admin")
            col = items.collection(
                conn, Account(boss.id, "admin", True), "notes", create=True
            )
            accounts.add_user(conn, user)
            accounts.set_password(conn, user, password, syncml_md5=True)
            accounts.grant(conn, user, col.id, "write")
    finally:
        hub.close()


def se_hub(
    args: argparse.Namespace, work: Path, server: SyncEvoServer, rows: list
) -> None:
    """SyncEvolution's client against an accord hub's /syncml."""
    folder = work / "hub"
    make_hub(folder, "u", "bench-password")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord", "hub", "serve", str(folder),
         "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        notes, env = se_client(
            work / "cd",
            server.shim,
            f"http://127.0.0.1:{port}/syncml",
            "dev-d",
            password="bench-password",
        )
        make_notes(notes, args.notes)
        for label, mode in (("slow sync", ["--sync", "slow"]), ("changes", [])):
            if label == "changes":
                change(notes, args.changes)
            with Sampler((f"--port\x00{port}",)) as srv:
                sec, rss = timed(
                    ["syncevolution", "--daemon=no", *mode, "srv", "notes"], env
                )
            pair = "SyncEvolution -> accord hub /syncml"
            rows.append((pair, label, sec, rss, srv.peak_kib / 1024))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def report(args: argparse.Namespace, rows: list) -> None:
    base = {
        label: sec
        for pair, label, sec, _, _ in rows
        if pair.startswith("SyncEvolution -> SyncEvolution")
    }
    print(f"{args.notes} notes, then {args.changes} changes\n")
    if not base:
        base = {label: sec for _, label, sec, _, _ in rows}
    print("| pair | sync | seconds | ratio | client peak RSS | server peak RSS |")
    print("|---|---|---|---|---|---|")
    for pair, label, sec, rss, srv in rows:
        print(
            f"| {pair} | {label} | {sec:.2f} | {base[label] / sec:.2f} | "
            f"{rss:.1f} MiB | {srv:.1f} MiB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument(
        "--only",
        default="se-se,accord-se,se-accord,se-hub",
        help="pairs to run (comma-separated; ratios need se-se)",
    )
    args = parser.parse_args()
    args.only = args.only.split(",")
    run(args)


if __name__ == "__main__":
    main()
