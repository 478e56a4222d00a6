"""``davgate copy``: one file from one mount to another, checked, with a progress bar.

The same copy the management API's staging jobs make
(:class:`davgate.api.copier.Copier`): streamed in 1 MiB blocks into an
atomic upload, then read back and compared by SHA-256. SOURCE and TARGET
are paths of davgate's namespace (``/hpc/run1/out.tif``, ``/ceph/archive/``);
a TARGET ending in ``/`` (or naming a folder) receives the file under its
own name. A DISPEL path is a fine SOURCE: the result is made (or taken from
the cache) first.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from davgate import dispel, errors
from davgate.app import build_mounts, open_state
from davgate.config import load_config
from davgate.ops.progress import Progress
from davgate.providers import Mount


def split(mounts: dict[str, Mount], path: str) -> tuple[str, str]:
    """(mount path, path relative to it, trailing '/' kept) for a namespace path."""
    clean = "/" + path.strip("/")
    for mount_path in sorted(mounts, key=len, reverse=True):
        if clean == mount_path or clean.startswith(mount_path + "/"):
            rel = clean[len(mount_path) :].lstrip("/")
            return mount_path, rel + ("/" if path.endswith("/") and rel else "")
    raise errors.NotFound(path, "no mount serves this path")


def copy_command(config_path: Path, source: str, target: str) -> int:
    from davgate.api.copier import Copier, Place

    config = load_config(config_path)
    mounts = build_mounts(config)
    store = open_state(config)
    try:
        for mount in mounts.values():
            mount.use_state(store)
        dispel.attach(mounts, store, config.cache)
        (src_mount, src_rel), (dst_mount, dst_rel) = split(mounts, source), split(mounts, target)
        if not src_rel or src_rel.endswith("/"):
            raise errors.Conflict(source, "the source is a folder; copy copies one file")
        for path in {src_mount, dst_mount}:
            mounts[path].start()
        with Progress("copy", 0, "bytes") as bar:

            def report(done: int, total: int) -> bool:
                bar.total = total
                bar.advance(done - bar.done)
                return True

            copier = Copier(report, threading.Event())
            rel, checksum = copier.copy(Place(mounts[src_mount], src_rel), Place(mounts[dst_mount], dst_rel))
        print(f"{dst_mount}/{rel}: {checksum}")
        return 0
    except errors.StorageError as error:
        print(f"davgate: copy failed: {error}", file=sys.stderr)
        return 1
    finally:
        for mount in mounts.values():
            mount.close()
        store.close()
