"""The pool of pipeline processes: runs, time limits, crashes, bounds, idle processes."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile

from davgate.dispel.errors import ExecutionFailed, OutOfBounds, OverLimit, TimedOut
from davgate.dispel.executor import READ_PART, Executor
from davgate.dispel.pipeline import Job
from tests.dispel.conftest import stack, write_stack
from tests.helpers import wait_until

TESTS = "tests.dispel.elements_for_tests"


@pytest.fixture
def executor() -> Iterator[Executor]:
    pool = Executor(2, idle_timeout=60)
    yield pool
    pool.close()


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, np.ndarray]:
    pages = stack(11, 2, 60, 80)
    write_stack(tmp_path / "in.tif", pages, tile=(32, 32))
    return tmp_path / "in.tif", pages


def job(tmp_path: Path, source: Path, *steps: tuple[str, dict], local: bool = True, name: str = "out") -> Job:
    return Job(
        key=name,
        template="test",
        params={},
        steps=(
            ("read_tiff", {"page": 1, "window": {"x0": 8, "x1": 70, "y0": 2, "y1": 50}}),
            *steps,
            ("encode_npy", {}),
        ),
        input_rel="in.tif",
        input_etag="e1",
        input_size=source.stat().st_size,
        input_path=str(source) if local else None,
        output_path=str(tmp_path / f"{name}.npy"),
    )


def test_a_run_writes_its_output(executor: Executor, tmp_path: Path, source) -> None:
    path, pages = source
    runs = []
    outcome = executor.run(job(tmp_path, path), time_limit=30, started=lambda: runs.append(1))
    assert np.array_equal(np.load(tmp_path / "out.npy"), pages[1, 2:50, 8:70])
    assert outcome.size == (tmp_path / "out.npy").stat().st_size and outcome.digest.startswith("crc32:")
    assert runs == [1]


def test_an_input_without_a_local_path_is_read_through_the_server(executor: Executor, tmp_path: Path, source) -> None:
    path, pages = source
    opened = []

    def reader():
        opened.append(1)
        return open(path, "rb")

    executor.run(job(tmp_path, path, local=False), time_limit=30, reader=reader)
    assert np.array_equal(np.load(tmp_path / "out.npy"), pages[1, 2:50, 8:70])
    assert opened == [1]


def test_the_time_limit_kills_the_run_and_the_pool_goes_on(executor: Executor, tmp_path: Path, source) -> None:
    path, _ = source
    started = time.monotonic()
    with pytest.raises(TimedOut, match="template test ran longer than its time limit of 0.5 s") as caught:
        executor.run(job(tmp_path, path, (f"{TESTS}:sleep", {"seconds": 30})), time_limit=0.5)
    assert caught.value.status == 504
    assert time.monotonic() - started < 10
    assert executor.process_count() == 0
    executor.run(job(tmp_path, path, name="after"), time_limit=30)
    assert (tmp_path / "after.npy").exists()


def test_a_crashing_process_is_a_500_and_replaced(executor: Executor, tmp_path: Path, source) -> None:
    path, _ = source
    with pytest.raises(ExecutionFailed, match=r"the pipeline process of test died \(exit code 3\)"):
        executor.run(job(tmp_path, path, (f"{TESTS}:crash", {})), time_limit=30)
    executor.run(job(tmp_path, path, name="after"), time_limit=30)


def test_element_errors_keep_their_status_and_the_process(executor: Executor, tmp_path: Path, source) -> None:
    path, _ = source
    with pytest.raises(ExecutionFailed) as failed:
        executor.run(job(tmp_path, path, (f"{TESTS}:boom", {})), time_limit=30)
    assert failed.value.reason == f"element {TESTS}:boom failed: ValueError: boom went the element"
    with pytest.raises(OutOfBounds, match="refuses every window"):
        executor.run(job(tmp_path, path, (f"{TESTS}:refuse", {})), time_limit=30)
    with pytest.raises(ExecutionFailed, match="'nope' cannot be loaded"):
        executor.run(job(tmp_path, path, ("nope", {})), time_limit=30)
    assert executor.process_count() == 1


def test_no_more_processes_than_workers(tmp_path: Path, source) -> None:
    path, _ = source
    pool = Executor(1, idle_timeout=60)
    peak, errors = [], []

    def one(i: int) -> None:
        try:
            pool.run(job(tmp_path, path, (f"{TESTS}:sleep", {"seconds": 0.2}), name=f"r{i}"), time_limit=30)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak.append(pool.process_count())
        time.sleep(0.01)
    pool.close()
    assert not errors and max(peak) == 1
    assert all((tmp_path / f"r{i}.npy").exists() for i in range(3))


def test_idle_processes_end(tmp_path: Path, source) -> None:
    path, _ = source
    pool = Executor(2, idle_timeout=0.2)
    try:
        pool.run(job(tmp_path, path), time_limit=30)
        assert pool.process_count() == 1
        wait_until(lambda: pool.process_count() == 0, timeout=10)
    finally:
        pool.close()


def test_a_closed_pool_refuses_runs(tmp_path: Path, source) -> None:
    path, _ = source
    pool = Executor(1)
    pool.close()
    with pytest.raises(ExecutionFailed, match="shutting down"):
        pool.run(job(tmp_path, path), time_limit=30)


# --- limits: memory of a pipeline process, reads of a non-local input ----------------

MiB = 1024 * 1024


def write_huge(path: Path, side: int) -> None:
    """One zlib-compressed page of ``side`` x ``side`` uint16 zeros: small on disk, huge when decoded."""
    tile = np.zeros((1024, 1024), dtype=np.uint16)
    count = (side // 1024) ** 2
    tifffile.imwrite(
        path, (tile for _ in range(count)), shape=(side, side), dtype=np.uint16, tile=(1024, 1024),
        compression="zlib", photometric="minisblack", metadata=None,
    )  # fmt: skip


def whole_page(tmp_path: Path, source: Path, *, local: bool = True, name: str = "whole") -> Job:
    return Job(
        key=name, template="test", params={}, steps=(("read_tiff", {"page": 0}), ("encode_npy", {})),
        input_rel=source.name, input_etag="e1", input_size=source.stat().st_size,
        input_path=str(source) if local else None, output_path=str(tmp_path / f"{name}.npy"),
    )  # fmt: skip


@pytest.mark.parametrize("local", [True, False], ids=["local", "remote"])
def test_a_run_over_the_memory_limit_is_507_and_the_pool_recovers(tmp_path: Path, source, local: bool) -> None:
    huge = tmp_path / "huge.tif"
    write_huge(huge, 20 * 1024)  # 800 MiB of pixels, decoded
    assert huge.stat().st_size < 8 * MiB
    pool = Executor(1, idle_timeout=60, memory_limit=512 * MiB)
    try:
        with pytest.raises(OverLimit) as caught:
            pool.run(whole_page(tmp_path, huge, local=local), time_limit=60, reader=lambda: open(huge, "rb"))
        assert caught.value.status == 507
        assert caught.value.reason == (
            "element read_tiff needs more memory than a pipeline process may use "
            "(512 MiB, the dispel mount's memory_limit)"
        )
        assert pool.process_count() == 0  # not trusted with another run
        path, pages = source
        pool.run(job(tmp_path, path, name="after"), time_limit=30)
        assert np.array_equal(np.load(tmp_path / "after.npy"), pages[1, 2:50, 8:70])
    finally:
        pool.close()


def test_without_a_memory_limit_the_same_run_works(tmp_path: Path) -> None:
    huge = tmp_path / "huge.tif"
    write_huge(huge, 12 * 1024)  # 288 MiB decoded: over 256 MiB, and cheap enough to make for real
    for memory_limit, fails in ((256 * MiB, True), (0, False)):
        pool = Executor(1, idle_timeout=60, memory_limit=memory_limit)
        try:
            if fails:
                with pytest.raises(OverLimit, match="256 MiB"):
                    pool.run(whole_page(tmp_path, huge), time_limit=60)
            else:
                pool.run(whole_page(tmp_path, huge), time_limit=60)
                assert np.load(tmp_path / "whole.npy", mmap_mode="r").shape == (12 * 1024, 12 * 1024)
        finally:
            pool.close()


@pytest.fixture
def one_strip(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 12 MiB page stored as one uncompressed strip: reading it is one read of 12 MiB."""
    pages = stack(5, 1, 2048, 3072)
    write_stack(tmp_path / "strip.tif", pages, rowsperstrip=2048)
    return tmp_path / "strip.tif", pages


