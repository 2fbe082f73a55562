"""accord: keep data in agreement between places, and never lose any of it.

The names below are imported on first use (PEP 562), so that ``import
accord`` (and every ``accord.<module>`` import, which runs this file
first) costs nothing: a command loads only the parts it needs.
"""

from __future__ import annotations

import importlib

# ``typing`` is not imported here: every ``accord.<module>`` import runs
# this file first, and ``python -m accord`` starts an ``sftp://`` place's
# ``ssh`` before it imports anything else (``replicas/ssh_launch.py``)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from accord.api import mirror, sync
    from accord.engine.apply import Event, Report
    from accord.engine.plan import Action, Conflict, Plan
    from accord.engine.policy import Policy
    from accord.engine.session import Session
    from accord.errors import AccordError
    from accord.model import Entry, Problem, Side
    from accord.registry import open_replica, register
    from accord.replica import Replica

__version__ = "0.1.0"

#: where each public name lives
_HOMES = {
    "AccordError": "accord.errors",
    "Action": "accord.engine.plan",
    "Conflict": "accord.engine.plan",
    "Entry": "accord.model",
    "Event": "accord.engine.apply",
    "Plan": "accord.engine.plan",
    "Policy": "accord.engine.policy",
    "Problem": "accord.model",
    "Replica": "accord.replica",
    "Report": "accord.engine.apply",
    "Session": "accord.engine.session",
    "Side": "accord.model",
    "mirror": "accord.api",
    "open_replica": "accord.registry",
    "register": "accord.registry",
    "sync": "accord.api",
}

__all__ = [
    "AccordError",
    "Action",
    "Conflict",
    "Entry",
    "Event",
    "Plan",
    "Policy",
    "Problem",
    "Replica",
    "Report",
    "Session",
    "Side",
    "__version__",
    "mirror",
    "open_replica",
    "register",
    "sync",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'accord' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
