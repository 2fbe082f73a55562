"""A real ``accord watch --json`` process, and waiting for what it says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LONG = 180.0  # generous: the machine is small and shared


class WatchProcess:
    """``accord watch ARGS --json``; its events as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "accord", "watch", *args, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.stderr = ""
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            with self._lock:
                self.events.append(event)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr += line

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    def wait(
        self, what: Callable[[], Any], timeout: float = LONG, why: str = ""
    ) -> Any:
        """Poll ``what`` until it is true; fail with the events so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"waited in vain {why}: exit {self.proc.poll()}\n"
            f"events: {self.events[-30:]}\nstderr: {self.stderr[-3000:]}"
        )

    def wait_event(self, kind: str, after: int = 0, **fields: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            with self._lock:
                for event in self.events[after:]:
                    if event["event"] == kind and all(
                        event.get(k) == v for k, v in fields.items()
                    ):
                        return event
            return None

        return self.wait(found, why=f"for {kind} {fields}")

    def idle(self) -> bool:
        """The last run ended and nothing is pending since."""
        with self._lock:
            kinds = [
                e["event"]
                for e in self.events
                if e["event"] not in ("notice", "watching")
            ]
        return bool(kinds) and kinds[-1] == "done"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        for reader in self._readers:
            reader.join(30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> WatchProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (accord's own folder left out)."""
    found = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] == ".accord" or not path.is_file():
            continue
        found[rel] = path.read_bytes()
    return found


def converge(
    watcher: WatchProcess, *roots: Path, expect: dict[str, bytes] | None = None
) -> dict[str, bytes]:
    """Wait until the trees agree (and hold ``expect``) and the watcher rests."""

    def agreed() -> dict[str, bytes] | None:
        try:
            trees = [tree(root) for root in roots]
        except OSError:  # a file went while it was read
            return None
        if any(t != trees[0] for t in trees) or not watcher.idle():
            return None
        if expect is not None and trees[0] != expect:
            return None
        return trees[0] or ({} if expect == {} else None)

    found = watcher.wait(agreed, why="for the trees to agree")
    return dict(found)
