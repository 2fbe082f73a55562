"""When a watched pair runs: the pure schedule (no clock, no threads)."""

from __future__ import annotations

import pytest

from accord.errors import InvalidInput
from accord.replicas.hub_events import parse_events
from accord.replicas.local_watch import key_of
from accord.watch import Schedule, backoff, parse_duration


def test_nothing_pending_is_never_due() -> None:
    schedule = Schedule(quiet=1.0)
    assert schedule.due_at() is None
    assert not schedule.due(1e9)


def test_a_run_waits_for_a_quiet_period() -> None:
    schedule = Schedule(quiet=1.0, longest=10.0)
    schedule.touched(100.0, "a")
    schedule.touched(100.5, "b")
    assert schedule.due_at() == 101.5
    assert not schedule.due(101.4)
    assert schedule.due(101.5)


def test_a_burst_of_changes_is_one_run() -> None:
    schedule = Schedule(quiet=0.5, longest=10.0)
    for i in range(10_000):
        schedule.touched(100.0 + i * 0.0001, f"f{i}")
        schedule.touched(100.0 + i * 0.0001, f"f{i}", writing=True)
        schedule.touched(100.0 + i * 0.0001, f"f{i}")  # closed: one change
    assert schedule.pending == 10_000
    assert schedule.due(101.5)
    assert schedule.started(101.5) == 10_000
    assert schedule.pending == 0 and schedule.due_at() is None


def test_a_folder_that_never_rests_still_gets_runs() -> None:
    schedule = Schedule(quiet=1.0, longest=5.0)
    for i in range(100):
        schedule.touched(100.0 + i * 0.5, "log")
    assert schedule.due_at() == 105.0


def test_a_file_being_written_holds_the_run_until_closed() -> None:
    schedule = Schedule(quiet=1.0, longest=30.0)
    schedule.touched(100.0, "big", writing=True)
    assert schedule.due_at() == 130.0  # held while it is open
    schedule.touched(102.0, "big", writing=False)  # closed
    assert schedule.due_at() == 103.0


def test_a_file_written_for_too_long_runs_anyway() -> None:
    schedule = Schedule(quiet=1.0, longest=30.0)
    schedule.touched(100.0, "big", writing=True)
    assert schedule.due(130.0)


def test_changes_during_a_run_count_for_the_next() -> None:
    schedule = Schedule(quiet=1.0)
    schedule.touched(100.0, "a")
    schedule.started(101.0)
    schedule.touched(101.2, "b")
    assert not schedule.due(105.0)  # still running
    assert schedule.finished(101.5, ok=True) == 0.0
    assert schedule.pending == 1
    assert schedule.due(102.2)


def test_a_run_that_left_work_runs_again() -> None:
    schedule = Schedule(quiet=1.0)
    schedule.touched(100.0)
    schedule.started(101.0)
    schedule.finished(102.0, ok=True, again=True)  # a file changed as it was copied
    assert schedule.due_at() == 103.0


def test_failures_back_off_and_a_success_resets() -> None:
    schedule = Schedule(quiet=0.5, retry_first=1.0, retry_cap=8.0)
    schedule.touched(0.0)
    pauses = []
    now = 1.0
    for _ in range(6):
        schedule.started(now)
        pauses.append(schedule.finished(now, ok=False))
        now = schedule.due_at() or 0.0
    assert pauses == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert schedule.failures == 6
    schedule.started(now)
    schedule.finished(now, ok=True)
    assert schedule.failures == 0 and schedule.retry_at == 0.0
    assert schedule.due_at() is None


def test_a_change_does_not_skip_the_backoff() -> None:
    schedule = Schedule(quiet=0.5, retry_first=10.0)
    schedule.touched(0.0)
    schedule.started(1.0)
    schedule.finished(1.0, ok=False)
    schedule.touched(2.0, "a")
    assert schedule.due_at() == 11.0


