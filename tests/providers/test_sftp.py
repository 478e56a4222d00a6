"""The sftp provider against a real sshd: the shared contract, then what is SFTP's own.

Every test gets its own remote folder; the sshd runs on this machine, so the
tests look at that folder directly too.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from davgate import errors
from davgate.config.schema import SftpMount as SftpOptions
from davgate.providers import Mount
from davgate.providers.sftp import SftpMount
from davgate.providers.sftp.remote import paramiko
from davgate.providers.sftp.streams import TEMP_PREFIX
from tests.providers.contract import CONTENT, MiB, MountContract, members, put, read
from tests.sshd import Sshd, frozen, local_user, own_sshd, sshd

__all__ = ["local_user", "own_sshd", "sshd"]  # fixtures, shared through this import


def options(server: Sshd, root: Path | str, **extra: object) -> SftpOptions:
    settings: dict = {"host": server.host, "port": server.port, "user": server.user, "key": server.key}
    settings.update(root=str(root), known_hosts=server.known_hosts, timeout=5.0)
    return SftpOptions(type="sftp", **{**settings, **extra})


def sftp_mount(server: Sshd, root: Path | str, **extra: object) -> SftpMount:
    return SftpMount("/hpc", options(server, root, **extra))


class TestSftpMount(MountContract):
    @pytest.fixture(autouse=True)
    def server(self, sshd: Sshd) -> None:
        self.sshd = sshd

    def make_mount(self, tmp_path: Path) -> Mount:
        root = tmp_path / "remote"
        root.mkdir()
        return sftp_mount(self.sshd, root)


# -- fixtures: a remote root beside an outside folder the mount must never reach ----


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    (folder / "folder").mkdir(parents=True)
    (folder / "secret.txt").write_bytes(b"secret")
    (folder / "folder" / "deep.txt").write_bytes(b"deep")
    return folder


@pytest.fixture
def mount(sshd: Sshd, root: Path) -> Iterator[SftpMount]:
    mount = sftp_mount(sshd, root)
    mount.start()
    yield mount
    mount.close()


def snapshot(folder: Path) -> dict[str, bytes | str | None]:
    def content(path: Path) -> bytes | str | None:
        if path.is_symlink():
            return f"-> {os.readlink(path)}"
        return None if path.is_dir() else path.read_bytes()

    return {str(p.relative_to(folder)): content(p) for p in sorted(folder.rglob("*"))}


def litter(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@contextlib.contextmanager
def counted_requests() -> Iterator[Counter[int]]:
    """Count SFTP requests by type (paramiko.sftp.CMD_*) made in this block."""
    counts: Counter[int] = Counter()
    original = paramiko.SFTPClient._async_request

    def counting(self, fileobj, t, *args):
        counts[t] += 1
        return original(self, fileobj, t, *args)

    paramiko.SFTPClient._async_request = counting  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        paramiko.SFTPClient._async_request = original  # type: ignore[method-assign]


# -- setup ---------------------------------------------------------------------------


def test_fs_sshfs_imports_in_a_fresh_interpreter() -> None:
    # fs declares its namespace with pkg_resources: setuptools<82 must be installed.
    done = subprocess.run([sys.executable, "-c", "import fs.sshfs"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# cryptography 51 deprecates DSA and warns wherever its public DSA names are
# used (its own modules use aliases that do not warn); a later release removes
# them. paramiko 3.x uses them whenever it loads a key (PKey.from_path, which
# every sftp mount calls at start) and on "import paramiko" would fail once they
# are gone. With every warning an error, this interpreter stops at the first such
# use, in production code: the locked paramiko makes none.
WITHOUT_DSA = """
import sys, warnings
warnings.simplefilter("error")
from davgate.config.schema import SftpMount as Options
from davgate.providers.sftp import SftpMount
host, port, user, key, known_hosts, root = sys.argv[1:]
options = Options(type="sftp", host=host, port=int(port), user=user, key=key, root=root,
                  known_hosts=known_hosts, timeout=5.0)
