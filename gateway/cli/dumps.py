"""aibridge dumps list | show ID | export ID... --har FILE / --flows FILE | prune --older-than

Reads the dump folder (`dump_dir`, or `--dir`) and, when the database is reachable, joins each
dump with its interception (user, model, status). `export` writes files with mitmproxy (a flow
file for `mitmweb -r`, and HAR 1.2 by mitmproxy's own exporter): the console script passes the
writers in (`make_dumps_app(DumpExporters(...))`); gateway/ never imports addons/.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy import select
from sqlmodel import Session

from gateway.cli import output
from gateway.cli.context import state
from gateway.cli.interceptions import parse_when
from gateway.dumps import DumpEntry, HttpMessage, index_dumps, read_dump
from gateway.providers import provider_types
from gateway.providers.base import WireFormat
from gateway.providers.records import ModelThought, TokenUsage, ToolUsage, UpstreamError
from gateway.providers.sse import SSEDecoder
from gateway.retention import prune_dumps
from gateway.units import parse_duration
from schema.models import Interception, User

Exporter = Callable[[Sequence[DumpEntry], Path], int]
"""Writes dumps to a file; returns how many were written."""


@dataclass(frozen=True)
class DumpExporters:
    """The file writers of `dumps export`: mitmproxy's flow file and HAR writers, given by the
    console script (addons.flowfile), so that gateway/ never imports addons/ or mitmproxy."""

    flows: Exporter
    har: Exporter


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DirOpt = Annotated[str | None, typer.Option("--dir", help="Dump folder (default: dump_dir).")]


@dataclass
class Recorded:
    """What the database knows about a dump's interception (`status`: the interception's)."""

    user: str | None = None
    model: str | None = None
    status: str | None = None
    provider_type: str | None = None
    api: str | None = None


def _base(ctx: typer.Context, folder: str | None) -> Path:
    base = folder or state(ctx).loaded().settings.dump_dir
    if not base:
        output.usage_error("no dump folder: set dump_dir (AI_GATEWAY_DUMP_DIR) or pass --dir")
    path = Path(base)
    if not path.is_dir():
        output.fail(f"dump folder {path} does not exist")
    return path


def recorded(ctx: typer.Context, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Recorded] | None:
    """user, model, status, type and API of the recorded interceptions; None without a database."""
    from gateway.runtime import open_engine

    try:
        engine = open_engine(state(ctx).loaded().settings)
    except Exception as exc:  # noqa: BLE001 - dumps are readable without the database
        output.info(f"database unreachable, showing dumps only: {exc}")
        return None
    found: dict[uuid.UUID, Recorded] = {}
    t, u = Interception.__table__.c, User.__table__.c  # type: ignore[attr-defined]
    try:
        with Session(engine) as s:
            for start in range(0, len(ids), 500):
                stmt = (
                    select(t.id, u.username, t.model, t.status, t.provider_type, t.api)
                    .outerjoin(User.__table__, u.id == t.initiator_id)  # type: ignore[attr-defined]
                    .where(t.id.in_(ids[start : start + 500]))
                )
                for iid, *rest in s.execute(stmt):
                    found[iid] = Recorded(*rest)
    finally:
        engine.dispose()
    return found


def _row(d: DumpEntry, r: Recorded | None) -> dict[str, Any]:
    row = asdict(d)
    row["id"], row["http_status"] = str(row.pop("interception_id")), row.pop("status")
    return {"id": row.pop("id"), **row, **asdict(r or Recorded())}


def _matches(row: dict[str, Any], want: dict[str, Any], since: datetime | None) -> bool:
    status = want.pop("status")
    if status is not None and status not in (str(row["http_status"]), row["status"]):
        return False
    if since is not None and row["started_at"] < since:
        return False
    return all(v is None or row[k] == v for k, v in want.items())


def find_dump(base: Path, ref: str) -> DumpEntry:
    ref = ref.strip().lower()
    matches = [d for d in index_dumps(base) if str(d.interception_id).startswith(ref)]
    if len(ref) < 4 or not matches:
        output.fail(f"no dump {ref!r} under {base}")
    if len(matches) > 1:
        output.usage_error(f"dump id {ref!r} is ambiguous ({len(matches)} dumps)")
    return matches[0]


# --- reading a response body: SSE events, assembled text/thinking/tools/usage --------------


def wire_for(api: str | None, target: str) -> WireFormat | None:
    """The wire format of a dump: by the recorded API name, else by the request path."""
    path = target.partition("?")[0]
    routes = [r for t in provider_types().values() for r in t.routes if r.wire is not None]
    for route in routes:
        if api and route.wire is not None and route.wire.name == api:
            return route.wire
    return next((r.wire for r in routes if "*" not in r.pattern and path.endswith(r.pattern)), None)


def _delta_text(obj: Any, depth: int = 0) -> str:
    """Text deltas in an event, by shape: `text`/`content` strings of a `delta` object, and a
    `delta` string of an `*output_text.delta` event (reasoning and tool deltas excluded)."""
    if isinstance(obj, list) and depth < 5:
        return "".join(_delta_text(v, depth + 1) for v in obj)
    if not isinstance(obj, dict) or depth >= 5:
        return ""
    delta, out = obj.get("delta"), ""
    if isinstance(delta, dict):
        out = "".join(
            v for k, v in delta.items() if k in ("text", "content") and isinstance(v, str)
        )
    elif isinstance(delta, str) and str(obj.get("type", "")).endswith("output_text.delta"):
        out = delta
    nested = (v for k, v in obj.items() if k != "delta" and isinstance(v, list | dict))
    return out + "".join(_delta_text(v, depth + 1) for v in nested)


def assemble(body: bytes, wire: WireFormat | None) -> dict[str, Any]:
    """SSE events with their text, and the wire parser's records assembled."""
    decoder, events = SSEDecoder(), []
    for i, ev in enumerate(decoder.feed(body) + decoder.feed(b"")):
        try:
            data: Any = orjson.loads(ev.data) if ev.data.strip() else None
        except orjson.JSONDecodeError:
            data = ev.data
        events.append({"index": i, "event": ev.event, "text": _delta_text(data), "data": data})
    parser = wire.stream_parser() if wire is not None else None
    records = parser.feed(body) + parser.feed(b"") if parser is not None else []
    usage = dict.fromkeys(("input", "output", "cache_read", "cache_write"), 0)
    for rec in (r for r in records if isinstance(r, TokenUsage)):
        usage = {name: n + getattr(rec, name) for name, n in usage.items()}
    tools = [t for t in records if isinstance(t, ToolUsage)]
    return {
        "events": events,
        "text": "".join(e["text"] for e in events),
        "thinking": [r.content for r in records if isinstance(r, ModelThought)],
        "tool_calls": [
            {"id": t.tool_call_id, "name": t.name, "arguments": t.arguments} for t in tools
        ],
        "usage": usage,
        "errors": [r.message for r in records if isinstance(r, UpstreamError)],
    }


