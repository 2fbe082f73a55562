"""accord's client against accord's server, in one process: the pipeline,
both state machines, the codecs and the app, with every sync mode."""

from __future__ import annotations

from syncml.conftest import notes_in, texts


def write(folder, name, text):
    (folder / name).write_text(text)


def test_first_sync_merges_both_sides_without_duplicates(pair):
    write(pair.local, "a.txt", "Alpha\nlocal only\n")
    write(pair.local, "same.txt", "Shared\nthe same note on both sides\n")
    write(pair.served, "b.txt", "Beta\nserver only\n")
    write(pair.served, "Shared.txt", "Shared\r\nthe same note on both sides\r\n\r\n")
    report = pair.sync()
    assert report.ok, report.summary()
    assert texts(pair.local) == texts(pair.served)
    assert len(texts(pair.served)) == 3  # the shared note exists once
    again = pair.sync()
    assert again.summary()["changed"] == 0
    assert len(notes_in(pair.local)) == 3


def test_two_way_edits_and_deletes(pair):
    write(pair.local, "a.txt", "Alpha\n")
    write(pair.local, "b.txt", "Beta\n")
    pair.sync()
    # accord's server takes SIF notes, which carry their names
    assert sorted(notes_in(pair.served)) == ["a.txt", "b.txt"]
    write(pair.local, "a.txt", "Alpha\nedited locally\n")
    (pair.served / "b.txt").unlink()
    write(pair.served, "c.txt", "Gamma\nnew on the server\n")
    report = pair.sync()
    assert report.ok
    assert sorted(notes_in(pair.local)) == ["a.txt", "c.txt"]
    assert texts(pair.local) == texts(pair.served)
    assert "edited locally" in (pair.served / "a.txt").read_text()


def test_plain_text_notes_are_named_from_their_first_line(pair):
    write(pair.local, "a.txt", "Alpha\n")
    write(pair.served, "x.txt", "Shopping list\nmilk\n")
    assert pair.sync(content_type="text/plain").ok
    assert sorted(notes_in(pair.served)) == ["Alpha.txt", "x.txt"]
    assert sorted(notes_in(pair.local)) == ["Shopping list.txt", "a.txt"]


def test_wbxml_and_xml_carry_the_same(make_pair):
    for encoding in ("xml", "wbxml"):
        p = make_pair(encoding)
        write(p.local, "a.txt", 'Alpha <&> ]]> "quoted"\nünïcödé\n')
        write(p.served, "b.txt", "Beta\r\nwith CR LF\r\n")
        assert p.sync(wbxml=encoding == "wbxml").ok
        assert texts(p.local) == texts(p.served)
        assert any(b.startswith(b"\x02\xa4\x01") for b in p.posts) == (
            encoding == "wbxml"
        )


def test_a_conflict_on_the_client_side_keeps_both(pair):
    write(pair.local, "a.txt", "Alpha\nline 2\n")
    pair.sync()
    write(pair.local, "a.txt", "Alpha\nline 2 local\n")
    write(pair.served, "a.txt", "Alpha\nline 2 server\n")
    report = pair.sync()
    assert report.ok or report.conflicts == []
    local = texts(pair.local)
    assert "Alpha\nline 2 local" in local and "Alpha\nline 2 server" in local


def test_refresh_from_server_replaces_the_local_notes(pair):
    write(pair.local, "a.txt", "Alpha\n")
    pair.sync()
    write(pair.local, "stray.txt", "Stray\nonly here\n")
    write(pair.served, "new.txt", "New\non the server\n")
    report = pair.sync("refresh-from-server")
    assert report.ok, report.summary()
    assert texts(pair.local) == texts(pair.served) == ["Alpha", "New\non the server"]


def test_refresh_from_client_replaces_the_server_notes(pair):
    write(pair.local, "a.txt", "Alpha\n")
    pair.sync()
    write(pair.served, "stray.txt", "Stray\nonly on the server\n")
    write(pair.local, "b.txt", "Beta\n")
    report = pair.sync("refresh-from-client")
    assert report.ok, report.summary()
    assert texts(pair.served) == ["Alpha", "Beta"]


def test_one_way_modes_carry_one_side_only(pair):
    write(pair.local, "a.txt", "Alpha\n")
    pair.sync()
    write(pair.local, "b.txt", "Beta\n")
    write(pair.served, "c.txt", "Gamma\n")
    pair.sync("one-way-from-client")
    assert texts(pair.served) == ["Alpha", "Beta", "Gamma"]
    assert texts(pair.local) == ["Alpha", "Beta"]
    pair.sync("one-way-from-server")
    assert texts(pair.local) == ["Alpha", "Beta", "Gamma"]


def test_a_large_note_travels_in_chunks_both_ways(make_pair):
    p = make_pair(max_msg_size=4096)
    big = "Big note\n" + "".join(f"line {i} of a long note\n" for i in range(3000))
    write(p.local, "big.txt", big)
    write(p.served, "other.txt", "Other\n" + "x" * 30000 + "\n")
    report = p.sync(max_msg_size=4096)
    assert report.ok
    assert (p.served / "big.txt").read_text() == big
    assert texts(p.local) == texts(p.served)
    more = [b for b in p.posts if b"<MoreData/>" in b]
    assert more, "the client cut the note into chunks"
    assert any(b"<MoreData/>" in r for r in p.replies), "so did the server"
    assert max(len(b) for b in p.posts) <= 4096
    assert max(len(r) for r in p.replies) <= 4096


def test_many_notes_over_many_messages(make_pair):
    p = make_pair(max_msg_size=8192)
    for i in range(150):
        write(p.local, f"n{i}.txt", f"Note {i}\nbody {i}\n")
    for i in range(120):
        write(p.served, f"s{i}.txt", f"Server {i}\nbody {i}\n")
    report = p.sync(max_msg_size=8192)
    assert report.ok
    assert len(texts(p.served)) == 270 == len(texts(p.local))
    assert len(p.posts) > 10
    assert max(len(r) for r in p.replies) <= 8192
    assert p.sync(max_msg_size=8192).summary()["changed"] == 0


def test_a_note_bigger_than_the_server_takes_waits_and_is_reported(make_pair):
    p = make_pair(max_obj_size=5000)
    (p.local / "small.txt").write_text("Small\n")
    (p.local / "huge.txt").write_text("Huge\n" + "h" * 20000)
    report = p.sync()
    assert any("MaxObjSize 5000" in n for n in report.notices), report.notices
    assert sorted(notes_in(p.served)) == ["small.txt"]
    # it stays queued: nothing is lost, and the next run says so again
    again = p.sync()
    assert any("MaxObjSize 5000" in n for n in again.notices)
    assert (p.local / "huge.txt").exists()


def test_a_file_that_is_not_text_travels_as_its_bytes(pair):
    blob = bytes(range(256)) * 3
    (pair.local / "picture.bin").write_bytes(blob)
    assert pair.sync().ok
    (served,) = [p for p in pair.served.iterdir() if p.is_file()]
    assert served.read_bytes() == blob
