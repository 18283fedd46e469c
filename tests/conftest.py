"""Shared fixtures: databases (SQLite and PostgreSQL), the fake provider, the real gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from gateway.db import make_engine, prepare_database
from tests.fakeprovider import running_fake_provider
from tests.harness import GatewayProcess, postgres_available, postgres_schema, start_gateway

_PG = postgres_available()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aibridge hardening")
    group.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="hardening battery: long outages, long fuzzing, more load (also AIBRIDGE_SOAK=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import os

    if _PG:
        return
    # PostgreSQL runs on every development and CI machine; without it, say so loudly in CI.
    if os.environ.get("CI"):
        raise pytest.UsageError("PostgreSQL at 127.0.0.1:5432 is not reachable")
    skip = pytest.mark.skip(reason="PostgreSQL at 127.0.0.1:5432 not reachable")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not _PG:
        pytest.skip("PostgreSQL not reachable")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    prepare_database(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def fake() -> Iterator[Any]:
    """The project's fake provider on a loopback port (in a background thread)."""
    with running_fake_provider(bigevent_mb=1) as fp:
        yield fp


@pytest.fixture
def gateway(tmp_path: Path, sqlite_url: str) -> Iterator[GatewayProcess]:
    """The real gateway process on SQLite (tests wanting both backends use `db_url`)."""
    gw = start_gateway(tmp_path, sqlite_url)
    yield gw
    gw.stop()


@pytest.fixture
def gateway_any_db(tmp_path: Path, db_url: str) -> Iterator[GatewayProcess]:
    gw = start_gateway(tmp_path, db_url)
    yield gw
    gw.stop()
