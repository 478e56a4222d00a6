"""/metrics in-process: what is counted, how it is labelled, who may read it."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from davgate.access_log import Finished
from davgate.ops import metrics
from davgate.ops.export import Exporter
from tests.wsgi.client import Client

BUCKETS = (0.01, 0.1, 1.0)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics page (parsed by prometheus_client: the format is valid)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(app) -> str:
    response = Client(app).get("/metrics")
    assert response.status == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def test_requests_bytes_and_latency_are_counted(make_app) -> None:
    app = make_app()
    client = Client(app)
    assert client.put("/data/a.txt", b"x" * 1000).status == 201
    for _ in range(3):
        assert client.get("/data/a.txt").status == 200
    assert client.get("/data/missing").status == 404
    text = scrape(app)
    assert value(text, "davgate_requests_total", method="PUT", status="201") == 1
    assert value(text, "davgate_requests_total", method="GET", status="200") == 3
    assert value(text, "davgate_requests_total", method="GET", status="404") == 1
    assert value(text, "davgate_received_bytes_total", method="PUT") == 1000
    assert value(text, "davgate_sent_bytes_total", method="GET") >= 3000
    assert value(text, "davgate_request_duration_seconds_count", method="GET") == 4
    assert value(text, "davgate_request_duration_seconds_bucket", method="GET", le="+Inf") == 4
    assert value(text, "davgate_requests_in_flight") == 1  # the scrape itself


def test_every_family_is_listed_before_it_has_samples(make_app) -> None:
    text = scrape(make_app())
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "davgate_requests", "davgate_request_duration_seconds", "davgate_received_bytes", "davgate_sent_bytes",
        "davgate_backend_errors", "davgate_requests_in_flight", "davgate_dispel_executions",
        "davgate_dispel_cache_hits", "davgate_dispel_cache_misses",
    } <= names  # fmt: skip
    assert "# TYPE davgate_dispel_executions_total counter" in text


def test_metrics_need_an_authenticated_user_even_with_anonymous_read(make_app) -> None:
    app = make_app(auth={"anonymous": "read"})
    anonymous = Client(app, user=None)
    assert anonymous.get("/data/").status in (200, 207)  # anonymous reading works...
    response = anonymous.get("/metrics")
    assert response.status == 401  # ...but not the metrics
    assert "Basic" in response.headers["www-authenticate"]
    assert Client(app, user="bob").get("/metrics").status == 200  # any user
    assert Client(app).request("PUT", "/metrics", b"x").status == 405


def test_backend_errors_are_counted_by_mount(make_app) -> None:
    app = make_app(special={"/ceph": "outage"})
    app.mounts["/ceph"].down.set()
    client = Client(app)
    assert client.get("/ceph/a.txt").status == 503
    assert client.put("/ceph/b.txt", b"x").status == 503
    assert client.get("/data/missing").status == 404  # not a backend error
    text = scrape(app)
    assert value(text, "davgate_backend_errors_total", mount="/ceph", status="503") == 2
    assert not [
        key for key in samples(text) if key[0] == "davgate_backend_errors_total" and ("mount", "/data") in key[1]
    ]


def test_unknown_methods_share_one_label(make_app) -> None:
    app = make_app()
    client = Client(app)
    for method in ("BREW", "WHEN", "XYZZY"):
        client.request(method, "/data/")
    text = scrape(app)
    methods = {dict(labels)["method"] for name, labels in samples(text) if name == "davgate_requests_total"}
    assert "other" in methods
    assert not {"BREW", "WHEN", "XYZZY"} & methods


def test_dispel_counters_come_from_the_state_store(make_app) -> None:
    app = make_app()
    app.store.add_counter("dispel:tiffstore:executions", 2)
    app.store.add_counter("dispel:tiffstore:cache_hits", 5)
    app.store.add_counter("dispel:tiffstore:cache_misses", 3)
    text = scrape(app)
    assert value(text, "davgate_dispel_executions_total", template="tiffstore") == 2
    assert value(text, "davgate_dispel_cache_hits_total", template="tiffstore") == 5
    assert value(text, "davgate_dispel_cache_misses_total", template="tiffstore") == 3


def record(folder: Path, count: int) -> None:
    """In another process: ``count`` GETs, then exit (a worker that serves and dies)."""
    observer = metrics.RequestMetrics(metrics.Recorder(folder), BUCKETS, ["/data"])
    for _ in range(count):
        observer.request_started({})
        observer.request_finished(Finished("GET", "/data/a", "200", 0, 10, 0.05))
    observer.request_started({})  # in flight when the process dies
    os._exit(0)


def test_totals_add_up_over_processes_and_outlive_them(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    fork = multiprocessing.get_context("fork")
    for count in (3, 4):
        child = fork.Process(target=record, args=(folder, count))
        child.start()
        child.join(10)
        assert child.exitcode == 0
    live = metrics.RequestMetrics(metrics.Recorder(folder), BUCKETS, ["/data"])
    live.request_started({})
    live.request_finished(Finished("GET", "/data/a", "200", 0, 10, 0.5))
    text = Exporter(folder, dict).render().decode()
    assert value(text, "davgate_requests_total", method="GET", status="200") == 8
    assert value(text, "davgate_sent_bytes_total", method="GET") == 80
    assert value(text, "davgate_request_duration_seconds_bucket", method="GET", le="0.1") == 7
    assert value(text, "davgate_request_duration_seconds_bucket", method="GET", le="1.0") == 8
    assert value(text, "davgate_requests_in_flight") == 0  # the dead workers' requests are not in flight
    assert len(list(folder.glob("gauge_livesum_*.db"))) == 1  # their live gauges were removed


def test_a_forked_child_starts_from_zero(tmp_path: Path) -> None:
    """Values recorded before a fork are not counted again by the child."""
    folder = tmp_path / "metrics"
    observer = metrics.RequestMetrics(metrics.Recorder(folder), BUCKETS, ["/data"])
    observer.request_finished(Finished("GET", "/data/a", "200", 0, 1, 0.001))
    child = multiprocessing.get_context("fork").Process(target=record, args=(folder, 2))
    child.start()
    child.join(10)
    text = Exporter(folder, dict).render().decode()
    assert value(text, "davgate_requests_total", method="GET", status="200") == 3
