"""Resources looked up once per request, and never stale after the request changed storage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from davgate import request_cache
from davgate.app import Application
from davgate.namespace import Namespace
from davgate.providers.local import LocalMount
from tests.wsgi.client import Client


@pytest.fixture
def app(make_app) -> Application:
    return make_app()


def namespace_of(app: Application) -> Namespace:
    return app.wsgi.provider_map["/"]


def request_environ(app: Application, method: str = "PUT") -> dict:
    """One request's environ, as WsgiDAV has filled it when the provider is asked."""
    return {
        "REQUEST_METHOD": method,
        "wsgidav.provider": namespace_of(app),
        "wsgidav.user_name": "alice",
        "wsgidav.auth.user_name": "alice",
    }


def put_in(app: Application, environ: dict, path: str, content: bytes) -> None:
    """What WsgiDAV's PUT does with the provider, in the request ``environ``."""
    parent, _, name = path.rpartition("/")
    folder = namespace_of(app).get_resource_inst(parent, environ)
    resource = namespace_of(app).get_resource_inst(path, environ) or folder.create_empty_resource(name)
    upload = resource.begin_write()
    upload.write(content)
    resource.end_write(with_errors=False)


# -- the cache itself -------------------------------------------------------------------


def test_a_lookup_is_made_once_per_environ() -> None:
    environ: dict = {}
    made: list[str] = []

    def make() -> str:
        made.append("x")
        return "resource"

    assert request_cache.lookup(environ, "/a", make) == "resource"
    assert request_cache.lookup(environ, "/a", make) == "resource"
    assert made == ["x"]
    assert request_cache.lookup({}, "/a", make) == "resource"  # another request: its own lookup
    assert made == ["x", "x"]


def test_a_missing_path_is_remembered_until_forgotten() -> None:
    environ: dict = {}
    answers = iter([None, "now there"])
    assert request_cache.lookup(environ, "/a", lambda: next(answers)) is None
    assert request_cache.lookup(environ, "/a", lambda: next(answers)) is None
    request_cache.forget(environ)
    assert request_cache.lookup(environ, "/a", lambda: next(answers)) == "now there"


def test_a_change_that_fails_halfway_still_forgets() -> None:
    environ: dict = {}
    request_cache.lookup(environ, "/a", lambda: "old")
    with pytest.raises(OSError), request_cache.changing(environ):
        raise OSError("disk gone")
    assert request_cache.lookup(environ, "/a", lambda: "new") == "new"


# -- through the namespace, in one request ------------------------------------------------


def test_the_namespace_answers_one_path_from_one_stat(app: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    Client(app).request("PUT", "/data/a.txt", b"a")
    asked: list[str] = []
    real_stat = LocalMount.stat
    monkeypatch.setattr(LocalMount, "stat", lambda mount, rel: asked.append(rel) or real_stat(mount, rel))
    response = Client(app).request("GET", "/data/a.txt")
    assert response.status == 200 and response.body == b"a"
    assert asked.count("a.txt") == 1  # the directory browser and the GET handler share it


def test_a_put_in_the_same_request_is_seen_at_once(app: Application) -> None:
    environ = request_environ(app)
    namespace = namespace_of(app)
    assert namespace.get_resource_inst("/data/new.txt", environ) is None
    put_in(app, environ, "/data/new.txt", b"12345")
    found = namespace.get_resource_inst("/data/new.txt", environ)
    assert found is not None and found.get_content_length() == 5


def test_an_overwrite_in_the_same_request_shows_the_new_etag(app: Application) -> None:
    environ = request_environ(app)
    namespace = namespace_of(app)
    put_in(app, environ, "/data/f.txt", b"old")
    before = namespace.get_resource_inst("/data/f.txt", environ).get_etag()
    put_in(app, environ, "/data/f.txt", b"newer content")
    after = namespace.get_resource_inst("/data/f.txt", environ)
    assert after.get_content_length() == len(b"newer content") and after.get_etag() != before


def test_a_delete_in_the_same_request_is_seen_at_once(app: Application) -> None:
    environ = request_environ(app, "DELETE")
    namespace = namespace_of(app)
    put_in(app, environ, "/data/gone.txt", b"x")
    namespace.get_resource_inst("/data/gone.txt", environ).delete()
    assert namespace.get_resource_inst("/data/gone.txt", environ) is None


@pytest.mark.parametrize("how", ["recursive", "single"])
def test_a_move_in_the_same_request_is_seen_at_once(app: Application, how: str) -> None:
    environ = request_environ(app, "MOVE")
    namespace = namespace_of(app)
    put_in(app, environ, "/data/src.txt", b"moved")
    source = namespace.get_resource_inst("/data/src.txt", environ)
    assert namespace.get_resource_inst("/data/dest.txt", environ) is None
    if how == "recursive":
        source.move_recursive("/data/dest.txt")
    else:  # WsgiDAV's way across mounts: copy, then delete the source
        source.copy_move_single("/data/dest.txt", is_move=True)
        source.delete()
    assert namespace.get_resource_inst("/data/src.txt", environ) is None
    dest = namespace.get_resource_inst("/data/dest.txt", environ)
    assert dest is not None and dest.get_content_length() == 5


def test_a_new_folder_in_the_same_request_is_seen_at_once(app: Application) -> None:
    environ = request_environ(app, "MKCOL")
    namespace = namespace_of(app)
    assert namespace.get_resource_inst("/data/sub", environ) is None
    namespace.get_resource_inst("/data", environ).create_collection("sub")
    assert namespace.get_resource_inst("/data/sub", environ).is_collection


def test_a_new_time_in_the_same_request_is_seen_at_once(app: Application) -> None:
    environ = request_environ(app, "PROPPATCH")
    namespace = namespace_of(app)
    put_in(app, environ, "/data/t.txt", b"t")
    namespace.get_resource_inst("/data/t.txt", environ).set_last_modified("/data/t.txt", 1_000_000.0, dry_run=False)
    assert namespace.get_resource_inst("/data/t.txt", environ).get_last_modified() == 1_000_000.0


def test_each_request_looks_again(app: Application, mount_root: Callable[[str], Path]) -> None:
    client = Client(app)
    assert client.request("GET", "/data/later.txt").status == 404
    (mount_root("/data") / "later.txt").write_bytes(b"made outside davgate")
    assert client.request("GET", "/data/later.txt").body == b"made outside davgate"


def test_a_link_out_made_between_requests_is_refused(
    app: Application, mount_root: Callable[[str], Path], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "folder" / "secret.txt").write_bytes(b"secret")
    folder = mount_root("/data") / "folder"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"inside")
    client = Client(app)
    assert client.request("GET", "/data/folder/secret.txt").body == b"inside"
    (folder / "secret.txt").unlink()
    folder.rmdir()
    folder.symlink_to(outside / "folder")
    response = client.request("GET", "/data/folder/secret.txt")
    assert response.status in (403, 404) and b"secret" not in response.body
