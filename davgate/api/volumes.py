"""Native volumes: local folders the API makes for an infrastructure, within its owner's quota.

A :class:`NativeVolume` is a :class:`~davgate.providers.local.LocalMount`
whose writes (a PUT, a COPY inside the volume, a staging copy into it)
stop with :class:`~davgate.errors.NoSpace` (507) once they would take the
owner's native volumes past ``api.quota_volume_bytes``. The room left is
measured when a write starts, over every native volume of the owner
(:meth:`davgate.api.quotas.Quotas.volume_room`); a file being replaced
counts as freed.
"""

from __future__ import annotations

from collections.abc import Callable

from davgate import errors
from davgate.api.quotas import folder_bytes
from davgate.providers import Upload
from davgate.providers.local import LocalMount

__all__ = ["NativeVolume", "Room"]

#: Bytes the owner may still write (``None``: no limit).
Room = Callable[[], int | None]


class QuotaUpload(Upload):
    """An upload that fails once more than ``room`` bytes were written."""

    def __init__(self, upload: Upload, room: int, refuse: Callable[[], errors.NoSpace]) -> None:
        self.upload, self.room, self.refuse = upload, room, refuse
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self.room:
            raise self.refuse()
        return self.upload.write(data)

    def commit(self) -> None:
        self.upload.commit()

    def abort(self) -> None:
        self.upload.abort()


class NativeVolume(LocalMount):
    """A native volume: ``room()`` says how much more its owner may write."""

    def __init__(self, path: str, options, room: Room, refuse: Callable[[str], errors.NoSpace]) -> None:
        super().__init__(path, options)
        self.room, self.refuse = room, refuse

    def space_for(self, rel: str) -> int | None:
        """Bytes that may be written to ``rel``: the room left plus what a file there now takes."""
        room = self.room()
        if room is None:
            return None
        existing = self.stat(rel)
        return room + (existing.size if existing is not None and not existing.is_folder else 0)

    def space(self) -> tuple[int, int] | None:
        """Under a quota: this volume's bytes and the owner's room left (not the disk's, which is not theirs)."""
        room = self.room()
        if room is None:
            return super().space()
        return folder_bytes(self.root), max(room, 0)

    def open_upload(self, rel: str) -> Upload:
        space = self.space_for(rel)
        if space is not None and space < 0:
            raise self.refuse(rel)
        upload = super().open_upload(rel)
        return upload if space is None else QuotaUpload(upload, space, lambda: self.refuse(rel))

    def copy_file(self, src: str, dest: str) -> bool:
        space = self.space_for(dest)
        source = self.stat(src)
        if space is not None and source is not None and source.size > space:
            raise self.refuse(dest)
        return super().copy_file(src, dest)
