"""paramiko's SFTP client as plain SFTP uses it.

paramiko is imported only when a connection of its own is needed; its
client is made to keep names byte for byte (``exact_client``), and a
file's mode and times are set in one request (``set_attributes``). An
upload is closed by ``close_synced``: its last writes, the server's
``fsync@openssh.com`` of it and the close go out together, and every
answer is checked.
"""

from __future__ import annotations

import contextlib
import functools
import struct
from typing import TYPE_CHECKING, Any

from accord.errors import MissingDependency

if TYPE_CHECKING:
    import paramiko

__all__ = [
    "BLOCK",
    "FSYNC",
    "RequestUnsupported",
    "close_synced",
    "exact_client",
    "extensions",
    "load_paramiko",
    "no_delay",
    "raw",
    "set_attributes",
    "text",
]
BLOCK = 1 << 20  # bytes per read or write request
FSYNC = "fsync@openssh.com"  # OpenSSH's extension: fsync(2) of an open file


class RequestUnsupported(OSError):
    """The server does not do this request (SSH_FX_OP_UNSUPPORTED); paramiko
    raises a plain OSError with the server's text, this says which."""


def load_paramiko() -> Any:
    """paramiko, imported when a connection of its own is needed (it costs
    30 MiB; the agent through the system's ssh does not need it)."""
    try:
        import paramiko
    except ImportError:
        raise MissingDependency(
            "this sftp:// place needs paramiko: plain SFTP (?agent=off, or a "
            "server without Python), or no usable ssh command here",
            hint="pip install 'accord[sftp]'",
        ) from None
    return paramiko


def set_attributes(
    sftp: paramiko.SFTPClient, path: str, mode: int, seconds: int | None
) -> None:
    """Mode and times in one SETSTAT request (chmod + utime would be two)."""
    paramiko = load_paramiko()
    attr = paramiko.SFTPAttributes()
    attr.st_mode = mode
    if seconds is not None:
        attr.st_atime = attr.st_mtime = seconds
    sftp._request(paramiko.sftp.CMD_SETSTAT, raw(path), attr)  # one round trip


def close_synced(sftp: Any, handle: Any, *, sync: bool) -> bool:
    """Close ``handle``, a file written with pipelined writes, after asking
    the server to sync it to disk (``fsync@openssh.com``) when ``sync``:
    True when the server did. Its last bytes, the sync and the close are
    sent together and their answers read in order, each checked: one
    round trip, as paramiko's own close takes (which checks none of the
    writes' answers still outstanding: a write the server failed, its
    disk full, would leave the file short without a word). A server that
    does not sync (SSH_FX_OP_UNSUPPORTED, or the request denied by its
    settings: ``sftp-server -P``) gives False; any other failure raises,
    the file not known to be whole on the server's disk. Nothing else may
    wait on ``sftp`` while the file is written: a request waiting there
    takes the answers of writes in flight, which paramiko then drops (and
    this would wait for them forever)."""
    paramiko = load_paramiko()
    CMD_CLOSE, CMD_EXTENDED = paramiko.sftp.CMD_CLOSE, paramiko.sftp.CMD_EXTENDED
    handle.flush()  # what paramiko still buffers: pipelined writes too
    writes = list(handle._reqs)
    handle._reqs.clear()
    syncing = (
        sftp._async_request(type(None), CMD_EXTENDED, FSYNC, handle.handle)
        if sync
        else None
    )
    handle._closed = True  # closed here: paramiko must not close it again
    closing = sftp._async_request(type(None), CMD_CLOSE, handle.handle)
    for number in writes:
        sftp._read_response(number)  # raises the server's error, if any
    synced = False
    if syncing is not None:
        try:
            sftp._read_response(syncing)
            synced = True
        except (RequestUnsupported, PermissionError):
            pass
    sftp._read_response(closing)
    return synced


