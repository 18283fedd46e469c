"""Fixtures of the hardening battery, and its `--soak` switch.

`--soak` (registered in tests/conftest.py, so it works from any command line; also
AIBRIDGE_SOAK=1) lengthens outages (database cut 120 s instead of 30 s), fuzz budgets (60 s per
target instead of 5 s) and load (more clients, more requests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Setup, make_setup
from tests.fakeprovider import running_fake_provider
from tests.harness import gateway_env, postgres_available, postgres_schema, start_gateway

MAX_BODY = "8MiB"


@dataclass(frozen=True)
class Budget:
    """How hard the battery pushes: the normal run is bounded, `--soak` is long."""

    soak: bool
    outage_seconds: float
    fuzz_seconds: int
    clients: int
    requests: int


def _soak_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("--soak")) or os.environ.get("AIBRIDGE_SOAK", "") not in ("", "0")


@pytest.fixture(scope="session")
def budget(pytestconfig: pytest.Config) -> Budget:
    if _soak_requested(pytestconfig):
        return Budget(soak=True, outage_seconds=120, fuzz_seconds=60, clients=8, requests=400)
    return Budget(soak=False, outage_seconds=30, fuzz_seconds=5, clients=4, requests=60)


def hardening_env(workdir: Path, db_url: str, **extra: str) -> dict[str, str]:
    """The harness environment plus the battery's smaller body limit (8 MiB)."""
    return gateway_env(workdir / "data", db_url, {"AI_GATEWAY_MAX_REQUEST_BODY": MAX_BODY, **extra})


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def hard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """One gateway (SQLite, then PostgreSQL) + fake provider for a module of attack tests."""
    if request.param == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    workdir = tmp_path_factory.mktemp(f"hard-{request.param}")
    with running_fake_provider(bigevent_mb=1) as fake:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir / 'test.db'}"
            yield from _run(workdir, url, fake)
        else:
            with postgres_schema() as url:
                yield from _run(workdir, url, fake)


def _run(workdir: Path, url: str, fake: Any) -> Iterator[Setup]:
    gw = start_gateway(workdir, url, env=hardening_env(workdir, url))
    try:
        yield make_setup(gw, fake)
    finally:
        gw.stop()


@pytest.fixture
def h(hard: Setup) -> Setup:
    """The module's setup with the fake's request log cleared."""
    hard.fake.clear()
    return hard
