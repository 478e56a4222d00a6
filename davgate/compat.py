"""Requests from real clients that WsgiDAV would refuse, made acceptable.

Each fix names the client that needs it; each is harmless to every other
client because it only relaxes what RFC 4918 leaves undefined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from wsgidav.mw.base_mw import BaseMiddleware


class ClientQuirks(BaseMiddleware):
    """WsgiDAV middleware that smooths client quirks before the request is handled.

    - PROPPATCH with ``Depth: 1`` (webdavclient3's ``set_property``): RFC 4918
      gives PROPPATCH no Depth, and WsgiDAV answers anything but 0 with 400;
      the header is dropped, so the request acts on the resource itself.
    """

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict) -> None:
        super().__init__(wsgidav_app, next_app, config)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "PROPPATCH":
            environ.pop("HTTP_DEPTH", None)
        return self.next_app(environ, start_response)
