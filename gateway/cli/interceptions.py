"""aibridge interceptions list|show  and  aibridge usage"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from gateway.cli import output
from gateway.cli.context import session
from gateway.store.interceptions import (
    GroupBy,
    InterceptionFilter,
    get_interception,
    list_interceptions,
    usage_totals,
)
from gateway.units import parse_duration

app = typer.Typer(
    help="Recorded interceptions: who asked what, with which model.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def parse_when(value: str | None) -> datetime | None:
    """An ISO time (`2026-01-31`, `2026-01-31T10:00Z`) or an age (`2h`, `7d` ago)."""
    if not value:
        return None
    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        output.usage_error(
            f"not a time or duration: {value!r} (use 2026-01-31, or 7d for 7 days ago)"
        )
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _filters(
    user: str | None,
    provider: str | None,
    model: str | None,
    client: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
) -> InterceptionFilter:
    return InterceptionFilter(
        username=user,
        provider=provider,
        model=model,
        client=client,
        status=status,
        since=parse_when(since),
        until=parse_when(until),
    )


UserOpt = Annotated[str | None, typer.Option("--user", help="Only this user's.")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", help="Only this provider.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Only this model.")]
ClientOpt = Annotated[
    str | None, typer.Option("--client", help="Only this client, e.g. 'Claude Code'.")
]
StatusOpt = Annotated[str | None, typer.Option("--status", help="completed, upstream_error, ...")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="ISO time or age (7d).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="ISO time or age.")]


@app.command("list")
def list_(
    ctx: typer.Context,
    user: UserOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    client: ClientOpt = None,
    status: StatusOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue from a previous page.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List interceptions, newest first."""
    filters = _filters(user, provider, model, client, status, since, until)
    with session(ctx) as s:
        try:
            page = list_interceptions(s, filters=filters, limit=limit, cursor=cursor)
        except ValueError as exc:
            output.usage_error(str(exc))
    if as_json:
        output.print_json({"items": page.items, "next_cursor": page.next_cursor})
        return
    output.print_table(
        "interceptions",
        [
            "id",
            "started",
            "user",
            "provider",
            "model",
            "client",
            "status",
            "in",
            "out",
            "cache r/w",
            "prompt",
        ],
        [
            (
                i.id,
                i.started_at,
                i.initiator,
                i.provider_name,
                i.model,
                i.client,
                i.status,
                i.input_tokens,
                i.output_tokens,
                f"{i.cache_read_input_tokens}/{i.cache_write_input_tokens}",
                (i.prompt or "")[:60],
            )
            for i in page.items
        ],
    )
    if page.next_cursor:
        output.info(f"more: --cursor {page.next_cursor}")


@app.command("show")
def show(ctx: typer.Context, interception_id: str, as_json: JsonOpt = False) -> None:
    """One interception with its token usage, prompt, tool calls and thoughts."""
    try:
        iid = uuid.UUID(interception_id)
    except ValueError:
        output.usage_error(f"not an interception id: {interception_id!r}")
    with session(ctx) as s:
        detail = get_interception(s, interception_id=iid)
    if as_json:
        output.print_json(detail)
        return
    fields: list[tuple[str, Any]] = [
        (k, getattr(detail, k))
        for k in (
            "id",
            "initiator",
            "provider_name",
            "provider_type",
            "api",
            "model",
            "client",
            "client_session_id",
            "user_agent",
            "credential_kind",
            "credential_hint",
            "streamed",
            "started_at",
            "ended_at",
            "status",
            "upstream_status",
            "error_message",
            "correlating_tool_call_id",
            "prompt",
        )
    ]
    output.print_kv(f"interception {detail.id}", fields)
    output.print_table(
        "token usage",
        ["response", "input", "output", "cache read", "cache write", "other"],
        [
            (
                u.provider_response_id,
                u.input_tokens,
                u.output_tokens,
                u.cache_read_input_tokens,
                u.cache_write_input_tokens,
                u.metadata or "",
            )
            for u in detail.token_usages
        ],
    )
    if detail.tools:
        output.print_table(
            "tool calls",
            ["id", "tool", "input"],
            [(t.tool_call_id, t.tool, t.input) for t in detail.tools],
        )
    if detail.thoughts:
        output.print_table(
            "thoughts",
            ["source", "content"],
            [(t.metadata.get("source"), t.content) for t in detail.thoughts],
        )


def usage(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="user, provider, model, client or day.")] = "user",
    user: UserOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    client: ClientOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Token totals grouped by user, provider, model, client or day."""
    if by not in ("user", "provider", "model", "client", "day"):
        output.usage_error("--by must be user, provider, model, client or day")
    filters = _filters(user, provider, model, client, None, since, until)
    group: GroupBy = by  # type: ignore[assignment]
    with session(ctx) as s:
        rows = usage_totals(s, group_by=group, filters=filters)
    if as_json:
        output.print_json(rows)
        return
    output.print_table(
        f"token usage by {by}",
        [by, "interceptions", "input", "output", "cache read", "cache write"],
        [
            (
                r.key,
                r.interceptions,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_input_tokens,
                r.cache_write_input_tokens,
            )
            for r in rows
        ],
    )
