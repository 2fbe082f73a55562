"""A child's result taken in on a thread as soon as it is sent
(``Child.prefetch``, which the listing ahead of an SSH connection uses):
the child, whose pickled result is bigger than a pipe holds, finishes
without waiting for ``result``; the result is the same; a lost child is
still replaced by running the function here, and a cancelled one leaves
no thread behind."""

from __future__ import annotations

import os
import threading
import time

from accord.engine.child import Child


def _exited(pid: int, within: float = 10.0) -> bool:
    """Whether the child ``pid`` has ended (a zombie not yet reaped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        time.sleep(0.01)
    return False


def _big() -> list[str]:
    return [f"item {index:07}" for index in range(100_000)]  # ~1.5 MB pickled


def test_the_child_ends_before_its_result_is_asked_for() -> None:
    child: Child[list[str]] = Child(_big)
    child.prefetch()
    assert _exited(child._pid)  # its pipe drained: it did not wait for us
    assert child.result() == _big()


def test_without_prefetch_the_child_waits_for_its_reader() -> None:
    child: Child[list[str]] = Child(_big)
    assert not _exited(child._pid, within=0.5)
    assert child.result() == _big()


def test_a_lost_child_is_replaced_here_after_prefetch() -> None:
    parent = os.getpid()

    def dies_in_child() -> list[str]:
        if os.getpid() != parent:
            os._exit(9)  # lost: nothing goes back
        return ["listed here"]

    child: Child[list[str]] = Child(dies_in_child)
    child.prefetch()
    assert child.result() == ["listed here"]


def test_a_cancelled_child_leaves_no_reader_thread() -> None:
    def slow() -> list[str]:
        time.sleep(30)
        return []

    child: Child[list[str]] = Child(slow)
    child.prefetch()
    started = time.monotonic()
    child.cancel()
    assert time.monotonic() - started < 10
    assert not [t for t in threading.enumerate() if t.name == "accord-child-result"]
