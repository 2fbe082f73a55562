"""Opening an fsspec URL the way fsspec itself does, with accord's errors.

* The filesystem comes from ``fsspec.core.url_to_fs(url, **storage_options)``:
  the protocol's own URL parsing (``ftp://user:password@host:port/path``
  gives host, port, user and password), and fsspec's configuration
  (``~/.config/fsspec/*.json``, ``FSSPEC_<PROTOCOL>_<OPTION>`` variables).
* Query parameters are storage options: ``?timeout=10&tls=true``; a value
  that reads as JSON (a number, ``true``, ``false``, an object) is passed
  as such, any other as a string. An ``http(s)://`` URL keeps its query:
  it belongs to the address.
* Where the filesystem takes a login (``username`` and ``password``: FTP,
  SMB; an ``auth`` pair: WebDAV) and none is given, ``~/.netrc`` is read
  for the host, as ``ftp`` and ``curl`` do. ``auth`` given as a JSON list
  (``?auth=["me","secret"]``, ``FSSPEC_WEBDAV_AUTH``) is passed as a pair.
* A protocol whose package is not installed names the package; a
  filesystem that cannot be made (a wrong option, a refused connection) is
  one of accord's errors, and the half-made filesystem's destructor stays
  quiet (fsspec's FTP one would print an AttributeError).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import netrc
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import fsspec
from fsspec.config import apply_config

from accord.errors import (
    AccordError,
    ConfigError,
    MissingDependency,
    PermissionDenied,
    Unreachable,
    connection_reason,
)

__all__ = ["Target", "connect", "knows", "parse"]

#: storage options that never appear in a place's name or identity
_SECRET = ("password", "secret", "token", "key", "auth", "credential", "passphrase")
#: storage options that tune a connection rather than say where it goes
_TUNING = frozenset(
    (
        "timeout",
        "block_size",
        "blocksize",
        "default_block_size",
        "encoding",
        "tempdir",
        "tls",
        "use_listings_cache",
        "listings_expiry_time",
        "max_paths",
        "skip_instance_cache",
        "asynchronous",
        "cache_type",
        "default_cache_type",
        "size_policy",
        "simple_links",
        "same_scheme",
    )
)
#: protocols whose query string is part of the address
_KEEPS_QUERY = ("http", "https")


def knows(scheme: str) -> bool:
    """True when fsspec has an implementation registered for ``scheme``."""
    return scheme in fsspec.available_protocols()


class Target(NamedTuple):
    """An fsspec URL, understood without connecting."""

    protocol: str
    url: str  # what users see: no password, no secret option
    address: str  # what url_to_fs is given
    options: dict[str, Any]  # storage options
    root: str  # the root's path on the filesystem
    where: str  # the filesystem, as ``protocol://`` and its non-secret options


def parse(url: str, options: dict[str, Any]) -> Target:
    """Read ``url`` and ``options`` as fsspec would; no connection made."""
    protocol = url.partition("://")[0].lower()
    parts = urlsplit(url)
    given = dict(options)
    address = url
    if "::" not in url and protocol not in _KEEPS_QUERY and parts.query:
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            given.setdefault(name, _value(value))
        address = urlunsplit(parts._replace(query=""))
    cls = _filesystem_class(protocol)
    from_url = cls._get_kwargs_from_urls(address) if "::" not in address else {}
    from_url.pop("url_query", None)
    # the URL's login, unquoted (fsspec passes it as written); options win
    storage = {
        name: unquote(from_url[name])
        for name in ("username", "password")
        if isinstance(from_url.get(name), str)
    }
    storage.update(given)
    everything = _pairs(apply_config(cls, {**from_url, **storage}))  # as it gets
    login = _netrc_login(cls, everything)
    storage.update(login)
    everything.update(login)
    if "auth" in everything:
        storage["auth"] = everything["auth"]
    root = cls._strip_protocol(address) if "::" not in address else address
    root = str(root).rstrip("/") or "/"
    return Target(
        protocol,
        _shown(url),
        address,
        storage,
        root,
        _where(protocol, everything),
    )


def connect(target: Target) -> Any:
    """The filesystem of ``target`` (a connection, for FTP)."""
    failure: AccordError | None = None
    with _quiet_destructors():
        try:
            fs, _ = fsspec.core.url_to_fs(target.address, **target.options)
        except ImportError as exc:
            failure = _missing(target.protocol, exc)
        except PermissionError as exc:
            failure = PermissionDenied(f"refused: {exc}", where=target.url)
        except (OSError, EOFError) as exc:
            failure = Unreachable(
                f"cannot connect: {connection_reason(exc) or exc}",
                where=target.url,
                hint="check the host, the port and the credentials",
            )
        except Exception as exc:  # a wrong option: TypeError, ValueError...
            message = str(exc)
            if "530" in message or "login" in message.lower():
                failure = PermissionDenied(
                    f"the server refused the login: {message}", where=target.url
                )
            else:
                failure = ConfigError(
                    f"fsspec cannot open {target.url}: {type(exc).__name__}: {message}",
                    hint="check the URL and its options (query parameters are "
                    "fsspec storage options, e.g. ?timeout=10)",
                )
        # the failed attempt (and its half-made filesystem) is gone here,
        # inside the quiet block, before the error is raised
    if failure is not None:
        raise failure
    return fs


def _filesystem_class(protocol: str) -> Any:
    failure: AccordError | None = None
    try:
        return fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        failure = _missing(protocol, exc)
    except ValueError as exc:
        failure = ConfigError(
            f"unknown place type '{protocol}://' ({exc})",
            hint="a plain path means a local folder",
        )
    raise failure


def _missing(protocol: str, exc: ImportError) -> MissingDependency:
    """The error for a protocol whose package is not installed, naming it."""
    from fsspec.registry import known_implementations

    said = known_implementations.get(protocol, {}).get("err")
    name = getattr(exc, "name", None) or (exc.__cause__ and exc.__cause__.name)
    package = _PACKAGES.get(protocol) or name
    return MissingDependency(
        f"'{protocol}://' needs a package that is not installed"
        + (f" ({said})" if said else f" ({name})" if name else ""),
        hint=f"pip install {package}" if package else None,
    )


#: what to install for protocols whose module name differs or is vague
_PACKAGES = {
    "webdav": "'accord[webdav]' (webdav4)",
    "dav": "'accord[webdav]' (webdav4)",
    "http": "'accord[http]' (aiohttp)",
    "https": "'accord[http]' (aiohttp)",
    "gcs": "gcsfs",
    "gs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "adl": "adlfs",
    "smb": "smbprotocol",
    "dropbox": "dropboxdrivefs",
    "oci": "ocifs",
    "hdfs": "pyarrow",
    "gdrive": "gdrivefs",
}


def _value(text: str) -> Any:
    """A query value: JSON when it reads as JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(options: dict[str, Any]) -> dict[str, Any]:
    """``auth`` given as a JSON list (a query value, an ``FSSPEC_*``
    variable) as the (user, password) pair HTTP clients take."""
    auth = options.get("auth")
    if isinstance(auth, list) and len(auth) == 2:
        return {**options, "auth": tuple(auth)}
    return options


