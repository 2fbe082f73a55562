"""docs/cli.md quotes every command's --help: it must be what the command
prints now (at 80 columns), or the reference tells users of options that
are gone and hides new ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_SECTION = re.compile(r"^### accord ([a-z][a-z -]*)\n\n```\n(.*?)```", re.M | re.S)


def _sections() -> list[tuple[str, str]]:
    return _SECTION.findall(DOC.read_text(encoding="utf-8"))


def test_the_reference_quotes_many_commands() -> None:
    assert len(_sections()) >= 40


def test_each_quoted_help_is_the_commands_help_now() -> None:
    stale = []
    env = {**os.environ, "COLUMNS": "80"}
    for command, quoted in _sections():
        done = subprocess.run(
            [sys.executable, "-m", "accord", *command.split(), "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, (command, done.stderr)
        if done.stdout != quoted:
            stale.append(command)
    if stale:
        pytest.fail(
            "docs/cli.md quotes an older --help of: "
            + ", ".join(stale)
            + " (paste the output of 'COLUMNS=80 accord COMMAND --help')"
        )
