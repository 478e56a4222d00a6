"""Request ids made without random bytes per request: unique, 32 hex digits, new in a forked child."""

from __future__ import annotations

import os
import re

from davgate.ops import requestid

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_new_ids_are_32_hex_digits_and_do_not_repeat() -> None:
    ids = [requestid.choose(None) for _ in range(10_000)]
    assert all(HEX32.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_two_sources_do_not_share_ids() -> None:
    first, second = requestid.IdSource(), requestid.IdSource()
    assert {first() for _ in range(100)}.isdisjoint({second() for _ in range(100)})


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, "\n".join(requestid.choose(None) for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {requestid.choose(None) for _ in range(100)}
    assert len(child) == 100 and child.isdisjoint(parent)
