"""The management API's records (users, infrastructures, index, copy jobs, metadata): a contract per backend.

A backend's tests subclass :class:`ApiRecordsContract` and give one
``store_spec(tmp_path)`` (``open_store`` kind and options); "another
process" is a second store opened on the same spec, raced from threads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from davgate.state import ApiUsage, CopyJob, IndexEntry, InfraRecord, RecordExists, StateStore, open_store
from davgate.state.sqlite import SCHEMA
from tests.helpers import race
from tests.state.suite import Spec, StoreSuite


def job(job_id: str, owner: str = "u@x", created: float = 1.0, webhook: str = "") -> CopyJob:
    return CopyJob(owner, job_id, "a:/f", "b:/g", '{"route": 1}', webhook, created=created, updated=created)


def files(store: StateStore, namespace: str = "ns", name: str | None = None) -> list[str]:
    return [f"{e.adaptor}{e.path}" for e in store.index_files(namespace, name)]


class ApiRecordsContract(StoreSuite):
    """What every state backend must do for the API. Subclasses define :meth:`store_spec`."""

    @pytest.fixture
    def other(self, tmp_path: Path, store: StateStore) -> Iterator[StateStore]:
        """A second store on the same data, as another process would open it."""
        with self.make_store(tmp_path) as other:
            yield other

    # --- users ---------------------------------------------------------------------

    def test_users(self, store: StateStore) -> None:
        assert store.api_user_put("b@x", "B") is True
        assert store.api_user_put("a@x", "A") is True
        assert store.api_user_put("a@x", "Ann") is False
        assert store.api_user_get("a@x").name == "Ann"  # type: ignore[union-attr]
        assert [u.email for u in store.api_users()] == ["a@x", "b@x"]
        assert store.api_user_delete("a@x") is True
        assert store.api_user_delete("a@x") is False
        assert store.api_user_get("a@x") is None

    # --- infrastructures ---------------------------------------------------------------

    def test_infrastructures_and_generation(self, store: StateStore, other: StateStore) -> None:
        start = store.infra_generation()
        record = InfraRecord("t1", "u@x", '{"spec": 1}', 5.0)
        assert store.infra_create(record) is True
        assert other.infra_generation() != start
        after_create = other.infra_generation()
        assert other.infra_get("t1") == record
        assert store.infra_create(InfraRecord("t1", "v@x", "{}", 6.0)) is False
        assert store.infra_generation() == after_create
        store.infra_create(InfraRecord("t0", "v@x", "{}", 7.0))
        assert [r.name for r in store.infra_list()] == ["t0", "t1"]
        assert [r.name for r in store.infra_list("u@x")] == ["t1"]
        generation = store.infra_generation()
        assert other.infra_delete("t1") is True
        assert store.infra_generation() != generation
        assert store.infra_delete("t1") is False
        assert store.infra_get("t1") is None

    def test_an_infrastructure_keeps_its_id_and_is_deleted_by_it(self, store: StateStore, other: StateStore) -> None:
        record = InfraRecord("t1", "u@x", "{}", 5.0, "id-first")
        store.infra_create(record)
        assert other.infra_get("t1") == record
        assert other.infra_list("u@x") == [record]
        assert store.infra_delete("t1", "id-other") is False  # a name taken again is not the same infrastructure
        assert store.infra_get("t1") == record
        assert store.infra_delete("t1", "id-first") is True
        assert store.infra_get("t1") is None

    def test_usage_of_one_user(self, store: StateStore) -> None:
        assert store.api_usage("u@x") == ApiUsage(0, 0, 0, 0)
        store.infra_create(InfraRecord("t1", "u@x", "{}", 1.0, "i1"))
        store.infra_create(InfraRecord("t2", "v@x", "{}", 1.0, "i2"))
        store.metadata_put("u@x", "c", "e1", {"s": "abc"})  # {"s":"abc"}: 11 bytes of JSON text
        store.metadata_put("u@x", "d", "e2", {})
        store.metadata_put("v@x", "c", "e3", {"big": "x" * 100})
        store.job_add([job("j1"), job("j2"), job("j3", owner="v@x")])
        claimed = store.job_claim("h", 10.0, 20.0)
        assert claimed is not None and claimed.id == "j1"
        store.job_add([job("j4")])
        store.job_claim("h", 10.0, 20.0)
        store.job_finish("u@x", "j2", "h", state="done", error="", checksum="", now=11.0)
        assert store.api_usage("u@x") == ApiUsage(1, 2, 13, 2)  # j1 running and j4 queued; j2 done

    def test_one_of_two_racing_creates_wins(self, store: StateStore, other: StateStore) -> None:
        stores = [store, other] * 4
        won = race(8, lambda i: stores[i].infra_create(InfraRecord("same", f"u{i}@x", "{}", 1.0)))
        assert won.count(True) == 1

    # --- the query index -------------------------------------------------------------------

    def test_index_put_remove_and_files(self, store: StateStore) -> None:
        store.index_put([
            IndexEntry("ns", "a", "/", True), IndexEntry("ns", "a", "/d", True),
            IndexEntry("ns", "a", "/d/x.txt", False, 3, 1.0), IndexEntry("ns", "a", "/d/e/x.txt", False, 4, 2.0),
            IndexEntry("ns", "b", "/x.txt", False, 5, 3.0), IndexEntry("ns", "a", "/d0.txt", False, 1, 1.0),
            IndexEntry("other", "a", "/x.txt", False, 1, 1.0),
        ])  # fmt: skip
        assert files(store) == ["a/d0.txt", "a/d/e/x.txt", "a/d/x.txt", "b/x.txt"]
        assert files(store, name="x.txt") == ["a/d/e/x.txt", "a/d/x.txt", "b/x.txt"]
        found = store.index_files("ns", "d0.txt")[0]
        assert (found.size, found.modified, found.is_folder, found.parent, found.name) == (1, 1.0, False, "/", "d0.txt")
        store.index_remove("ns", "a", "/d")  # the folder and below; not /d0.txt
        assert files(store) == ["a/d0.txt", "b/x.txt"]
        store.index_drop("ns", "b")
        assert files(store) == ["a/d0.txt"]
        store.index_drop("ns")
        assert files(store) == [] and files(store, "other") == ["a/x.txt"]

    def test_index_put_keeps_a_folders_checked_time(self, store: StateStore) -> None:
        store.index_sync_folder("ns", "a", "/", [IndexEntry("ns", "a", "/d", True)], 100.0)
        store.index_sync_folder("ns", "a", "/d", [], 50.0)
        store.index_put([IndexEntry("ns", "a", "/d", True)])  # e.g. after a MKCOL that already existed
        assert store.index_stale_folders("ns", "a", 60.0, 10) == ["/d"]
        assert store.index_stale_folders("ns", "a", 40.0, 10) == []

    def test_sync_folder_replaces_members(self, store: StateStore) -> None:
        entries = [IndexEntry("ns", "a", p, f, 1, 1.0) for p, f in [("/k.txt", False), ("/gone", True), ("/s", True)]]
        store.index_sync_folder("ns", "a", "/", entries, 10.0)
        store.index_put([IndexEntry("ns", "a", "/gone/deep.txt", False), IndexEntry("ns", "a", "/s/kept.txt", False)])
        store.index_sync_folder("ns", "a", "/", [
            IndexEntry("ns", "a", "/k.txt", False, 9, 2.0), IndexEntry("ns", "a", "/s", True),
            IndexEntry("ns", "a", "/new.txt", False, 2, 2.0),
        ], 20.0)  # fmt: skip
        assert files(store) == ["a/k.txt", "a/s/kept.txt", "a/new.txt"]
        assert store.index_files("ns", "k.txt")[0].size == 9
        assert store.index_stale_folders("ns", "a", 15.0, 10) == ["/s"]  # never listed (0), root listed at 20

    def test_a_member_that_became_a_file_loses_its_subtree(self, store: StateStore) -> None:
        store.index_sync_folder("ns", "a", "/", [IndexEntry("ns", "a", "/x", True)], 1.0)
        store.index_put([IndexEntry("ns", "a", "/x/inner.txt", False)])
        store.index_sync_folder("ns", "a", "/", [IndexEntry("ns", "a", "/x", False, 7)], 2.0)
        assert files(store) == ["a/x"]

    def test_stale_folders_least_recent_first_and_bounded(self, store: StateStore) -> None:
        for i, checked in enumerate([30.0, 10.0, 20.0, 40.0]):
            store.index_sync_folder("ns", "a", f"/f{i}", [], checked)
        store.index_put([IndexEntry("ns", "a", "/file", False), IndexEntry("ns", "b", "/g", True)])
        assert store.index_stale_folders("ns", "a", 35.0, 10) == ["/f1", "/f2", "/f0"]
        assert store.index_stale_folders("ns", "a", 35.0, 2) == ["/f1", "/f2"]
        assert store.index_stale_folders("ns", "b", 1.0, 10) == ["/g"]

    # --- copy jobs ----------------------------------------------------------------------

    def test_jobs_are_added_all_or_none(self, store: StateStore) -> None:
        store.job_add([job("j1"), job("j2", created=2.0)])
        with pytest.raises(RecordExists) as raised:
            store.job_add([job("j3"), job("j2")])
        assert raised.value.keys == ["j2"]
        assert store.job_get("u@x", "j3") is None
        store.job_add([job("j1", owner="v@x")])  # ids are per owner
        assert [j.id for j in store.job_list("u@x")] == ["j1", "j2"]
        assert store.job_get("u@x", "j1") == job("j1")

    def test_claim_progress_finish(self, store: StateStore, other: StateStore) -> None:
        store.job_add([job("j1", webhook="http://h/"), job("j2", created=2.0)])
        claimed = store.job_claim("p1", now=10.0, lease=40.0)
        assert claimed is not None and (claimed.id, claimed.state, claimed.holder, claimed.attempts) == (
            "j1",
            "running",
            "p1",
            1,
        )
        assert other.job_claim("p2", now=11.0, lease=41.0).id == "j2"  # type: ignore[union-attr]
        assert other.job_claim("p2", now=12.0, lease=42.0) is None
        assert store.job_progress("u@x", "j1", "p1", 5, 10, 50.0) is True
        assert other.job_progress("u@x", "j1", "p2", 6, 10, 50.0) is False
        assert (store.job_get("u@x", "j1").bytes_done, store.job_get("u@x", "j1").bytes_total) == (5, 10)  # type: ignore[union-attr]
        assert store.job_finish("u@x", "j1", "p2", state="done", error="", checksum="", now=20.0) is False
        assert store.job_finish("u@x", "j1", "p1", state="done", error="", checksum="sha256:ab", now=20.0) is True
        done = store.job_get("u@x", "j1")
        assert done is not None and (done.state, done.checksum, done.hook_state, done.holder) == (
            "done",
            "sha256:ab",
            "pending",
            "",
        )
        other.job_finish("u@x", "j2", "p2", state="failed", error="gone", checksum="", now=21.0)
        assert store.job_get("u@x", "j2").hook_state == ""  # type: ignore[union-attr]  -- no webhook

    def test_a_dead_holders_job_is_claimed_again_after_its_lease(self, store: StateStore) -> None:
        store.job_add([job("j1")])
        store.job_claim("dead", now=10.0, lease=20.0)
        assert store.job_claim("p2", now=19.0, lease=50.0) is None
        again = store.job_claim("p2", now=21.0, lease=50.0)
        assert again is not None and (again.holder, again.attempts, again.bytes_done) == ("p2", 2, 0)
        assert store.job_progress("u@x", "j1", "dead", 1, 1, 60.0) is False

    def test_release_puts_a_job_back_from_a_time_on(self, store: StateStore) -> None:
        store.job_add([job("j1")])
        store.job_claim("p1", now=10.0, lease=20.0)
        assert store.job_release("u@x", "j1", "p2") is False
        assert store.job_release("u@x", "j1", "p1", retry_at=15.0) is True
        assert store.job_get("u@x", "j1").state == "queued"  # type: ignore[union-attr]
        assert store.job_claim("p1", now=14.0, lease=30.0) is None
        assert store.job_claim("p1", now=15.0, lease=30.0).attempts == 2  # type: ignore[union-attr]
        assert store.job_release("u@x", "j1", "p1", uncount=True) is True  # a stop: that start does not count
        assert store.job_claim("p1", now=16.0, lease=30.0).attempts == 2  # type: ignore[union-attr]

    def test_racing_claims_never_share_a_job(self, store: StateStore, other: StateStore) -> None:
        store.job_add([job(f"j{i}", created=float(i)) for i in range(12)])
        stores = [store, other] * 8

        def claim_all(i: int) -> list[str]:
            taken = []
            while (claimed := stores[i].job_claim(f"p{i}", now=100.0, lease=200.0)) is not None:
                taken.append(claimed.id)
            return taken

        taken = [job_id for ids in race(16, claim_all) for job_id in ids]
        assert sorted(taken) == sorted(f"j{i}" for i in range(12))

    def test_webhooks_claim_result_and_purge(self, store: StateStore, other: StateStore) -> None:
        store.job_add([job("j1", webhook="http://h/")])
        store.job_claim("p1", now=1.0, lease=100.0)
        store.job_finish("u@x", "j1", "p1", state="done", error="", checksum="", now=10.0)
        assert store.webhook_claim("w1", now=9.0, lease=30.0) is None
        claimed = store.webhook_claim("w1", now=10.0, lease=30.0)
        assert claimed is not None and claimed.holder == "w1"
        assert other.webhook_claim("w2", now=11.0, lease=31.0) is None
        store.webhook_result("u@x", "j1", "w2", delivered=True, retry_at=None)  # not its holder: nothing
        store.webhook_result("u@x", "j1", "w1", delivered=False, retry_at=40.0)
        assert (store.job_get("u@x", "j1").hook_state, store.job_get("u@x", "j1").hook_attempts) == ("pending", 1)  # type: ignore[union-attr]
        assert store.job_purge(before=1000.0) == 0  # its webhook is still pending
        assert other.webhook_claim("w2", now=39.0, lease=60.0) is None
        assert other.webhook_claim("w2", now=40.0, lease=60.0) is not None
        other.webhook_result("u@x", "j1", "w2", delivered=False, retry_at=None)
        gave_up = store.job_get("u@x", "j1")
        assert gave_up is not None and (gave_up.hook_state, gave_up.hook_attempts) == ("failed", 2)
        assert store.job_purge(before=5.0) == 0
        assert store.job_purge(before=1000.0) == 1
        assert store.job_get("u@x", "j1") is None

    def test_a_webhook_whose_deliverer_died_is_claimed_again(self, store: StateStore) -> None:
        store.job_add([job("j1", webhook="http://h/")])
        store.job_claim("p1", now=1.0, lease=100.0)
        store.job_finish("u@x", "j1", "p1", state="failed", error="x", checksum="", now=10.0)
        store.webhook_claim("dead", now=10.0, lease=30.0)
        assert store.webhook_claim("w", now=29.0, lease=60.0) is None
        assert store.webhook_claim("w", now=30.0, lease=60.0) is not None

    # --- metadata -------------------------------------------------------------------------

    def test_metadata(self, store: StateStore, other: StateStore) -> None:
        document = {"n": 1, "f": 2.5, "s": "é", "b": True, "z": None, "l": [1, "a"], "o": {"k": [{"x": 1}]}}
        assert store.metadata_put("u@x", "c", "e1", document) is True
        assert other.metadata_get("u@x", "c", "e1") == document
        assert store.metadata_put("u@x", "c", "e1", {"n": 2}) is False
        assert store.metadata_get("u@x", "c", "e1") == {"n": 2}
        store.metadata_put("u@x", "c", "e0", {})
        store.metadata_put("u@x", "d", "e2", {})
        store.metadata_put("v@x", "c", "e3", {})
        assert store.metadata_scan("u@x", "c") == [("e0", {}), ("e1", {"n": 2})]
        assert store.metadata_get("v@x", "c", "e1") is None
        assert store.metadata_delete("u@x", "c", "e1") is True
        assert store.metadata_delete("u@x", "c", "e1") is False
        assert store.metadata_scan("u@x", "c") == [("e0", {})]


class TestSqliteApiRecords(ApiRecordsContract):
    def store_spec(self, tmp_path: Path) -> Spec:
        return "sqlite", {"path": str(tmp_path / "state" / "davgate.sqlite")}

    def test_a_record_of_version_5_takes_its_name_as_id(self, tmp_path: Path) -> None:
        path = tmp_path / "old.sqlite"
        with sqlite3.connect(path) as db:
            for statements in SCHEMA[:5]:  # a file as the previous davgate left it
                for statement in statements:
                    db.execute(statement)
            db.execute("INSERT INTO api_infrastructures VALUES ('old-1', 'u@x', '{}', 1.0)")
            db.execute("PRAGMA user_version = 5")
        db.close()
        with open_store("sqlite", path=str(path)) as store:
            assert store.infra_get("old-1") == InfraRecord("old-1", "u@x", "{}", 1.0, "old-1")
            assert store.infra_get("old-1").legacy  # type: ignore[union-attr]
            store.infra_create(InfraRecord("new-1", "u@x", "{}", 2.0, "a1b2"))
            assert not store.infra_get("new-1").legacy  # type: ignore[union-attr]
