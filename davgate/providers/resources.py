"""WebDAV resources over any :class:`~davgate.providers.Mount`.

Everything a backend would otherwise repeat lives here once: ETags, Range
(through seekable streams), atomic PUT (through :class:`Upload`), COPY and
MOVE inside one mount (server-side when the backend can) or across mounts
(streamed), dead properties and locks that follow their resource, and the
translation of davgate errors into HTTP.

Files never run as davgate: anyone may have put them on a mount, and a
browser that opens one holds its user's credentials for davgate's origin.
Every GET and HEAD of a file says so (:func:`inert_headers`): the browser
opens it in a sandbox (no script, no forms, an origin of its own, so no
cookies or stored credentials of davgate's) and takes its type as given.
davgate's own pages (the folder listing) are not files and keep working.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, BinaryIO

from wsgidav import util
from wsgidav.dav_error import HTTP_BAD_REQUEST, HTTP_CONFLICT, HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.dav_provider import DAVCollection, DAVNonCollection

from davgate import errors, request_cache, sendfile
from davgate.digest import Verifier
from davgate.errors import translate
from davgate.providers import Entry, Mount, Upload, liveprops
from davgate.providers.following import FollowingState
from davgate.state import StoreBusy

if TYPE_CHECKING:
    from davgate.namespace import Namespace

COPY_CHUNK = 1024 * 1024
INERT = (("Content-Security-Policy", "sandbox"), ("X-Content-Type-Options", "nosniff"))


def inert_headers(response_headers: list[tuple[str, str]]) -> None:
    """The headers that keep a served file from running in a browser as davgate's own page."""
    response_headers.extend(INERT)


def supports(mount: Mount, method: str) -> bool:
    """True if ``mount`` overrides the optional ``method`` of :class:`Mount`."""
    return getattr(type(mount), method) is not getattr(Mount, method)


LOCK_DISCOVERY = "{DAV:}lockdiscovery"


class MountedResource(FollowingState):
    """What files and folders of a mount share."""

    path: str
    environ: dict
    provider: Namespace

    def setup(self, mount: Mount, rel: str, entry: Entry) -> None:
        self.mount = mount
        self.rel = rel
        self.entry = entry

    def check_writable(self) -> None:
        if self.mount.readonly:
            raise DAVError(HTTP_FORBIDDEN, context_info=f"{self.mount.path} is read-only")

    def get_display_name(self) -> str:
        return self.entry.name or self.mount.path.rsplit("/", 1)[-1]

    def get_etag(self) -> str | None:
        """None (no ETag sent) where storage gave none, as for a file just written whose upload could not tell."""
        return self.entry.etag or None

    def support_etag(self) -> bool:
        return True

    def get_last_modified(self) -> float:
        if supports(self.mount, "set_modified"):
            return self.entry.modified
        if not hasattr(self, "recorded"):  # a time a client set where the storage cannot keep one
            self.recorded = liveprops.recorded_time(self)
        return self.entry.modified if self.recorded is None else self.recorded

    def get_creation_date(self) -> float | None:
        return self.entry.created

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = super().get_property_names(is_allprop=is_allprop)  # type: ignore[misc]
        return liveprops.property_names(names, is_allprop=is_allprop)

    def get_property_value(self, name: str):
        if name == liveprops.OC_PERMISSIONS:
            return liveprops.permissions(self)
        if name == liveprops.RECORDED_TIME:
            raise DAVError(HTTP_NOT_FOUND)
        if name == LOCK_DISCOVERY:
            return self.lock_discovery()
        value = super().get_property_value(name)  # type: ignore[misc]
        if value is None and name in liveprops.QUOTA_PROPERTIES:
            raise DAVError(HTTP_NOT_FOUND)  # unknown: absent, not empty
        return value

    def lock_discovery(self):
        """WsgiDAV's lockdiscovery, or 404 when a lock's resource was removed meanwhile.

        WsgiDAV looks up each lock's root again to write its href; a DELETE
        racing the request leaves it nothing to look up (and it fails with a
        500). The path is gone: 404 tells the truth, and the lock that
        outlived its file is released when it would refuse someone.
        """
        manager = self.provider.lock_manager
        for lock in manager.get_url_lock_list(self.get_ref_url()) if manager else ():
            if self.provider.get_resource_inst(lock["root"], self.environ) is None:
                raise DAVError(HTTP_NOT_FOUND)
        return super().get_property_value(LOCK_DISCOVERY)  # type: ignore[misc]

    def set_property_value(self, name: str, value, *, dry_run: bool = False):
        if name in liveprops.TIME_PROPERTIES:
            return liveprops.set_time(self, value, dry_run=dry_run)
        if name == liveprops.RECORDED_TIME:
            raise DAVError(HTTP_FORBIDDEN, context_info="a protected property")
        result = super().set_property_value(name, value, dry_run=dry_run)  # type: ignore[misc]
        if not dry_run:
            self.check_still_there(name)
        return result

    def set_last_modified(self, dest_path: str, time_stamp: float, *, dry_run: bool) -> bool:
        self.check_writable()
        if not supports(self.mount, "set_modified"):
            return False
        if not dry_run:
            with translate(), request_cache.changing(self.environ):  # later lookups see the change
                self.mount.set_modified(self.rel, time_stamp)
        return True

    def support_recursive_move(self, dest_path: str) -> bool:
        target = self.provider.locate(dest_path)
        return target is not None and target[0] is self.mount and supports(self.mount, "move")

    def move_recursive(self, dest_path: str) -> list:
        self.check_writable()
        if self.rel == "":
            raise DAVError(HTTP_FORBIDDEN, context_info="a mount's root cannot be moved")
        _mount, dest_rel = self.provider.locate(dest_path)
        self.remove_all_locks(recursive=True)
        with translate(), request_cache.changing(self.environ):  # later lookups see the change
            self.mount.move(self.rel, dest_rel)
        self.follow_properties(dest_path, is_move=True, with_children=True)
        return []


