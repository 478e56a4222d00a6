"""Dead properties and locks that follow their resource: removed with it, kept when its removal fails.

The state store and storage cannot change in one step, so the order is
chosen for what a failure leaves: the store's part of a removal comes first
(a busy store then answers 503 with nothing removed), and a property written
to something removed meanwhile is taken back. A mixin of
:class:`~davgate.providers.resources.MountedResource`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from wsgidav import util
from wsgidav.dav_error import HTTP_NOT_FOUND, DAVError

from davgate import errors, request_cache
from davgate.errors import translate
from davgate.state import StoreBusy

if TYPE_CHECKING:
    from davgate.namespace import Namespace
    from davgate.providers import Mount


log = logging.getLogger("davgate.providers")


class FollowingState:
    """The state-store side of a mounted resource (WsgiDAV's ``DAVResource`` supplies the rest)."""

    mount: Mount
    rel: str
    path: str
    environ: dict
    provider: Namespace
    is_collection: bool

    def check_still_there(self, name: str) -> None:
        """After a dead property is written: 404, and the property gone again, if the resource was removed meanwhile.

        A DELETE that ran between this request's lookup and its write has
        already dropped the resource's properties; this one would otherwise
        stay behind for whoever makes the name next.
        """
        with translate():
            if self.mount.stat(self.rel) is not None:
                return
        self.provider.prop_manager.remove_property(self.get_ref_url(), name, False, self.environ)
        raise DAVError(HTTP_NOT_FOUND, context_info="removed while its properties were being written")

    def forget(self) -> None:
        """Drop the dead properties and locks of this resource and below."""
        manager = self.provider.prop_manager
        if manager is not None:
            manager.remove_properties(self.get_ref_url(), self.environ, with_children=self.is_collection)
        self.remove_all_locks(recursive=True)

    @contextlib.contextmanager
    def removing(self) -> Iterator[None]:
        """Around a removal from storage: the state store's part first, so a removal leaves nothing behind.

        Dead properties and locks go before the file or folder does: a store
        busy past its timeout then answers 503 with nothing removed, where the
        other order would remove the file and leave its properties and locks
        to whoever makes the name next. If storage then refuses, a file's
        properties are put back (its locks, which only the requester could
        hold, stay released). Inside a COPY or MOVE, which only needs the
        thing out of the way, something already gone counts as removed.
        """
        kept = self.own_properties()
        self.forget()
        with translate(), request_cache.changing(self.environ):  # later lookups see the change
            try:
                yield
            except errors.NotFound:
                if self.environ.get("REQUEST_METHOD") not in ("COPY", "MOVE"):
                    raise
            except errors.StorageError:
                self.put_back(kept)
                raise
        self.sweep_properties()

    def sweep_properties(self) -> None:
        """After the removal: drop properties a PROPPATCH wrote between :meth:`forget` and the removal.

        The first removal already succeeded; a store busy now leaves only what
        such a racing write added, so it is logged, not answered 503.
        """
        manager = self.provider.prop_manager
        if manager is None:
            return
        try:
            manager.remove_properties(self.get_ref_url(), self.environ, with_children=self.is_collection)
        except StoreBusy:
            log.warning("%s: removed, but the busy state store kept what a racing PROPPATCH wrote", self.path)

    def own_properties(self) -> dict:
        """A file's dead properties, to put back if its removal fails (a folder's are not kept)."""
        manager = self.provider.prop_manager
        if manager is None or self.is_collection:
            return {}
        url = self.get_ref_url()
        return manager.properties_of([url]).get(url, {})

    def put_back(self, properties: dict) -> None:
        manager = self.provider.prop_manager
        for name, value in properties.items():
            manager.write_property(self.get_ref_url(), name, value, False, self.environ)

    def check_unlocked(self, depth: str) -> None:
        """423 if a lock on this resource (or, at depth infinity, below it) is not one the request holds."""
        lock_manager = self.provider.lock_manager
        if lock_manager is None:
            return
        if "wsgidav.conditions.if" not in self.environ:
            util.parse_if_header_dict(self.environ)
        lock_manager.check_write_permission(
            url=self.get_ref_url(),
            depth=depth,
            token_list=self.environ["wsgidav.ifLockTokenList"],
            principal=self.environ.get("wsgidav.user_name", ""),
        )

    def follow_properties(self, dest_path: str, is_move: bool, with_children: bool) -> None:
        manager = self.provider.prop_manager
        if manager is None:
            return
        src, dest = self.get_ref_url(), self.provider.ref_url(dest_path, self.is_collection)
        if is_move:
            manager.move_properties(src, dest, with_children=with_children, environ=self.environ)
        else:
            manager.copy_properties(src, dest, environ=self.environ)
