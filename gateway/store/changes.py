"""The configuration version and the audit log, written in the same transaction as a change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from gateway.db import notify_change
from schema.models import AuditLog, GatewayState
from schema.types import utcnow


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change: a user (API, dashboard) or the system (CLI, seeding)."""

    name: str
    id: uuid.UUID | None = None


SYSTEM_ACTOR = Actor(name="system")


def bump_version(session: Session) -> None:
    session.execute(
        update(GatewayState)
        .where(col(GatewayState.id) == 1)
        .values(version=GatewayState.version + 1, updated_at=utcnow())
    )
    if session.get_bind().dialect.name == "postgresql":
        notify_change(session.connection())


def current_version(session: Session) -> int:
    stmt = select(col(GatewayState.version)).where(col(GatewayState.id) == 1)
    value = session.execute(stmt).scalar()
    return int(value or 0)


def audit(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    target_name: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            actor_id=actor.id,
            actor=actor.name,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id else None,
            target_name=target_name,
            details=details or {},
        )
    )
    bump_version(session)