class FileResource(MountedResource, DAVNonCollection):
    """A file of a mount."""

    def __init__(self, path: str, environ: dict, mount: Mount, rel: str, entry: Entry) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.setup(mount, rel, entry)
        self.upload: CountedUpload | None = None

    def get_content_length(self) -> int:
        return self.entry.size

    def get_content_type(self) -> str:
        return self.entry.guessed_type()

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> BinaryIO:
        """The content; for a GET's body, the server may send it from the file itself (:mod:`davgate.sendfile`)."""
        with translate():
            stream = self.mount.open_read(self.rel)
        try:
            self.check_unchanged(stream)
        except BaseException:
            stream.close()
            raise
        return sendfile.offered(stream, self.environ)

    def check_unchanged(self, stream: BinaryIO) -> None:
        """409 if the file opened is not the one the answer's headers describe.

        The headers (length, ETag) come from the lookup at the start of the
        request; another request may replace the file before it is opened.
        The stream's own version answers where the mount knows it; else a
        ``stat`` after the open does, since versions only move forward: a file
        that still has the looked-up ETag after the open was opened as that version.
        """
        with translate():
            opened = self.mount.version(stream)
            if opened is None:
                again = self.mount.stat(self.rel)
                opened = again.etag if again is not None else None
        if opened != self.entry.etag:
            raise DAVError(HTTP_CONFLICT, context_info="the file was replaced while it was being read: ask again")

    def finalize_headers(self, environ: dict, response_headers: list[tuple[str, str]]) -> None:
        inert_headers(response_headers)

    def begin_write(self, *, content_type: str | None = None) -> Upload:
        self.check_writable()
        verifier = Verifier.for_request(self.environ)  # Digest or Content-MD5: checked before commit
        with translate():
            self.upload = CountedUpload(self.mount.open_upload(self.rel), verifier)
        return self.upload

    def end_write(self, *, with_errors: bool) -> None:
        """Commit (or abort); the resource is then what the upload wrote, never looked up again.

        Another request may already have moved, removed or replaced the file
        by the time the commit returns; a look would answer for its content.
        """
        upload, self.upload = self.upload, None
        if upload is None:
            return
        if with_errors:
            upload.abort()
            return
        try:
            check_complete(upload.size, self.environ)
            if upload.verifier is not None:
                upload.verifier.check()
            with translate(), request_cache.changing(self.environ):  # later lookups see the change
                written = upload.commit()
        except BaseException:
            upload.abort()
            raise
        self.entry = written or Entry(name=self.entry.name, is_folder=False, size=upload.size)
        self.committed(upload)

    def committed(self, upload: CountedUpload) -> None:
        """After a PUT: keep its verified digests; a recorded time belonged to the old content."""
        digests = self.provider.digests
        if upload.verifier is not None and digests is not None and self.entry.size == upload.size:
            digests.remember(self.path, self.entry.etag, upload.verifier.values())
        if not supports(self.mount, "set_modified") and self.environ.get("REQUEST_METHOD") == "PUT":
            liveprops.record(self, None)

    def handle_delete(self) -> bool:
        """DELETE of a file, done here whole.

        WsgiDAV would delete, then look whether the file is still there and
        answer 500 if another request has made it again meanwhile. Its check
        of the file's own locks is made here instead.
        """
        try:
            self.check_unlocked("0")
            self.delete()
        except StoreBusy as error:  # WsgiDAV would answer any other exception here with 500
            raise errors.busy_answer(error) from error
        return True

    def delete(self) -> None:
        self.check_writable()
        with self.removing():
            self.mount.remove_file(self.rel)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        mount, dest_rel = self.provider.locate_or_fail(dest_path)
        if mount.readonly:
            raise DAVError(HTTP_FORBIDDEN, context_info=f"{mount.path} is read-only")
        with translate(), request_cache.changing(self.environ):  # later lookups see the change
            if not (mount is self.mount and supports(mount, "copy_file")):
                self.stream_to(mount, dest_rel)
            else:
                mount.copy_file(self.rel, dest_rel)
        self.follow_properties(dest_path, is_move=is_move, with_children=False)

    def stream_to(self, mount: Mount, dest_rel: str) -> None:
        upload = mount.open_upload(dest_rel)
        try:
            with self.mount.open_read(self.rel) as source:
                shutil.copyfileobj(source, upload, COPY_CHUNK)
            upload.commit()
        except BaseException:
            upload.abort()
            raise


