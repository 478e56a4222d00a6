"""The key space both state backends share: resource paths as sorted strings.

Locks and dead properties are keyed by normalised paths (``/a/b``, with a
trailing ``/`` for folders where WsgiDAV gives one). A subtree is a range of
such keys and a lock's ancestors a short list, so both backends answer
"what is above or below this path" with an index range scan, the same way.
"""

from __future__ import annotations

IN_BATCH = 500  # keys per IN (...) / $in query: well below SQLite's limit of bound parameters


def ancestors(root: str) -> list[str]:
    """Proper ancestors of a normalised root: ``/a/b`` -> ``['/', '/a']``."""
    parts = root.strip("/").split("/") if root.strip("/") else []
    return ["/" + "/".join(parts[:i]) for i in range(len(parts))]


def subtree(root: str) -> tuple[str, str]:
    """Bounds ``lo <= key < hi`` of every key below ``root``.

    Every string that starts with ``root/`` sorts between ``root/`` and
    ``root0`` (``'0'`` follows ``'/'``), in SQLite's byte order as in Python's
    and MongoDB's.
    """
    prefix = root.rstrip("/") + "/"
    return prefix, prefix[:-1] + "0"


def moved(key: str, src: str, dest: str) -> str:
    """Where ``key`` (``src`` or below it) lands when ``src`` moves to ``dest``."""
    if key == src:
        return dest
    return dest.rstrip("/") + key[len(src.rstrip("/")) :]
