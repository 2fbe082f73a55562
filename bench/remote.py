"""accord against rsync over SSH, rclone and aws s3 sync, to remote places.

    python bench/remote.py                       # 20,000 files, SFTP and S3
    python bench/remote.py --files 2000 --only sftp

It starts its own servers on 127.0.0.1 with ``scripts/servers/`` (OpenSSH
sshd; moto_server for S3, which enforces conditional writes but keeps
everything in one Python process's memory, so S3 figures rank clients
against a slow server, not against AWS). For each target it times a first
copy of the same generated data and a no-op re-sync, one run each, and
prints ratios (tool time / accord time: above 1, accord is faster).

Tool settings, so that all do the same job:
  rsync   -a -e "ssh -i KEY -o UserKnownHostsFile=... -p PORT"
  rclone  on-the-fly remotes (:sftp,...: and :s3,provider=Other,...:),
          sftp with disable_hashcheck=true (its default hashes each file over
          a new SSH session, 40x slower here), s3 with --checksum for the no-op
  aws     `aws s3 sync` from awscli in its own virtualenv (its botocore pin
          differs from accord's); install with: python -m venv /tmp/awsvenv &&
          /tmp/awsvenv/bin/pip install awscli
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_dataset import small_files  # noqa: E402
from run import find_rclone, timed  # noqa: E402

SERVERS = HERE.parent / "scripts" / "servers"
AWS = os.environ.get("AWS_CLI", "/tmp/awsvenv/bin/aws")


def start(script: str, folder: Path, variable: str) -> tuple[dict[str, str], dict]:
    env = {**os.environ, variable: str(folder), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(SERVERS / script), "start"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    settings = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        settings[name] = shlex.split(value)[0] if value.strip() else ""
    return settings, env


def stop(script: str, env: dict) -> None:
    subprocess.run(["bash", str(SERVERS / script), "stop"], env=env, check=False)


def report(rows: list[tuple[str, str, float, int]]) -> None:
    """Medians of each tool and phase (every run listed when there are
    several), and the ratio tool time / accord time (above 1: accord is
    faster), with accord / rsync beside it where rsync ran."""
    import statistics

    print()
    for target in sorted({r[0] for r in rows}):
        names = list(dict.fromkeys(r[1] for r in rows if r[0] == target))
        medians = {}
        for name in names:
            times = [r[2] for r in rows if r[0] == target and r[1] == name]
            peak = max(r[3] for r in rows if r[0] == target and r[1] == name)
            medians[name] = (statistics.median(times), peak, times)
        for phase in ("first", "noop"):
            base = medians.get(f"accord {phase}")
            for name, (seconds, rss, times) in medians.items():
                if not name.endswith(phase):
                    continue
                ratio = f"{seconds / base[0]:.2f}" if base else "-"
                runs = ", ".join(f"{s:.2f}" for s in times) if len(times) > 1 else ""
                print(
                    f"  {target:<5} {name:<24} {seconds:7.2f} s  "
                    f"{rss / 1024:6.1f} MiB  ratio {ratio}  {runs}"
                )
            for name, rsync in medians.items():
                if base and name.startswith("rsync -e ssh") and name.endswith(phase):
                    print(
                        f"  {target:<5} accord / {name[: -len(phase) - 1]}, "
                        f"{phase}: {base[0] / rsync[0]:.2f}"
                    )


def run_pair(
    rows: list, target: str, tool: str, first: list[str], noop: list[str], env: dict
) -> None:
    for phase, cmd in (("first", first), ("noop", noop)):
        seconds, code, rss = timed(cmd, env)
        flag = "" if code == 0 else f"  (exit {code})"
        print(f"  {target:<5} {tool} {phase}: {seconds:.2f} s{flag}", flush=True)
        rows.append((target, f"{tool} {phase}", seconds, rss))


def bench_sftp(
    rows: list,
    data: Path,
    work: Path,
    server_dir: Path | None,
    repeat: int = 1,
    plain: bool = True,
    others: tuple[str, ...] = ("rsync", "rclone"),
) -> None:
    """Each tool's first copy and no-op, ``repeat`` times in turn (a fresh
    target each time), so medians can be taken on a busy machine."""
    settings, env = start("sshd.sh", work / "sshd", "ACCORD_SSHD_DIR")
    try:
        port, key, known = (
            settings["SFTP_PORT"],
            settings["SSH_KEY"],
            settings["SSH_KNOWN_HOSTS"],
        )
        root = server_dir or Path(settings["SFTP_ROOT"])
        for turn in range(repeat):
            for name in ("accord", "plain", "rsync", "rsyncc", "rclone"):
                shutil.rmtree(root / name, ignore_errors=True)
            shutil.rmtree(work / "state-sftp", ignore_errors=True)
            if repeat > 1:
                print(f"  turn {turn + 1} of {repeat}", flush=True)
            sftp_turn(rows, data, work, root, (port, key, known), plain, others)
    finally:
        stop("sshd.sh", env)


def sftp_turn(
    rows: list,
    data: Path,
    work: Path,
    root: Path,
    server: tuple[str, str, str],
    plain: bool,
    others: tuple[str, ...] = ("rsync", "rclone"),
) -> None:
    port, key, known = server
    state = {"ACCORD_STATE_DIR": str(work / "state-sftp")}
    url = (
        f"sftp://root@127.0.0.1:{port}{root}/accord?identity={key}&known_hosts={known}"
    )
    accord = [sys.executable, "-m", "accord", "mirror", str(data), url, "-q", "-y"]
    run_pair(rows, "sftp", "accord", accord, accord, state)
    if plain:
        off = [
            *accord[:5],
            url.replace("/accord?", "/plain?") + "&agent=off",
            "-q",
            "-y",
        ]
        run_pair(rows, "sftp", "accord agent=off", off, off, state)
    ssh = f"ssh -i {key} -o UserKnownHostsFile={known} -o BatchMode=yes -p {port}"
    rsync = ["rsync", "-a", "-e", ssh, f"{data}/", f"root@127.0.0.1:{root}/rsync/"]
    if "rsync" in others:
        run_pair(rows, "sftp", "rsync -e ssh", rsync, rsync, {})
    if "rsync-ciphers" in others:
        # the same with the ciphers accord's own ssh asks for on this machine
        ciphers = accord_ciphers()
        target = f"root@127.0.0.1:{root}/rsyncc/"
        same = [*rsync[:3], f"{ssh} {ciphers}", f"{data}/", target]
        run_pair(rows, "sftp", "rsync -e ssh, accord's ciphers", same, same, {})
    rclone = find_rclone() if "rclone" in others else None
    if rclone:
        remote = (
            f":sftp,host=127.0.0.1,port={port},user=root,key_file={key},"
            f"known_hosts_file={known},disable_hashcheck=true:{root}/rclone"
        )
        cmd = [rclone, "sync", str(data), remote]
        run_pair(rows, "sftp", "rclone sync", cmd, cmd, {"RCLONE_CONFIG": "/dev/null"})


def accord_ciphers() -> str:
    """The ``-o Ciphers=...`` accord's ssh adds here (empty when none)."""
    from accord.replicas.ssh_launch import cipher_options

    binary = shutil.which("ssh") or "ssh"
    return " ".join(cipher_options(binary, os.environ.get("ACCORD_SSH_CONFIG")))


