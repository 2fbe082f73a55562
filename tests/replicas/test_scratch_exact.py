import os

import pytest

from accord.engine.session import Session

NAMES = [b"caf\xe9.txt", b"a\nb", b"tab\there", b"ctl\x01", b"cafe\xcc\x81.txt"]

@pytest.mark.parametrize("transport", ["&agent=on", "&agent=off"])
def test_scratch(sshd, tmp_path, transport):
    left = tmp_path / "L"
    left.mkdir()
    for n in NAMES:
        (left / os.fsdecode(n)).write_bytes(n)
    url = sshd.url() + transport
    remote = sshd.path(url)
    remote.mkdir()
    (remote / os.fsdecode(b"r\xe8ight")).write_bytes(b"r")
    os.mkdir(os.fsencode(remote) + b"/d\xff")
    (remote / os.fsdecode(b"d\xff/in\x02")).write_bytes(b"q")
    for _ in range(2):
        with Session(str(left), url) as s:
            p = s.plan()
            print([(a.op, a.side, a.key) for a in p.ordered()], p.problems)
            r = s.apply(p)
            print(len(r.done), [(f.action.key, f.message) for f in r.failed])
    a = sorted(os.listdir(os.fsencode(left)))
    b = sorted(os.listdir(os.fsencode(remote)))
    print(a, b)
    assert a == b
    with Session(str(left), url) as s:
        assert s.plan().is_empty