def _netrc_login(cls: Any, options: dict[str, Any]) -> dict[str, Any]:
    """A login for the host from ``~/.netrc``, when the filesystem takes one
    (``username`` and ``password``, or an ``auth`` pair: WebDAV) and none is
    given."""
    host = options.get("host") or urlsplit(str(options.get("base_url", ""))).hostname
    if not host or any(options.get(k) for k in ("username", "password", "auth")):
        return {}
    try:
        takes = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return {}
    pair = "username" in takes and "password" in takes
    if not pair and "auth" not in takes:
        return {}
    try:
        found = netrc.netrc().authenticators(str(host))
    except (OSError, netrc.NetrcParseError):
        return {}
    if not found:
        return {}
    login, _, password = found
    if pair:
        return {"username": login, "password": password or ""}
    return {"auth": (login, password or "")}


def _secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET)


def _where(protocol: str, options: dict[str, Any]) -> str:
    """The filesystem as ``protocol://`` and its options that say where
    (host, port, user, base URL...), secrets left out: a namespace."""
    shown = sorted(
        (name, _plain(name, value))
        for name, value in options.items()
        if not _secret(name)
        and name not in _TUNING
        and isinstance(value, (str, int, float, bool))
    )
    return f"{protocol}://" + "&".join(f"{k}={v}" for k, v in shown)


def _plain(name: str, value: object) -> object:
    """A host or base URL in one spelling (no case, no trailing slash, no
    login)."""
    if name in ("host", "base_url") and isinstance(value, str):
        return _no_login(value).rstrip("/").lower()
    return value


def _no_login(url: str) -> str:
    """``url`` without the password of its ``user:password@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    login, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{login.partition(':')[0]}@{host}"))


def _shown(url: str) -> str:
    """``url`` without a password in it or in a URL among its query values,
    and with secret query parameters masked."""
    parts = urlsplit(_no_login(url))
    query = "&".join(
        f"{name}=***" if _secret(name) else f"{name}={quote(_no_login(v), safe=':/@')}"
        for name, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit(parts._replace(query=query))


@contextlib.contextmanager
def _quiet_destructors() -> Iterator[None]:
    """Drop what destructors of fsspec's filesystems raise meanwhile (a
    filesystem whose ``__init__`` failed half-way cannot close itself)."""
    before = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        where = getattr(unraisable.object, "__module__", "") or ""
        name = getattr(unraisable.object, "__qualname__", "") or ""
        if "fsspec" in where or name.endswith("FileSystem.__del__"):
            return
        before(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = before
