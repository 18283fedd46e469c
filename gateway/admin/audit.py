"""Reading the audit log (written by gateway.store.changes.audit), newest first."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

from gateway.validation import InvalidField
from schema.models import AuditLog


class AuditPublic(BaseModel):
    id: uuid.UUID
    created_at: datetime
    actor: str
    actor_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str | None
    target_name: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditPublic]
    next_cursor: str | None


def _encode(row: AuditLog) -> str:
    raw = orjson.dumps([row.created_at.isoformat(), str(row.id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, rid = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when.astimezone(UTC), uuid.UUID(str(rid))
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise InvalidField("cursor", "invalid cursor: use next_cursor of a previous page") from exc


def list_audit(session: Session, *, limit: int, cursor: str | None = None,
               action: str | None = None, actor: str | None = None) -> AuditPage:
    stmt = select(AuditLog)
    if action:
        stmt = stmt.where(col(AuditLog.action) == action)
    if actor:
        stmt = stmt.where(col(AuditLog.actor) == actor)
    if cursor:
        created, rid = _decode(cursor)
        stmt = stmt.where(or_(col(AuditLog.created_at) < created,
                              and_(col(AuditLog.created_at) == created, col(AuditLog.id) < rid)))
    stmt = stmt.order_by(col(AuditLog.created_at).desc(), col(AuditLog.id).desc()).limit(limit + 1)
    rows = list(session.execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    items = [AuditPublic.model_validate(r, from_attributes=True) for r in rows]
    return AuditPage(items=items, next_cursor=_encode(rows[-1]) if more and rows else None)
