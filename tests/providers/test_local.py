"""The local provider: the shared contract, plus containment, temp files and a full disk."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from davgate import errors
from davgate.config.schema import LocalMount as LocalOptions
from davgate.providers import Mount
from davgate.providers.local import (
    FOREIGN_UPLOAD_TTL,
    HOST,
    TEMP_PREFIX,
    LocalMount,
    contain,
    contained,
    unique_suffix,
)
from tests.providers.contract import CONTENT, MountContract, members, put, read


def local_mount(root: Path) -> LocalMount:
    root.mkdir(exist_ok=True)
    return LocalMount("/data", LocalOptions(type="local", root=root))


class TestLocalMount(MountContract):
    def make_mount(self, tmp_path: Path) -> Mount:
        return local_mount(tmp_path / "root")

    def test_root_entry_has_an_empty_name(self, mount: Mount) -> None:
        super().test_root_entry_has_an_empty_name(mount)


# -- fixtures: a root beside an outside folder the mount must never reach --------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return Path(os.path.realpath(root))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    outside = tmp_path / "root-outside"  # shares the root's prefix: string checks fail here
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"secret")
    (outside / "folder" / "deep.txt").write_bytes(b"deep")
    return Path(os.path.realpath(outside))


@pytest.fixture
def local(root: Path) -> Iterator[LocalMount]:
    mount = local_mount(root)
    mount.start()
    yield mount
    mount.close()


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path below ``folder`` with its content (None for folders) and mtime."""
    found = {}
    for path in sorted(folder.rglob("*")):
        content = None if path.is_dir() else path.read_bytes()
        found[str(path.relative_to(folder))] = (content, path.lstat().st_mtime_ns)
    return found


def temp_name(pid: int, host: str = HOST) -> str:
    return f"{TEMP_PREFIX}{pid}@{host}~{uuid.uuid4().hex}"


# -- containment ------------------------------------------------------------------

LEXICAL_ESCAPES = ["..", "../x", "../root-sibling/x", "a/../../x", "./../x", "a/../..", "/etc/passwd", "/"]


@pytest.mark.parametrize("rel", LEXICAL_ESCAPES)
def test_contain_refuses_escapes(root: Path, rel: str) -> None:
    with pytest.raises(errors.OutsideMount):
        contain(str(root), rel)


@pytest.mark.parametrize("rel", ["", "a", "a/b.txt", "a/../b.txt", "./a/./b"])
def test_contain_accepts_paths_inside(root: Path, rel: str) -> None:
    assert contain(str(root), rel) == os.path.normpath(os.path.join(root, rel))


def test_contain_refuses_links_out(root: Path, outside: Path) -> None:
    (root / "link-file").symlink_to(outside / "secret.txt")
    (root / "link-folder").symlink_to(outside)
    for rel in ("link-file", "link-folder", "link-folder/secret.txt", "link-folder/new"):
        with pytest.raises(errors.OutsideMount):
            contain(str(root), rel)


def test_contain_refuses_links_out_deep_in_the_path(root: Path, outside: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "out").symlink_to(outside)
    (root / "a" / "b" / "secret").symlink_to(outside / "secret.txt")
    for rel in ("a/b/out", "a/b/out/secret.txt", "a/b/out/folder/deep.txt", "a/b/out/new", "a/b/secret"):
        with pytest.raises(errors.OutsideMount):
            contain(str(root), rel)


def test_contained_gives_the_lstat_of_a_plain_path(root: Path) -> None:
    (root / "a").mkdir()
    (root / "a" / "f.txt").write_bytes(b"12345")
    full, st = contained(str(root), "a/f.txt")
    assert full == str(root / "a" / "f.txt") and st is not None and st.st_size == 5


@pytest.mark.parametrize("rel", ["missing.txt", "missing/below/f.txt", "f.txt/below"])
def test_contained_of_a_missing_path_is_the_plain_path_without_stat(root: Path, rel: str) -> None:
    (root / "f.txt").write_bytes(b"file")
    assert contained(str(root), rel) == (os.path.join(root, rel), None)


