"""The database writer: drains journalled records into the database in batches, off the loop.

Rows are inserted with `ON CONFLICT DO NOTHING` on their primary keys and interception ends are
idempotent UPDATEs, so a batch replayed after a crash changes nothing twice. While the database
is unreachable the batch is retried with backoff; records keep accumulating in the journal.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, Table, bindparam, update

from gateway.db import insert_ignoring_duplicates
from gateway.journal import Journal, find_orphans
from schema.models import ApiToken, Interception, ModelThought, PromptUsage, TokenUsage, ToolUsage
from schema.types import utcnow

log = logging.getLogger(__name__)

TABLES: Mapping[str, Table] = {
    "interception": Interception.__table__,  # type: ignore[attr-defined]
    "token_usage": TokenUsage.__table__,  # type: ignore[attr-defined]
    "prompt_usage": PromptUsage.__table__,  # type: ignore[attr-defined]
    "tool_usage": ToolUsage.__table__,  # type: ignore[attr-defined]
    "model_thought": ModelThought.__table__,  # type: ignore[attr-defined]
}
INSERT_ORDER = ("interception", "token_usage", "prompt_usage", "tool_usage", "model_thought")
_UUID_FIELDS = {"id", "interception_id", "initiator_id", "api_token_id", "provider_id"}
_TIME_FIELDS = {"started_at", "ended_at", "created_at", "at"}
_END_FIELDS = ("ended_at", "status", "upstream_status", "error_message", "streamed", "parsed")
ABANDONED = "the gateway process stopped before this interception completed"


@dataclass
class Entry:
    """One journal line's record, with Python values (uuid, datetime)."""

    kind: str
    row: dict[str, Any]


@dataclass
class Batch:
    entries: list[Entry]
    acks: dict[Path, int] = field(default_factory=dict)
    items: int = 0
    """How many submissions the batch holds."""


def decode_line(line: bytes) -> Entry | None:
    try:
        obj = orjson.loads(line)
        kind = obj.pop("k")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    for key in _UUID_FIELDS & obj.keys():
        if obj[key] is not None:
            obj[key] = uuid.UUID(obj[key])
    for key in _TIME_FIELDS & obj.keys():
        if obj[key] is not None:
            obj[key] = datetime.fromisoformat(obj[key])
    return Entry(kind, obj)


def encode_entry(entry: Entry) -> bytes:
    return orjson.dumps({"k": entry.kind, **entry.row}) + b"\n"


def apply_entries(engine: Engine, entries: Iterable[Entry]) -> None:
    """Write entries in one transaction: inserts by table, then ends, then token use."""
    inserts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ends: list[dict[str, Any]] = []
    touched: dict[uuid.UUID, datetime] = {}
    for entry in entries:
        if entry.kind in TABLES:
            inserts[entry.kind].append(entry.row)
        elif entry.kind == "end":
            ends.append(entry.row)
        elif entry.kind == "token_used":
            touched[uuid.UUID(str(entry.row["id"]))] = entry.row["at"]
    with engine.begin() as conn:
        for kind in INSERT_ORDER:
            insert_ignoring_duplicates(conn, TABLES[kind], inserts.get(kind, []))
        if ends:
            stmt = (
                update(TABLES["interception"])
                .where(TABLES["interception"].c.id == bindparam("b_id"))
                .values({f: bindparam(f"b_{f}") for f in _END_FIELDS})
            )
            conn.execute(stmt, [_end_params(e) for e in ends])
        if touched:
            tokens = ApiToken.__table__  # type: ignore[attr-defined]
            stmt = (
                update(tokens)
                .where(tokens.c.id == bindparam("b_id"))
                .values(last_used_at=bindparam("b_at"))
            )
            conn.execute(stmt, [{"b_id": k, "b_at": v} for k, v in touched.items()])


def _end_params(row: Mapping[str, Any]) -> dict[str, Any]:
    params = {f"b_{f}": row.get(f) for f in _END_FIELDS}
    params["b_id"] = row["id"]
    return params


