"""The ``accord`` command: a thin layer over the library.

Each command parses its arguments, calls the library, and renders the result
(``accord.cli.render``). Exit codes (also in ``accord --help``)::

    0  in agreement: the changes were applied, or there was nothing to do
    1  error: bad input, an unreachable place, a busy lock; nothing half-done
    2  usage error: unknown option, missing argument, a malformed value,
       path, accord.toml or plan file
    3  partial: some items were skipped (changed during the run) or failed;
       run again to finish; some names were refused (they would leave
       a place, or the other side cannot hold them): rename them; or a
       folder or item could not be listed or read (its permissions);
       status / --dry-run too, when that is all they found
    4  aborted by a guard (mass deletion, a side emptied or missing);
       nothing was changed
    5  needs a human: conflicts were left unresolved, or a question could
       not be asked (no terminal and no --yes)
    6  status / --dry-run only: changes are pending
  130  interrupted (Ctrl-C); the next run finishes the job
  141  the reader of the output went away (``accord status | head``); quiet
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from accord import __version__
from accord.errors import (
    Aborted,
    AccordError,
    InvalidInput,
    NotAPlan,
    SafetyLimitExceeded,
)

__all__ = ["COMMAND_MODULES", "EXIT", "load_commands", "main"]

EXIT = {
    "ok": 0,
    "error": 1,
    "usage": 2,
    "partial": 3,
    "guard": 4,
    "human": 5,
    "pending": 6,
    "interrupted": 130,
    "broken_pipe": 128 + signal.SIGPIPE,
}

F = TypeVar("F", bound=Callable[..., Any])


class Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def handle_errors(func: F) -> F:
    """Turn accord's errors into a message and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exit as done:
            sys.exit(done.code)
        except SafetyLimitExceeded as exc:
            click.echo(f"stopped by a guard: {exc}", err=True)
            sys.exit(EXIT["guard"])
        except Aborted as exc:
            click.echo(f"{exc}", err=True)
            sys.exit(EXIT["human"])
        except (InvalidInput, NotAPlan) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT["usage"])
        except AccordError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT["error"])
        except BrokenPipeError:
            if not _stdout_closed():
                raise
            _leave_quietly()
        except KeyboardInterrupt:
            # Everything is unwound (locks released, journal consistent);
            # leave now, so a second signal cannot turn into a traceback.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            click.echo(
                "\ninterrupted: nothing is half-written; the next run finishes the job",
                err=True,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT["interrupted"])
        except OSError as exc:
            if os.environ.get("ACCORD_DEBUG"):
                raise
            click.echo(
                f"error: {exc.strerror or exc}"
                + (f": {exc.filename}" if exc.filename else ""),
                err=True,
            )
            sys.exit(EXIT["error"])
        except click.exceptions.ClickException:
            raise
        except Exception as exc:
            if os.environ.get("ACCORD_DEBUG"):
                raise
            report = _save_traceback()
            click.echo(
                f"error: accord failed unexpectedly ({type(exc).__name__}: {exc})\n"
                f"  hint: nothing is half-written; run again. The details are in "
                f"{report}; please report them.",
                err=True,
            )
            sys.exit(EXIT["error"])

    return wrapper  # type: ignore[return-value]


def _stdout_closed() -> bool:
    """True when whoever reads our output has gone (``accord status | head``)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _flush_or_leave() -> None:
    """Flush stdout at the end; leave quietly if its reader has gone."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _leave_quietly()
    except (OSError, ValueError):
        pass


def _leave_quietly() -> None:
    """Exit like a Unix tool whose reader left: no message, status 141.

    Python flushes stdout at exit; pointing it at /dev/null first keeps that
    flush from failing again (as the Python docs on SIGPIPE recommend).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os._exit(EXIT["broken_pipe"])


def _save_traceback() -> str:
    """Write the current exception's traceback to a file; its path."""
    import tempfile
    import traceback

    from accord.state.store import default_state_dir

    text = traceback.format_exc()
    try:
        folder = default_state_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "last-error.txt"
        path.write_text(text)
        return str(path)
    except OSError:
        with tempfile.NamedTemporaryFile(
            "w", prefix="accord-error-", suffix=".txt", delete=False
        ) as handle:
            handle.write(text)
            return handle.name


