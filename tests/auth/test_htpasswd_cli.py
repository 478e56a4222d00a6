"""davgate.auth.cli: ``davgate htpasswd FILE USER [--password-stdin]``."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from davgate.auth.cli import htpasswd_command
from davgate.auth.hashes import verify_hash
from davgate.auth.htpasswd import HtpasswdBackend, HtpasswdFile

REPO = Path(__file__).resolve().parents[2]


def stored(path: Path, user: str) -> str:
    entry = HtpasswdFile(path).get(user)
    assert entry is not None, f"{user} not in {path}"
    return entry


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the command reads as standard input; write to it first."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdin", buffer)
    return buffer


def feed(stdin: io.StringIO, text: str) -> None:
    stdin.write(text)
    stdin.seek(0)


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answers that getpass gives, in order; running out means end of input."""
    answers: list[str] = []

    def fake_getpass(prompt: str = "Password: ") -> str:
        if not answers:
            raise EOFError
        return answers.pop(0)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return answers


def test_password_stdin_adds_then_updates(
    tmp_path: Path, stdin: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "users"
    feed(stdin, "first secret\nignored second line\n")
    assert htpasswd_command(path, "alice", password_stdin=True) == 0
    assert capsys.readouterr().err == f"user alice added in {path}\n"
    first = stored(path, "alice")
    assert first.startswith("$2b$12$")
    assert verify_hash(first, "first secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    stdin.seek(0)
    stdin.truncate()
    feed(stdin, "second secret\r\n")
    assert htpasswd_command(path, "alice", password_stdin=True) == 0
    assert capsys.readouterr().err == f"user alice updated in {path}\n"
    assert verify_hash(stored(path, "alice"), "second secret")
    assert len(path.read_text().splitlines()) == 1


def test_spaces_in_the_password_are_kept(tmp_path: Path, stdin: io.StringIO) -> None:
    feed(stdin, " padded \n")
    assert htpasswd_command(tmp_path / "users", "alice", password_stdin=True) == 0
    assert verify_hash(stored(tmp_path / "users", "alice"), " padded ")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no password"),
        ("\n", "no password"),
        ("x" * 73 + "\n", "72 bytes"),
        ("a\0b\n", "NUL"),
    ],
)
def test_bad_passwords_on_stdin(
    tmp_path: Path,
    stdin: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    text: str,
    error: str,
) -> None:
    feed(stdin, text)
    assert htpasswd_command(tmp_path / "users", "alice", password_stdin=True) == 1
    assert error in capsys.readouterr().err
    assert not (tmp_path / "users").exists()


@pytest.mark.parametrize("user", ["a:b", "a b", "a\nb", "", "#a"])
def test_bad_user_names(tmp_path: Path, stdin: io.StringIO, capsys: pytest.CaptureFixture[str], user: str) -> None:
    feed(stdin, "secret\n")
    assert htpasswd_command(tmp_path / "users", user, password_stdin=True) == 1
    assert "user name" in capsys.readouterr().err
    assert not (tmp_path / "users").exists()


def test_prompts_twice(tmp_path: Path, prompts: list[str]) -> None:
    prompts.extend(["typed secret", "typed secret"])
    assert htpasswd_command(tmp_path / "users", "bob", password_stdin=False) == 0
    assert verify_hash(stored(tmp_path / "users", "bob"), "typed secret")


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        (["one", "two"], "passwords do not match"),
        (["", ""], "empty password"),
        ([], "no password given"),
    ],
)
def test_prompt_errors(
    tmp_path: Path,
    prompts: list[str],
    capsys: pytest.CaptureFixture[str],
    answers: list[str],
    error: str,
) -> None:
    prompts.extend(answers)
    assert htpasswd_command(tmp_path / "users", "bob", password_stdin=False) == 1
    assert error in capsys.readouterr().err
    assert not (tmp_path / "users").exists()


def test_unwritable_place(tmp_path: Path, stdin: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    feed(stdin, "secret\n")
    target = tmp_path / "no-such-dir" / "users"
    assert htpasswd_command(target, "alice", password_stdin=True) == 1
    assert f"cannot write {target}" in capsys.readouterr().err


def test_as_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("bob:{SHA}q/eq1kOINtvlJqojGr3i0O73TUI=\n", encoding="utf-8")
    code = (
        "import sys; from pathlib import Path\n"
        "from davgate.auth.cli import htpasswd_command\n"
        "sys.exit(htpasswd_command(Path(sys.argv[1]), sys.argv[2], True))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), "alice"],
        input="sub process secret\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert result.stderr == f"user alice added in {path}\n"
    backend = HtpasswdBackend(path)
    assert backend.authenticate("alice", "sub process secret")
    assert backend.authenticate("bob", "correct horse battery staple")
