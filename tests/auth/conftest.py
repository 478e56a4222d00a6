"""Fixtures for the auth tests: a clock the test moves, and htpasswd vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

# Hash strings made once with Apache's htpasswd 2.4 (apache2-utils) and, for
# $2a$/$2b$, with the bcrypt package; the tests do not need either tool.
PASSWORD = "correct horse battery staple"
UNICODE_PASSWORD = "pässwörd: ünï"
LONG_PASSWORD = "x" * 80  # longer than bcrypt's 72 bytes

VECTORS: dict[str, tuple[str, str]] = {
    # name: (password, stored hash)
    "bcrypt-2y-htpasswd-B": (
        PASSWORD,
        "$2y$05$iChxLIC8En5JQ3ToRWgcGOgCZuDLseU6GWZNC6ZuG9dM1OXdms.Ee",
    ),
    "bcrypt-2y-C4": (
        PASSWORD,
        "$2y$04$v3EszipUEtYTYqrscspQNe1YUu3lO0PUUuHNL4GpmL1ycA2HKPmpu",
    ),
    "bcrypt-2a": (
        PASSWORD,
        "$2a$04$n6esH.73rvyPU7Vq24ul3.WNfSD79OEzQ8cO2aCV3Q6qsmItUEHrC",
    ),
    "bcrypt-2b": (
        PASSWORD,
        "$2b$04$86ZQyKtCT3.g90g0AOYQ2.N2moXvQP8yh/.5r9TuBljX0vaG1VkwC",
    ),
    "bcrypt-unicode": (
        UNICODE_PASSWORD,
        "$2y$04$KWcHBE7TjXFuO3lzSRCcduozX1bYLUh9GwE5MyhQVAsOKfV4Ye8Qe",
    ),
    "bcrypt-long": (
        LONG_PASSWORD,
        "$2y$04$e/rQL1AjQDBlUhiKGANNseDCHHc0N1bZvaY0zvKAO3AHLbA1UW1cm",
    ),
    "apr1": (PASSWORD, "$apr1$t0ntH6dj$d3hih8ef/kNK.bhxuwi6p/"),
    "apr1-unicode": (UNICODE_PASSWORD, "$apr1$fnM9ZNRS$aMAp8xmqJ4Q9/773bMC72."),
    "apr1-long": (LONG_PASSWORD, "$apr1$.y6H/mc9$25p0yQqk/9TWCP1Q5sN/v0"),
    "sha1": (PASSWORD, "{SHA}q/eq1kOINtvlJqojGr3i0O73TUI="),
    "sha1-unicode": (UNICODE_PASSWORD, "{SHA}I2HQP5VooPoseIwZjwKzogNjH2E="),
    "sha256-crypt": (
        PASSWORD,
        "$5$p01d5mVMrQhZmuuD$EDEoIFBqmsHdrokL.dPCvWdZAxiT6a8.PD1x0D9cmj5",
    ),
    "sha256-crypt-rounds": (
        PASSWORD,
        "$5$rounds=1000$IAukzZavesUN4mut$5bWTjwGSnvVmRMv94qevEKzj5I.3sRzY3T/wMH4v9i6",
    ),
    "sha256-crypt-unicode": (
        UNICODE_PASSWORD,
        "$5$5pZK/hRRBu2TZ1SB$S2sswL/12o4w3MW8Qk7KlHvfvTO1pHMuiq37DQodf0C",
    ),
    "sha512-crypt": (
        PASSWORD,
        ("$6$y382EM1Mmb852N6d$v.sa0gJekjq6CIEX.S4n5cea0EYTkQPNvnoOjN5Qo8MMFW5vP3RU8lcrdgeXL/Vq4M4hlCGisvhVvfqqlOMY9."),
    ),
    "sha512-crypt-rounds": (
        PASSWORD,
        (
            "$6$rounds=12345$yHe9kMnORIG2ZBSs$Ffl4I7sCvRT4CCVU80McSQ5tZoi901PR1/Ex7FCebMWG"
            "iTgQaRo6zZDgE/X0n5XSrk1xX6Uegn0MwRsAw0nmx0"
        ),
    ),
    "sha512-crypt-unicode": (
        UNICODE_PASSWORD,
        ("$6$c3wxaTpu/3KBZfmY$bO0w./UZdjce5KrTOUadydJOwVYUmS7DO2V8uRRloI.iPVur8JN7.mlzNd97Hp1V2Le9DYmfCUQEifsjLa0QM."),
    ),
    # From Ulrich Drepper's SHA-crypt specification.
    "sha256-crypt-spec": (
        "Hello world!",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    "sha512-crypt-spec": (
        "Hello world!",
        ("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
    ),
}


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def write_entries(path: Path, lines: list[str]) -> Path:
    """Write an htpasswd file with exactly ``lines``, each ended by a newline."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path