def test_contained_of_a_link_inside_is_its_target_without_stat(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to("real")
    assert contained(str(root), "alias/x.txt") == (str(root / "real" / "x.txt"), None)


def test_a_folder_swapped_for_a_link_out_is_refused_at_once(local: LocalMount, root: Path, outside: Path) -> None:
    (root / "folder").mkdir()
    (root / "folder" / "secret.txt").write_bytes(b"inside")
    assert local.stat("folder/secret.txt") is not None
    (root / "folder" / "secret.txt").unlink()
    (root / "folder").rmdir()
    (root / "folder").symlink_to(outside)
    for operation in ("stat", "open_read", "open_upload"):
        with pytest.raises(errors.OutsideMount):
            OPERATIONS[operation](local, "folder/secret.txt")


def test_stat_of_a_missing_path_below_a_file_is_none(local: LocalMount, root: Path) -> None:
    (root / "f.txt").write_bytes(b"file")
    assert local.stat("f.txt/below") is None
    assert local.stat("nowhere/below") is None


def test_temp_names_do_not_repeat() -> None:
    assert len({unique_suffix() for _ in range(1000)}) == 1000


def escapes(outside: Path) -> list[str]:
    return [
        "..",
        "../root-outside/secret.txt",
        "a/../../root-outside/folder",
        str(outside / "secret.txt"),
        "link-file",
        "link-folder",
        "link-folder/secret.txt",
        "link-folder/folder/new.txt",
    ]


OPERATIONS: dict[str, Callable[[LocalMount, str], object]] = {
    "stat": lambda mount, rel: mount.stat(rel),
    "list": lambda mount, rel: mount.list(rel),
    "open_read": lambda mount, rel: mount.open_read(rel),
    "open_upload": lambda mount, rel: mount.open_upload(rel),
    "make_folder": lambda mount, rel: mount.make_folder(rel),
    "remove_file": lambda mount, rel: mount.remove_file(rel),
    "remove_folder": lambda mount, rel: mount.remove_folder(rel),
    "set_modified": lambda mount, rel: mount.set_modified(rel, 0.0),
    "copy_from": lambda mount, rel: mount.copy_file(rel, "inside.txt"),
    "copy_to": lambda mount, rel: mount.copy_file("inside.txt", rel),
    "move_from": lambda mount, rel: mount.move(rel, "moved"),
    "move_to": lambda mount, rel: mount.move("inside.txt", rel),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_mount_refuses_every_escape(local: LocalMount, root: Path, outside: Path, operation: str) -> None:
    (root / "link-file").symlink_to(outside / "secret.txt")
    (root / "link-folder").symlink_to(outside)
    put(local, "inside.txt", CONTENT)
    before_outside, before_root = snapshot(outside), snapshot(root)
    for rel in escapes(outside):
        with pytest.raises(errors.OutsideMount):
            OPERATIONS[operation](local, rel)
    assert snapshot(outside) == before_outside
    assert snapshot(root) == before_root


def test_links_inside_are_followed(local: LocalMount, root: Path) -> None:
    (root / "folder").mkdir()
    (root / "folder" / "child.txt").write_bytes(CONTENT)
    (root / "real.txt").write_bytes(b"real")
    (root / "alias.txt").symlink_to("real.txt")
    (root / "alias-folder").symlink_to(root / "folder")
    entry = local.stat("alias.txt")
    assert entry is not None and not entry.is_folder and entry.size == 4
    assert read(local, "alias.txt") == b"real"
    listed = members(local, "")
    assert set(listed) == {"folder", "real.txt", "alias.txt", "alias-folder"}
    assert listed["alias-folder"].is_folder and not listed["alias.txt"].is_folder
    assert list(members(local, "alias-folder")) == ["child.txt"]
    put(local, "alias-folder/new.txt", b"new")
    assert (root / "folder" / "new.txt").read_bytes() == b"new"


def test_stat_of_a_link_names_the_link(local: LocalMount, root: Path) -> None:
    (root / "real.txt").write_bytes(b"real")
    (root / "alias.txt").symlink_to("real.txt")
    entry = local.stat("alias.txt")
    assert entry is not None and entry.name == "alias.txt" == members(local, "")["alias.txt"].name


def test_removing_a_file_link_keeps_its_target(local: LocalMount, root: Path) -> None:
    (root / "real.txt").write_bytes(b"real")
    (root / "alias.txt").symlink_to("real.txt")
    local.remove_file("alias.txt")
    assert (root / "real.txt").read_bytes() == b"real"


def test_removing_a_folder_link_keeps_its_target(local: LocalMount, root: Path) -> None:
    (root / "folder").mkdir()
    (root / "folder" / "child.txt").write_bytes(CONTENT)
    (root / "alias-folder").symlink_to("folder")
    local.remove_folder("alias-folder")
    assert (root / "folder" / "child.txt").read_bytes() == CONTENT


def test_listing_hides_links_out_and_temp_files(local: LocalMount, root: Path, outside: Path) -> None:
    (root / "sub").mkdir()
    for folder in (root, root / "sub"):
        (folder / "link-file").symlink_to(outside / "secret.txt")
        (folder / "link-folder").symlink_to(outside)
        (folder / "dangling-out").symlink_to(outside / "nowhere")
        (folder / temp_name(1)).write_bytes(b"stale")
        (folder / "kept.txt").write_bytes(b"kept")
    upload = local.open_upload("sub/in-progress.txt")
    upload.write(CONTENT)
    try:
        assert set(members(local, "")) == {"sub", "kept.txt"}
        assert set(members(local, "sub")) == {"kept.txt"}
    finally:
        upload.abort()


def test_a_link_loop_breaks_nothing(local: LocalMount, root: Path) -> None:
    (root / "loop").symlink_to("loop")
    (root / "kept.txt").write_bytes(b"kept")
    assert set(members(local, "")) == {"kept.txt"}
    with contextlib.suppress(errors.StorageError):  # refusing is fine, an OSError is not
        assert local.stat("loop") is None


@pytest.mark.parametrize("operation", OPERATIONS)
def test_reserved_temp_names_are_refused(local: LocalMount, root: Path, operation: str) -> None:
    (root / "sub").mkdir()
    put(local, "inside.txt", CONTENT)
    stale = temp_name(1)
    (root / stale).write_bytes(b"stale")
    before = snapshot(root)
    for rel in (stale, f"sub/{temp_name(os.getpid())}", TEMP_PREFIX, f"{TEMP_PREFIX}x"):
        with pytest.raises(errors.Forbidden):
            OPERATIONS[operation](local, rel)
    assert snapshot(root) == before


# -- recovery of temp files at start --------------------------------------------------


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process.pid
    process.kill()
    process.wait()


def test_start_removes_temp_files_of_dead_processes_only(root: Path, dead_pid: int, live_pid: int) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    dead = [root / temp_name(dead_pid), root / "sub" / "deeper" / temp_name(dead_pid)]
    alive = [root / temp_name(live_pid), root / "sub" / temp_name(os.getppid())]
    kept = [root / "kept.txt", root / f"x{temp_name(dead_pid)}", root / "sub" / "kept.txt"]
    for path in dead + alive + kept:
        path.write_bytes(b"data")
    local_mount(root).start()
    assert [path for path in dead if path.exists()] == []
    assert all(path.exists() for path in alive + kept)


def test_start_stays_inside_the_mount(root: Path, outside: Path, dead_pid: int) -> None:
    stale = outside / "folder" / temp_name(dead_pid)
    stale.write_bytes(b"not ours")
    (root / "link-folder").symlink_to(outside / "folder")
    local_mount(root).start()
    assert stale.exists()


# -- a full disk -------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, if this process may mount one (root in a privileged container)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def fill(mount: LocalMount, rel: str) -> None:
    """Upload 2 MiB to ``rel``, require NoSpace, abort."""
    upload = mount.open_upload(rel)
    with pytest.raises(errors.NoSpace):
        for _ in range(32):
            upload.write(b"x" * 64 * 1024)
        upload.close()
        upload.commit()
    upload.abort()


def test_full_disk_raises_no_space_and_leaves_old_content(tiny_disk: Path) -> None:
    mount = local_mount(tiny_disk)
    put(mount, "old.txt", CONTENT)
    fill(mount, "old.txt")
    assert os.listdir(tiny_disk) == ["old.txt"]
    assert read(mount, "old.txt") == CONTENT
    fill(mount, "new.txt")
    assert os.listdir(tiny_disk) == ["old.txt"]
    put(mount, "after.txt", CONTENT)  # the space of the aborted uploads is free again
    assert read(mount, "after.txt") == CONTENT


def test_start_leaves_recent_uploads_of_other_hosts_alone(root: Path, dead_pid: int) -> None:
    recent = root / temp_name(dead_pid, host="replica-2")
    old = root / temp_name(dead_pid, host="replica-3")
    recent.write_bytes(b"in flight")
    old.write_bytes(b"abandoned")
    stale = time.time() - FOREIGN_UPLOAD_TTL - 60
    os.utime(old, (stale, stale))
    LocalMount("/data", LocalOptions(type="local", root=root)).start()
    assert recent.exists()
    assert not old.exists()
