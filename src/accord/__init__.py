"""accord: keep data in agreement between places, and never lose any of it."""

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
