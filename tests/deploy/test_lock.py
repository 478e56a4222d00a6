"""The lock files agree with setup.cfg, and the environment is exactly the lock.

setup.cfg keeps ranges (what ``pip install davgate`` resolves); requirements/
holds what ``scripts/lock.sh`` resolved from them, and what setup, CI and the
image install. A dependency added to one and not the other, a locked version
outside its range, or an installed version that is not the locked one fails here.
"""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "requirements"
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def declared(extra: str | None = None) -> list[Requirement]:
    """setup.cfg's install_requires, or one extra's requirements."""
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    text = setup["options"]["install_requires"] if extra is None else setup["options.extras_require"][extra]
    return [Requirement(line) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def locked(name: str) -> dict[str, Version]:
    """The lock file's packages and their exact versions."""
    pins = (PINNED.match(line) for line in (LOCKS / f"{name}.lock").read_text().splitlines())
    return {canonicalize_name(m[1]): Version(m[2]) for m in pins if m}


def overridden() -> dict[str, Requirement]:
    """What scripts/lock.sh overrides of the dependencies' own declarations."""
    lines = (LOCKS / "overrides.txt").read_text().splitlines()
    reqs = (Requirement(line) for line in lines if line.strip() and not line.startswith("#"))
    return {canonicalize_name(req.name): req for req in reqs}


def applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in extras | {""})


def closure(roots: list[Requirement]) -> dict[str, list[Requirement]]:
    """Every distribution the roots need, by installed metadata, with the requirements that name it."""
    needed: dict[str, list[Requirement]] = {}
    queue = [(req, {""}) for req in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        req, extras = queue.pop()
        if not applies(req, extras):
            continue
        name = canonicalize_name(req.name)
        needed.setdefault(name, []).append(req)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            children = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed: the comparison with the lock names it
        queue.extend((Requirement(child), set(req.extras)) for child in children)
    return needed


@pytest.mark.parametrize(("lock", "roots"), [("serve", declared()), ("test", declared() + declared("test"))])
def test_the_lock_holds_exactly_what_setup_cfg_needs(lock: str, roots: list[Requirement]) -> None:
    pins = locked(lock)
    needed = closure(roots)
    assert sorted(set(needed) - set(pins)) == [], f"needed but not in requirements/{lock}.lock"
    assert sorted(set(pins) - set(needed)) == [], f"in requirements/{lock}.lock but needed by nothing in setup.cfg"


@pytest.mark.parametrize(("lock", "roots"), [("serve", declared()), ("test", declared() + declared("test"))])
def test_every_locked_version_is_inside_every_range_that_names_it(lock: str, roots: list[Requirement]) -> None:
    pins, overrides = locked(lock), overridden()
    outside = []
    for name, reqs in closure(roots).items():
        for req in reqs:
            rule = req if req in roots or name not in overrides else overrides[name]
            if not rule.specifier.contains(pins[name], prereleases=True):
                outside.append(f"{name}=={pins[name]} against {rule}")
    assert outside == []


def test_the_server_lock_is_the_test_lock_without_the_test_tools() -> None:
    serve, test = locked("serve"), locked("test")
    assert {name: test.get(name) for name in serve} == serve


def installed(name: str) -> Version | None:
    """The version Python imports: the first on the path (pkg_resources puts setuptools' own copies after it)."""
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def test_the_environment_is_the_lock() -> None:
    differs = {name: (version, installed(name)) for name, version in locked("test").items()}
    assert {name: pair for name, pair in differs.items() if pair[0] != pair[1]} == {}


def test_overrides_name_only_what_a_dependency_caps() -> None:
    # An override is a hole in the lock's checks: each must still be needed.
    for name, rule in overridden().items():
        caps = [req for reqs in closure(declared()).values() for req in reqs if canonicalize_name(req.name) == name]
        assert any(not req.specifier.contains(locked("serve")[name]) for req in caps), f"{rule} is no longer needed"