def _body_view(msg: HttpMessage) -> Any:
    if "json" in (msg.header("content-type") or "").lower():
        try:
            return orjson.loads(msg.body)
        except orjson.JSONDecodeError:
            pass
    return msg.body.decode("utf-8", "replace")


def _is_sse(msg: HttpMessage | None) -> bool:
    return msg is not None and (msg.header("content-type") or "").startswith("text/event-stream")


def message_view(msg: HttpMessage | None, wire: WireFormat | None = None) -> Any:
    if msg is None:
        return None
    view: dict[str, Any] = {
        "start_line": msg.start_line,
        "headers": [[k, v] for k, v in msg.headers],
    }
    if _is_sse(msg):
        view["stream"] = assemble(msg.body, wire)
    else:
        view["body"] = _body_view(msg)
    return view


# --- commands --------------------------------------------------------------------------------


def _list(
    ctx: typer.Context,
    folder: DirOpt = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or age (7d).")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's (database).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model (database).")] = None,
    status: Annotated[
        str | None, typer.Option(help="HTTP status (429) or interception status (completed).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List dumps, newest first, joined with their interceptions when the database is up."""
    base = _base(ctx, folder)
    entries = index_dumps(base)
    joined = recorded(ctx, [d.interception_id for d in entries]) if entries else {}
    if joined is None and (user or model):
        output.fail("--user and --model need the database")
    joined, when = joined or {}, parse_when(since)
    rows = [_row(d, joined.get(d.interception_id)) for d in entries]
    want = {"provider": provider, "user": user, "model": model}
    rows = [r for r in rows if _matches(r, {**want, "status": status}, when)]
    if as_json:
        output.print_json(rows)
        return
    for r in rows:
        r["provider"] += " (passthrough)" if r["passthrough"] else ""
        r["request"] = f"{r['method'] or '-'} {r['target'] or '-'}"
    columns = ("id", "started_at", "provider", "request", "http_status", "user", "model", "status")
    output.print_table(
        f"dumps in {base}", [*columns, "size"], [[r[c] for c in (*columns, "size")] for r in rows]
    )


def _show(
    ctx: typer.Context,
    dump_id: Annotated[str, typer.Argument(help="Interception id.")],
    folder: DirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One dump: headers, pretty JSON, SSE events with the text, thinking and tool calls."""
    entry = find_dump(_base(ctx, folder), dump_id)
    req, resp = read_dump(entry)
    rec = (recorded(ctx, [entry.interception_id]) or {}).get(entry.interception_id)
    wire = wire_for(rec.api if rec else None, req.parts[1] if req and len(req.parts) > 1 else "")
    view = {
        "id": str(entry.interception_id),
        "provider": entry.provider,
        "passthrough": entry.passthrough,
        "started_at": entry.started_at,
        "recorded": asdict(rec) if rec else None,
        "request": message_view(req),
        "response": message_view(resp, wire),
    }
    if as_json:
        output.print_json(view)
        return
    for title, msg in (("request", view["request"]), ("response", view["response"])):
        if msg is not None:
            _print_message(title, msg)


def _print_message(title: str, msg: dict[str, Any]) -> None:
    output.print_kv(f"{title}: {msg['start_line']}", [(k, v) for k, v in msg["headers"]])
    if "body" in msg:
        body = msg["body"]
        text = (
            body
            if isinstance(body, str)
            else orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
        )
        if text:
            output.say(text)
        return
    stream = msg["stream"]
    output.print_table(
        f"{len(stream['events'])} events",
        ["#", "event", "text"],
        [(e["index"], e["event"], e["text"]) for e in stream["events"]],
    )
    usage = stream["usage"]
    output.print_kv(
        "assembled",
        [
            ("text", stream["text"]),
            ("thinking", "\n".join(stream["thinking"]) or None),
            ("errors", "\n".join(stream["errors"]) or None),
            (
                "tokens",
                f"in {usage['input']} out {usage['output']} cache read "
                f"{usage['cache_read']} write {usage['cache_write']}",
            ),
        ],
    )
    if stream["tool_calls"]:
        output.print_table(
            "tool calls",
            ["id", "tool", "arguments"],
            [(t["id"], t["name"], t["arguments"]) for t in stream["tool_calls"]],
        )


def _export_command(exporters: DumpExporters | None) -> Callable[..., None]:
    def export(
        ctx: typer.Context,
        dump_ids: Annotated[
            list[str] | None, typer.Argument(help="Interception ids (or unique prefixes).")
        ] = None,
        folder: DirOpt = None,
        har: Annotated[str | None, typer.Option("--har", help="Write HAR 1.2 here.")] = None,
        flows: Annotated[
            str | None,
            typer.Option("--flows", help="Write a mitmproxy flow file here (mitmweb -r FILE)."),
        ] = None,
        every: Annotated[bool, typer.Option("--all", help="Every dump.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Export dumps as HAR and/or a mitmproxy flow file (files are 0600)."""
        if not har and not flows:
            output.usage_error("give --har FILE and/or --flows FILE")
        if exporters is None:
            output.usage_error("export needs mitmproxy: run it through the aibridge command")
        base = _base(ctx, folder)
        entries = index_dumps(base) if every else [find_dump(base, i) for i in dump_ids or []]
        if not entries:
            output.usage_error("give dump ids, or --all")
        result = {"dumps": len(entries), "har": har, "flows": flows}
        if har:
            result["har_entries"] = exporters.har(entries, Path(har))
        if flows:
            result["flows_written"] = exporters.flows(entries, Path(flows))
        if as_json:
            output.print_json(result)
        else:
            targets = " and ".join(p for p in (har, flows) if p)
            output.say(f"exported {len(entries)} dumps to {targets}")

    return export


def _prune(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option("--older-than", help="e.g. 7d, 12h.")],
    folder: DirOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete dump files older than --older-than (by the time in their names)."""
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        output.usage_error(str(exc))
    cutoff = datetime.now(UTC) - age
    count = prune_dumps(_base(ctx, folder), cutoff, dry_run=dry_run)
    if as_json:
        output.print_json({"dump_files": count, "cutoff": cutoff, "dry_run": dry_run})
    else:
        output.say(
            f"{'would delete' if dry_run else 'deleted'} {count} dump files older than {older_than}"
        )


def make_dumps_app(exporters: DumpExporters | None = None) -> typer.Typer:
    """The `dumps` sub-app; `exporters` (addons.flowfile.EXPORTERS) enable `export`."""
    app = typer.Typer(
        help="API dumps: list, show, export (HAR, mitmproxy flows), prune.", no_args_is_help=True
    )
    app.command("list")(_list)
    app.command("show")(_show)
    app.command("export")(_export_command(exporters))
    app.command("prune")(_prune)
    return app
