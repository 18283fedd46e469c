"""Engines: SQLite (embedded default) and PostgreSQL (replicas). Built in entry points only."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from schema.migrate import upgrade
from schema.models import GatewayState
from schema.types import utcnow

NOTIFY_CHANNEL = "aibridge_config"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": pool_size, "max_overflow": 10}
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    if not memory and parsed.database:
        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Prompts and completions live here: owner-only, like the key file and the journal.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Bulk INSERT ... ON CONFLICT DO NOTHING (idempotent writes: replays are harmless)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {conn.dialect.name}")


def prepare_database(engine: Engine) -> None:
    """Apply migrations and make sure the configuration-version row exists."""
    upgrade(engine)
    with engine.begin() as conn:
        table = GatewayState.__table__  # type: ignore[attr-defined]
        insert_ignoring_duplicates(conn, table, [{"id": 1, "version": 0, "updated_at": utcnow()}])


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def channel_for_schema(schema: str) -> str:
    """LISTEN/NOTIFY channel, scoped by schema so databases sharing a server don't cross-talk."""
    return f"{NOTIFY_CHANNEL}_{schema}"[:63]


def notify_change(conn: Connection) -> None:
    """Inside a transaction on PostgreSQL: tell every listener the configuration changed."""
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    conn.execute(text("SELECT pg_notify(:ch, 'changed')"), {"ch": channel_for_schema(schema)})


def listen_notifications(engine: Engine, stop: threading.Event) -> Iterator[None]:
    """Yield once per NOTIFY on the configuration channel until `stop` is set."""
    import psycopg

    url = engine.url.set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        channel = channel_for_schema(schema[0] if schema else "public")
        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
        while not stop.is_set():
            for _ in conn.notifies(timeout=1.0, stop_after=1):
                yield None