def test_a_read_larger_than_max_remote_read_is_507(tmp_path: Path, one_strip, source) -> None:
    strip, _ = one_strip
    pool = Executor(1, idle_timeout=60, max_read=8 * MiB)
    try:
        with pytest.raises(OverLimit) as caught:
            pool.run(whole_page(tmp_path, strip, local=False), time_limit=60, reader=lambda: open(strip, "rb"))
        assert caught.value.status == 507
        assert "may have at most 8388608 bytes (the dispel mount's max_remote_read)" in caught.value.reason
        path, _ = source
        pool.run(job(tmp_path, path, local=False, name="after"), time_limit=30, reader=lambda: open(path, "rb"))
    finally:
        pool.close()


def test_a_large_read_within_the_bound_arrives_whole_in_parts(tmp_path: Path, one_strip) -> None:
    strip, pages = one_strip
    served: list[int] = []

    class Counting(io.FileIO):
        def read(self, size: int = -1) -> bytes:
            data = super().read(size)
            served.append(len(data))
            return data

    pool = Executor(1, idle_timeout=60, max_read=16 * MiB)
    try:
        pool.run(whole_page(tmp_path, strip, local=False), time_limit=60, reader=lambda: Counting(strip, "rb"))
    finally:
        pool.close()
    assert np.array_equal(np.load(tmp_path / "whole.npy"), pages[0])
    assert max(served) <= READ_PART < pages[0].nbytes  # the server never held the strip whole
