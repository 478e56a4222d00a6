"""How big and how long: the full run and the --quick smoke run."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Settings:
    name: str
    rounds: int  # every phase measures each server once per round; the median is reported
    big_bytes: int  # the large GET/PUT file (P1, P2)
    remote_bytes: int  # the large GET/PUT through the s3 and sftp mounts (P7, P8)
    propfind_files: int  # files in the PROPFIND folder (P3)
    small_files: int  # distinct 4 KiB files the GET clients cycle through (P4)
    small_bytes: int
    connections: int  # wrk: concurrent keep-alive clients (P4, P5)
    wrk_threads: int
    wrk_seconds: int
    warm_requests: int  # sequential GETs per round for the warm DISPEL comparison (P9)
    cold_windows: int  # distinct cold tiffstore windows per round (P10)
    flight_clients: int  # concurrent identical cold DISPEL requests (P11), distinct ones beside TiTiler
    imaging_windows: int  # distinct windows per round beside TiTiler (P13, P14)
    ceph_objectstore: str  # memstore starts fast but holds objects in RAM; bluestore for GiB runs
    ceph_store_gb: int
    tmpfs: str  # size of the tmpfs the served data lives on (mount option)


FULL = Settings(
    name="full",
    rounds=3,
    big_bytes=1 * GiB,
    remote_bytes=1 * GiB,
    propfind_files=10_000,
    small_files=256,
    small_bytes=4096,
    connections=16,
    wrk_threads=2,
    wrk_seconds=10,
    warm_requests=50,
    cold_windows=3,
    flight_clients=16,
    imaging_windows=40,
    ceph_objectstore="bluestore",
    ceph_store_gb=24,
    tmpfs="4g",
)

QUICK = Settings(
    name="quick",
    rounds=1,
    big_bytes=32 * MiB,
    remote_bytes=16 * MiB,
    propfind_files=1000,
    small_files=64,
    small_bytes=4096,
    connections=16,
    wrk_threads=2,
    wrk_seconds=1,
    warm_requests=10,
    cold_windows=1,
    flight_clients=16,
    imaging_windows=4,
    ceph_objectstore="memstore",
    ceph_store_gb=2,
    tmpfs="1g",
)
