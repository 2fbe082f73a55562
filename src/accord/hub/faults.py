"""Fault injection for the hub's crash tests.

``ACCORD_HUB_FAULT=NAME`` (or ``NAME:N`` for the N-th time) makes the
server kill itself (SIGKILL, no clean-up) at that point: ``commit`` just
before a change's transaction commits (its content already stored),
``upload`` after a chunk's bytes are stored but before they are counted.
Tests use it to prove that a hub killed there loses nothing acknowledged
and shows no half file.
"""

from __future__ import annotations

import itertools
import os
import signal

__all__ = ["point"]

_NAME, _, _AT = os.environ.get("ACCORD_HUB_FAULT", "").partition(":")
_counter = itertools.count(1)


def point(name: str) -> None:
    """The process dies here when this is the chosen point (and time)."""
    if name != _NAME:
        return
    if next(_counter) >= int(_AT or 1):
        os.kill(os.getpid(), signal.SIGKILL)
