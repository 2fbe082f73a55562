"""Golden scenarios: each ``*.scn`` step script against its ``*.out``."""

from __future__ import annotations

from pathlib import Path

import pytest

from .runner import run_script

HERE = Path(__file__).parent
SCRIPTS = sorted(HERE.glob("*.scn"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_scenario(script: Path, tmp_path: Path, request) -> None:
    got = run_script(script, tmp_path)
    golden = script.with_suffix(".out")
    if request.config.getoption("--update-golden"):
        golden.write_text(got)
        return
    assert golden.exists(), f"no {golden.name}: run with --update-golden"
    assert got == golden.read_text()
