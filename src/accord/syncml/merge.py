"""A three-way merge of note bodies, line by line. Pure.

``merge(base, ours, theirs)`` is the merged body when the two edits touch
different lines of ``base``, and None when they overlap (a real conflict,
settled by the policy). Edits that are the same on both sides merge.
"""

from __future__ import annotations

from difflib import SequenceMatcher

__all__ = ["merge"]

_Edit = tuple[int, int, list[bytes]]  # replace base[start:end] with lines


def merge(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    if ours == theirs:
        return ours
    if base == ours:
        return theirs
    if base == theirs:
        return ours
    lines = base.splitlines(keepends=True)
    a = _edits(lines, ours.splitlines(keepends=True))
    b = _edits(lines, theirs.splitlines(keepends=True))
    edits: list[_Edit] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and _before(a[i], b[j])):
            edits.append(a[i])
            i += 1
        elif i >= len(a) or _before(b[j], a[i]):
            edits.append(b[j])
            j += 1
        elif a[i] == b[j]:
            edits.append(a[i])
            i += 1
            j += 1
        else:
            return None  # both changed the same lines, differently
    out: list[bytes] = []
    at = 0
    for start, end, new in edits:
        out.extend(lines[at:start])
        out.extend(new)
        at = end
    out.extend(lines[at:])
    return b"".join(out)


def _edits(base: list[bytes], other: list[bytes]) -> list[_Edit]:
    matcher = SequenceMatcher(None, base, other, autojunk=False)
    return [
        (i1, i2, other[j1:j2])
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def _before(x: _Edit, y: _Edit) -> bool:
    """Edit ``x`` ends strictly before ``y`` starts (they do not touch)."""
    if x[1] < y[0]:
        return True
    # an insertion at the point where the other edit starts, neither empty-range
    return x[1] == y[0] and x[0] < x[1] and y[0] < y[1]