mount = SftpMount("/hpc", options)
print(sorted(entry.name for entry in mount.list("")))
mount.close()
"""


def test_sftp_mounts_work_with_a_cryptography_without_dsa(sshd: Sshd, root: Path) -> None:
    (root / "seen.txt").write_bytes(CONTENT)
    args = [sshd.host, str(sshd.port), sshd.user, str(sshd.key), str(sshd.known_hosts), str(root)]
    done = subprocess.run([sys.executable, "-c", WITHOUT_DSA, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['seen.txt']"


def test_root_may_be_relative_to_the_login_folder(sshd: Sshd, root: Path) -> None:
    relative = os.path.relpath(root, os.path.expanduser(f"~{sshd.user}"))
    with contextlib.closing(sftp_mount(sshd, relative)) as mount:
        put(mount, "file.txt", CONTENT)
    assert (root / "file.txt").read_bytes() == CONTENT


def test_an_unreadable_key_is_a_config_error(sshd: Sshd, root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad_key"
    bad.write_text("not a key")
    from davgate.config import ConfigError

    with pytest.raises(ConfigError, match="mounts./hpc.key"):
        SftpMount("/hpc", options(sshd, root, key=bad))


# -- containment ---------------------------------------------------------------------

LEXICAL_ESCAPES = ["..", "../x", "a/../../x", "./../x", "a/../..", "/etc/passwd", "/"]

OPERATIONS: dict[str, Callable[[SftpMount, str], object]] = {
    "stat": lambda mount, rel: mount.stat(rel),
    "list": lambda mount, rel: mount.list(rel),
    "open_read": lambda mount, rel: mount.open_read(rel).close(),
    "open_upload": lambda mount, rel: mount.open_upload(rel).abort(),
    "make_folder": lambda mount, rel: mount.make_folder(rel),
    "remove_file": lambda mount, rel: mount.remove_file(rel),
    "remove_folder": lambda mount, rel: mount.remove_folder(rel),
    "set_modified": lambda mount, rel: mount.set_modified(rel, 0.0),
    "move_from": lambda mount, rel: mount.move(rel, "moved"),
    "move_to": lambda mount, rel: mount.move("inside.txt", rel),
}

# Through a symlink that leads out: what each operation must refuse.
LINK_ESCAPES = {
    "stat": ["link-file", "link-folder", "link-folder/secret.txt"],
    "list": ["link-folder", "link-folder/folder"],
    "open_read": ["link-file", "link-folder/secret.txt"],
    "open_upload": ["link-file", "link-folder/new.txt", "link-folder/secret.txt"],
    "make_folder": ["link-folder/new"],
    "remove_file": ["link-folder/secret.txt"],
    "remove_folder": ["link-folder/folder"],
    "set_modified": ["link-file", "link-folder/secret.txt"],
    "move_from": ["link-folder/secret.txt"],
    "move_to": ["link-folder/moved.txt"],
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_lexical_escapes_are_refused(mount: SftpMount, root: Path, operation: str) -> None:
    put(mount, "inside.txt", CONTENT)
    before = snapshot(root.parent)
    for rel in LEXICAL_ESCAPES:
        with pytest.raises(errors.OutsideMount):
            OPERATIONS[operation](mount, rel)
    assert snapshot(root.parent) == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_symlinks_out_of_the_root_are_refused(mount: SftpMount, root: Path, outside: Path, operation: str) -> None:
    (root / "link-file").symlink_to(outside / "secret.txt")
    (root / "link-folder").symlink_to(outside)
    put(mount, "inside.txt", CONTENT)
    before_outside, before_root = snapshot(outside), snapshot(root)
    for rel in LINK_ESCAPES[operation]:
        with pytest.raises(errors.OutsideMount):
            OPERATIONS[operation](mount, rel)
    assert snapshot(outside) == before_outside
    assert snapshot(root) == before_root


def test_reserved_temp_names_are_refused(mount: SftpMount, root: Path) -> None:
    (root / f"{TEMP_PREFIX}x").write_bytes(b"stale")
    for operation in OPERATIONS.values():
        with pytest.raises(errors.Forbidden):
            operation(mount, f"{TEMP_PREFIX}x")
    assert (root / f"{TEMP_PREFIX}x").read_bytes() == b"stale"


def test_listing_hides_links_out_dangling_links_and_temp_files(mount: SftpMount, root: Path, outside: Path) -> None:
    (root / "sub").mkdir()
    for folder in (root, root / "sub"):
        (folder / "link-file").symlink_to(outside / "secret.txt")
        (folder / "link-folder").symlink_to(outside)
        (folder / "dangling").symlink_to(root / "nowhere")
        (folder / "loop").symlink_to("loop")
        (folder / f"{TEMP_PREFIX}1").write_bytes(b"in progress")
        (folder / "kept.txt").write_bytes(b"kept")
    assert set(members(mount, "")) == {"sub", "kept.txt"}
    assert set(members(mount, "sub")) == {"kept.txt"}
    assert mount.stat("dangling") is None


def test_links_inside_are_followed(mount: SftpMount, root: Path) -> None:
    (root / "folder").mkdir()
    (root / "folder" / "child.txt").write_bytes(CONTENT)
    (root / "real.txt").write_bytes(b"real")
    (root / "alias.txt").symlink_to("real.txt")
    (root / "alias-folder").symlink_to(root / "folder")
    entry = mount.stat("alias.txt")
    assert entry is not None and entry.name == "alias.txt" and not entry.is_folder and entry.size == 4
    assert read(mount, "alias.txt") == b"real"
    listed = members(mount, "")
    assert set(listed) == {"folder", "real.txt", "alias.txt", "alias-folder"}
    assert listed["alias-folder"].is_folder and listed["alias.txt"].size == 4
    assert list(members(mount, "alias-folder")) == ["child.txt"]
    put(mount, "alias-folder/new.txt", b"new")
    put(mount, "alias.txt", b"through the link")
    assert (root / "folder" / "new.txt").read_bytes() == b"new"
    assert (root / "real.txt").read_bytes() == b"through the link" and (root / "alias.txt").is_symlink()


def test_removing_links_keeps_their_targets(mount: SftpMount, root: Path, outside: Path) -> None:
    (root / "link-file").symlink_to(outside / "secret.txt")
    (root / "folder").mkdir()
    (root / "folder" / "child.txt").write_bytes(CONTENT)
    (root / "alias-folder").symlink_to("folder")
    before = snapshot(outside)
    mount.remove_file("link-file")
    mount.remove_folder("alias-folder")
    assert snapshot(outside) == before
    assert (root / "folder" / "child.txt").read_bytes() == CONTENT
    assert set(members(mount, "")) == {"folder"}


# -- listings, reads and uploads -------------------------------------------------------


@pytest.mark.parametrize("count", [10, 300])
def test_a_listing_is_one_call_without_a_request_per_member(mount: SftpMount, root: Path, count: int) -> None:
    (root / "sub").mkdir()
    for i in range(count):
        (root / "sub" / f"file-{i:04d}.txt").write_bytes(b"x" * i)
    assert mount.stat("sub") is not None  # connected; the folder's real path is known
    with counted_requests() as counts:
        listed = members(mount, "sub")
    assert len(listed) == count and listed["file-0007.txt"].size == 7
    names = {paramiko.sftp.CMD_NAMES[t]: n for t, n in counts.items()}
    assert set(names) <= {"opendir", "readdir", "close", "realpath"}, names
    assert names["opendir"] == 1 and names.get("realpath", 0) <= 1, names
    assert sum(counts.values()) <= 5 + count // 50, names  # readdir: about 100 names per answer


def test_reads_ahead_from_where_they_start(mount: SftpMount, root: Path) -> None:
    data = os.urandom(6 * MiB + 123)
    (root / "big.bin").write_bytes(data)
    with counted_requests() as counts, mount.open_read("big.bin") as stream:
        stream.seek(5 * MiB)
        tail = b""
        while chunk := stream.read(MiB):
            tail += chunk
        stream.seek(100)
        head = stream.read(1000)
    assert tail == data[5 * MiB :] and head == data[100:1100]
    reads = counts[paramiko.sftp.CMD_READ]
    assert reads <= 2 + 2 * (8 * MiB // mount.blocks[0]), reads  # never the whole file from 0


def test_an_aborted_upload_leaves_old_content_and_no_litter(mount: SftpMount, root: Path) -> None:
    put(mount, "file.txt", CONTENT)
    upload = mount.open_upload("file.txt")
    upload.write(os.urandom(3 * MiB))
    assert len(litter(root)) == 1
    upload.abort()
    assert (root / "file.txt").read_bytes() == CONTENT
    assert litter(root) == []


def test_a_dropped_connection_mid_upload_leaves_old_content(mount: SftpMount, root: Path) -> None:
    put(mount, "file.txt", CONTENT)
    upload = mount.open_upload("file.txt")
    upload.write(os.urandom(MiB))
    for link in list(mount.pool.links):
        link.close()  # the connection breaks under the upload
    with pytest.raises(errors.StorageError):
        upload.write(os.urandom(MiB))
        upload.commit()
    upload.abort()
    assert (root / "file.txt").read_bytes() == CONTENT
    assert read(mount, "file.txt") == CONTENT  # a new connection serves on


def test_stale_temp_files_are_swept_by_listings(mount: SftpMount, root: Path) -> None:
    stale, fresh = root / f"{TEMP_PREFIX}old", root / f"{TEMP_PREFIX}new"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert mount.list("") == []
    assert not stale.exists() and fresh.exists()


def test_etags_follow_changes_within_one_second(mount: SftpMount) -> None:
    mount.make_folder("sub")
    files, folders = set(), set()
    for i in range(5):
        put(mount, "sub/file.txt", b"%d" % i)
        files.add(mount.stat("sub/file.txt").etag)  # type: ignore[union-attr]
        folders.add(mount.stat("sub").etag)  # type: ignore[union-attr]
    assert len(files) == 5 and len(folders) == 5


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs as the remote root (root in a privileged container only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]
    mounted = subprocess.run(command, capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_no_space_and_keeps_old_content(sshd: Sshd, tiny_disk: Path) -> None:
    with contextlib.closing(sftp_mount(sshd, tiny_disk)) as mount:
        put(mount, "old.txt", CONTENT)
        for name in ("old.txt", "new.txt"):
            upload = mount.open_upload(name)
            with pytest.raises(errors.NoSpace):
                for _ in range(32):
                    upload.write(b"x" * 64 * 1024)
                upload.commit()
            upload.abort()
        assert sorted(os.listdir(tiny_disk)) == ["old.txt"]
        assert read(mount, "old.txt") == CONTENT
        put(mount, "after.txt", CONTENT)


# -- connections ------------------------------------------------------------------------


def test_requests_fail_fast_while_the_server_is_down_then_recover(own_sshd: Sshd, root: Path) -> None:
    with contextlib.closing(sftp_mount(own_sshd, root, timeout=3.0)) as mount:
        put(mount, "file.txt", CONTENT)
        own_sshd.stop()
        for operation in (lambda: mount.stat("file.txt"), lambda: read(mount, "file.txt"), lambda: mount.list("")):
            started = time.monotonic()
            with pytest.raises(errors.Unavailable):
                operation()
            assert time.monotonic() - started < 1.5
        own_sshd.start()
        assert read(mount, "file.txt") == CONTENT
        put(mount, "after.txt", CONTENT)
        assert set(members(mount, "")) == {"file.txt", "after.txt"}


def test_a_frozen_server_is_unavailable_within_the_timeout(own_sshd: Sshd, root: Path) -> None:
    with contextlib.closing(sftp_mount(own_sshd, root, timeout=1.0)) as mount:
        put(mount, "file.txt", CONTENT)
        with frozen(own_sshd):
            for operation in (lambda: mount.stat("file.txt"), lambda: mount.list("")):
                started = time.monotonic()
                with pytest.raises(errors.Unavailable):
                    operation()
                assert time.monotonic() - started < 3.0
        assert read(mount, "file.txt") == CONTENT


def test_threads_share_a_small_pool(sshd: Sshd, root: Path) -> None:
    problems: list[BaseException] = []
    with contextlib.closing(sftp_mount(sshd, root, connections=2)) as mount:

        def work(i: int) -> None:
            try:
                for j in range(5):
                    put(mount, f"f{i}-{j}.txt", b"%d" % j)
                    assert read(mount, f"f{i}-{j}.txt") == b"%d" % j
                    mount.list("")
            except BaseException as error:  # noqa: BLE001 - reported below
                problems.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not problems, problems
        assert len(mount.list("")) == 40
        assert len(mount.pool.links) <= 2
