"""The XML and WBXML codecs: captured SyncEvolution traffic, libwbxml's
tools as the reference, and hostile input."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.syncml import message as m
from accord.syncml import wbxml
from accord.syncml.tree import Malformed, Node, from_xml, to_xml
from fixtures._servers import start

HERE = Path(__file__).parent / "data"


def captured(suffix: str) -> list[Path]:
    return sorted(
        p for p in HERE.glob(f"*{suffix}") if not p.name.endswith(".wbxml2xml.xml")
    )


@pytest.fixture(scope="session")
def libwbxml(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wbxml")
    settings_, _ = start("wbxml.sh", folder, "ACCORD_WBXML_DIR")
    return settings_


def _same(a: m.Message, b: m.Message) -> bool:
    """Equal, but for the DevInf type name each encoding uses."""
    return _plain(a) == _plain(b)


def _plain(msg: m.Message) -> str:
    return repr(msg).replace("devinf+wbxml", "devinf+xml")


@pytest.mark.parametrize("path", captured(".wbxml"), ids=lambda p: p.name)
def test_captured_wbxml_is_reencoded_byte_for_byte(path):
    data = path.read_bytes()
    assert wbxml.encode(wbxml.decode(data)) == data
    msg = m.parse(data)
    assert _same(m.parse(m.render(msg)), msg)
    assert m.parse(m.render(msg, wbxml_encoding=True)) == msg


@pytest.mark.parametrize("path", captured(".xml"), ids=lambda p: p.name)
def test_captured_xml_round_trips(path):
    msg = m.parse(path.read_bytes())
    assert m.parse(m.render(msg)) == msg
    assert _same(m.parse(m.render(msg, wbxml_encoding=True)), msg)


@pytest.mark.parametrize(
    "path", captured(".xml") + captured(".wbxml"), ids=lambda p: p.name
)
def test_libwbxml_reads_what_we_write_and_we_read_what_it_writes(
    path, libwbxml, tmp_path
):
    msg = m.parse(path.read_bytes())
    ours = tmp_path / "ours.wbxml"
    ours.write_bytes(m.render(msg, wbxml_encoding=True))
    back = tmp_path / "back.xml"
    subprocess.run(
        [libwbxml["WBXML2XML"], "-m", "0", "-o", str(back), str(ours)],
        check=True,
        capture_output=True,
    )
    assert _same(m.parse(back.read_bytes()), msg)
    xml = tmp_path / "ours.xml"
    xml.write_bytes(m.render(msg))
    theirs = tmp_path / "theirs.wbxml"
    subprocess.run(
        [libwbxml["XML2WBXML"], "-o", str(theirs), str(xml)],
        check=True,
        capture_output=True,
    )
    # their string table too; libwbxml turns LF into CR LF in item data
    assert _plain(m.parse(theirs.read_bytes())).replace("\\r\\n", "\\n") == _plain(msg)


def test_notes_with_markup_line_ends_and_unicode_survive_both_encodings():
    body = "Title <&> ]]> x\r\nünïcödé\r\n\tend\r".encode()
    msg = m.Message(
        m.Header("1", 1, "http://s/", "dev"),
        (
            m.Sync(
                1,
                "notes",
                "./notes",
                (m.Change("Add", 2, (m.Item(source="7", data=body),)),),
            ),
        ),
        True,
    )
    for wb in (False, True):
        again = m.parse(m.render(msg, wbxml_encoding=wb))
        assert again.commands[0].changes[0].items[0].data == body


def _peer_add(data: bytes, more: bool) -> bytes:
    """A peer's XML Add of one item, with raw CRs (as SyncEvolution writes)."""
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<SyncML xmlns="SYNCML:SYNCML1.2">'
        b"<SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto>"
        b"<SessionID>1</SessionID><MsgID>2</MsgID>"
        b"<Target><LocURI>http://s/</LocURI></Target>"
        b"<Source><LocURI>dev</LocURI></Source></SyncHdr>\r\n<SyncBody>"
        b"<Sync><CmdID>1</CmdID><Target><LocURI>notes</LocURI></Target>"
        b"<Add><CmdID>2</CmdID><Item><Source><LocURI>7</LocURI></Source>"
        b"<Data><![CDATA["
        + data
        + b"]]></Data>"
        + (b"<MoreData/>" if more else b"")
        + b"</Item></Add></Sync><Final/></SyncBody></SyncML>\r\n"
    )


def test_a_large_object_cut_between_cr_and_lf_is_joined_as_it_was():
    """XML reads a CR that no LF follows as an LF: a chunk ending with the CR
    of a line end, joined to the next one starting with its LF, gained a line
    (seen with SyncEvolution's client and a note sent in chunks)."""
    body = b"line 1\r\nline 2\r\nline 3\r\n"
    cut = body.index(b"\n", 8)  # between the CR and the LF of line 2's end
    parts = [body[:cut], body[cut:]]
    assert parts[0].endswith(b"\r") and parts[1].startswith(b"\n")
    joined = b"".join(
        m.parse(_peer_add(part, more=i == 0)).commands[0].changes[0].items[0].data
        for i, part in enumerate(parts)
    )
    assert joined.replace(b"\r\n", b"\n") == b"line 1\nline 2\nline 3\n"
    # the same as plain text rather than CDATA, and a lone CR inside
    doc = _peer_add(b"a\rb\r", more=False).replace(b"<![CDATA[", b"")
    doc = doc.replace(b"]]></Data>", b"</Data>")
    assert m.parse(doc).commands[0].changes[0].items[0].data == b"a\rb\r"


@pytest.mark.parametrize(
    "doc",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;">]><SyncML>&b;</SyncML>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<SyncML>&e;</SyncML>",
        b"<SyncML><SyncHdr>",
        b"not xml at all",
        b"<Other/>",
        b"<SyncML><SyncHdr><MsgID>one</MsgID></SyncHdr><SyncBody/></SyncML>",
    ],
)
def test_hostile_or_malformed_xml_is_refused(doc):
    with pytest.raises(Malformed):
        m.parse(doc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_either_parse_or_are_refused_cleanly(data):
    with contextlib.suppress(Malformed):
        m.parse(b"\x02\xa4\x01\x6a\x00" + data)
    with contextlib.suppress(Malformed):
        m.parse(data)


def test_wbxml_tree_round_trip_of_every_tag():
    from accord.syncml.wbxml import _TOKENS, PUBLIC_SYNCML

    tags = [t for page in _TOKENS[PUBLIC_SYNCML].values() for t in page]
    root = Node("SyncML", tuple(Node(t, (), "x") for t in tags))
    assert wbxml.decode(wbxml.encode(root)) == root
    assert from_xml(to_xml(root)) == root
