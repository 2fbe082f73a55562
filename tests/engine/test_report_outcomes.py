"""A report's outcomes by status, read while they grow and at the end."""

from __future__ import annotations

from accord.engine.plan import Action, Plan
from accord.engine.report import Outcome, Report
from accord.model import Side


def _outcome(i: int, status: str) -> Outcome:
    return Outcome(Action("copy", f"f{i}", Side.RIGHT), status)


def test_outcomes_by_status_follow_the_outcomes_as_they_grow():
    report = Report("run", Plan([], [], []))
    assert (report.done, report.skipped, report.failed) == ([], [], [])
    first = [_outcome(i, "done") for i in range(3)]
    report.outcomes += first
    assert report.done == first and report.ok
    more = [_outcome(3, "skipped"), _outcome(4, "done"), _outcome(5, "failed")]
    report.outcomes.extend(more)
    assert report.done == [*first, more[1]]
    assert report.skipped == [more[0]] and report.failed == [more[2]]
    assert not report.ok
    # a list handed out is the caller's: changing it changes nothing here
    report.done.clear()
    assert len(report.done) == 4
    assert report.summary()["skipped"] == 1


def test_outcomes_replaced_or_cut_are_sorted_again():
    report = Report("run", Plan([], [], []))
    report.outcomes.append(_outcome(0, "failed"))
    assert len(report.failed) == 1
    report.outcomes = [_outcome(1, "done")]
    assert report.failed == [] and len(report.done) == 1
    report.outcomes.append(_outcome(2, "done"))
    report.outcomes.append(_outcome(3, "done"))
    assert len(report.done) == 3
    del report.outcomes[1:]
    assert [o.action.key for o in report.done] == ["f1"]


def test_a_plans_summary_reads_as_one_line(tmp_path) -> None:
    import accord

    left, right = tmp_path / "a", tmp_path / "b"
    left.mkdir()
    right.mkdir()
    (left / "new.txt").write_text("x" * 1500)
    (right / "other.txt").write_text("y")
    plan = accord.sync(str(left), str(right), dry_run=True, state_dir=tmp_path / "s")
    summary = plan.summary()
    assert str(summary) == "to right: 1 copy (1.5 KB); to left: 1 copy (1 B)"
    assert summary.total == 2 and summary.bytes_to_right == 1500
