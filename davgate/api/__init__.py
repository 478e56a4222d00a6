"""The management API (the LOBCDER API of the seed, appendices A-C), at ``/api/v1``.

- :mod:`.service` builds the parts and the WSGI gateway in front of WsgiDAV
  (``/api/v1`` is a prefix check; nothing else is touched);
- :mod:`.routes` the router, :mod:`.errors` the JSON errors, :mod:`.checks`
  request bodies, :mod:`.handlers` the calls, :mod:`.openapi` their description;
- :mod:`.tokens` who is calling (admin token, server-signed user tokens);
- :mod:`.spec`, :mod:`.infrastructures`, :mod:`.spaces`, :mod:`.credentials`,
  :mod:`.davauth`, :mod:`.sealing`, :mod:`.sshkeys`: micro-infrastructures
  as live namespaces ``/<name>/`` with their own access methods;
- :mod:`.query` the file index; :mod:`.staging`, :mod:`.copier`,
  :mod:`.webhooks` the copy jobs; :mod:`.metadata` DataNet's documents.

Every record lives in the state store, so any number of davgate processes
serve one API.
"""

from davgate.api.service import PREFIX, ApiService

__all__ = ["PREFIX", "ApiService"]
