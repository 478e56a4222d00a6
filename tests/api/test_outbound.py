"""The outbound rule in the API: s3 endpoints and webhooks inside the network are refused, at creation and at connect."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import pytest

from davgate.config import ConfigError, parse_config
from davgate.hardening import outbound
from davgate.hardening.outbound import OutboundRefused, OutboundRule
from davgate.state import CopyJob
from tests.api.conftest import Api, basic, infrastructure
from tests.api.test_adaptors import closed_port, refusals
from tests.api.webhooks import Listener, webhook
from tests.rgw import Rgw

__all__ = ["webhook"]

DAV = basic("user", "s3cret-pass")
INSIDE = (
    "http://127.0.0.1:{port}",
    "http://localhost:{port}/",
    "http://[::1]:{port}",
    "http://[::ffff:127.0.0.1]:{port}",
    "http://0.0.0.0:{port}",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1:{port}",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fd00::1]/",
    "http://224.0.0.1/",
)


def s3(endpoint: str, name: str = "ceph") -> dict:
    return {"name": name, "type": "s3", "endpoint": endpoint, "bucket": "b", "access_key": "a", "secret_key": "s"}


def test_s3_endpoints_inside_the_network_are_refused_at_creation(make_api: Callable[..., Api]) -> None:
    api = make_api()
    owner = api.register("owner@example.org")
    port = closed_port()
    for endpoint in (url.format(port=port) for url in INSIDE):
        reply = api.call("POST", "/infrastructure", infrastructure(extra=[s3(endpoint)]), token=owner)
        assert (reply.status, reply.json["error"]) == (400, "outbound_refused"), (endpoint, reply.text)
        detail = reply.json["detail"]
        assert detail.startswith("adaptor ceph: ") and "\n" not in detail, detail
        assert "outbound rule" in detail and "server.outbound_allow" in detail, detail
    assert refusals(api, "s3") == len(INSIDE)
    assert api.call("GET", "/infrastructure", token=owner).json == [{"type": "token", "header": "x-access-token"}]


def test_an_s3_endpoint_allowed_when_made_is_refused_at_connect_once_it_no_longer_is(
    make_api: Callable[..., Api], rgw: Rgw
) -> None:
    """The rule holds at connect time: here the allowance went away; a changed DNS answer is the live test's."""
    allowed = make_api(outbound_allow=[rgw.allowance])
    owner = allowed.register("owner@example.org")
    options = rgw.mount_config()
    adaptor = {**s3(options["endpoint"]), **{k: options[k] for k in ("bucket", "access_key", "secret_key", "prefix")}}
    reply = allowed.call("POST", "/infrastructure", infrastructure(extra=[adaptor], query=False), token=owner)
    assert reply.status == 201, reply.text
    assert allowed.dav("PUT", "/test-001/ceph/inside.txt", DAV, b"from inside").status == 201

    narrowed = make_api()  # another process, started after the operator took the allowance out
    answer = narrowed.dav("GET", "/test-001/ceph/inside.txt", DAV)
    assert answer.status in (502, 503) and b"from inside" not in answer.body, answer.text
    assert refusals(narrowed, "s3") >= 1
    assert narrowed.dav("GET", "/test-001/other/", DAV).status == 200  # the rest of the infrastructure is served


def test_webhooks_inside_the_network_are_refused_when_submitted(
    make_api: Callable[..., Api], webhook: Listener
) -> None:
    api = make_api()  # no server.outbound_allow, no api.webhook_allow: public addresses only
    owner = api.register("owner@example.org")
    assert api.call("POST", "/infrastructure", infrastructure(), token=owner).status == 201
    for url in (webhook.url, "http://169.254.169.254/hook", "http://[::1]:9/hook"):
        job = [{"id": "c1", "from": "other:/a", "to": "other:/b", "webhook": url}]
        reply = api.call("POST", "/copy", job, token=owner)
        assert (reply.status, reply.json["error"]) == (400, "outbound_refused"), (url, reply.text)
        assert "server.outbound_allow" in reply.json["detail"]
    assert refusals(api, "webhook") == 3 and not webhook.received
    assert api.call("GET", "/copy", token=owner).json == []


def test_a_queued_webhook_the_rule_now_refuses_is_refused_at_connect(
    make_api: Callable[..., Api], webhook: Listener
) -> None:
    api = make_api()
    job = CopyJob("owner@example.org", "c1", "other:/a", "other:/b", "{}", webhook.url, state="done")
    api.app.api.stager.run_webhook(job)  # as the scheduler would, for a job queued while it was allowed
    assert not webhook.received and refusals(api, "webhook") == 1


def test_a_changed_dns_answer_is_checked_when_connecting(webhook: Listener) -> None:
    """The rule connects to the address it checked, resolved at connect time, not at creation."""
    answers = {"hooks.test": "127.0.0.1"}

    def resolve(host: str, port: int) -> list:  # a DNS server whose answer the test changes
        return socket.getaddrinfo(answers[host], port, type=socket.SOCK_STREAM)

    port = int(webhook.allowance.rsplit(":", 1)[1])
    rule = OutboundRule([f"127.0.0.1:{port}"], resolve=resolve)
    rule.check("webhook", "hooks.test", port)
    rule.connect("webhook", "hooks.test", port, 5.0).close()  # allowed: it reaches the listener
    answers["hooks.test"] = "127.0.0.2"
    with pytest.raises(OutboundRefused, match="loopback"):
        rule.connect("webhook", "hooks.test", port, 5.0)


def test_the_servers_own_addresses_are_known_by_binding_them() -> None:
    assert outbound.is_own(ipaddress.ip_address("127.0.0.1"))
    assert not outbound.is_own(ipaddress.ip_address("192.0.2.1"))  # TEST-NET-1: nobody's


@pytest.mark.parametrize(
    ("entry", "allowed", "refused"),
    [
        ("127.0.0.1:7480", [("127.0.0.1", 7480), ("localhost", 7480)], [("127.0.0.1", 7481), ("127.0.0.2", 7480)]),
        ("127.0.0.0/8", [("127.0.0.2", 1), ("127.0.0.1", 65535)], [("::1", 1)]),
        ("[::1]:2222", [("::1", 2222)], [("::1", 22), ("127.0.0.1", 2222)]),
        ("localhost", [("localhost", 1), ("LocalHost", 2)], [("127.0.0.1", 1)]),
    ],
)
def test_entries_of_outbound_allow(entry: str, allowed: list, refused: list) -> None:
    rule = OutboundRule([entry])
    for host, port in allowed:
        rule.check("s3", host, port)
    for host, port in refused:
        with pytest.raises(OutboundRefused):
            rule.check("s3", host, port)


@pytest.mark.parametrize("entry", ["127.0.0.1:0", "127.0.0.1:x", "10.0.0.0/33", "bad host", "[::1", "a..b", ""])
def test_bad_entries_are_configuration_errors(entry: str) -> None:
    data = {"state": {"type": "sqlite", "path": "state.db"}, "server": {"outbound_allow": ["10.0.0.0/8", entry]}}
    with pytest.raises(ConfigError, match=r"server\.outbound_allow\[1\]"):
        parse_config(data, "test")
