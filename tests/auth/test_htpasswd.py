"""davgate.auth.htpasswd and the PasswordBackend contract, in process."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from davgate.auth import LoadError, PasswordBackend, hashes, load
from davgate.auth.hashes import hash_password
from davgate.auth.htpasswd import (
    HtpasswdBackend,
    HtpasswdFile,
    VerificationCache,
    set_password,
    validate_user_name,
)
from tests.auth.conftest import PASSWORD, VECTORS, FakeClock, write_entries
from tests.helpers import wait_until


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    """One user per test vector, named after it."""
    return write_entries(tmp_path / "users", [f"{name}:{h}" for name, (_, h) in VECTORS.items()])


@pytest.fixture
def backend(users_file: Path, clock: FakeClock) -> HtpasswdBackend:
    return HtpasswdBackend(users_file, clock=clock)


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stored hashes that the backend really verified (cache misses)."""
    calls: list[str] = []
    real = hashes.verify_hash

    def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr("davgate.auth.htpasswd.verify_hash", counting)
    return calls


def replace_file(path: Path, lines: list[str]) -> None:
    """Change the file the way editors and set_password do: a new inode."""
    temp = write_entries(path.with_suffix(".new"), lines)
    os.replace(temp, path)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


# --- authenticate ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_every_format_logs_in(backend: HtpasswdBackend, name: str) -> None:
    assert backend.authenticate(name, VECTORS[name][0]) is True


def test_wrong_password_is_refused(backend: HtpasswdBackend, caplog: pytest.LogCaptureFixture) -> None:
    assert backend.authenticate("apr1", PASSWORD + "x") is False
    assert "authentication failed for user 'apr1' (wrong password)" in messages(caplog)


def test_unknown_user_is_refused(backend: HtpasswdBackend, caplog: pytest.LogCaptureFixture) -> None:
    assert backend.authenticate("mallory", PASSWORD) is False
    assert "authentication failed for user 'mallory' (unknown user)" in messages(caplog)


@pytest.mark.parametrize(
    ("user", "password", "reason"),
    [
        ("", PASSWORD, "empty user name"),
        ("apr1", "", "empty password"),
        ("apr1", PASSWORD + "\0", "NUL character"),
        ("apr1\0", PASSWORD, "NUL character"),
        ("apr1", "x" * 4097, "too long"),
        ("a" * 4097, PASSWORD, "too long"),
        ("apr1", "\udcff", "not valid Unicode"),
        (None, PASSWORD, "not text"),
        ("apr1", b"bytes", "not text"),
    ],
)
def test_bad_input_is_refused_before_lookup(
    backend: HtpasswdBackend,
    verify_calls: list[str],
    caplog: pytest.LogCaptureFixture,
    user: object,
    password: object,
    reason: str,
) -> None:
    assert backend.authenticate(user, password) is False  # type: ignore[arg-type]
    assert verify_calls == []
    assert any(reason in message for message in messages(caplog))


def test_user_names_are_escaped_and_cut_in_logs(backend: HtpasswdBackend, caplog: pytest.LogCaptureFixture) -> None:
    backend.authenticate("evil\nINFO forged line" + "y" * 100, PASSWORD)
    [line] = messages(caplog)
    assert "\n" not in line and "y" * 65 not in line


def test_backend_errors_fail_closed_without_their_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(PasswordBackend):
        def _check(self, user: str, password: str) -> bool:
            raise RuntimeError(f"oops {password}")

    assert Broken().authenticate("alice", "hunter2-secret") is False
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "RuntimeError" in record.getMessage()
    assert "hunter2" not in record.getMessage()


def test_concurrent_logins(backend: HtpasswdBackend) -> None:
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(backend.authenticate("apr1", PASSWORD))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 8


# --- file format ---------------------------------------------------------------


