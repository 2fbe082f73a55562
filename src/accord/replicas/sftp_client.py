"""paramiko's SFTP client as plain SFTP uses it.

paramiko is imported only when a connection of its own is needed; its
client is made to keep names byte for byte (``exact_client``), and a
file's mode and times are set in one request (``set_attributes``).
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

from accord.errors import MissingDependency

if TYPE_CHECKING:
    import paramiko

__all__ = [
    "BLOCK",
    "exact_client",
    "load_paramiko",
    "no_delay",
    "raw",
    "set_attributes",
    "text",
]
BLOCK = 1 << 20  # bytes per read or write request


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