class Writer:
    """Background thread: queue -> batches -> database -> journal acknowledgements."""

    def __init__(
        self, engine: Engine, journal: Journal, *, batch_size: int = 1000, batch_delay: float = 0.02
    ) -> None:
        self._engine = engine
        self._journal = journal
        self._queue: queue.SimpleQueue[tuple[list[Entry], Path | None, int] | None] = (
            queue.SimpleQueue()
        )
        self._batch_size = batch_size
        self._batch_delay = max(batch_delay, 0.001)  # the poll interval: never a busy loop
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self.failures = 0
        self.written = 0
        self.healthy = True

    def submit(self, entries: list[Entry], path: Path | None, offset: int) -> None:
        """`path` None: records not in the journal (its disk refused them), nothing to ack."""
        with self._pending_lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put((entries, path, offset))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aibridge-db-writer", daemon=True)
        self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is in the database."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _next_batch(self) -> Batch | None:
        """What arrived since the last batch. The thread polls (every `batch_delay`) instead of
        blocking on the queue: a blocked reader is woken by every submit, two thread switches
        per request on the event loop's core; records are already safe in the journal."""
        while True:
            try:
                item = self._queue.get_nowait()
                break
            except queue.Empty:
                time.sleep(self._batch_delay)
        if item is None:
            return None
        batch = Batch([])
        while item is not None:
            entries, path, offset = item
            batch.items += 1
            batch.entries.extend(entries)
            if path is not None:
                batch.acks[path] = max(offset, batch.acks.get(path, 0))
            if len(batch.entries) >= self._batch_size:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._write_with_retry(batch)

    def _write_with_retry(self, batch: Batch) -> None:
        delay = 0.1
        while True:
            try:
                apply_entries(self._engine, batch.entries)
                break
            except Exception as exc:  # noqa: BLE001 - the database may be down: retry
                self.failures += 1
                if self.healthy:
                    log.error("database write failed, records wait in the journal: %s", exc)
                self.healthy = False
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        if not self.healthy:
            log.warning("database writes resumed")
        self.healthy = True
        self.written += len(batch.entries)
        for path, offset in batch.acks.items():
            self._journal.ack(path, offset)
        with self._pending_lock:
            self._pending -= batch.items
            if self._pending == 0:
                self._idle.set()


def replay_orphans(engine: Engine, directory: Path, *, chunk: int = 2000) -> int:
    """Write what crashed processes journalled but never committed, then close their open
    interceptions. Returns the number of records replayed."""
    total = 0
    for orphan in find_orphans(directory):
        try:
            count = _replay(engine, orphan.lines(), chunk)
        except (ValueError, TypeError, KeyError) as exc:
            # A record the database refuses must not stop the gateway from starting: keep the
            # file for an operator (nothing is deleted) and go on.
            kept = orphan.quarantine()
            log.error(
                "journal %s could not be replayed (%s); kept as %s", orphan.path.name, exc, kept
            )
            continue
        total += count
        close_abandoned(engine, orphan.instance_id)
        orphan.remove()
        log.info("replayed journal %s (%d records)", orphan.path.name, count)
    return total


def _replay(engine: Engine, lines: Iterable[bytes], chunk: int) -> int:
    count = 0
    buffer: list[Entry] = []
    for line in lines:
        entry = decode_line(line)
        if entry is not None:
            buffer.append(entry)
        if len(buffer) >= chunk:
            apply_entries(engine, buffer)
            count += len(buffer)
            buffer = []
    apply_entries(engine, buffer)
    return count + len(buffer)


def close_abandoned(engine: Engine, instance_id: str) -> int:
    table = TABLES["interception"]
    with engine.begin() as conn:
        result = conn.execute(
            update(table)
            .where(table.c.instance_id == instance_id, table.c.ended_at.is_(None))
            .values(ended_at=utcnow(), status="failed", error_message=ABANDONED)
        )
    return int(result.rowcount or 0)
