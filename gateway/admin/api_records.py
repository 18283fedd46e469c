"""What was recorded: interceptions (filtered, cursor-paginated), one interception in full,
token usage totals, and the audit log.

Admins and auditors read everything; a member reads only their own interceptions and usage.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from gateway.admin import params
from gateway.admin.audit import AuditPage, list_audit
from gateway.admin.deps import API_DEPENDENCIES, AdminUser, AnyUser, DbDep
from gateway.admin.errors import responses
from gateway.auth import Principal
from gateway.store import interceptions as store
from gateway.store.errors import NotFound
from gateway.store.interceptions import (
    GroupBy,
    InterceptionDetail,
    InterceptionFilter,
    InterceptionPublic,
    UsageRow,
)

router = APIRouter(dependencies=API_DEPENDENCIES, tags=["interceptions"])
audit_router = APIRouter(dependencies=API_DEPENDENCIES, tags=["audit"])

MAX_LIMIT = 200
DATE_TIME: dict[str, Any] = {"format": "date-time"}


class InterceptionPage(BaseModel):
    items: list[InterceptionPublic]
    next_cursor: str | None
    """Pass as `cursor` for the next (older) page; null on the last page."""


class UsageReport(BaseModel):
    group_by: GroupBy
    items: list[UsageRow]


def filters(
    principal: AnyUser,
    user: Annotated[str | None, Query(description="Only this user's (admin, auditor)")] = None,
    provider: Annotated[str | None, Query(description="Provider name")] = None,
    model: Annotated[str | None, Query()] = None,
    client: Annotated[str | None, Query(description="e.g. Claude Code")] = None,
    status: Annotated[str | None, Query(description="completed, upstream_error, ...")] = None,
    since: Annotated[str | None, Query(description="Started at or after (RFC 3339)",
                                       json_schema_extra=DATE_TIME)] = None,
    until: Annotated[str | None, Query(description="Started before (RFC 3339)",
                                       json_schema_extra=DATE_TIME)] = None,
    q: Annotated[str | None, Query(description="Substring of prompt, model or provider")] = None,
) -> InterceptionFilter:
    return params.interception_filter(principal, user=user, provider=provider, model=model,
                                      client=client, status=status, since=since, until=until,
                                      q=q)


FilterDep = Annotated[InterceptionFilter, Depends(filters)]


@router.get("/api/v2/aibridge/interceptions", response_model=InterceptionPage,
            responses=responses())
def list_interceptions(
    principal: AnyUser, session: DbDep, where: FilterDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> InterceptionPage:
    """Newest first; `next_cursor` continues with older ones."""
    page = store.list_interceptions(session, filters=where, limit=limit,
                                    cursor=params.check_cursor(cursor))
    return InterceptionPage(items=page.items, next_cursor=page.next_cursor)


def visible_detail(session: DbDep, principal: Principal,
                   interception_id: uuid.UUID) -> InterceptionDetail:
    """The interception if the caller may see it; NotFound otherwise (existence not leaked)."""
    detail = store.get_interception(session, interception_id=interception_id)
    if not params.can_see_everyone(principal) and detail.initiator_id != principal.user_id:
        raise NotFound(f"no interception {interception_id}")
    return detail


@router.get("/api/v2/aibridge/interceptions/{interception_id}",
            response_model=InterceptionDetail, responses=responses(404))
def get_interception(interception_id: uuid.UUID, principal: AnyUser,
                     session: DbDep) -> InterceptionDetail:
    """One interception with its token usage, prompt, tool calls and model thoughts."""
    return visible_detail(session, principal, interception_id)


@router.get("/api/v2/aibridge/usage", response_model=UsageReport, responses=responses())
def usage(principal: AnyUser, session: DbDep, where: FilterDep,
          group_by: Annotated[GroupBy, Query()] = "user") -> UsageReport:
    """Token totals and interception counts per user, provider, model, client or day."""
    rows = store.usage_totals(session, group_by=group_by, filters=where)
    return UsageReport(group_by=group_by, items=rows)


@audit_router.get("/api/v2/audit", response_model=AuditPage, responses=responses())
def audit_log(
    _: AdminUser, session: DbDep,
    action: Annotated[str | None, Query(description="e.g. provider.create")] = None,
    actor: Annotated[str | None, Query(description="Who made the change")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AuditPage:
    """Every configuration change, newest first, with who made it."""
    return list_audit(session, limit=limit, cursor=cursor,
                      action=params.text_value(action, "action"),
                      actor=params.text_value(actor, "actor"))