def extensions(data: bytes) -> dict[str, bytes]:
    """The (name, data) pairs of an SSH_FXP_VERSION after its version; a
    pair cut short ends the list."""
    found: dict[str, bytes] = {}
    at = 0
    while at < len(data):
        pair = []
        for _ in range(2):
            if at + 4 > len(data):
                return found
            (size,) = struct.unpack_from(">I", data, at)
            at += 4
            if at + size > len(data):
                return found
            pair.append(data[at : at + size])
            at += size
        found[pair[0].decode("utf-8", "replace")] = pair[1]
    return found


def raw(path: str) -> bytes:
    """A path as the server spells it: a name that is not UTF-8 was kept
    as surrogate escapes, which become its own bytes again."""
    return path.encode("utf-8", "surrogateescape")


def text(raw: bytes) -> str:
    """A name from the server, byte for byte (see ``raw``)."""
    return raw.decode("utf-8", "surrogateescape")


@functools.cache
def exact_client() -> Any:
    """paramiko's SFTP client with names kept byte for byte: paramiko
    encodes and decodes paths as strict UTF-8, so a name that is not UTF-8
    could neither be listed nor written. Paths go out through ``raw``;
    listed names, link targets and resolved paths come back through
    ``text``."""
    paramiko = load_paramiko()
    sftp = paramiko.sftp

    class ExactSFTPClient(paramiko.SFTPClient):  # type: ignore[misc]
        extensions: dict[str, bytes]  # what the server said it does

        def _send_version(self) -> int:
            """The version, and the extensions the server names with it
            (paramiko's own reads the version only)."""
            init = paramiko.Message()
            init.add_int(3)  # the version paramiko speaks
            self._send_packet(sftp.CMD_INIT, init)
            kind, data = self._read_packet()
            if kind != sftp.CMD_VERSION:
                raise sftp.SFTPError("Incompatible sftp protocol")
            self.extensions = extensions(data[4:])
            return int(struct.unpack(">I", data[:4])[0])

        def _convert_status(self, msg: Any) -> None:
            start = msg.packet.tell()
            if msg.get_int() == sftp.SFTP_OP_UNSUPPORTED:
                raise RequestUnsupported(msg.get_text())
            msg.packet.seek(start)
            super()._convert_status(msg)

        def _adjust_cwd(self, path: Any) -> Any:
            return super()._adjust_cwd(raw(path) if isinstance(path, str) else path)

        def symlink(self, source: Any, dest: Any) -> None:
            super().symlink(raw(source) if isinstance(source, str) else source, dest)

        def _names(self, kind: int, path: Any) -> list[str]:
            ptype, msg = self._request(kind, self._adjust_cwd(path))
            if ptype != sftp.CMD_NAME:
                raise sftp.SFTPError("Expected name response")
            return [text(msg.get_string()) for _ in range(msg.get_int())]

        def normalize(self, path: Any) -> str:
            names = self._names(sftp.CMD_REALPATH, path)
            if len(names) != 1:
                raise sftp.SFTPError(f"Realpath returned {len(names)} results")
            return names[0]

        def readlink(self, path: Any) -> str | None:
            names = self._names(sftp.CMD_READLINK, path)
            return names[0] if names else None

        def listdir_attr(self, path: Any = ".") -> list[Any]:
            ptype, msg = self._request(sftp.CMD_OPENDIR, self._adjust_cwd(path))
            if ptype != sftp.CMD_HANDLE:
                raise sftp.SFTPError("Expected handle")
            handle = msg.get_binary()
            found = []
            try:
                while True:
                    try:
                        ptype, msg = self._request(sftp.CMD_READDIR, handle)
                    except EOFError:
                        break
                    if ptype != sftp.CMD_NAME:
                        raise sftp.SFTPError("Expected name response")
                    for _ in range(msg.get_int()):
                        name = text(msg.get_string())
                        longname = text(msg.get_string())
                        attrs = paramiko.SFTPAttributes._from_msg(msg, name, longname)
                        if name not in (".", ".."):
                            found.append(attrs)
            finally:
                self._request(sftp.CMD_CLOSE, handle)
            return found

    return ExactSFTPClient


def no_delay(client: paramiko.SSHClient) -> None:
    """Send small packets at once (requests and replies are small)."""
    import socket

    transport = client.get_transport()
    sock = getattr(transport, "sock", None)
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
