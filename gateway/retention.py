"""Data retention: delete interceptions older than `retention` (with every record they hold)
and API dump files older than it, in batches, from a background thread or `aibridge retention
purge`.

Only closed interceptions (`ended_at` set) whose `started_at` is before `now - retention` are
deleted; `retention` 0 keeps everything. Each batch (1000 interceptions by default) is one
transaction: children first (token, prompt, tool, thought rows), then the interceptions. On
PostgreSQL a run holds a session advisory lock (`pg_try_advisory_lock`) and is skipped when
another process holds it; on SQLite the database's own locking serialises writers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Table, delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.dumps import dump_files, parse_stem_time
from gateway.settings import Settings
from schema.models import Interception, ModelThought, PromptUsage, TokenUsage, ToolUsage
from schema.types import utcnow

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x41494252_0001  # "AIBR" + 1: the retention purge
DEFAULT_BATCH = 1000
Clock = Callable[[], datetime]

_INTERCEPTIONS: Table = Interception.__table__  # type: ignore[attr-defined]
CHILD_TABLES: tuple[tuple[str, Table], ...] = (
    ("token_usages", TokenUsage.__table__),  # type: ignore[attr-defined]
    ("prompt_usages", PromptUsage.__table__),  # type: ignore[attr-defined]
    ("tool_usages", ToolUsage.__table__),  # type: ignore[attr-defined]
    ("model_thoughts", ModelThought.__table__),  # type: ignore[attr-defined]
)


class PurgeResult(BaseModel):
    """What one run deleted (or, with dry_run, would delete)."""

    cutoff: datetime | None = None
    """Everything started before this goes; None when retention is 0 (keep everything)."""
    dry_run: bool = False
    skipped: bool = False
    """True when another process was purging the database (PostgreSQL advisory lock)."""
    interceptions: int = 0
    token_usages: int = 0
    prompt_usages: int = 0
    tool_usages: int = 0
    model_thoughts: int = 0
    dump_files: int = 0

    @property
    def rows(self) -> int:
        return (
            self.interceptions
            + self.token_usages
            + self.prompt_usages
            + self.tool_usages
            + self.model_thoughts
        )


def prune_dumps(base: Path, cutoff: datetime, *, dry_run: bool = False) -> int:
    """Delete dump files whose name's time is before `cutoff`; returns how many (would be)."""
    count = 0
    for _provider, _passthrough, entry, match in list(dump_files(base)):
        if parse_stem_time(match["ts"]) >= cutoff:
            continue
        if not dry_run:
            try:
                Path(entry.path).unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot delete dump file %s: %s", entry.path, exc)
                continue
        count += 1
    return count


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection | None]:
    """A connection for the run, or None when another process holds the purge lock."""
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            yield conn
            return
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        locked = bool(got.scalar())
        conn.commit()
        if not locked:
            yield None
            return
        try:
            yield conn
        finally:
            # A broken connection has lost the lock with its session: nothing to release.
            with contextlib.suppress(SQLAlchemyError):
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()


def _expired(cutoff: datetime) -> Any:
    c = _INTERCEPTIONS.c
    return (c.started_at < cutoff) & c.ended_at.is_not(None)


def _count(conn: Connection, cutoff: datetime, result: PurgeResult) -> None:
    ids = select(_INTERCEPTIONS.c.id).where(_expired(cutoff))
    with conn.begin():
        result.interceptions = conn.execute(
            select(func.count()).select_from(_INTERCEPTIONS).where(_expired(cutoff))
        ).scalar_one()
        for name, table in CHILD_TABLES:
            stmt = select(func.count()).select_from(table).where(table.c.interception_id.in_(ids))
            setattr(result, name, conn.execute(stmt).scalar_one())


def _delete(conn: Connection, cutoff: datetime, batch: int, result: PurgeResult) -> None:
    while True:
        with conn.begin():
            stmt = (
                select(_INTERCEPTIONS.c.id)
                .where(_expired(cutoff))
                .order_by(_INTERCEPTIONS.c.started_at)
                .limit(batch)
            )
            ids: list[uuid.UUID] = list(conn.execute(stmt).scalars())
            if not ids:
                return
            for name, table in CHILD_TABLES:
                gone = conn.execute(delete(table).where(table.c.interception_id.in_(ids)))
                setattr(result, name, getattr(result, name) + gone.rowcount)
            gone = conn.execute(delete(_INTERCEPTIONS).where(_INTERCEPTIONS.c.id.in_(ids)))
            result.interceptions += gone.rowcount
        if len(ids) < batch:
            return


def purge(
    engine: Engine,
    *,
    retention: timedelta,
    now: datetime,
    dump_dir: Path | None = None,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
) -> PurgeResult:
    """One retention run. Dump files are pruned even when the database part is skipped
    (each process may have its own dump folder; deleting is idempotent)."""
    if retention <= timedelta(0):
        return PurgeResult(dry_run=dry_run)
    cutoff = now - retention
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    with _exclusive(engine) as conn:
        if conn is None:
            result.skipped = True
        elif dry_run:
            _count(conn, cutoff, result)
        else:
            _delete(conn, cutoff, max(1, batch_size), result)
    if dump_dir is not None:
        result.dump_files = prune_dumps(dump_dir, cutoff, dry_run=dry_run)
    return result


class RetentionScheduler:
    """Runs `purge` soon after `start()` and then every `retention_interval`, on a thread."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        now: Clock = utcnow,
        batch_size: int = DEFAULT_BATCH,
        initial_delay: float = 5.0,
    ) -> None:
        self.engine = engine
        self.retention = settings.retention_delta
        self.interval = settings.retention_interval_delta.total_seconds()
        self.dump_dir = Path(settings.dump_dir) if settings.dump_dir else None
        self.now = now
        self.batch_size = batch_size
        self.initial_delay = initial_delay
        self.runs = 0
        self.failures = 0
        self.last: PurgeResult | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.retention > timedelta(0) and self.interval > 0

    def start(self) -> None:
        if not self.enabled:
            log.info("retention: keeping interceptions forever (retention 0)")
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="aibridge-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        if self._stop.wait(self.initial_delay):
            return
        while True:
            self.run_once()
            if self._stop.wait(self.interval):
                return

    def run_once(self) -> PurgeResult | None:
        try:
            result = purge(
                self.engine,
                retention=self.retention,
                now=self.now(),
                dump_dir=self.dump_dir,
                batch_size=self.batch_size,
            )
        except (SQLAlchemyError, OSError) as exc:
            self.failures += 1
            log.warning("retention purge failed (will retry in %ss): %s", self.interval, exc)
            return None
        self.runs += 1
        self.last = result
        if result.rows or result.dump_files:
            log.info(
                "retention: deleted %d interceptions (%d rows in all) and %d dump files "
                "started before %s",
                result.interceptions,
                result.rows,
                result.dump_files,
                result.cutoff,
            )
        return result

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
