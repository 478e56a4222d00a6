"""DISPEL virtual paths: URLs that run data-processing templates.

``/dispel/tiffstore/312/20181129/12/0-1200-0-400`` runs the template
``tiffstore`` with four parameters and serves its result as a read-only
file. The pieces, one module each:

- :mod:`~davgate.dispel.templates` YAML templates; :mod:`~davgate.dispel.params`
  parameter types and the path parser;
- :mod:`~davgate.dispel.elements` the processing element registry and the
  built-ins (entry point group ``davgate.dispel.elements``);
  :mod:`~davgate.dispel.tiff` lazy, windowed TIFF reads; :mod:`~davgate.dispel.png`;
- :mod:`~davgate.dispel.pipeline` one run; :mod:`~davgate.dispel.executor` the
  bounded pool of pipeline processes with time limits; :mod:`~davgate.dispel.worker`
  a pipeline process;
- :mod:`~davgate.dispel.cache` results in a cache backend (a local folder, or
  :mod:`~davgate.dispel.cache_s3` an S3 bucket), indexed in the state store;
  :mod:`~davgate.dispel.counting` per-template counts for /metrics;
  :mod:`~davgate.dispel.flight` single-flight across threads and processes;
- :mod:`~davgate.dispel.engine` ties those together; :mod:`~davgate.dispel.tree`
  the browsable WebDAV tree; :mod:`~davgate.dispel.mount` the ``dispel`` mount;
- :mod:`~davgate.dispel.demo` the sample TIFF store (``davgate demo-data``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from davgate.dispel.cache import DispelCache
    from davgate.providers import Mount
    from davgate.state import StateStore


def attach(mounts: Mapping[str, Mount], store: StateStore, cache_options: Any) -> DispelCache | None:
    """Connect every dispel mount to the other mounts, the state store and one shared cache."""
    from davgate.dispel.mount import DispelMount

    dispel = [mount for mount in mounts.values() if isinstance(mount, DispelMount)]
    if not dispel:
        return None
    cache = open_cache(cache_options, store)

    def lookup(path: str) -> Mount | None:
        return mounts.get("/" + path.strip("/"))

    for mount in dispel:
        mount.attach(lookup=lookup, store=store, cache=cache)
    return cache


def open_cache(options: Any, store: StateStore) -> DispelCache:
    """The result cache described by the configuration's ``cache`` section (local or s3)."""
    from davgate.dispel.cache import CacheBackend, DispelCache, LocalBackend

    if options is None:
        raise ValueError("a dispel mount needs a cache section")
    backend: CacheBackend
    if options.type == "s3":
        from davgate.dispel.cache_s3 import S3Backend

        backend = S3Backend(options)
    else:
        backend = LocalBackend(options.root)
    backend.start()
    return DispelCache(backend, store, options.max_bytes)


def counters(store: StateStore) -> dict[str, dict[str, int]]:
    """Totals by template over every process using ``store``, for /metrics.

    ``{"tiffstore": {"executions": 3, "cache_hits": 10, "cache_misses": 4}}``.
    ``executions`` is ``davgate_dispel_executions_total{template=...}``: one
    per pipeline run; cache hits and requests that joined a run already
    going add nothing. ``cache_hits`` counts requests that found their result
    cached, ``cache_misses`` those that did not. Hits and misses reach the
    store in batches, about a second late. See :mod:`davgate.dispel.counting`.
    """
    from davgate.dispel.counting import counters as totals

    return totals(store)


def executions_total(store: StateStore) -> int:
    """Pipeline runs so far, summed over every template and process using ``store``."""
    from davgate.dispel.counting import executions_total as total

    return total(store)