def test_backoff() -> None:
    assert backoff(0) == 0.0
    assert [backoff(n, 1.0, 60.0) for n in (1, 2, 3, 7, 8, 1000)] == [
        1.0,
        2.0,
        4.0,
        60.0,
        60.0,
        60.0,
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1s", "1d", "1e400"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_keys_of_a_watched_folder() -> None:
    assert key_of("/r", "/r/a/b.txt") == "a/b.txt"
    assert key_of("/r", "/r") is None
    assert key_of("/r", "/elsewhere/x") is None
    assert key_of("/r", "/r/.accord/lock") is None
    assert key_of("/r", "/r/sub/.accord/tmp/1") is None  # a nested place's own
    assert key_of("/r", "/r/sub/.accord-tmp-12") is None
    assert key_of("/r", "/r/.accordignore") == ".accordignore"


def test_server_sent_events() -> None:
    lines = ["id: 7", "event: change", 'data: {"seq": 3,', "data:  more}"]
    assert parse_events(lines) == ("7", "change", '{"seq": 3,\n more}')
    assert parse_events([": keep-alive"]) == (None, None, "")


def test_pending_counts_items_and_unknown_changes() -> None:
    schedule = Schedule()
    schedule.touched(1.0, "a")
    schedule.touched(1.0, "a")
    schedule.touched(1.0, None, count=5)  # a hub's transaction of 5 items
    schedule.touched(1.0)
    assert schedule.pending == 1 + 5 + 1


def test_a_settled_change_needs_no_quiet_period() -> None:
    schedule = Schedule(quiet=1.0)
    schedule.touched(100.0, settled=True)  # a hub's committed change
    assert schedule.due(100.0)
    schedule.touched(100.2, "a")  # and a local one: its quiet period holds
    assert schedule.due_at() == 101.2


def test_lock_contention_is_retried_soon_and_is_no_failure() -> None:
    schedule = Schedule(quiet=0.5, retry_first=1.0)
    schedule.touched(0.0)
    pauses = []
    for _ in range(8):
        schedule.started(1.0)
        pauses.append(schedule.finished(1.0, ok=False, busy=True))
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert schedule.failures == 0 and schedule.busy == 8
    schedule.started(2.0)
    schedule.finished(2.0, ok=True)
    assert schedule.busy == 0


def test_profile_groups(tmp_path, monkeypatch) -> None:
    from accord.config import load_profile, load_profiles

    config = tmp_path / "accord.toml"
    config.write_text(
        '[pairs.solo]\nleft = "a"\nright = "b"\n'
        '[pairs.work.papers]\nleft = "p"\nright = "hub://h/papers"\n'
        '[pairs.work.code]\nleft = "c"\nright = "sftp://s/c"\nexclude = ["*.o"]\n'
    )
    monkeypatch.setenv("ACCORD_CONFIG", str(config))
    assert load_profiles("solo") == [("solo", {"left": "a", "right": "b"})]
    names = [name for name, _ in load_profiles("work")]
    assert names == ["work.papers", "work.code"]
    assert load_profile("work.code")["exclude"] == ["*.o"]
    with pytest.raises(InvalidInput, match="group of pairs"):
        load_profile("work")


def test_status_lines() -> None:
    from accord.cli.watch import status_line
    from accord.watch import PairStatus

    idle = PairStatus("notes", 0, False, 3, {"changed": 2}, None, None, 0, False)
    assert status_line(idle) == "notes: watching · last sync: 2 changed"
    running = idle._replace(running=True, done_now=40, pending=7)
    assert status_line(running) == (
        "notes: running (40 done) · 7 change(s) pending · last sync: 2 changed"
    )
    failing = idle._replace(last=None, error="cannot reach the hub", retry_in=8.2)
    assert status_line(failing) == (
        "notes: failing, retrying in 8s: cannot reach the hub"
    )
    busy = failing._replace(busy=True, error="locked by me@host")
    assert status_line(busy) == "notes: waiting for another run: locked by me@host"