EPILOG = """\b
Exit codes: 0 in agreement (applied, or nothing to do) · 1 error ·
2 usage · 3 partial (some items left, each said why) · 4 stopped by a guard ·
5 needs a human · 6 changes pending (status, --dry-run) · 130 interrupted ·
141 the reader of the output went away.
State: $ACCORD_STATE_DIR, else $XDG_STATE_HOME/accord, else ~/.local/state/accord.
Docs: docs/cli.md"""


#: the module of ``accord.cli`` that defines each command: ``accord sync``
#: imports that module only, not the hub's, the records' or SQL's
#: (tests/cli/test_lazy.py checks this table against the modules)
COMMAND_MODULES = {
    "apply": "plans",
    "db": "db",
    "hub": "hub",
    "log": "history",
    "login": "hub",
    "mirror": "run",
    "plan": "plans",
    "records": "records",
    "reset": "history",
    "status": "plans",
    "sync": "run",
    "syncml": "syncml",
    "trash": "trash",
    "watch": "watch",
}


def load_commands(*modules: str) -> None:
    """Import the command modules named (all of them when none is): each
    registers its commands on ``cli`` as it is imported."""
    for module in modules or sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"accord.cli.{module}")


#: the ``accord`` command runs (``main``): not a test or another program
#: that imported the CLI, whose garbage collector is left alone
_COMMAND_RUNS = False


class _LazyGroup(click.Group):
    """A group that imports a command's module when the command is asked for."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = COMMAND_MODULES.get(cmd_name)
            if module is None:
                load_commands()  # an unknown name: all of them, for the hint
            else:
                load_commands(module)
            if _COMMAND_RUNS:
                _imports_done()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_commands()
        return super().list_commands(ctx)


def _imports_done() -> None:
    """The ``accord`` command's imports are done: what they made lives as
    long as the process, so it is frozen out of the garbage collector's
    passes (a scan makes a tuple per item, and every full pass walked all
    the modules' objects again); the collector, paused while the modules
    were imported (they make no garbage worth a pass), runs again."""
    gc.freeze()
    gc.enable()


@click.group(
    cls=_LazyGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, package_name="accord")
def cli() -> None:
    """accord keeps places in agreement, and never loses any data.

    \b
    accord sync ~/notes /mnt/backup/notes     two-way; the first run asks
    accord mirror ~/photos /mnt/nas/photos    one-way, like rsync
    accord status ~/notes /mnt/backup/notes   what would change, and conflicts
    """


def main() -> None:
    """Entry point of the ``accord`` command."""
    from accord.replicas.ssh_launch import start_early

    start_early(sys.argv[1:])  # connecting to SSH servers takes a while: begin

    global _COMMAND_RUNS
    _COMMAND_RUNS = True
    gc.disable()  # until the command's modules are imported (_imports_done)

    # SIGTERM (kill, systemd stop) unwinds like Ctrl-C: locks are released,
    # the journal stays consistent, the next run finishes the work.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        cli(prog_name="accord")
    except SystemExit as done:
        _flush_or_leave()
        _exit_now(done)
        raise
    finally:
        _flush_or_leave()


def _exit_now(done: SystemExit) -> None:
    """Leave at once with ``done``'s status when nothing is left to do but
    the interpreter's own teardown (freeing every object and module, 10 to
    20 ms): the exit handlers run and the output is flushed first; only
    when no other thread runs (else Python's exit waits for them)."""
    code = done.code
    if code is None:
        code = 0
    if type(code) is not int or threading.active_count() != 1:
        return  # a message to print, or threads to wait for: the usual exit
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        _leave_quietly()
    except (OSError, ValueError):
        return
    os._exit(code)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
