"""Pairing names spelled in two Unicode normalizations (engine/twins.py)."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from accord.engine.detect import Scanned
from accord.engine.spelled import Spelled
from accord.engine.twins import pair
from accord.model import DIR, FILE, Entry, Side

NFD = "re\u0301sume\u0301"
NFC = unicodedata.normalize("NFC", NFD)


def _scan(side: Side, keys: list[str], unseen: list[str] = ()) -> Scanned:
    fresh = [Entry(k, FILE if "." in k else DIR, 1, 0, 0o644, "v") for k in keys]
    return Scanned(side, fresh, list(unseen), [], len(fresh), None)


def _keys(scan: Scanned) -> list[str]:
    return sorted(e.key for e in scan.fresh)


def test_plain_names_cost_nothing() -> None:
    left, right = _scan(Side.LEFT, ["a.txt"]), _scan(Side.RIGHT, ["b.txt"])
    assert pair(left, right, {}) == (left, right, {})


def test_a_twin_on_the_other_side_takes_the_left_key() -> None:
    left = _scan(Side.LEFT, [NFC, f"{NFC}/a.txt"])
    right = _scan(Side.RIGHT, [NFD, f"{NFD}/a.txt", f"{NFD}/b.txt"])
    left2, right2, real = pair(left, right, {})
    assert left2 == left
    assert _keys(right2) == sorted([NFC, f"{NFC}/a.txt", f"{NFC}/b.txt"])
    assert real == {
        Side.RIGHT: {
            NFC: NFD,
            f"{NFC}/a.txt": f"{NFD}/a.txt",
            f"{NFC}/b.txt": f"{NFD}/b.txt",
        }
    }


def test_a_twin_of_an_archived_key_takes_that_key() -> None:
    archived = {NFC: "v", f"{NFC}/a.txt": "v"}
    left = _scan(Side.LEFT, [])
    right = _scan(Side.RIGHT, [NFD, f"{NFD}/a.txt"], unseen=list(archived))
    _, right2, real = pair(left, right, archived)
    assert _keys(right2) == sorted(archived) and right2.unseen == []
    assert real[Side.RIGHT][NFC] == NFD


def test_an_exact_match_wins_and_the_other_spelling_is_another_item() -> None:
    left = _scan(Side.LEFT, [NFC, NFD])
    right = _scan(Side.RIGHT, [NFC])
    assert pair(left, right, {})[2] == {}


def test_two_spellings_on_one_side_are_not_guessed() -> None:
    odd = unicodedata.normalize("NFC", "re\u0301") + "sume\u0301"  # half composed
    left = _scan(Side.LEFT, [NFC, odd])
    right = _scan(Side.RIGHT, [NFD])
    assert pair(left, right, {})[2] == {}


def test_different_folders_never_pair_their_items() -> None:
    left = _scan(Side.LEFT, ["a", f"a/{NFC}"])
    right = _scan(Side.RIGHT, ["b", f"b/{NFD}"])
    assert pair(left, right, {})[2] == {}


def test_spelled_reaches_the_real_name_below_a_paired_folder() -> None:
    spelled = Spelled(None, {NFC: NFD})  # type: ignore[arg-type]
    assert spelled.real(f"{NFC}/new/x.txt") == f"{NFD}/new/x.txt"
    assert spelled.real("other/x.txt") == "other/x.txt"


_PART = st.sampled_from(["a", NFC, NFD, "cafe\u0301", "caf\u00e9", "x\udce9"])


@given(
    st.lists(st.lists(_PART, min_size=1, max_size=3).map("/".join), max_size=8),
    st.lists(st.lists(_PART, min_size=1, max_size=3).map("/".join), max_size=8),
)
def test_pairing_is_consistent(mine: list[str], theirs: list[str]) -> None:
    """Every key a side ends with is distinct, and its real name is a name
    the side listed."""

    def closed(keys: list[str]) -> list[str]:  # with every folder above
        found = set()
        for key in keys:
            parts = key.split("/")
            found.update("/".join(parts[: n + 1]) for n in range(len(parts)))
        return sorted(found)

    left, right = _scan(Side.LEFT, closed(mine)), _scan(Side.RIGHT, closed(theirs))
    paired = pair(left, right, {})
    for scan, after, side in (
        (left, paired[0], Side.LEFT),
        (right, paired[1], Side.RIGHT),
    ):
        keys = [e.key for e in after.fresh]
        assert len(set(keys)) == len(keys)
        spelled = Spelled(None, paired[2].get(side, {}))  # type: ignore[arg-type]
        assert sorted(spelled.real(k) for k in keys) == _keys(scan)
