"""Handlers: a site's own code, called for each record action.

    # school_hooks.py
    class Students:
        def create(self, action):        # before the default write
            send_welcome_mail(action.after["email"])
        def update(self, action):        # action.changes(): (field, old, new)
            ...
        def delete(self, action):
            lms_api.disable(action.key)
            return "handled"            # instead of the default write
        def failed(self, action, reason):
            log.warning("%s: %s", action.key, reason)

    [entities.students]
    handler = "school_hooks:Students"    # importable, or "path/to/file.py:Class"

A method returning ``"handled"`` has done the work itself: the default write
is skipped. A method that raises makes that record *failed* (reported,
counted); the other records go on.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from accord.errors import ConfigError

__all__ = ["load_handler"]


def load_handler(spec: str | None, base: Path) -> Any:
    """An instance of the handler class named by ``spec``, or None."""
    if not spec:
        return None
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise ConfigError(f"handler {spec!r} must be 'module:Class' or 'file.py:Class'")
    try:
        if target.endswith(".py"):
            path = (base / target).resolve()
            loader = importlib.util.spec_from_file_location(path.stem, path)
            if loader is None or loader.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        return getattr(module, name)()
    except (ImportError, AttributeError, OSError) as exc:
        raise ConfigError(f"cannot load the handler {spec!r}: {exc}") from None
