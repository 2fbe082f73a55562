"""A TCP relay on 127.0.0.1 that holds every byte for a fixed time each way.

    with delayed(port, 10, known_hosts) as slow_port: ...

The benches' sshd is on loopback, where a round trip costs a fraction of a
millisecond: a change that saves round trips shows nothing there. Kernel
delay (``tc qdisc ... netem``) needs root and a kernel built with netem;
this relay needs neither and leaves the loopback device alone. Each chunk
read from one side is written to the other ``ms`` milliseconds after it
arrived, in order, with Nagle off on both sides: a request and its answer
take ``2 * ms`` more (the round trip time of a link ``ms`` long each way),
a stream in flight is not slowed. What it does not model: loss, bandwidth,
TCP's own slow start over the delayed path. It runs in a thread of the
bench's process (which only waits for its children meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def delayed(port: int, ms: float, known_hosts: str | None = None) -> Iterator[int]:
    """Relay a new port of 127.0.0.1 to ``port`` with ``ms`` each way; yields
    the new port. With ``known_hosts``, the host key recorded for ``port``
    is recorded for the new port too (ssh names a host by its port)."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []
    started = threading.Event()

    async def serve() -> asyncio.base_events.Server:
        server = await asyncio.start_server(
            lambda r, w: _pair(r, w, port, ms / 1000), "127.0.0.1", 0
        )
        ready.append(server.sockets[0].getsockname()[1])
        return server

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(serve())
        started.set()
        loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(loop)  # connections still open: dropped
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="delay-relay", daemon=True)
    thread.start()
    started.wait()
    if known_hosts:
        _alias_host_key(Path(known_hosts), port, ready[0])
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def _alias_host_key(known: Path, port: int, alias: int) -> None:
    """Record the host key known for ``port`` under ``alias`` too."""
    lines = known.read_text().splitlines()
    prefix = f"[127.0.0.1]:{port} "
    extra = [
        f"[127.0.0.1]:{alias} " + x[len(prefix) :]
        for x in lines
        if x.startswith(prefix)
    ]
    known.write_text("\n".join(lines + extra) + "\n")


async def _pair(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, delay: float
) -> None:
    """One client's connection: a connection to ``port`` and both directions
    relayed with the delay, until either side closes."""
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    for w in (writer, up_writer):
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # cancelled: the relay stops with the connection still open
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(
            _direction(reader, up_writer, delay),
            _direction(up_reader, writer, delay),
            return_exceptions=True,
        )
    for w in (writer, up_writer):
        w.close()


async def _direction(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Read chunks as they come; write each ``delay`` seconds after it came."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            chunk = await reader.read(1 << 16)
            queue.put_nowait((loop.time() + delay, chunk))
            if not chunk:
                break
    finally:
        queue.put_nowait((0.0, b""))
        await sender
