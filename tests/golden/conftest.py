"""``pytest tests/golden --update-golden`` rewrites the expected transcripts."""

from __future__ import annotations


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/*.out from the current behaviour",
    )