def bench_s3(rows: list, data: Path, work: Path) -> None:
    settings, env = start("s3.sh", work / "s3", "ACCORD_S3_DIR")
    endpoint = settings["S3_ENDPOINT"]
    creds = {
        "AWS_ACCESS_KEY_ID": settings["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": settings["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
    }
    try:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for bucket in ("accord", "rclone", "awscli"):
            client.create_bucket(Bucket=bucket)
        state = {**creds, "ACCORD_STATE_DIR": str(work / "state-s3")}
        url = f"s3://accord/data?endpoint_url={endpoint}"
        accord = [sys.executable, "-m", "accord", "mirror", str(data), url, "-q", "-y"]
        run_pair(rows, "s3", "accord", accord, accord, state)
        rclone = find_rclone()
        if rclone:
            remote = (
                f":s3,provider=Other,endpoint='{endpoint}',access_key_id=testing,"
                "secret_access_key=testing,region=us-east-1:rclone/data"
            )
            first = [rclone, "sync", str(data), remote]
            noop = [*first, "--checksum"]
            run_pair(
                rows, "s3", "rclone sync", first, noop, {"RCLONE_CONFIG": "/dev/null"}
            )
        if Path(AWS).exists():
            cmd = [
                AWS,
                "--endpoint-url",
                endpoint,
                "s3",
                "sync",
                str(data),
                "s3://awscli/data",
                "--no-progress",
                "--only-show-errors",
            ]
            run_pair(rows, "s3", "aws s3 sync", cmd, cmd, creds)
        else:
            print(f"  s3    aws s3 sync: skipped, {AWS} not found (see --help)")
    finally:
        stop("s3.sh", env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--only", default="sftp,s3")
    parser.add_argument("--work", type=Path, default=Path("/tmp/accord-bench-remote"))
    parser.add_argument(
        "--server-dir",
        type=Path,
        help="where the SSH server's copies go (e.g. a tmpfs such as /dev/shm/x: "
        "this machine kind's disk makes file creation 20-800 us depending on "
        "which metadata its memory reclaim has evicted, which swamps the tools)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="SFTP runs of each tool, in turn"
    )
    parser.add_argument(
        "--no-plain", action="store_true", help="leave out accord ?agent=off"
    )
    parser.add_argument(
        "--others",
        default="rsync,rclone",
        help="the other SFTP tools, of rsync, rsync-ciphers (rsync with the "
        "ciphers accord's ssh asks for), rclone",
    )
    args = parser.parse_args()
    work = args.work / time.strftime("%Y%m%dT%H%M%S")
    work.mkdir(parents=True)
    data = work / "data"
    total = small_files(data, args.files, seed=42)
    print(f"{args.files:,} files, {total / 2**20:,.0f} MiB; one run each")
    rows: list[tuple[str, str, float, int]] = []
    try:
        if "sftp" in args.only:
            if args.server_dir:
                shutil.rmtree(args.server_dir, ignore_errors=True)
                args.server_dir.mkdir(parents=True)
            bench_sftp(
                rows,
                data,
                work,
                args.server_dir,
                args.repeat,
                not args.no_plain,
                tuple(args.others.split(",")),
            )
        if "s3" in args.only:
            bench_s3(rows, data, work)
    finally:
        report(rows)
        shutil.rmtree(work, ignore_errors=True)
        if args.server_dir:
            shutil.rmtree(args.server_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
