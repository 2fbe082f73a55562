"""Fault injection for crash tests: die at the N-th step of a run.

When ``ACCORD_KILL_AT_STEP=N`` is set, the process kills itself (SIGKILL, no
clean-up, like a power cut of the process) at the N-th ``step()``. The steps
are the journal's: the intent journal written, each action performed, each
batch recorded. ``ACCORD_KILL_AT_STEP=0`` (or unset) does nothing; the
variable is read once. Tests use it to prove that a run killed at any step
loses nothing and converges on the next run.

``ACCORD_STOP_AT_STEP=N`` stops the process instead (SIGSTOP) at the N-th
step, so that a test can deliver a signal at a known point of a run (an
interrupt mid-copy) and let it go on with SIGCONT.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading

__all__ = ["armed", "disable", "step"]

_AT = int(os.environ.get("ACCORD_KILL_AT_STEP", "0") or 0)
_STOP = int(os.environ.get("ACCORD_STOP_AT_STEP", "0") or 0)
_counter = itertools.count(1)
_lock = threading.Lock()


def step(name: str) -> None:
    """One journal step; the process dies here if this is the chosen one."""
    if not (_AT or _STOP):
        return
    with _lock:
        number = next(_counter)
    if number == _STOP:
        os.kill(os.getpid(), signal.SIGSTOP)
    if number == _AT:
        if os.environ.get("ACCORD_KILL_VERBOSE"):
            os.write(2, f"killed at step {number}: {name}\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)


def armed() -> bool:
    """True when a step may stop the process: a caller that makes a step's
    name for each of many items makes it only then."""
    return bool(_AT or _STOP)


def disable() -> None:
    """No faults in this process (a child doing work for the one counted)."""
    global _AT, _STOP
    _AT = _STOP = 0
