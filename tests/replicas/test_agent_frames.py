"""The agent cuts a batch's bytes into its files without copying them."""

from __future__ import annotations

import pytest

from accord.replicas.agent import _Frames


def test_pieces_are_views_of_their_frame_or_joined_across_frames() -> None:
    frames = _Frames([b"aaabb", b"", b"bcccc", b"d"])
    pieces = frames.pieces([3, 0, 3, 4, 0, 1])
    assert [bytes(p) for p in pieces] == [b"aaa", b"", b"bbb", b"cccc", b"", b"d"]
    assert isinstance(pieces[0], memoryview) and isinstance(pieces[3], memoryview)
    assert _Frames([]).pieces([0, 0]) == [b"", b""]


def test_too_few_bytes_are_refused() -> None:
    with pytest.raises(ValueError):
        _Frames([b"ab", b"c"]).pieces([2, 2])
