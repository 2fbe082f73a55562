"""accord's agent against rsync -e ssh: wall time and CPU seconds of both ends.

    python bench/remote_cpu.py --server-dir /dev/shm/x
    python bench/remote_cpu.py --server-dir /dev/shm/x --base-src /tmp/old/src

On a machine whose cores are shared with other work, wall times of one run
swing by 2x; the CPU each tool spends does not. This runs a first copy and
a no-op for each tool in turn, ``--rounds`` times, and prints each run's
wall time and the CPU seconds of the client (with its ``ssh``) and of the
server-side process (accord's agent, or rsync's receiver: each started
through ``/usr/bin/time``), and sshd's own (the session's, where the
cipher's work is: what sshd's ended children used, less the server-side
process), then medians and ratios accord / rsync.
``--base-src`` adds another accord (a ``src`` folder of an older checkout,
run with this Python) as a third tool; ``--rsync-ciphers`` rsync with the
ciphers accord's ssh asks for (``rsyncc``); ``--delay MS`` puts a relay
holding every byte MS milliseconds each way between both tools and sshd
(``bench/delay.py``: a link of 2 x MS round trip); ``--sync`` runs accord's
two-way ``sync`` instead of ``mirror``. The agent runs on the
interpreter ``python3`` leads to (not through a wrapper such as pyenv's
shim, which costs a shell's start).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from delay import delayed  # noqa: E402
from gen_dataset import small_files  # noqa: E402
from remote import accord_ciphers, start, stop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-dir", type=Path, required=True)
    parser.add_argument("--base-src", type=Path, help="an older accord's src/")
    parser.add_argument(
        "--rsync-ciphers",
        action="store_true",
        help="also rsync with the ciphers accord's ssh asks for (tool rsyncc)",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="accord runs a two-way sync, not a mirror (rsync stays one-way)",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0,
        help="milliseconds each way added between the tools and sshd",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="accord-remote-cpu-"))
    data = work / "data"
    total = small_files(data, args.files, seed=42)
    print(f"{args.files:,} files, {total / 2**20:,.0f} MiB")
    settings, env = start("sshd.sh", work / "sshd", "ACCORD_SSHD_DIR")
    relay = contextlib.ExitStack()
    if args.delay:
        settings["SFTP_PORT"] = str(
            relay.enter_context(
                delayed(
                    int(settings["SFTP_PORT"]), args.delay, settings["SSH_KNOWN_HOSTS"]
                )
            )
        )
        print(f"relay with {args.delay:g} ms each way on port {settings['SFTP_PORT']}")
    log = work / "remote-cpu.log"
    wrap = "#!/bin/sh\nexec /usr/bin/time -a -o {log} -f '%U %S' {prog} \"$@\"\n"
    # the interpreter itself, not a wrapper (pyenv's shim is a shell script)
    python = subprocess.run(
        ["python3", "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for name, prog in (("py", python), ("rsync", "rsync")):
        script = work / f"remote-{name}.sh"
        script.write_text(wrap.format(log=log, prog=prog))
        script.chmod(0o755)
    port, key, known = (
        settings["SFTP_PORT"],
        settings["SSH_KEY"],
        settings["SSH_KNOWN_HOSTS"],
    )
    quiet = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    tools = ["accord", "rsync"] + (["base"] if args.base_src else [])
    tools += ["rsyncc"] if args.rsync_ciphers else []
    ciphers = accord_ciphers() if args.rsync_ciphers else ""

    def command(tool: str) -> tuple[list[str], dict[str, str]]:
        if tool in ("rsync", "rsyncc"):
            ssh = (
                f"ssh -i {key} -o UserKnownHostsFile={known} -o BatchMode=yes -p {port}"
            )
            if tool == "rsyncc":
                ssh += f" {ciphers}"
            return [
                "rsync", "-a", f"--rsync-path={work / 'remote-rsync.sh'}", "-e", ssh,
                f"{data}/", f"root@127.0.0.1:{args.server_dir}/{tool}/",
            ], quiet  # fmt: skip
        url = (
            f"sftp://root@127.0.0.1:{port}{args.server_dir}/{tool}?identity={key}"
            f"&known_hosts={known}&python={work / 'remote-py.sh'}"
        )
        env = dict(quiet, ACCORD_STATE_DIR=str(work / f"state-{tool}"))
        if tool == "base":
            env["PYTHONPATH"] = str(args.base_src)
        verb = "sync" if args.sync else "mirror"
        cmd = [sys.executable, "-m", "accord", verb, str(data), url, "-q", "-y"]
        return cmd, env

    server_pid = int((work / "sshd" / "server.pid").read_text())
    ticks = os.sysconf("SC_CLK_TCK")

    def sshd_children() -> float:
        """CPU seconds of sshd's ended children: each session's sshd, with
        what it ran (the agent or rsync's receiver, counted apart too)."""
        fields = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1]
        cutime, cstime = fields.split()[13:15]
        return (int(cutime) + int(cstime)) / ticks

    def run(tool: str) -> tuple[float, float, float, float]:
        cmd, env = command(tool)
        log.write_text("")
        before = sshd_children()
        began = time.perf_counter()
        child = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - began
        assert child.stderr is not None
        if status:
            print(f"  FAILED ({tool}): {child.stderr.read().decode()[-400:]}")
        time.sleep(0.3)  # the server side's line lands after the client ends
        remote = sum(
            float(user) + float(system)
            for user, system in (
                line.split()
                for line in log.read_text().splitlines()
                if line[:1].isdigit()
            )
        )
        session = sshd_children() - before - remote  # sshd's own (the cipher)
        return wall, usage.ru_utime + usage.ru_stime, remote, session

    found: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    try:
        args.server_dir.mkdir(parents=True, exist_ok=True)
        for turn in range(args.rounds):
            for phase in ("first", "noop"):
                for tool in tools:
                    if phase == "first":
                        shutil.rmtree(args.server_dir / tool, ignore_errors=True)
                        shutil.rmtree(work / f"state-{tool}", ignore_errors=True)
                    got = run(tool)
                    found.setdefault((tool, phase), []).append(got)
                    print(
                        f"  round {turn + 1} {phase:<5} {tool:<6} wall {got[0]:6.2f} s"
                        f"  cpu client {got[1]:5.2f} s  server {got[2]:5.2f} s"
                        f"  sshd {got[3]:5.2f} s"
                        f"  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        relay.close()
        stop("sshd.sh", env)
        shutil.rmtree(args.server_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print()
    for phase in ("first", "noop"):
        medians = {}
        for tool in tools:
            rows = found[(tool, phase)]
            medians[tool] = [
                statistics.median(row[i] for row in rows) for i in range(4)
            ]
            wall, client, server, sshd = medians[tool]
            print(
                f"  median {phase:<5} {tool:<6} wall {wall:6.2f} s  cpu client "
                f"{client:5.2f} + server {server:5.2f} = {client + server:5.2f} s"
                f"  (+ sshd {sshd:4.2f} s)"
            )
        rsync = medians["rsync"]
        for tool in tools:
            if tool != "rsync":
                mine = medians[tool]
                print(
                    f"  {tool} / rsync -e ssh, {phase}: wall {mine[0] / rsync[0]:.2f}, "
                    f"cpu {(mine[1] + mine[2]) / (rsync[1] + rsync[2]):.2f}, "
                    f"with sshd {sum(mine[1:]) / sum(rsync[1:]):.2f}"
                )


if __name__ == "__main__":
    main()
