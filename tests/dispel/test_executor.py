"""The pool of pipeline processes: runs, time limits, crashes, bounds, idle processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from davgate.dispel.errors import ExecutionFailed, OutOfBounds, TimedOut
from davgate.dispel.executor import Executor
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
