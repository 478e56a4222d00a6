"""davgate: a WebDAV virtual file system gateway.

One WsgiDAV application serves many storage mounts under one namespace,
authenticates people and workflow engines, and answers virtual paths with
computed data.
"""

__version__ = "0.1.0"
