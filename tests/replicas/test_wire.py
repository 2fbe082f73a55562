"""The agent's wire: frames come out whole however the bytes are cut."""

from __future__ import annotations

import json
import os
import threading

from hypothesis import given, settings
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
_big_frames = st.lists(
    st.tuples(
        st.sampled_from([wire.CALL, wire.DATA, wire.END, wire.ACK]),
        st.integers(0, 2**32 - 1),
        st.one_of(
            st.binary(max_size=300),
            # payloads above _DIRECT, read into a buffer of their own
            st.integers(wire._DIRECT - 2, wire._DIRECT + 70_000).map(
                lambda size: os.urandom(size)
            ),
        ),
    ),
    max_size=8,
)


def _through_pipe(stream: bytes, cuts: list[int]) -> tuple[int, threading.Thread]:
    """The read end of a pipe that ``stream`` is written into, in pieces
    of ``cuts`` (in turn), by a thread; then closed."""
    read, write = os.pipe()

    def feed() -> None:
        start, index = 0, 0
        try:
            while start < len(stream):
                size = cuts[index % len(cuts)]
                os.write(write, stream[start : start + size])
                start, index = start + size, index + 1
        finally:
            os.close(write)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return read, thread


@settings(max_examples=40, deadline=None)
@given(_big_frames, st.lists(st.integers(1, 90_000), min_size=1, max_size=10))
def test_frames_read_from_a_descriptor_survive_any_cut(frames, cuts) -> None:
    stream = b"".join(wire.frame(kind, ident, data) for kind, ident, data in frames)
    read, thread = _through_pipe(stream, cuts)
    waits = []
    try:
        got = [
            (kind, ident, bytes(data))
            for kind, ident, data in wire.frames_from(read, lambda: waits.append(1))
        ]
    finally:
        thread.join()
        os.close(read)
    assert got == frames
    assert waits  # told before each read


def test_a_channel_ending_within_a_big_payload_ends_the_frames() -> None:
    # as the client going away mid-batch: the frames before it come, the
    # frame cut short does not (the agent then stops what waits on it)
    first = wire.frame(wire.CALL, 7, b"[]")
    whole = wire.frame(wire.DATA, 7, os.urandom(wire._DIRECT + 5000))
    read, thread = _through_pipe(first + whole[:-100], [4096])
    try:
        assert list(wire.frames_from(read)) == [(wire.CALL, 7, b"[]")]
    finally:
        thread.join()
        os.close(read)
