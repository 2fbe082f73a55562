"""The agent's wire: frames come out whole however the bytes are cut."""

from __future__ import annotations

import json
import os

from hypothesis import given
from hypothesis import strategies as st

from accord.model import Problem
from accord.replicas import wire

_frames = st.lists(
    st.tuples(
        st.sampled_from([wire.CALL, wire.DATA, wire.END, wire.ACK]),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=3000),
    ),
    max_size=20,
)


@given(_frames, st.lists(st.integers(1, 5000), min_size=1, max_size=50))
def test_frames_survive_any_cut(frames, cuts) -> None:
    stream = b"".join(wire.frame(kind, ident, data) for kind, ident, data in frames)
    pieces, start = [], 0
    for index in range(len(stream)):
        size = cuts[index % len(cuts)]
        if start >= len(stream):
            break
        pieces.append(stream[start : start + size])
        start += size
    pieces.reverse()

    def read(_: int) -> bytes:
        return pieces.pop() if pieces else b""

    assert list(wire.frames(read)) == frames


def test_pipes_are_widened_where_the_system_allows() -> None:
    read, write = os.pipe()
    try:
        wire.widen_pipes(read, write, 10_000)  # a closed descriptor is left alone
        if hasattr(__import__("fcntl"), "F_GETPIPE_SZ"):
            import fcntl

            assert fcntl.fcntl(write, fcntl.F_GETPIPE_SZ) == wire.PIPE_SIZE
    finally:
        os.close(read)
        os.close(write)


@given(
    st.text(min_size=1, max_size=40),
    st.text(max_size=80),
    st.booleans(),
    st.booleans(),
)
def test_a_listing_problem_crosses_the_wire_whole(key, message, retry, notice) -> None:
    """A problem from the agent's listing keeps what the run's exit code
    depends on: whether it is only a notice (a named pipe skipped) or
    leaves something unsynced."""
    problem = Problem(key, None, message, retry, notice=notice)
    sent = json.loads(json.dumps(wire.encode_item(problem)))
    assert wire.decode_item(sent) == problem
