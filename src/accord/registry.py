"""Places by URL scheme: one registry, imported lazily.

A plain path (``~/notes``, ``./data``, ``C:\\x``) means a local folder.
Adding a place is adding a module and one ``register()`` line below (or an
``accord.replicas`` entry point from another package); nothing else changes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from accord.errors import ConfigError, MissingDependency
from accord.tuples import NamedTuple

if TYPE_CHECKING:
    from accord.replica import Replica

__all__ = [
    "ReplicaSpec",
    "open_replica",
    "register",
    "registry",
    "replica_class",
    "split_url",
    "url_host",
]


class ReplicaSpec(NamedTuple):
    scheme: str
    target: str  # "package.module:Class"
    extra: str | None  # the pip extra that brings its dependencies


_specs: dict[str, ReplicaSpec] = {}
registry: Mapping[str, ReplicaSpec] = MappingProxyType(_specs)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def register(
    scheme: str, target: str, *, extra: str | None = None, replace: bool = False
) -> None:
    """Make ``scheme://...`` open the replica class named by ``target``."""
    if scheme in _specs and not replace:
        raise ValueError(f"scheme already registered: {scheme}")
    _specs[scheme] = ReplicaSpec(scheme, target, extra)


def split_url(url: str) -> tuple[str, str]:
    """``(scheme, rest)``; a plain path gives ``("file", path)``."""
    match = _SCHEME.match(url)
    if not match:
        return "file", url
    return match.group(1).lower(), url[match.end() :]


def url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def replica_class(scheme: str) -> type[Replica]:
    """The class for ``scheme``, imported now; clear errors otherwise."""
    spec = _specs.get(scheme)
    if spec is None and _fsspec_knows(scheme):
        spec = ReplicaSpec(scheme, _FSSPEC, "fsspec")
    if spec is None:
        known = ", ".join(sorted(_specs))
        raise ConfigError(
            f"unknown place type '{scheme}://'",
            hint=f"known types: {known}; a plain path means a local folder"
            + _without_fsspec(),
        )
    module_name, _, class_name = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = f"pip install 'accord[{spec.extra}]'" if spec.extra else None
        raise MissingDependency(
            f"'{scheme}://' needs a package that is not installed ({exc.name})",
            hint=extra,
        ) from exc
    cls: type[Replica] = getattr(module, class_name)
    return cls


def url_port(parts: SplitResult, url: str) -> int | None:
    """The port of the URL ``url`` (split as ``parts``), None when it names
    none; a port that is not one is a ConfigError naming the URL."""
    try:
        return parts.port
    except ValueError as exc:
        raise ConfigError(
            f"bad port in {url!r}: {exc}",
            hint="a port is a whole number from 1 to 65535",
        ) from None


def reopen_url(typed: str | None, shown: str) -> str:
    """The URL that opens a place again as it was opened from ``typed``
    (what was given; None when a place object was): with its options (the
    query: an identity file, known hosts, the server's Python...) and
    without a password; ``shown`` (its ``url``: a local folder's absolute
    path) for a local folder or a place not opened from a URL."""
    if not typed or split_url(typed)[0] == "file":
        return shown
    parts = urlsplit(typed)
    if parts.password is None:
        return typed
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def open_replica(url: str, **options: Any) -> Replica:
    """A replica for ``url`` (not yet opened)."""
    if not url:
        raise ConfigError("an empty place was given", hint="name a folder or a URL")
    scheme, _ = split_url(url)
    return replica_class(scheme).from_url(url, **options)  # type: ignore[attr-defined, no-any-return]


_FSSPEC = "accord.replicas.fsspec:FsspecReplica"


def _without_fsspec() -> str:
    """What to add to an unknown type's hint when fsspec, which opens the
    other types (``memory://``, ``gcs://``, ``ftp://``...), is not installed."""
    try:
        import fsspec  # noqa: F401
    except ImportError:
        return (
            "; other types (memory://, gcs://, ftp://, ...) go through fsspec,"
            " which is not installed: pip install 'accord[fsspec]'"
        )
    return ""


def _fsspec_knows(scheme: str) -> bool:
    """Any other filesystem fsspec knows (memory, gcs, az, webdav...)."""
    try:
        module = importlib.import_module("accord.replicas.fsspec")
    except ImportError:
        return False
    return bool(module.knows(scheme))


register("file", "accord.replicas.local:LocalReplica")
register("sftp", "accord.replicas.ssh:SSHReplica", extra="sftp")
register("s3", "accord.replicas.s3:S3Replica", extra="s3")
register("records", "accord.records.replica:RecordReplica", extra="records")
register("syncml+https", "accord.replicas.syncml:SyncMLReplica", extra="syncml")
register("syncml+http", "accord.replicas.syncml:SyncMLReplica", extra="syncml")
register("hub", "accord.replicas.hub:HubReplica", extra="hub")
register("hubs", "accord.replicas.hub:HubReplica", extra="hub")
register("plantdb+http", "accord.replicas.plantdb_rest:PlantdbReplica", extra="plantdb")
register(
    "plantdb+https", "accord.replicas.plantdb_rest:PlantdbsReplica", extra="plantdb"
)