def test_malformed_lines_are_skipped_by_number_not_content(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "users"
    good = VECTORS["apr1"][1]
    path.write_bytes(
        b"# a comment\n"
        b"\n"
        b"no-colon-hunter2-secret\n"  # line 3
        b":only-a-hash\n"  # line 4
        b"user-without-hash:\n"  # line 5
        b"\xff\xfebad-utf8:x\n"  # line 6
        b"  alice:" + good.encode() + b"  \r\n"  # whitespace and CRLF are fine
        b"alice:{SHA}q/eq1kOINtvlJqojGr3i0O73TUI=\n"  # line 8: duplicate
    )
    file = HtpasswdFile(path)
    assert file.get("alice") == good  # the first line for a user wins
    for user in ("no-colon-hunter2-secret", "", "user-without-hash"):
        assert file.get(user) is None
    logged = "\n".join(messages(caplog))
    for number in (3, 4, 5, 6):
        assert f"{path}:{number}: malformed line skipped" in logged
    assert f"{path}:8: duplicate of user 'alice' skipped" in logged
    assert "hunter2" not in logged and "only-a-hash" not in logged


def test_unsupported_entries_are_refused_and_reported_once(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_entries(tmp_path / "users", ["dave:plain-secret", "erin:$1$salt$hash"])
    backend = HtpasswdBackend(path, clock=clock)
    for _ in range(3):
        clock.advance(5)
        assert backend.authenticate("dave", "plain-secret") is False
    assert backend.authenticate("erin", "x") is False
    logged = messages(caplog)
    load_warnings = [m for m in logged if "has an unsupported password hash" in m]
    warning = "{}:{}: user {!r} has an unsupported password hash ({}) and cannot log in"
    assert load_warnings == [
        warning.format(path, 1, "dave", "unknown or plain text"),
        warning.format(path, 2, "erin", "$1$ (MD5-crypt)"),
    ]
    assert "authentication failed for user 'erin' (unsupported hash scheme $1$ (MD5-crypt))" in logged
    assert not any("plain-secret" in m for m in logged)


# --- reloading -----------------------------------------------------------------


def test_changes_are_seen_after_the_check_interval(tmp_path: Path, clock: FakeClock, verify_calls: list[str]) -> None:
    path = write_entries(tmp_path / "users", [f"alice:{hash_password('old-pw', 'apr1')}"])
    backend = HtpasswdBackend(path, clock=clock)
    assert backend.authenticate("alice", "old-pw")
    replace_file(
        path,
        [
            f"alice:{hash_password('new-pw', 'apr1')}",
            f"bob:{hash_password('b', 'sha')}",
        ],
    )
    clock.advance(0.5)  # not yet: the file is not stat()ed on every request
    assert backend.authenticate("bob", "b") is False
    clock.advance(0.5)
    assert backend.authenticate("bob", "b") is True
    assert backend.authenticate("alice", "new-pw") is True
    assert backend.authenticate("alice", "old-pw") is False  # although it was cached


def test_in_place_edit_is_seen(tmp_path: Path, clock: FakeClock) -> None:
    path = write_entries(tmp_path / "users", ["alice:" + hash_password("one", "sha")])
    file = HtpasswdFile(path, clock=clock)
    before = os.stat(path)
    write_entries(path, ["alice:" + hash_password("two", "sha")])  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    clock.advance(1)
    assert file.get("alice") == hash_password("two", "sha")


def test_unchanged_file_is_not_read_again(users_file: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    file = HtpasswdFile(users_file, clock=clock)
    monkeypatch.setattr("davgate.auth.htpasswd.parse_htpasswd", pytest.fail)
    clock.advance(10)
    assert file.get("apr1") == VECTORS["apr1"][1]


def test_a_vanished_file_leaves_no_users_until_it_is_back(
    users_file: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    backend = HtpasswdBackend(users_file, clock=clock)
    content = users_file.read_bytes()
    users_file.unlink()
    clock.advance(1)
    assert backend.authenticate("apr1", PASSWORD) is False
    assert any("cannot be read, no user can log in" in m for m in messages(caplog))
    users_file.write_bytes(content)
    clock.advance(1)
    assert backend.authenticate("apr1", PASSWORD) is True


def test_a_missing_file_is_an_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HtpasswdBackend(tmp_path / "missing")
    with pytest.raises(LoadError, match="'htpasswd'"):
        load("htpasswd", path=tmp_path / "missing")


# --- verification cache ----------------------------------------------------------


def test_success_is_cached_for_the_ttl(backend: HtpasswdBackend, clock: FakeClock, verify_calls: list[str]) -> None:
    for _ in range(3):
        assert backend.authenticate("bcrypt-2y-C4", PASSWORD)
    assert len(verify_calls) == 1
    clock.advance(301)
    assert backend.authenticate("bcrypt-2y-C4", PASSWORD)
    assert len(verify_calls) == 2


def test_cache_does_not_accept_a_wrong_password(backend: HtpasswdBackend, verify_calls: list[str]) -> None:
    assert backend.authenticate("bcrypt-2y-C4", PASSWORD)
    assert backend.authenticate("bcrypt-2y-C4", PASSWORD + " ") is False
    assert backend.authenticate("bcrypt-2y-C4", PASSWORD + " ") is False
    assert len(verify_calls) == 3  # failures are never cached


def test_cache_does_not_survive_a_changed_hash(tmp_path: Path, clock: FakeClock, verify_calls: list[str]) -> None:
    path = write_entries(tmp_path / "users", ["alice:" + hash_password(PASSWORD, "apr1")])
    backend = HtpasswdBackend(path, clock=clock)
    assert backend.authenticate("alice", PASSWORD)
    replace_file(path, ["alice:" + hash_password(PASSWORD, "apr1")])  # same password, new salt
    clock.advance(1)
    assert backend.authenticate("alice", PASSWORD)
    assert len(verify_calls) == 2  # the new hash is a new key


def test_cache_is_keyed_by_user() -> None:
    cache = VerificationCache()
    cache.add(("alice", "pw", "hash"))
    assert ("alice", "pw", "hash") in cache
    for other in [
        ("bob", "pw", "hash"),
        ("alice", "pw2", "hash"),
        ("alice", "pw", "hash2"),
        ("alicep", "w", "hash"),
    ]:
        assert other not in cache


def test_cache_is_bounded_lru(clock: FakeClock) -> None:
    cache = VerificationCache(ttl=60, max_size=2, clock=clock)
    cache.add(("a", "1", "h"))
    cache.add(("b", "2", "h"))
    assert ("a", "1", "h") in cache  # a is now the most recently used
    cache.add(("c", "3", "h"))
    assert ("b", "2", "h") not in cache
    assert ("a", "1", "h") in cache and ("c", "3", "h") in cache


def test_cache_ttl_counts_from_the_last_hit(clock: FakeClock) -> None:
    cache = VerificationCache(ttl=10, clock=clock)
    cache.add(("a", "1", "h"))
    clock.advance(9)
    assert ("a", "1", "h") in cache  # a hit: ten more seconds
    clock.advance(9)
    assert ("a", "1", "h") in cache
    clock.advance(10)
    assert ("a", "1", "h") not in cache


def test_concurrent_misses_verify_once() -> None:
    cache = VerificationCache(ttl=10)
    calls: list[int] = []
    gate = threading.Event()

    def slow_check() -> bool:
        calls.append(1)
        gate.wait(5)
        return True

    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.verify(("a", "1", "h"), slow_check))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(calls) == 1, timeout=5)
    gate.set()
    for thread in threads:
        thread.join()
    assert results == [True] * 8
    assert len(calls) == 1


def test_cache_can_be_disabled(users_file: Path, verify_calls: list[str]) -> None:
    backend = HtpasswdBackend(users_file, cache_ttl=0)
    assert backend.authenticate("apr1", PASSWORD) and backend.authenticate("apr1", PASSWORD)
    assert len(verify_calls) == 2


# --- no secret in any log record ------------------------------------------------


def test_passwords_never_reach_the_logs(tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "users"
    path.write_text(
        f"alice:{hash_password('hunter2-secret', 'apr1')}\n"
        "dave:plain-secret-in-file\n"
        "pasted hunter2-secret by mistake\n",
        encoding="utf-8",
    )
    backend = HtpasswdBackend(path, clock=clock)
    attempts: list[tuple[object, object]] = [
        ("alice", "hunter2-secret"),  # success
        ("alice", "hunter2-secret"),  # cached success
        ("alice", "wrong-secret-guess"),
        ("nobody", "wrong-secret-guess"),
        ("dave", "plain-secret-in-file"),
        ("alice", "wrong-secret-guess\0"),
        ("alice", "wrong-secret-guess" * 300),
        ("alice", "wrong-secret-guess\udcff"),
    ]
    for user, password in attempts:
        backend.authenticate(user, password)  # type: ignore[arg-type]
    path.unlink()
    clock.advance(1)
    backend.authenticate("alice", "hunter2-secret")
    assert len(caplog.records) >= len(attempts)
    for record in caplog.records:
        text = " ".join([record.getMessage(), str(record.args), record.exc_text or ""])
        for secret in ("hunter2", "wrong-secret", "plain-secret"):
            assert secret not in text, record.getMessage()


# --- set_password --------------------------------------------------------------


def test_set_password_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "users"
    assert set_password(path, "alice", "{SHA}x") is False
    assert path.read_text() == "alice:{SHA}x\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_set_password_keeps_other_lines_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "users"
    original = b"# users\r\nalice:{SHA}old\r\nbroken line\n\nbob:$apr1$x$y\nalice:{SHA}dup"
    path.write_bytes(original)
    os.chmod(path, 0o640)
    assert set_password(path, "alice", "{SHA}new") is True
    assert path.read_bytes() == original.replace(b"{SHA}old", b"{SHA}new")
    assert set_password(path, "carol", "{SHA}c") is False
    assert path.read_bytes() == original.replace(b"{SHA}old", b"{SHA}new") + b"\ncarol:{SHA}c\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users"]  # no temp file left


def test_set_password_writes_through_a_symlink(tmp_path: Path) -> None:
    target = write_entries(tmp_path / "real", ["bob:{SHA}b"])
    link = tmp_path / "link"
    link.symlink_to(target)
    set_password(link, "alice", "{SHA}a")
    assert link.is_symlink()
    assert target.read_text() == "bob:{SHA}b\nalice:{SHA}a\n"


def test_set_password_leaves_the_file_alone_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_entries(tmp_path / "users", ["bob:{SHA}b"])

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError, match="No space"):
        set_password(path, "alice", "{SHA}a")
    assert path.read_text() == "bob:{SHA}b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users"]


