"""A second davgate process for the state tests: a peer that runs commands on request.

The peer opens the same store (by ``open_store`` kind and options), wraps it
in WsgiDAV's ``LockManager`` and our adapters, prints ``{"ready": true}`` and
then answers one JSON command per stdin line with one JSON line on stdout.
Tests wait on those answers, never on the clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PEER_SCRIPT = r"""
import json, sys
from wsgidav.dav_error import DAVError
from wsgidav.lock_man.lock_manager import LockManager
from davgate.state import open_store
from davgate.state.wsgidav_adapters import StoreLockStorage, StorePropertyManager

kind, options = json.loads(sys.argv[1])
store = open_store(kind, **options)
storage = StoreLockStorage(store)
manager = LockManager(storage)
props = StorePropertyManager(store)

def acquire(url, principal, scope="exclusive", depth="0", via="manager"):
    if via == "storage":  # skip LockManager's check: only the store can refuse
        lock = {"type": "write", "scope": scope, "depth": depth, "timeout": 600,
                "owner": b"<owner>peer</owner>", "principal": principal}
        return storage.create(url, lock)["token"]
    return manager.acquire(url=url, lock_type="write", lock_scope=scope,
                           lock_depth=depth, lock_owner=b"<owner>peer</owner>",
                           timeout=600, principal=principal, token_list=[])["token"]

def get_property(url, name):
    value = props.get_property(url, name)
    return None if value is None else [type(value).__name__, value.decode()]

COMMANDS = {
    "acquire": acquire,
    "release": lambda token: manager.release(token),
    "locks": lambda url: [lock["token"] for lock in manager.get_url_lock_list(url)],
    "write_property": lambda url, name, text: props.write_property(url, name, text.encode()),
    "get_property": get_property,
    "property_names": lambda url: props.get_properties(url),
}

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    try:
        answer = {"ok": COMMANDS[command["op"]](**command["args"])}
    except DAVError as error:
        answer = {"dav_error": error.value}
    print(json.dumps(answer), flush=True)
store.close()
"""


class Peer:
    """Another Python process using the same state store."""

    def __init__(self, spec: tuple[str, dict[str, Any]]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PEER_SCRIPT, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        assert self.receive() == {"ready": True}

    def send(self, op: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"peer exited with status {self.proc.wait()}")
        return json.loads(line)

    def call(self, op: str, **args: Any) -> Any:
        """Run one command; return its result, or ``{"dav_error": status}``."""
        self.send(op, **args)
        answer = self.receive()
        return answer.get("ok", answer)

    def stop(self) -> int:
        """Ask the peer to exit; return its exit status."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        return self.proc.returncode


@pytest.fixture
def start_peer() -> Iterator[Callable[[tuple[str, dict[str, Any]]], Peer]]:
    """Start peers on a store spec; every peer is stopped when the test ends."""
    started: list[Peer] = []

    def start(spec: tuple[str, dict[str, Any]]) -> Peer:
        peer = Peer(spec)
        started.append(peer)
        peer.wait_ready()
        return peer

    yield start
    statuses = [peer.stop() for peer in started]
    assert statuses == [0] * len(started), f"peers exited with {statuses}"


from tests.postgres import postgres  # noqa: E402,F401 - the session's PostgreSQL, for the postgres store's tests
