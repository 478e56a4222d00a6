"""Operations: what an operator sees of davgate besides WebDAV.

One module per concern:

- :mod:`~davgate.ops.requestid` a request id per request, echoed in
  ``X-Request-ID``; :mod:`~davgate.ops.logs` text or JSON log lines, each
  with that id (the access log itself is :mod:`davgate.access_log`);
- :mod:`~davgate.ops.metrics` request counters in per-process mapped files;
  :mod:`~davgate.ops.export` the ``/metrics`` page that adds them up, with
  the DISPEL counters of the state store;
- :mod:`~davgate.ops.health` readiness checks; :mod:`~davgate.ops.endpoints`
  ``/healthz``, ``/readyz`` and ``/metrics``;
- :mod:`~davgate.ops.wiring` all of that for one application;
- :mod:`~davgate.ops.startup` TLS and status lines, set up once by ``serve``;
- :mod:`~davgate.ops.progress` progress bars for long command line work.
"""