@pytest.mark.parametrize("user", ["", "a:b", "a b", "a\tb", "a\nb", "#a", "a\x7f", "x" * 256])
def test_invalid_user_names(tmp_path: Path, user: str) -> None:
    with pytest.raises(ValueError):
        validate_user_name(user)
    with pytest.raises(ValueError):
        set_password(tmp_path / "users", user, "{SHA}x")
    assert not (tmp_path / "users").exists()


@pytest.mark.parametrize("hashed", ["", "a\nb", "a\rb"])
def test_invalid_hashes(tmp_path: Path, hashed: str) -> None:
    with pytest.raises(ValueError):
        set_password(tmp_path / "users", "alice", hashed)


# --- load -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "htpasswd",
        "davgate.auth.htpasswd:HtpasswdBackend",
        "davgate.auth.htpasswd.HtpasswdBackend",
    ],
)
def test_load_by_name_or_path(users_file: Path, kind: str) -> None:
    backend = load(kind, path=users_file)
    assert isinstance(backend, HtpasswdBackend)
    assert backend.authenticate("sha1", PASSWORD)


@pytest.mark.parametrize(
    ("kind", "options", "error"),
    [
        ("nope", {}, "unknown auth backend 'nope'"),
        ("davgate.auth.hashes:verify_hash", {}, "is not a PasswordBackend"),
        ("davgate.no_such_module:X", {}, "cannot be loaded"),
        ("htpasswd", {"path": "x", "colour": "red"}, "'htpasswd'"),
    ],
)
def test_load_errors_name_the_backend(kind: str, options: dict[str, object], error: str) -> None:
    with pytest.raises(LoadError, match=error):
        load(kind, **options)
