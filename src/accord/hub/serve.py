"""Run a hub: uvicorn serving the app, TLS with the user's certificate,
structured (JSON) logs, and a clean stop on SIGTERM or Ctrl-C.

On SIGTERM the server stops accepting connections, lets requests in
flight finish (a write is acknowledged only once committed, so none is
lost), ends the live event streams, then closes the store.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from accord.errors import ConfigError
from accord.hub.app import build_app
from accord.hub.store import open_hub
from accord.registry import url_host

__all__ = ["JsonLogs", "serve"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "color_message",
}


class JsonLogs(logging.Formatter):
    """One JSON object a line: time, level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                data[name] = value
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def _logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogs())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def serve(
    folder: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8470,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    db: str | None = None,
    blobs: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve the hub in ``folder`` until SIGTERM or Ctrl-C."""
    import uvicorn

    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    for path in (tls_cert, tls_key):
        if path and not Path(path).is_file():
            raise ConfigError(f"no such file: {path}")
    _logging(log_level)
    hub = open_hub(folder, db=db, blobs=blobs)
    app = build_app(hub)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=30,
        server_header=False,
        lifespan="off",
    )
    server = _Server(config)
    server.hub_state = hub.state
    log = logging.getLogger("accord.hub")
    scheme = "https" if tls_cert else "http"
    log.info(
        "serving",
        extra={
            "url": f"{scheme}://{url_host(host)}:{port}",
            "hub": hub.hub_id,
            "pid": os.getpid(),
        },
    )
    started = time.monotonic()
    # uvicorn handles SIGTERM and Ctrl-C itself, then raises the signal
    # again once stopped: by then the stop is clean, so it must not turn
    # into an interruption (exit 0, not 130)
    previous = {s: signal.signal(s, _stopped) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    except SystemExit:  # uvicorn's way to say it could not start
        server.started = False
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _wait_for_runs(hub, log)
        hub.close()
        log.info("stopped", extra={"seconds": round(time.monotonic() - started, 1)})
    if not server.started:
        raise ConfigError(
            f"the hub could not listen on {host}:{port}",
            hint="is another program using that port? see the log above",
        )


def _wait_for_runs(hub: Any, log: logging.Logger) -> None:
    """Let the dashboard's syncs in progress finish (30 s at most)."""
    runs = hub.state.get("dashboard_runs")
    if runs is not None and not runs.wait(30):
        log.warning("stopped with a dashboard sync still running")


def _stopped(signum: int, frame: Any) -> None:
    """A stop signal seen again after the clean stop: nothing left to do."""


class _Server:
    """uvicorn's server, telling the hub when a stop was asked for (so the
    endless event streams end and the stop completes)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            hub_state: dict[str, Any]

            def handle_exit(self, sig: int, frame: Any) -> None:
                self.hub_state["stopping"] = True
                super().handle_exit(sig, frame)

        return Server(config)
