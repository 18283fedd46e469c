"""Dashboard usage pages: tokens per day by model and by user (SVG), top users, and the
searchable interceptions list with a detail page (prompt, tool calls, thoughts, usage).

Members see only their own interceptions and usage; admins and auditors see everyone's.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from gateway.admin import charts, params
from gateway.admin.api_records import visible_detail
from gateway.admin.dashboard import render
from gateway.admin.deps import DbDep
from gateway.admin.session import ViewerDep
from gateway.recorder import (
    STATUS_CLIENT_DISCONNECTED,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_UPSTREAM_ERROR,
)
from gateway.store.interceptions import (
    InterceptionFilter,
    UsageRow,
    list_interceptions,
    usage_totals,
)

router = APIRouter(prefix="/dashboard", include_in_schema=False)
PERIODS = (7, 14, 30, 90)
TOP_SERIES = 6
STATUSES = (STATUS_COMPLETED, STATUS_UPSTREAM_ERROR, STATUS_CLIENT_DISCONNECTED, STATUS_FAILED)
PAGE_SIZE = 50
Dimension = Literal["model", "user"]


def tokens(row: UsageRow) -> int:
    return row.input_tokens + row.output_tokens


def _ranked(session: Session, dimension: Dimension, where: InterceptionFilter) -> list[UsageRow]:
    rows = usage_totals(session, group_by=dimension, filters=where)
    return sorted(rows, key=lambda r: (-tokens(r), r.key))


def _per_day(session: Session, where: InterceptionFilter) -> dict[str, int]:
    return {r.key: tokens(r) for r in usage_totals(session, group_by="day", filters=where)}


def day_series(session: Session, where: InterceptionFilter, dimension: Dimension,
               days: list[str]) -> list[charts.Series]:
    """The top models (or users) as series over `days`, the rest stacked as "other"."""
    named = [r for r in _ranked(session, dimension, where)
             if r.key != "(unknown)" and tokens(r) > 0][:TOP_SERIES]
    series = []
    for i, row in enumerate(named):
        narrowed = (replace(where, model=row.key) if dimension == "model"
                    else replace(where, username=row.key))
        per_day = _per_day(session, narrowed)
        series.append(charts.Series(row.key, tuple(per_day.get(d, 0) for d in days),
                                    charts.colour_for(i, row.key)))
    total = _per_day(session, where)
    other = tuple(max(total.get(d, 0) - sum(s.values[j] for s in series), 0)
                  for j, d in enumerate(days))
    if any(other):
        series.append(charts.Series("other", other, charts.OTHER_COLOUR))
    return series


def _period(days: int) -> tuple[datetime, list[str]]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - timedelta(days=days - 1)
    return since, [(since + timedelta(days=i)).date().isoformat() for i in range(days)]


@router.get("/usage")
def usage_page(request: Request, viewer: ViewerDep, session: DbDep,
               days: Annotated[int, Query()] = 14) -> HTMLResponse:
    days = days if days in PERIODS else 14
    since, day_keys = _period(days)
    where = params.interception_filter(viewer.principal, since=since)
    by_model = charts.stacked_bars("by-model", "Tokens per day by model", day_keys,
                                   day_series(session, where, "model", day_keys),
                                   y_label="input + output tokens")
    by_user = None
    if viewer.sees_everyone:
        by_user = charts.stacked_bars("by-user", "Tokens per day by user", day_keys,
                                      day_series(session, where, "user", day_keys),
                                      y_label="input + output tokens")
    users = _ranked(session, "user", where)
    summary = {"interceptions": sum(r.interceptions for r in users),
               "tokens": sum(tokens(r) for r in users),
               "cache_read": sum(r.cache_read_input_tokens for r in users),
               "users": len([r for r in users if r.interceptions])}
    providers = usage_totals(session, group_by="provider", filters=where)
    clients = usage_totals(session, group_by="client", filters=where)
    return render(request, "usage.html", viewer, days=days, periods=PERIODS,
                  by_model=by_model, by_user=by_user, top_users=users[:10], summary=summary,
                  providers=sorted(providers, key=lambda r: -tokens(r)),
                  clients=sorted(clients, key=lambda r: -tokens(r)), tokens=tokens)


def _options(session: Session, where: InterceptionFilter) -> dict[str, list[str]]:
    """Values to pick from in the filter selects (what was recorded)."""
    keys = {dim: sorted(r.key for r in usage_totals(session, group_by=dim, filters=where))
            for dim in ("provider", "model", "client")}
    keys["user"] = sorted(r.key for r in usage_totals(session, group_by="user", filters=where))
    return keys


@router.get("/interceptions")
def interceptions_page(
    request: Request, viewer: ViewerDep, session: DbDep,
    q: str = "", user: str = "", provider: str = "", model: str = "", client: str = "",
    status: str = "", cursor: str = "",
) -> HTMLResponse:
    chosen = {"q": q, "user": user if viewer.sees_everyone else "", "provider": provider,
              "model": model, "client": client, "status": status}
    where = params.interception_filter(viewer.principal, q=q, user=chosen["user"],
                                       provider=provider, model=model, client=client,
                                       status=status)
    page = list_interceptions(session, filters=where, limit=PAGE_SIZE,
                              cursor=params.check_cursor(cursor))
    options = _options(session, params.interception_filter(viewer.principal))
    return render(request, "interceptions.html", viewer, page=page, chosen=chosen,
                  options=options, statuses=STATUSES, first_page=not cursor)


@router.get("/interceptions/{interception_id}")
def interception_page(request: Request, interception_id: uuid.UUID, viewer: ViewerDep,
                      session: DbDep) -> HTMLResponse:
    detail = visible_detail(session, viewer.principal, interception_id)
    return render(request, "interception.html", viewer, i=detail)
