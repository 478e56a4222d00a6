"""Host keys: a known_hosts file, or trust on first use pinned in the state store."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from davgate.providers.sftp import SftpMount
from davgate.providers.sftp.hostkeys import HostKeyCheck, fingerprint
from davgate.providers.sftp.remote import HostKeyRejected
from davgate.state import StateStore, open_store
from tests.providers.contract import CONTENT, put, read
from tests.providers.test_sftp import options
from tests.sshd import Sshd, local_user, sshd, start_sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store("sqlite", path=tmp_path / "state.db") as store:
        yield store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def host_key_of(server: Sshd) -> tuple[str, str]:
    key_type, key_b64 = server.host_key.read_text().split()[:2]
    return key_type, key_b64


def pinning_mount(server: Sshd, root: Path, store: StateStore) -> SftpMount:
    mount = SftpMount("/hpc", options(server, root, known_hosts=None, timeout=3.0))
    mount.use_state(store)
    return mount


# -- the state store's part ------------------------------------------------------------


def test_first_pin_wins_and_can_be_forgotten(store: StateStore) -> None:
    assert store.get_host_key("h", 22) is None
    assert store.pin_host_key("h", 22, "ssh-ed25519", "AAAA1") is True
    assert store.pin_host_key("h", 22, "ssh-ed25519", "AAAA2") is False
    assert store.pin_host_key("h", 2222, "ssh-rsa", "BBBB") is True
    pinned = store.get_host_key("h", 22)
    assert pinned is not None and (pinned.key_type, pinned.key_b64) == ("ssh-ed25519", "AAAA1")
    assert store.forget_host_key("h", 22) is True and store.forget_host_key("h", 22) is False
    assert store.get_host_key("h", 22) is None and store.get_host_key("h", 2222) is not None


def test_racing_pins_agree_on_one_key(tmp_path: Path) -> None:
    winners: list[bool] = []

    def pin(i: int) -> None:
        with open_store("sqlite", path=tmp_path / "state.db") as own:
            winners.append(own.pin_host_key("h", 22, "ssh-ed25519", f"KEY{i}"))

    threads = [threading.Thread(target=pin, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners.count(True) == 1


# -- trust on first use ---------------------------------------------------------------------


def test_first_connection_pins_the_key_with_a_log_line(
    sshd: Sshd, root: Path, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    key_type, key_b64 = host_key_of(sshd)
    with (
        caplog.at_level(logging.WARNING, "davgate.sftp"),
        contextlib.closing(pinning_mount(sshd, root, store)) as mount,
    ):
        put(mount, "file.txt", CONTENT)
    pinned = store.get_host_key(sshd.host, sshd.port)
    assert pinned is not None and (pinned.key_type, pinned.key_b64) == (key_type, key_b64)
    lines = [r.getMessage() for r in caplog.records if "pinning" in r.getMessage()]
    assert len(lines) == 1 and fingerprint(key_type, key_b64) in lines[0], lines
    with (
        caplog.at_level(logging.WARNING, "davgate.sftp"),
        contextlib.closing(pinning_mount(sshd, root, store)) as again,
    ):
        assert read(again, "file.txt") == CONTENT  # a second mount (or process) trusts the pin
    assert len([r for r in caplog.records if "pinning" in r.getMessage()]) == 1


def test_a_changed_host_key_is_refused_with_a_clear_error(
    tmp_path: Path, root: Path, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_sshd(tmp_path / "sshd")
    try:
        with contextlib.closing(pinning_mount(server, root, store)) as mount:
            put(mount, "file.txt", CONTENT)
        old = fingerprint(*host_key_of(server))
        server.stop()
        for name in ("host_ed25519", "host_ed25519.pub"):
            (server.folder / name).unlink()
        server.start()  # same address, new host key
        new = fingerprint(*host_key_of(server))
        with (
            caplog.at_level(logging.ERROR, "davgate.sftp"),
            contextlib.closing(pinning_mount(server, root, store)) as mount,
        ):
            for _ in range(3):
                with pytest.raises(HostKeyRejected) as refused:
                    mount.stat("file.txt")
        assert "changed" in refused.value.detail and old in refused.value.detail and new in refused.value.detail
        errors_logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors_logged) == 1 and "refusing to connect" in errors_logged[0], errors_logged
        pinned = store.get_host_key(server.host, server.port)
        assert pinned is not None and fingerprint(pinned.key_type, pinned.key_b64) == old  # the pin stays
    finally:
        server.stop()


def test_without_a_store_the_pin_lives_in_memory(sshd: Sshd, tmp_path: Path) -> None:
    check = HostKeyCheck(sshd.host, sshd.port, label="test")
    key_type, key_b64 = host_key_of(sshd)
    from davgate.providers.sftp.remote import paramiko

    key = paramiko.PKey.from_type_string(key_type, __import__("base64").b64decode(key_b64))
    check.verify(key)
    assert check.expected() == {key_type: key_b64}


# -- known_hosts ----------------------------------------------------------------------------------


def test_a_known_hosts_file_is_checked_and_the_store_untouched(sshd: Sshd, root: Path, store: StateStore) -> None:
    mount = SftpMount("/hpc", options(sshd, root))  # known_hosts: the sshd's own file
    mount.use_state(store)
    with contextlib.closing(mount):
        put(mount, "file.txt", CONTENT)
    assert store.get_host_key(sshd.host, sshd.port) is None


def test_a_host_missing_from_known_hosts_is_refused(sshd: Sshd, root: Path, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd.port + 1} {' '.join(host_key_of(sshd))}\n")
    mount = SftpMount("/hpc", options(sshd, root, known_hosts=other))
    with contextlib.closing(mount), pytest.raises(HostKeyRejected, match="not listed"):
        mount.stat("")


def test_a_different_key_in_known_hosts_is_refused(sshd: Sshd, root: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "known_hosts"
    key_type, key_b64 = host_key_of(start_sshd_key(tmp_path))
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key_b64}\n")
    mount = SftpMount("/hpc", options(sshd, root, known_hosts=wrong))
    with contextlib.closing(mount), pytest.raises(HostKeyRejected, match="changed"):
        mount.stat("")


def test_hashed_known_hosts_entries_are_understood(sshd: Sshd, root: Path, tmp_path: Path) -> None:
    from davgate.providers.sftp.remote import paramiko

    hashed = tmp_path / "known_hosts"
    name = paramiko.HostKeys.hash_host(f"[127.0.0.1]:{sshd.port}")
    hashed.write_text(f"{name} {' '.join(host_key_of(sshd))}\n")
    with contextlib.closing(SftpMount("/hpc", options(sshd, root, known_hosts=hashed))) as mount:
        assert mount.stat("") is not None


def start_sshd_key(tmp_path: Path) -> Sshd:
    """Only a fresh host key, in the shape of an Sshd (nothing is started)."""
    import subprocess

    folder = tmp_path / "other"
    folder.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_ed25519")], check=True)
    return Sshd(folder, "", 0, "", folder, folder / "host_ed25519.pub", folder)
