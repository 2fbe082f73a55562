"""Records compared column by column (``engine/columns.py``) plan exactly
what the engine's item-by-item detection plans; a file target is written
once per run, atomically, and a run killed while applying resumes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.engine.session import Session
from accord.records import apply_plan, load_mapping, make_plan

pytest.importorskip("pyarrow")

MAPPING = """
[entities.people]
key = ["id"]
fields = ["id", "name", "room"]
{types}
{mode}
[entities.people.source]
url = "csv://{source}"
[[entities.people.targets]]
url = "csv://{target}"
"""

# keys that are plain names, and keys the engine quotes or refuses
keys = st.one_of(
    st.integers(0, 40).map(str),
    st.sampled_from(["a/b", ".hidden", "50%", "x\\y", "..", "Ab", "ab", " s "]),
)
values = st.sampled_from(["", "R1", "R2", "x,y", 'q"uote', "new\\line", "é"])
sides = st.dictionaries(keys, st.tuples(values, values), max_size=25)


def write_csv(path: Path, records: dict[str, tuple[str, str]]) -> None:
    import csv

    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "room"])
        for key, (name, room) in records.items():
            writer.writerow([key, name, room])


def folder_with(
    source: dict, target: dict, two_way: bool, typed: bool
) -> tuple[Path, Path]:
    folder = Path(tempfile.mkdtemp())
    write_csv(folder / "source.csv", source)
    write_csv(folder / "target.csv", target)
    path = folder / "m.toml"
    path.write_text(
        MAPPING.format(
            types='types = { id = "int" }' if typed else "",
            mode='mode = "two-way"' if two_way else "",
            source=folder / "source.csv",
            target=folder / "target.csv",
        )
    )
    return folder, path


def planned(path: Path, state: Path, columns: bool, monkeypatch) -> tuple:
    """What a plan holds, in a comparable form."""
    with monkeypatch.context() as patch:
        if not columns:
            patch.setattr(Session, "_scan_columns", lambda self, store: None)
        prepared = make_plan(
            load_mapping(path), state_dir=state, max_delete_percent=100
        )
    plan = prepared.pairs[0].plan
    assert plan is not None
    return (
        sorted(
            (a.op, a.key, str(a.side), a.entry, a.expect, a.other, a.new_key)
            for a in plan.actions
        ),
        sorted((c.key, c.left, c.right) for c in plan.conflicts),
        sorted((p.key, p.message) for p in plan.problems),
        sorted(plan.agreed),
        plan.guards,
        sorted(prepared.plan.actions, key=repr),
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    first=sides,
    target=sides,
    later=sides,
    two_way=st.booleans(),
    typed=st.booleans(),
)
def test_columns_plan_what_the_item_by_item_path_plans(
    first, target, later, two_way, typed, monkeypatch
) -> None:
    """A first plan, and after it is applied, the next day's plan (the
    source changed): both ways agree on every action, entry and problem."""
    if typed:  # int keys only
        first, target, later = (
            {k: v for k, v in side.items() if k.isdigit()}
            for side in (first, target, later)
        )
    folder, path = folder_with(first, target, two_way, typed)
    try:
        same_plans(folder, path, first, later, monkeypatch)
    finally:
        shutil.rmtree(folder)


def same_plans(folder: Path, path: Path, first: dict, later: dict, monkeypatch) -> None:
    state = folder / "state"
    if not both_ways(path, state, monkeypatch):
        return
    prepared = make_plan(load_mapping(path), state_dir=state, max_delete_percent=100)
    apply_plan(prepared, override_guards=True)
    write_csv(folder / "source.csv", {**first, **later})
    both_ways(path, state, monkeypatch)


def both_ways(path: Path, state: Path, monkeypatch) -> bool:
    """Both ways plan alike, or refuse alike (bad data, a guard)."""
    try:
        fast = planned(path, state, True, monkeypatch)
    except Exception as exc:
        with pytest.raises(type(exc)):
            planned(path, state, False, monkeypatch)
        return False
    assert fast == planned(path, state, False, monkeypatch)
    return True


def test_a_csv_target_is_written_once_per_run(tmp_path, monkeypatch) -> None:
    """2,000 changes (several of the engine's batches): one rename over the
    target, the file's order kept, new records last."""
    source = {str(i): (f"P{i}", "R1") for i in range(3000)}
    target = {str(i): (f"P{i}", "R0" if i % 3 else "R1") for i in range(1000, 3200)}
    folder, path = folder_with(source, target, False, True)
    replaced: list[str] = []
    real = os.replace

    def counted(src, dst, *args, **kwargs):
        replaced.append(str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", counted)
    prepared = make_plan(
        load_mapping(path), state_dir=folder / "state", max_delete_percent=100
    )
    report = apply_plan(prepared)
    assert report.ok
    target_file = str(folder / "target.csv")
    assert replaced.count(target_file) == 1
    lines = (folder / "target.csv").read_text().splitlines()
    assert lines[0] == "id,name,room"
    ids = [int(line.split(",")[0]) for line in lines[1:]]
    assert ids[:2000] == list(range(1000, 3000))  # in place, in order
    assert sorted(ids[2000:]) == list(range(1000))  # the new ones, last
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_csv_file_changed_before_it_is_written_is_left_alone() -> None:
    """The file is rewritten only if it is still the one read: else
    nothing is written, and the write fails as stale."""
    from accord.errors import PreconditionFailed
    from accord.records.places import open_place

    source = {str(i): (f"P{i}", "R1") for i in range(20)}
    folder, path = folder_with(source, {}, False, True)
    entity = load_mapping(path).entities["people"]
    place = open_place(entity.targets[0], entity, entity.fields)
    place.read_rows()
    place.change("create", (1,), None, {"id": 1, "name": "P1", "room": "R1"})
    (folder / "target.csv").write_text("id,name,room\n99,Someone,R9\n")
    with pytest.raises(PreconditionFailed):
        place.commit()
    assert (folder / "target.csv").read_text() == "id,name,room\n99,Someone,R9\n"
    shutil.rmtree(folder)


def accord(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
@pytest.mark.parametrize("step", [1, 2, 20, 40])
def test_a_csv_apply_killed_midway_resumes(tmp_path, step) -> None:
    """Killed after the journal, or among the actions: the target is as
    it was (never half-written), and the next run completes the work."""
    before = {str(i): (f"P{i}", "R0") for i in range(60)}
    folder, path = folder_with(before, {}, False, True)
    env = {"ACCORD_STATE_DIR": str(tmp_path / "state")}
    assert accord("records", "sync", str(path), "--yes", env=env).returncode == 0
    synced = (folder / "target.csv").read_text()
    after = {k: (n, "R1" if int(k) % 2 else r) for k, (n, r) in before.items()}
    after.update({str(i): (f"P{i}", "R5") for i in range(60, 70)})
    write_csv(folder / "source.csv", after)
    killed = accord(
        "records",
        "sync",
        str(path),
        "--yes",
        env={**env, "ACCORD_KILL_AT_STEP": str(step)},
    )
    assert killed.returncode == -9, killed.stderr
    assert (folder / "target.csv").read_text() == synced
    done = accord("records", "sync", str(path), "--yes", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = (folder / "target.csv").read_text().splitlines()[1:]
    assert len(lines) == 70
    assert {line.split(",")[0]: line.split(",")[2] for line in lines} == {
        k: r for k, (_, r) in after.items()
    }
    again = accord("records", "plan", str(path), env=env)
    assert again.returncode == 0, again.stdout
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
