"""Tagged If lists apply to their resource however the tag is written (RFC 4918 10.4), in-process."""

from __future__ import annotations

import pytest

from tests.wsgi.client import Client

PATH = "/data/ü x.txt".encode().decode("latin-1")  # as PATH_INFO carries it
TAGS = [
    "<http://localhost/data/%C3%BC%20x.txt>",  # a full URL, as in RFC 4918's examples
    "<https://gateway.example/data/%c3%bc%20x.txt>",  # another authority (a proxy's), lower-case escapes
    "</data/ü%20x.txt>",  # a path, partly encoded
]


@pytest.fixture
def client(make_app) -> Client:
    client = Client(make_app())
    assert client.put(PATH, b"v1").status == 201
    return client


@pytest.mark.parametrize("tag", TAGS)
def test_a_tagged_entity_tag_that_does_not_match_stops_the_write(client: Client, tag: str) -> None:
    assert client.put(PATH, b"v2", If=f'{tag} (["not-the-etag"])').status == 412
    assert client.get(PATH).body == b"v1"


@pytest.mark.parametrize("tag", TAGS)
def test_a_tagged_entity_tag_that_matches_lets_it_through(client: Client, tag: str) -> None:
    etag = client.get(PATH).headers["etag"]
    assert client.put(PATH, b"v2", If=f"{tag} ([{etag}])").status == 204
    assert client.get(PATH).body == b"v2"
