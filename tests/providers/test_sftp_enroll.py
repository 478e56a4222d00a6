"""Enrolment: a password used once installs a generated key, which then logs in alone."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from davgate import errors
from davgate.config.schema import SftpMount as SftpOptions
from davgate.providers.sftp import SftpMount
from davgate.providers.sftp.enroll import EnrolmentFailed, enroll
from davgate.providers.sftp.remote import HostKeyRejected, LoginRefused
from davgate.state import open_store
from tests.providers.contract import CONTENT, put, read
from tests.sshd import LocalUser, Sshd, local_user, sshd

__all__ = ["local_user", "sshd"]  # session fixtures, shared through this import


@pytest.fixture(autouse=True)
def clean_authorized_keys(local_user: LocalUser) -> None:
    ssh = local_user.home / ".ssh"
    if ssh.exists():
        for child in ssh.iterdir():
            child.unlink()
        ssh.rmdir()


def user_mount(server: Sshd, user: LocalUser, key: Path, root: str = ".") -> SftpMount:
    return SftpMount(
        "/home",
        SftpOptions(type="sftp", host=server.host, port=server.port, user=user.name, key=key, root=root,
                    known_hosts=server.known_hosts, timeout=5.0),
    )  # fmt: skip


def test_enrolment_installs_a_key_that_then_logs_in_alone(
    sshd: Sshd, local_user: LocalUser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "keys" / "id_ed25519"
    with caplog.at_level(logging.DEBUG):
        result = enroll(sshd.host, sshd.port, local_user.name, local_user.password, key, known_hosts=sshd.known_hosts)
    assert result.added and result.created_key and result.key_path == key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.with_suffix(".pub").exists()
    authorized = local_user.home / ".ssh" / "authorized_keys"
    assert stat.S_IMODE(authorized.stat().st_mode) == 0o600
    assert stat.S_IMODE(authorized.parent.stat().st_mode) == 0o700
    assert authorized.read_text().split()[:2] == result.public_key.split()[:2]
    assert local_user.password not in caplog.text
    with contextlib.closing(user_mount(sshd, local_user, key)) as mount:
        put(mount, "hello.txt", CONTENT)
        assert read(mount, "hello.txt") == CONTENT
    assert (local_user.home / "hello.txt").read_bytes() == CONTENT
    again = enroll(sshd.host, sshd.port, local_user.name, local_user.password, key, known_hosts=sshd.known_hosts)
    assert not again.added and not again.created_key
    assert len(authorized.read_text().splitlines()) == 1


def test_existing_authorized_keys_are_kept(sshd: Sshd, local_user: LocalUser, tmp_path: Path) -> None:
    ssh = local_user.home / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "authorized_keys").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExisting someone")  # no newline
    for path in (ssh, ssh / "authorized_keys"):
        shutil.chown(path, local_user.name, local_user.name)
    enroll(sshd.host, sshd.port, local_user.name, local_user.password, tmp_path / "k", known_hosts=sshd.known_hosts)
    lines = (ssh / "authorized_keys").read_text().splitlines()
    assert len(lines) == 2 and lines[0].endswith("someone") and lines[1].endswith("davgate")


def test_a_wrong_password_changes_nothing(sshd: Sshd, local_user: LocalUser, tmp_path: Path) -> None:
    with pytest.raises(LoginRefused):
        enroll(sshd.host, sshd.port, local_user.name, "wrong", tmp_path / "k", known_hosts=sshd.known_hosts)
    assert not (tmp_path / "k").exists() and not (local_user.home / ".ssh").exists()


def test_an_unknown_host_key_is_refused_before_the_password_is_sent(
    sshd: Sshd, local_user: LocalUser, tmp_path: Path
) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd.port + 1} {sshd.host_key.read_text()}")
    with pytest.raises(HostKeyRejected):
        enroll(sshd.host, sshd.port, local_user.name, local_user.password, tmp_path / "k", known_hosts=other)
    assert not (local_user.home / ".ssh").exists()
    log = (sshd.folder / "sshd.log").read_text()
    assert "Failed password" not in log and "Accepted password" not in log


def test_enrolment_pins_the_host_key_for_the_mount(sshd: Sshd, local_user: LocalUser, tmp_path: Path) -> None:
    with open_store("sqlite", path=tmp_path / "state.db") as store:
        result = enroll(sshd.host, sshd.port, local_user.name, local_user.password, tmp_path / "k", store=store)
        pinned = store.get_host_key(sshd.host, sshd.port)
        assert pinned is not None and pinned.key_b64 in sshd.host_key.read_text()
        assert result.host_fingerprint.startswith("ssh-ed25519 SHA256:")


def test_an_unusable_existing_key_fails_before_login(sshd: Sshd, local_user: LocalUser, tmp_path: Path) -> None:
    (tmp_path / "k").write_text("garbage")
    with pytest.raises(EnrolmentFailed, match="cannot use the existing key"):
        enroll(sshd.host, sshd.port, local_user.name, local_user.password, tmp_path / "k", known_hosts=sshd.known_hosts)


def test_permission_denied_on_the_server_is_forbidden(sshd: Sshd, local_user: LocalUser, tmp_path: Path) -> None:
    key = tmp_path / "k"
    enroll(sshd.host, sshd.port, local_user.name, local_user.password, key, known_hosts=sshd.known_hosts)
    locked = local_user.home / "root-only"  # made by root: the user may read, not write
    locked.mkdir(mode=0o755)
    (locked / "file.txt").write_bytes(CONTENT)
    with contextlib.closing(user_mount(sshd, local_user, key, "root-only")) as mount:
        assert read(mount, "file.txt") == CONTENT
        with pytest.raises(errors.Forbidden):
            put(mount, "new.txt", CONTENT)
        with pytest.raises(errors.Forbidden):
            mount.remove_file("file.txt")
        with pytest.raises(errors.Forbidden):
            mount.make_folder("sub")
    assert sorted(os.listdir(locked)) == ["file.txt"]
