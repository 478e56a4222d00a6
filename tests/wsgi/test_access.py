"""Access rules per mount and token scopes, in-process: who may read and write where."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from davgate.access import Need, Scopes, needs_of
from davgate.app import Application
from tests.auth.jwt_keys import ALICE, BOB, claims, key, token, write_users
from tests.dispel.conftest import TIFFSTORE, stack, write_stack
from tests.wsgi.client import Client

DEST = "http://127.0.0.1"
LOCK_BODY = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
)
PATCH_BODY = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
    b"<D:set><D:prop><Z:c>red</Z:c></D:prop></D:set></D:propertyupdate>"
)


class TokenClient(Client):
    """A client that sends ``Authorization: Bearer`` with a token for ``email``."""

    def __init__(self, app: Callable, email: str, private: Any, **claim_values: Any) -> None:
        super().__init__(app, user=None)
        self.authorization = "Bearer " + token(private, claims(email, **claim_values))

    def environ(self, *args: Any) -> dict:
        environ = super().environ(*args)
        environ["HTTP_AUTHORIZATION"] = self.authorization
        return environ


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return write_users(tmp_path / "users.json", {ALICE: key("ed25519"), BOB: key("ec-p256")})


@pytest.fixture
def ruled(make_app, mount_root, users_file: Path) -> Application:
    """/data: bob reads, alice writes; /archive: @staff reads; /projects/a: anyone reads; /projects/b: open."""

    def mount(path: str, **access: list[str]) -> dict[str, Any]:
        return {"type": "local", "root": str(mount_root(path)), "access": access}

    return make_app(
        server={"propfind_depth_infinity": True},  # a deep PROPFIND must still respect every rule
        auth={"jwt": {"users": str(users_file)}, "anonymous": "read"},
        groups={"staff": ["bob", ALICE]},
        mounts={
            "/data": mount("/data", read=["bob"], write=["alice", ALICE]),
            "/archive": mount("/archive", read=["@staff"]),
            "/projects/a": mount("/projects/a", read=["*"]),
        },
    )


def seed(mount_root, path: str, content: bytes | None = b"seed") -> None:
    """Put a file (or, with ``content=None``, a folder) at a namespace path."""
    mount = next(m for m in ("/projects/a", "/projects/b", "/data", "/archive") if path.startswith(m + "/"))
    target = mount_root(mount) / path[len(mount) + 1 :]
    target.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)


# -- rules ----------------------------------------------------------------


def test_without_rules_every_authenticated_user_reads_and_writes(client: Client, make_app) -> None:
    bob = Client(make_app(), user="bob")
    assert client.put("/data/a.txt", b"a").status == 201
    assert bob.put("/data/a.txt", b"b").status == 204
    assert client.get("/data/a.txt").body == b"b"


def test_write_implies_read_and_read_does_not_imply_write(ruled: Application, mount_root) -> None:
    alice, bob = Client(ruled, "alice"), Client(ruled, "bob")
    assert alice.put("/data/x.txt", b"x").status == 201
    assert alice.get("/data/x.txt").status == 200
    assert bob.get("/data/x.txt").body == b"x"
    denied = bob.put("/data/x.txt", b"bob")
    assert denied.status == 403
    assert "write access to /data is not granted" in denied.text
    assert bob.request("DELETE", "/data/x.txt").status == 403
    assert bob.request("MKCOL", "/data/d").status == 403
    assert bob.request("PROPPATCH", "/data/x.txt", PATCH_BODY).status == 403
    assert bob.request("LOCK", "/data/x.txt", LOCK_BODY).status == 403
    assert (mount_root("/data") / "x.txt").read_bytes() == b"x"


def test_groups_and_everyone(ruled: Application, mount_root) -> None:
    seed(mount_root, "/archive/old.txt")
    seed(mount_root, "/projects/a/p.txt")
    alice, bob = Client(ruled, "alice"), Client(ruled, "bob")
    assert alice.get("/archive/old.txt").status == 403  # "alice" is not in @staff (her e-mail is)
    assert bob.get("/archive/old.txt").status == 200
    assert bob.put("/archive/new.txt", b"n").status == 403  # no write rule: nobody writes
    assert alice.get("/projects/a/p.txt").status == 200 and bob.get("/projects/a/p.txt").status == 200
    assert alice.put("/projects/a/p.txt", b"p").status == 403
    assert alice.put("/projects/b/free.txt", b"f").status == 201  # no rules at all


def test_rules_apply_alike_to_bearer_users(ruled: Application, mount_root) -> None:
    seed(mount_root, "/archive/old.txt")
    alice = TokenClient(ruled, ALICE, key("ed25519"))
    bob = TokenClient(ruled, BOB, key("ec-p256"))
    assert alice.get("/archive/old.txt").status == 200  # via @staff
    assert alice.put("/data/t.txt", b"t").status == 201
    assert bob.get("/data/t.txt").status == 403  # the rule names "bob", not bob@example.org
    assert bob.get("/projects/a/").status == 200


def test_anonymous_reaches_only_mounts_without_rules(ruled: Application, mount_root) -> None:
    seed(mount_root, "/projects/b/open.txt")
    seed(mount_root, "/projects/a/p.txt")
    anonymous = Client(ruled, user=None)
    assert anonymous.get("/projects/b/open.txt").status == 200
    for path in ("/data/", "/projects/a/p.txt", "/archive/"):
        response = anonymous.get(path)
        assert response.status == 401, path
        assert response.headers["www-authenticate"] == 'Basic realm="davgate", Bearer realm="davgate"'
    assert anonymous.propfind("/", depth="1").status == 207


def test_copy_and_move_check_source_and_destination(ruled: Application, mount_root) -> None:
    seed(mount_root, "/data/x.txt")
    seed(mount_root, "/archive/a.txt")
    alice, bob = Client(ruled, "alice"), Client(ruled, "bob")
    copy = alice.request("COPY", "/data/x.txt", headers={"Destination": f"{DEST}/archive/x.txt"})
    assert copy.status == 403  # no write on /archive
    assert bob.request("COPY", "/archive/a.txt", headers={"Destination": f"{DEST}/data/a.txt"}).status == 403
    assert bob.request("COPY", "/data/x.txt", headers={"Destination": f"{DEST}/projects/b/x.txt"}).status == 201
    assert bob.request("MOVE", "/data/x.txt", headers={"Destination": f"{DEST}/projects/b/y.txt"}).status == 403
    assert alice.request("COPY", "/archive/a.txt", headers={"Destination": f"{DEST}/data/a.txt"}).status == 403
    assert alice.request("MOVE", "/data/x.txt", headers={"Destination": f"{DEST}/projects/b/m.txt"}).status == 201
    assert not (mount_root("/archive") / "x.txt").exists()
    assert (mount_root("/projects/b") / "m.txt").exists()


@pytest.mark.parametrize(
    "destination", ["/ar%63hive/x.txt", "/data/../archive/x.txt", "/projects/b/../../archive/x.txt"]
)
def test_destination_is_read_as_webdav_reads_it(ruled: Application, mount_root, destination: str) -> None:
    seed(mount_root, "/data/x.txt")
    response = Client(ruled, "alice").request("COPY", "/data/x.txt", headers={"Destination": DEST + destination})
    assert response.status == (400 if ".." in destination else 403)  # 400: the request guard refuses '..'
    assert not (mount_root("/archive") / "x.txt").exists()


def test_root_listing_is_fine_but_a_deep_propfind_needs_every_mount(ruled: Application) -> None:
    alice, bob = Client(ruled, "alice"), Client(ruled, "bob")
    assert alice.propfind("/", depth="1").status == 207
    assert alice.propfind("/projects/", depth="1").status == 207
    assert alice.propfind("/", depth="infinity").status == 403  # would list /archive
    assert alice.request("PROPFIND", "/").status == 403  # no Depth means infinity
    assert bob.propfind("/", depth="infinity").status == 207  # bob may read every mount
    assert alice.propfind("/projects/", depth="infinity").status == 207


def test_denials_are_logged_with_user_and_reason(ruled: Application, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="davgate.authz"):
        Client(ruled, "bob").put("/data/x.txt", b"x")
    assert "access denied: PUT /data/x.txt by 'bob' (write access to /data is not granted)" in caplog.text


# -- scopes ---------------------------------------------------------------


@pytest.fixture
def open_app(make_app, users_file: Path) -> Application:
    return make_app(server={"propfind_depth_infinity": True}, auth={"jwt": {"users": str(users_file)}})


def scoped(app: Application, *scopes: str, email: str = ALICE) -> TokenClient:
    private = key("ed25519") if email == ALICE else key("ec-p256")
    return TokenClient(app, email, private, scope=" ".join(scopes))


def test_read_scope_narrows_to_its_prefix(open_app: Application, mount_root) -> None:
    seed(mount_root, "/data/projectA/f.txt")
    seed(mount_root, "/data/projectAB/g.txt")
    seed(mount_root, "/data/other.txt")
    reader = scoped(open_app, "storage.read:/data/projectA")
    assert reader.get("/data/projectA/f.txt").status == 200
    assert reader.propfind("/data/projectA", depth="1").status == 207
    assert reader.get("/data/projectAB/g.txt").status == 403  # a prefix of segments, not of text
    assert reader.get("/data/other.txt").status == 403
    assert reader.propfind("/data/", depth="1").status == 403
    assert reader.put("/data/projectA/new.txt", b"n").status == 403
    assert reader.propfind("/", depth="1").status == 207  # the mount list is fine


def test_create_scope_makes_new_things_only(open_app: Application, mount_root) -> None:
    seed(mount_root, "/data/up", None)
    uploader = scoped(open_app, "storage.create:/data/up")
    assert uploader.put("/data/up/new.txt", b"1").status == 201
    assert uploader.request("MKCOL", "/data/up/dir").status == 201
    assert uploader.put("/data/up/new.txt", b"2").status == 403  # overwriting is modifying
    assert uploader.request("DELETE", "/data/up/new.txt").status == 403
    assert uploader.request("PROPPATCH", "/data/up/new.txt", PATCH_BODY).status == 403
    assert uploader.get("/data/up/new.txt").status == 403  # and no reading
    assert uploader.put("/data/elsewhere.txt", b"x").status == 403
    assert (mount_root("/data") / "up" / "new.txt").read_bytes() == b"1"


def test_modify_scope_changes_and_removes(open_app: Application, mount_root) -> None:
    seed(mount_root, "/data/m/f.txt")
    modifier = scoped(open_app, "storage.modify:/data/m")
    assert modifier.put("/data/m/f.txt", b"changed").status == 204
    assert modifier.put("/data/m/g.txt", b"new").status == 201  # modify implies create
    assert modifier.request("PROPPATCH", "/data/m/f.txt", PATCH_BODY).status == 207
    locked = modifier.request("LOCK", "/data/m/g.txt", LOCK_BODY)
    assert locked.status == 200
    unlock = modifier.request("UNLOCK", "/data/m/g.txt", headers={"Lock-Token": locked.headers["lock-token"]})
    assert unlock.status == 204
    assert modifier.request("DELETE", "/data/m/f.txt").status == 204
    assert modifier.get("/data/m/g.txt").status == 403  # modify is not read


def test_move_needs_read_and_modify_on_the_source(open_app: Application, mount_root) -> None:
    seed(mount_root, "/data/src/f.txt")
    headers = {"Destination": f"{DEST}/archive/f.txt"}
    blind = scoped(open_app, "storage.modify:/data/src", "storage.create:/archive")
    assert blind.request("MOVE", "/data/src/f.txt", headers=headers).status == 403
    mover = scoped(open_app, "storage.read:/data/src", "storage.modify:/data/src", "storage.create:/archive")
    assert mover.request("MOVE", "/data/src/f.txt", headers=headers).status == 201
    seed(mount_root, "/data/copies", None)
    copier = scoped(open_app, "storage.read:/archive", "storage.create:/data/copies")
    assert copier.request("COPY", "/archive/f.txt", headers={"Destination": f"{DEST}/data/copies/f.txt"}).status == 201
    again = copier.request("COPY", "/archive/f.txt", headers={"Destination": f"{DEST}/data/copies/f.txt"})
    assert again.status == 403  # overwriting the copy is modifying


def test_scopes_never_widen_the_rules(make_app, mount_root, users_file: Path) -> None:
    app = make_app(
        auth={"jwt": {"users": str(users_file)}},
        mounts={"/data": {"type": "local", "root": str(mount_root("/data")), "access": {"read": [ALICE]}}},
    )
    assert scoped(app, "storage.modify:/").put("/data/x.txt", b"x").status == 403
    assert scoped(app, "storage.read:/").get("/data/").status == 200


def test_token_without_storage_scopes_gets_the_users_rules(open_app: Application) -> None:
    assert scoped(open_app, "openid", "email").put("/data/o.txt", b"o").status == 201
    assert TokenClient(open_app, ALICE, key("ed25519")).put("/data/o.txt", b"p").status == 204


def test_unusable_storage_scopes_grant_nothing(open_app: Application, mount_root) -> None:
    seed(mount_root, "/archive/a.txt")
    for scope in ("storage.read:/data/../archive", "storage.read", "storage.read:archive", "storage.stage:/"):
        assert scoped(open_app, scope).get("/archive/a.txt").status == 403, scope


def test_scope_root_covers_everything(open_app: Application, mount_root) -> None:
    seed(mount_root, "/archive/a.txt")
    everything = scoped(open_app, "storage.read:/", "storage.modify:/")
    assert everything.get("/archive/a.txt").status == 200
    assert everything.propfind("/", depth="infinity").status == 207
    assert scoped(open_app, "storage.read:/data").propfind("/", depth="infinity").status == 403


# -- what a mount reads elsewhere (DISPEL's source) ---------------------------


RESULT = "/dispel/tiffstore/312/20181129/1/0-10-0-10"


@pytest.fixture
def over_archive(make_app, mount_root, users_file: Path, tmp_path: Path) -> Application:
    """/dispel reads from /archive, which only @staff (bob, and ALICE by token) may read."""
    write_stack(mount_root("/archive") / "tiffstore/312/20181129.tif", stack(1, 3, 200, 300), tile=(64, 64))
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "tiffstore.yaml").write_text(TIFFSTORE.read_text())
    return make_app(
        auth={"jwt": {"users": str(users_file)}},
        groups={"staff": ["bob", ALICE]},
        mounts={
            "/archive": {"type": "local", "root": str(mount_root("/archive")), "access": {"read": ["@staff"]}},
            "/dispel": {"type": "dispel", "templates": str(templates), "source": "/archive", "workers": 1},
        },
        cache={"type": "local", "root": str(tmp_path / "cache")},
    )


def test_a_mount_that_reads_another_is_read_under_its_rules(over_archive: Application) -> None:
    alice, bob = Client(over_archive, "alice"), Client(over_archive, "bob")
    assert bob.get(RESULT).status == 200
    assert alice.get(RESULT).status == 403  # cached now, still refused
    assert alice.propfind("/dispel/tiffstore/312/", depth="1").status == 403
    assert b"tiffstore" in bob.propfind("/dispel/", depth="1").body
    assert b"tiffstore" not in alice.propfind("/dispel/", depth="1").body
    assert Client(over_archive, None).get(RESULT).status == 401  # anonymous: log in


def test_a_token_needs_scopes_for_what_the_mount_reads_too(over_archive: Application) -> None:
    only_dispel = scoped(over_archive, "storage.read:/dispel")
    assert only_dispel.get(RESULT).status == 403
    assert b"tiffstore" not in only_dispel.propfind("/dispel/", depth="1").body
    both = scoped(over_archive, "storage.read:/dispel", "storage.read:/archive/tiffstore/312")
    assert both.get(RESULT).status == 200
    assert b"tiffstore" in both.propfind("/dispel/", depth="1").body  # its input folder is within reach
    elsewhere = scoped(over_archive, "storage.read:/dispel", "storage.read:/archive/tiffstore/313")
    assert elsewhere.get(RESULT).status == 403


# -- what listings above the mounts show --------------------------------------


def test_the_root_lists_only_the_mounts_the_user_may_read(ruled: Application) -> None:
    alice = Client(ruled, "alice").propfind("/", depth="1")
    assert alice.status == 207
    assert b"/data/" in alice.body and b"/projects/" in alice.body
    assert b"archive" not in alice.body  # not its name, ETag, dates or quota
    assert b"archive" in Client(ruled, "bob").propfind("/", depth="1").body
    anonymous = Client(ruled, None)
    assert b"/data/" not in anonymous.propfind("/", depth="1").body
    assert b"/projects/a/" not in anonymous.propfind("/projects/", depth="1").body  # '*' is any user, logged in
    assert b"/projects/b/" in anonymous.propfind("/projects/", depth="1").body
    assert b"archive" not in Client(ruled, "alice").get("/").body  # the HTML listing too
    assert scoped(ruled, "storage.read:/projects/b").propfind("/", depth="1").body.count(b"<D:response>") == 2


# -- units ----------------------------------------------------------------


def test_needs_of_each_method() -> None:
    assert needs_of("GET", "/a", None) == [("/a", Need.READ)]
    assert needs_of("PUT", "/a", None) == [("/a", Need.WRITE)]
    assert needs_of("COPY", "/a", "/b") == [("/a", Need.READ), ("/b", Need.WRITE)]
    assert needs_of("MOVE", "/a", "/b") == [("/a", Need.READ), ("/a", Need.MODIFY), ("/b", Need.WRITE)]
    assert needs_of("BREW", "/a", None) == [("/a", Need.MODIFY)]


def test_scopes_parse() -> None:
    assert Scopes.parse(None) is None
    assert Scopes.parse(["openid"]) is None
    scopes = Scopes.parse(["storage.read:/data/a/", "storage.create:/up", "storage.read:bad"])
    assert scopes is not None
    assert scopes.grants == (("read", ("data", "a")), ("create", ("up",)))
    assert scopes.allows("/data/a/b", Need.READ) and not scopes.allows("/data", Need.READ)
    assert scopes.allows("/up/x", Need.CREATE) and not scopes.allows("/up/x", Need.MODIFY)