class CountedUpload(Upload):
    """Counts (and, for a PUT with a checksum, hashes) what is written, so a body cut short is never committed."""

    def __init__(self, upload: Upload, verifier: Verifier | None = None) -> None:
        self.upload = upload
        self.size = 0
        self.verifier = verifier

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.verifier is not None:
            self.verifier.update(data)
        with translate():
            return self.upload.write(data)

    def commit(self) -> Entry | None:
        return self.upload.commit()

    def abort(self) -> None:
        self.upload.abort()


def check_complete(received: int, environ: dict) -> None:
    """A client that vanished mid-body looks like an early end of the body."""
    if environ.get("REQUEST_METHOD") != "PUT":
        return
    expected = environ.get("CONTENT_LENGTH")
    if expected and expected.isdigit() and int(expected) != received:
        raise DAVError(HTTP_BAD_REQUEST, context_info=f"body ended after {received} of {expected} bytes")


class NewFileResource(FileResource):
    """A file that a PUT or LOCK is about to create; it exists after commit."""

    def __init__(self, path: str, environ: dict, mount: Mount, rel: str) -> None:
        super().__init__(path, environ, mount, rel, Entry(name=util.get_uri_name(path), is_folder=False))


class FolderResource(MountedResource, DAVCollection):
    """A folder of a mount (the mount's root included)."""

    def __init__(self, path: str, environ: dict, mount: Mount, rel: str, entry: Entry) -> None:
        DAVCollection.__init__(self, path, environ)
        self.setup(mount, rel, entry)

    def member_rel(self, name: str) -> str:
        return f"{self.rel}/{name}" if self.rel else name

    def member_path(self, name: str) -> str:
        return util.join_uri(self.path, name)

    def get_member_names(self) -> list[str]:
        with translate():
            return [entry.name for entry in self.mount.list(self.rel)]

    def get_member_list(self) -> list:
        with translate():
            entries = self.mount.list(self.rel)
        return [self.member(entry) for entry in entries]

    def get_member(self, name: str):
        with translate():
            entry = self.mount.stat(self.member_rel(name))
        return self.member(entry) if entry else None

    def member(self, entry: Entry):
        cls = FolderResource if entry.is_folder else FileResource
        return cls(self.member_path(entry.name), self.environ, self.mount, self.member_rel(entry.name), entry)

    def get_used_bytes(self) -> int | None:
        space = self.mount.space()
        return space[0] if space else None

    def get_available_bytes(self) -> int | None:
        space = self.mount.space()
        return space[1] if space else None

    def create_empty_resource(self, name: str) -> FileResource:
        """PUT commits the new file itself; LOCK needs it to exist now, and never replaces one made meanwhile."""
        self.check_writable()
        resource = NewFileResource(self.member_path(name), self.environ, self.mount, self.member_rel(name))
        if self.environ.get("REQUEST_METHOD") == "PUT":
            return resource
        with translate(), request_cache.changing(self.environ):  # later lookups see the change
            try:
                created = self.mount.create_empty(resource.rel)
            except errors.Exists:
                return self.made_meanwhile(name)
        resource.entry = created or resource.entry
        return resource

    def made_meanwhile(self, name: str) -> FileResource:
        """The file another request made under ``name`` since this one looked: the LOCK locks that one."""
        existing = self.get_member(name)
        if existing is None or existing.is_collection:
            raise DAVError(HTTP_CONFLICT, context_info="another request used the name meanwhile")
        return existing

    def create_collection(self, name: str) -> None:
        self.check_writable()
        with translate(), request_cache.changing(self.environ):  # later lookups see the change
            self.mount.make_folder(self.member_rel(name))

    def support_recursive_delete(self) -> bool:
        return True

    def delete(self) -> None:
        self.check_writable()
        if self.rel == "":
            raise DAVError(HTTP_FORBIDDEN, context_info="a mount's root cannot be removed")
        # WsgiDAV checks the members one by one before a recursive DELETE, but
        # when one is refused it goes on to delete this folder anyway (it looks
        # the folder up with a trailing slash), which would take the locked
        # member with it.
        self.check_unlocked("infinity")
        with self.removing():
            self.mount.remove_folder(self.rel)

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        mount, dest_rel = self.provider.locate_or_fail(dest_path)
        if mount.readonly:
            raise DAVError(HTTP_FORBIDDEN, context_info=f"{mount.path} is read-only")
        with translate(), request_cache.changing(self.environ):  # later lookups see the change
            if mount.stat(dest_rel) is None:
                mount.make_folder(dest_rel)
        self.follow_properties(dest_path, is_move=False, with_children=False)
