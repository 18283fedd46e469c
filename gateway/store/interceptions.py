"""Reading what was recorded: filtered, cursor-paginated interceptions, one interception with
everything it holds, and token usage aggregates. Shared by the CLI and the admin API."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlmodel import Session, col

from gateway.store.errors import NotFound
from schema.models import Interception, ModelThought, PromptUsage, TokenUsage, ToolUsage, User

GroupBy = Literal["user", "provider", "model", "day", "client"]


@dataclass(frozen=True)
class InterceptionFilter:
    user_id: uuid.UUID | None = None
    username: str | None = None
    provider: str | None = None
    model: str | None = None
    client: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    """Substring of the prompt, model or provider."""


class UsagePublic(BaseModel):
    provider_response_id: str | None
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int
    metadata: dict[str, Any]
    created_at: datetime


class ToolPublic(BaseModel):
    tool_call_id: str | None
    tool: str
    input: str
    injected: bool
    server_url: str | None
    invocation_error: str | None
    created_at: datetime


class ThoughtPublic(BaseModel):
    content: str
    metadata: dict[str, Any]
    created_at: datetime


class InterceptionPublic(BaseModel):
    id: uuid.UUID
    initiator_id: uuid.UUID | None
    initiator: str | None
    provider_type: str
    provider_name: str
    api: str
    model: str | None
    client: str
    client_session_id: str | None
    user_agent: str | None
    credential_kind: str
    credential_hint: str | None
    streamed: bool
    parsed: bool
    started_at: datetime
    ended_at: datetime | None
    status: str | None
    upstream_status: int | None
    error_message: str | None
    correlating_tool_call_id: str | None
    prompt: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0


class InterceptionDetail(InterceptionPublic):
    token_usages: list[UsagePublic] = []
    tools: list[ToolPublic] = []
    thoughts: list[ThoughtPublic] = []


class UsageRow(BaseModel):
    key: str
    interceptions: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int


@dataclass
class Page:
    items: list[InterceptionPublic] = field(default_factory=list)
    next_cursor: str | None = None


def _encode_cursor(row: Interception) -> str:
    raw = orjson.dumps([row.started_at.isoformat(), str(row.id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError for anything that is not a cursor this module produced."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, iid = orjson.loads(raw)
        if not isinstance(started, str) or not isinstance(iid, str):
            raise ValueError("invalid cursor")
        when = datetime.fromisoformat(started)
        if when.tzinfo is None:
            raise ValueError("invalid cursor")
        return when, uuid.UUID(iid)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


def _where(stmt: Any, f: InterceptionFilter) -> Any:
    Ix = Interception
    conds: list[ColumnElement[bool]] = []
    if f.user_id is not None:
        conds.append(col(Ix.initiator_id) == f.user_id)
    if f.username is not None:
        users = select(col(User.id)).where(col(User.username) == f.username)
        conds.append(col(Ix.initiator_id).in_(users))
    for column, value in (
        (Ix.provider_name, f.provider),
        (Ix.model, f.model),
        (Ix.client, f.client),
        (Ix.status, f.status),
    ):
        if value:
            conds.append(col(column) == value)
    if f.since:
        conds.append(col(Ix.started_at) >= f.since)
    if f.until:
        conds.append(col(Ix.started_at) < f.until)
    if f.search:
        like = f"%{f.search}%"
        prompts = select(col(PromptUsage.interception_id)).where(col(PromptUsage.prompt).like(like))
        conds.append(
            or_(col(Ix.id).in_(prompts), col(Ix.model).like(like), col(Ix.provider_name).like(like))
        )
    return stmt.where(and_(*conds)) if conds else stmt


def list_interceptions(
    session: Session, *, filters: InterceptionFilter, limit: int = 50, cursor: str | None = None
) -> Page:
    """Newest first. `cursor` continues after the last item of the previous page."""
    Ix = Interception
    stmt = _where(select(Ix), filters)
    if cursor:
        started, iid = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(col(Ix.started_at) < started, and_(col(Ix.started_at) == started, col(Ix.id) < iid))
        )
    stmt = stmt.order_by(col(Ix.started_at).desc(), col(Ix.id).desc()).limit(limit + 1)
    rows = list(session.execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    items = _publics(session, rows)
    return Page(items, _encode_cursor(rows[-1]) if more and rows else None)


def _publics(session: Session, rows: list[Interception]) -> list[InterceptionPublic]:
    ids = [r.id for r in rows]
    names: dict[uuid.UUID, str] = {}
    users = {r.initiator_id for r in rows if r.initiator_id}
    if users:
        stmt = select(col(User.id), col(User.username)).where(col(User.id).in_(users))
        for uid, name in session.execute(stmt):
            names[uid] = name
    prompts: dict[uuid.UUID, str] = {}
    totals: dict[uuid.UUID, tuple[int, int, int, int]] = {}
    if ids:
        pstmt = select(col(PromptUsage.interception_id), col(PromptUsage.prompt)).where(
            col(PromptUsage.interception_id).in_(ids)
        )
        for iid, prompt in session.execute(pstmt):
            prompts[iid] = prompt
        T = TokenUsage
        tstmt = (
            select(
                col(T.interception_id),
                func.sum(T.input_tokens),
                func.sum(T.output_tokens),
                func.sum(T.cache_read_input_tokens),
                func.sum(T.cache_write_input_tokens),
            )
            .where(col(T.interception_id).in_(ids))
            .group_by(col(T.interception_id))
        )
        for iid, a, b, c, d in session.execute(tstmt):
            totals[iid] = (int(a or 0), int(b or 0), int(c or 0), int(d or 0))
    out = []
    for r in rows:
        t = totals.get(r.id, (0, 0, 0, 0))
        out.append(
            InterceptionPublic(
                **r.model_dump(exclude={"metadata_", "instance_id", "api_token_id", "provider_id"}),
                initiator=names.get(r.initiator_id) if r.initiator_id else None,
                prompt=prompts.get(r.id),
                input_tokens=t[0],
                output_tokens=t[1],
                cache_read_input_tokens=t[2],
                cache_write_input_tokens=t[3],
            )
        )
    return out


def get_interception(session: Session, *, interception_id: uuid.UUID) -> InterceptionDetail:
    row = session.get(Interception, interception_id)
    if row is None:
        raise NotFound(f"no interception {interception_id}")
    public = _publics(session, [row])[0]

    def rows(model: Any) -> list[Any]:
        stmt = (
            select(model).where(model.interception_id == interception_id).order_by(model.created_at)
        )
        return list(session.execute(stmt).scalars())

    return InterceptionDetail(
        **public.model_dump(),
        token_usages=[
            UsagePublic(**u.model_dump(exclude={"metadata_"}), metadata=u.metadata_)
            for u in rows(TokenUsage)
        ],
        tools=[ToolPublic(**t.model_dump()) for t in rows(ToolUsage)],
        thoughts=[
            ThoughtPublic(content=t.content, metadata=t.metadata_, created_at=t.created_at)
            for t in rows(ModelThought)
        ],
    )


def usage_totals(
    session: Session, *, group_by: GroupBy, filters: InterceptionFilter
) -> list[UsageRow]:
    """Token totals (and interception counts) per user, provider, model, client or day."""
    Ix, T = Interception, TokenUsage
    key: Any
    joins_user = group_by == "user"
    if group_by == "user":
        key = func.coalesce(User.username, "(unknown)")
    elif group_by == "provider":
        key = Ix.provider_name
    elif group_by == "model":
        key = func.coalesce(Ix.model, "(unknown)")
    elif group_by == "client":
        key = Ix.client
    else:
        key = func.substr(func.cast(col(Ix.started_at), _text_type()), 1, 10)
    per_interception = (
        select(
            col(T.interception_id).label("iid"),
            func.sum(T.input_tokens).label("i"),
            func.sum(T.output_tokens).label("o"),
            func.sum(T.cache_read_input_tokens).label("r"),
            func.sum(T.cache_write_input_tokens).label("w"),
        )
        .group_by(col(T.interception_id))
        .subquery()
    )
    stmt = (
        select(
            key.label("key"),
            func.count(col(Ix.id)),
            func.coalesce(func.sum(per_interception.c.i), 0),
            func.coalesce(func.sum(per_interception.c.o), 0),
            func.coalesce(func.sum(per_interception.c.r), 0),
            func.coalesce(func.sum(per_interception.c.w), 0),
        )
        .select_from(Ix)
        .outerjoin(per_interception, per_interception.c.iid == Ix.id)
    )
    if joins_user:
        stmt = stmt.outerjoin(User, col(User.id) == col(Ix.initiator_id))
    stmt = _where(stmt, filters).group_by(key).order_by(key)
    return [
        UsageRow(
            key=str(k),
            interceptions=n,
            input_tokens=int(a),
            output_tokens=int(b),
            cache_read_input_tokens=int(c),
            cache_write_input_tokens=int(d),
        )
        for k, n, a, b, c, d in session.execute(stmt)
    ]


def _text_type() -> Any:
    from sqlalchemy import String

    return String()
