"""Fixtures for the plain-Python core: a keyring and sessions on the migrated `engine`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from gateway.crypto import Keyring, generate_key


@pytest.fixture
def key_text() -> str:
    return generate_key()


@pytest.fixture
def keyring(key_text: str) -> Keyring:
    return Keyring.from_text(key_text)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """One session on the test database; the test commits what it wants to keep."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def new_session(engine: Engine) -> Iterator[Callable[[], Session]]:
    """Fresh sessions (as another process would see the database)."""
    opened: list[Session] = []

    def make() -> Session:
        s = Session(engine, expire_on_commit=False)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def db_dump(engine: Engine) -> Callable[[], str]:
    """Every row of every configuration table as the database returns it (secret hunting)."""
    from sqlalchemy import text

    def dump() -> str:
        out = []
        with engine.connect() as conn:
            for table in (
                "providers",
                "provider_keys",
                "users",
                "api_tokens",
                "audit_log",
                "gateway_state",
            ):
                out += [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
        return "\n".join(out)

    return dump
