"""aibridge dumps list | show ID | export ID... --har FILE / --flows FILE | prune --older-than

Reads the dump folder (`dump_dir`, or `--dir`) and, when the database is reachable, joins each
dump with its interception (user, model, status). `--flows` needs mitmproxy: the console
script passes a writer in (`make_dumps_app(export_flows=...)`), gateway/ never imports addons/.
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
from sqlalchemy import Engine, select
from sqlmodel import Session

from gateway.cli import output
from gateway.cli.context import state
from gateway.cli.interceptions import parse_when
from gateway.dumps import DumpEntry, HttpMessage, index_dumps, read_dump, request_origin
from gateway.providers import provider_types
from gateway.providers.base import WireFormat
from gateway.providers.records import ModelThought, TokenUsage, ToolUsage, UpstreamError
from gateway.providers.sse import SSEDecoder
from gateway.retention import prune_dumps
from gateway.units import parse_duration
from schema.models import Interception, User

FlowExporter = Callable[[Sequence[DumpEntry], Path], int]
"""Writes dumps to a mitmproxy flow file; returns how many flows were written."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DirOpt = Annotated[str | None, typer.Option("--dir", help="Dump folder (default: dump_dir).")]


@dataclass
class Recorded:
    user: str | None
    model: str | None
    status: str | None
    provider_type: str
    api: str


def _base(ctx: typer.Context, folder: str | None) -> Path:
    base = folder or state(ctx).loaded().settings.dump_dir
    if not base:
        output.usage_error("no dump folder: set dump_dir (AI_GATEWAY_DUMP_DIR) or pass --dir")
    path = Path(base)
    if not path.is_dir():
        output.fail(f"dump folder {path} does not exist")
    return path


def _engine(ctx: typer.Context) -> Engine | None:
    from gateway.runtime import open_engine

    try:
        return open_engine(state(ctx).loaded().settings)
    except Exception as exc:  # noqa: BLE001 - dumps are readable without the database
        output.info(f"database unreachable, showing dumps only: {exc}")
        return None


def recorded(engine: Engine | None, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Recorded]:
    """user, model, status, provider type and API of the interceptions that were recorded."""
    found: dict[uuid.UUID, Recorded] = {}
    if engine is None:
        return found
    t, u = Interception.__table__.c, User.__table__.c  # type: ignore[attr-defined]
    with Session(engine) as s:
        for start in range(0, len(ids), 500):
            stmt = (select(t.id, u.username, t.model, t.status, t.provider_type, t.api)
                    .outerjoin(User.__table__, u.id == t.initiator_id)  # type: ignore[attr-defined]
                    .where(t.id.in_(ids[start:start + 500])))
            for iid, *rest in s.execute(stmt):
                found[iid] = Recorded(*rest)
    return found


def _row(d: DumpEntry, r: Recorded | None) -> dict[str, Any]:
    return {"id": str(d.interception_id), "provider": d.provider, "passthrough": d.passthrough,
            "started_at": d.started_at, "method": d.method, "target": d.target,
            "http_status": d.status, "content_type": d.content_type, "size": d.size,
            "user": r.user if r else None, "model": r.model if r else None,
            "status": r.status if r else None,
            "request_file": str(d.request_file) if d.request_file else None,
            "response_file": str(d.response_file) if d.response_file else None}


def _matches(row: dict[str, Any], provider: str | None, user: str | None, model: str | None,
             status: str | None, since: datetime | None) -> bool:
    if status is not None and str(row["http_status"]) != status and row["status"] != status:
        return False
    return ((provider is None or row["provider"] == provider)
            and (user is None or row["user"] == user) and (model is None or row["model"] == model)
            and (since is None or row["started_at"] >= since))


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
    return next((r.wire for r in routes if "*" not in r.pattern and path.endswith(r.pattern)),
                None)


def _delta_text(obj: Any, depth: int = 0) -> str:
    """Text deltas in an event, by shape: `text`/`content` strings of a `delta` object, and a
    `delta` string of an `*output_text.delta` event (reasoning and tool deltas excluded)."""
    if depth > 4:
        return ""
    if isinstance(obj, list):
        return "".join(_delta_text(v, depth + 1) for v in obj)
    if not isinstance(obj, dict):
        return ""
    out = ""
    delta = obj.get("delta")
    if isinstance(delta, dict):
        out += "".join(v for k, v in delta.items() if k in ("text", "content") and
                       isinstance(v, str))
    elif isinstance(delta, str) and str(obj.get("type", "")).endswith("output_text.delta"):
        out += delta
    return out + "".join(_delta_text(v, depth + 1) for k, v in obj.items()
                         if k != "delta" and isinstance(v, list | dict))


def assemble(body: bytes, wire: WireFormat | None) -> dict[str, Any]:
    listed, text = [], []
    for i, ev in enumerate(_events(body)):
        try:
            data: Any = orjson.loads(ev.data) if ev.data.strip() else None
        except orjson.JSONDecodeError:
            data = ev.data
        piece = _delta_text(data)
        text.append(piece)
        listed.append({"index": i, "event": ev.event, "text": piece, "data": data})
    records = _records(body, wire)
    usage = [0, 0, 0, 0]
    for rec in records:
        if isinstance(rec, TokenUsage):
            for n, v in enumerate((rec.input, rec.output, rec.cache_read, rec.cache_write)):
                usage[n] += v
    return {
        "events": listed, "text": "".join(text),
        "thinking": [r.content for r in records if isinstance(r, ModelThought)],
        "tool_calls": [{"id": r.tool_call_id, "name": r.name, "arguments": r.arguments}
                       for r in records if isinstance(r, ToolUsage)],
        "errors": [r.message for r in records if isinstance(r, UpstreamError)],
        "usage": dict(zip(("input", "output", "cache_read", "cache_write"), usage, strict=True)),
    }


def _events(body: bytes) -> list[Any]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.feed(b"")


def _records(body: bytes, wire: WireFormat | None) -> list[Any]:
    if wire is None:
        return []
    parser = wire.stream_parser()
    return parser.feed(body) + parser.feed(b"")


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
    view: dict[str, Any] = {"start_line": msg.start_line,
                            "headers": [[k, v] for k, v in msg.headers]}
    if _is_sse(msg):
        view["stream"] = assemble(msg.body, wire)
    else:
        view["body"] = _body_view(msg)
    return view


# --- HAR 1.2 ---------------------------------------------------------------------------------


def _har_message(msg: HttpMessage) -> dict[str, Any]:
    return {"httpVersion": msg.parts[-1] if not msg.start_line.startswith("HTTP/")
            else msg.parts[0], "cookies": [], "headersSize": -1, "bodySize": len(msg.body),
            "headers": [{"name": k, "value": v} for k, v in msg.headers]}


def har_entry(entry: DumpEntry, req: HttpMessage, resp: HttpMessage | None) -> dict[str, Any]:
    scheme, host, port = request_origin(req)
    method, target = [*req.parts, "", ""][:2]
    default = (scheme, port) in (("https", 443), ("http", 80))
    url = f"{scheme}://{host}{'' if default else f':{port}'}{target}"
    query = [{"name": k, "value": v} for k, _, v in
             (p.partition("=") for p in target.partition("?")[2].split("&") if p)]
    request = {**_har_message(req), "method": method, "url": url, "queryString": query}
    if req.body:
        request["postData"] = {"mimeType": req.header("content-type") or "",
                               "text": req.body.decode("utf-8", "replace")}
    response: dict[str, Any] = {"status": 0, "statusText": "", "httpVersion": "", "cookies": [],
                                "headers": [], "headersSize": -1, "bodySize": -1,
                                "content": {"size": 0, "mimeType": ""}, "redirectURL": ""}
    if resp is not None:
        response.update(_har_message(resp), status=resp.status or 0,
                        statusText=[*resp.parts, "", "", ""][2])
        response["content"] = {"size": len(resp.body),
                               "mimeType": resp.header("content-type") or "",
                               "text": resp.body.decode("utf-8", "replace")}
    return {"startedDateTime": entry.started_at.isoformat(), "time": 0, "request": request,
            "response": response, "cache": {},
            "timings": {"send": 0, "wait": 0, "receive": 0},
            "comment": f"aibridge interception {entry.interception_id} ({entry.provider})"}


def har_document(entries: Sequence[DumpEntry]) -> dict[str, Any]:
    items = []
    for entry in entries:
        req, resp = read_dump(entry)
        if req is not None:
            items.append(har_entry(entry, req, resp))
    return {"log": {"version": "1.2", "creator": {"name": "aibridge", "version": "0.1"},
                    "entries": items}}


# --- commands --------------------------------------------------------------------------------


def _list(ctx: typer.Context, folder: DirOpt = None,
          provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
          since: Annotated[str | None, typer.Option(help="ISO time or age (7d).")] = None,
          user: Annotated[str | None, typer.Option(help="Only this user's (database).")] = None,
          model: Annotated[str | None, typer.Option(help="Only this model (database).")] = None,
          status: Annotated[str | None, typer.Option(
              help="HTTP status (429) or interception status (completed).")] = None,
          as_json: JsonOpt = False) -> None:
    """List dumps, newest first, joined with their interceptions when the database is up."""
    base = _base(ctx, folder)
    entries = index_dumps(base)
    engine = _engine(ctx) if entries else None
    if (user or model) and engine is None and entries:
        output.fail("--user and --model need the database")
    joined = recorded(engine, [d.interception_id for d in entries])
    when = parse_when(since)
    rows = [_row(d, joined.get(d.interception_id)) for d in entries]
    rows = [r for r in rows if _matches(r, provider, user, model, status, when)]
    if as_json:
        output.print_json(rows)
        return
    output.print_table(f"dumps in {base}", ["id", "started", "provider", "request", "http",
                                            "user", "model", "status", "size"], [
        (r["id"], r["started_at"], r["provider"] + (" (passthrough)" if r["passthrough"] else ""),
         f"{r['method'] or '-'} {r['target'] or '-'}", r["http_status"], r["user"], r["model"],
         r["status"], r["size"]) for r in rows])


def _show(ctx: typer.Context, dump_id: Annotated[str, typer.Argument(help="Interception id.")],
          folder: DirOpt = None, as_json: JsonOpt = False) -> None:
    """One dump: headers, pretty JSON, SSE events with the text, thinking and tool calls."""
    entry = find_dump(_base(ctx, folder), dump_id)
    req, resp = read_dump(entry)
    rec = recorded(_engine(ctx), [entry.interception_id]).get(entry.interception_id)
    wire = wire_for(rec.api if rec else None, req.parts[1] if req and len(req.parts) > 1 else "")
    view = {"id": str(entry.interception_id), "provider": entry.provider,
            "passthrough": entry.passthrough, "started_at": entry.started_at,
            "recorded": asdict(rec) if rec else None,
            "request": message_view(req), "response": message_view(resp, wire)}
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
        text = body if isinstance(body, str) else orjson.dumps(
            body, option=orjson.OPT_INDENT_2).decode()
        if text:
            output.say(text)
        return
    stream = msg["stream"]
    output.print_table(f"{len(stream['events'])} events", ["#", "event", "text"],
                       [(e["index"], e["event"], e["text"]) for e in stream["events"]])
    usage = stream["usage"]
    output.print_kv("assembled", [
        ("text", stream["text"]), ("thinking", "\n".join(stream["thinking"]) or None),
        ("errors", "\n".join(stream["errors"]) or None),
        ("tokens", f"in {usage['input']} out {usage['output']} cache read "
                   f"{usage['cache_read']} write {usage['cache_write']}")])
    if stream["tool_calls"]:
        output.print_table("tool calls", ["id", "tool", "arguments"],
                           [(t["id"], t["name"], t["arguments"]) for t in stream["tool_calls"]])


def _write_private(path: Path, data: bytes) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _export_command(export_flows: FlowExporter | None) -> Callable[..., None]:
    def export(ctx: typer.Context,
               dump_ids: Annotated[list[str] | None, typer.Argument(
                   help="Interception ids (or unique prefixes).")] = None,
               folder: DirOpt = None,
               har: Annotated[str | None, typer.Option("--har", help="Write HAR 1.2 here.")] = None,
               flows: Annotated[str | None, typer.Option(
                   "--flows", help="Write a mitmproxy flow file here (mitmweb -r FILE).")] = None,
               every: Annotated[bool, typer.Option("--all", help="Every dump.")] = False,
               as_json: JsonOpt = False) -> None:
        """Export dumps as HAR and/or a mitmproxy flow file (files are 0600)."""
        if not har and not flows:
            output.usage_error("give --har FILE and/or --flows FILE")
        if flows and export_flows is None:
            output.usage_error("--flows needs mitmproxy: run it through the aibridge command")
        base = _base(ctx, folder)
        entries = index_dumps(base) if every else [find_dump(base, i) for i in dump_ids or []]
        if not entries:
            output.usage_error("give dump ids, or --all")
        result: dict[str, Any] = {"dumps": len(entries), "har": har, "flows": flows}
        if har:
            _write_private(Path(har), orjson.dumps(har_document(entries),
                                                   option=orjson.OPT_INDENT_2))
        if flows and export_flows is not None:
            result["flows_written"] = export_flows(entries, Path(flows))
        if as_json:
            output.print_json(result)
        else:
            output.say(f"exported {len(entries)} dumps" + (f" to {har}" if har else "")
                       + (f" and {flows}" if har and flows else f" to {flows}" if flows else ""))

    return export


def _prune(ctx: typer.Context,
           older_than: Annotated[str, typer.Option("--older-than", help="e.g. 7d, 12h.")],
           folder: DirOpt = None,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only.")] = False,
           as_json: JsonOpt = False) -> None:
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
        output.say(f"{'would delete' if dry_run else 'deleted'} {count} dump files "
                   f"older than {older_than}")


def make_dumps_app(export_flows: FlowExporter | None = None) -> typer.Typer:
    """The `dumps` sub-app; `export_flows` (from addons.flowfile) enables `export --flows`."""
    app = typer.Typer(help="API dumps: list, show, export (HAR, mitmproxy flows), prune.",
                      no_args_is_help=True)
    app.command("list")(_list)
    app.command("show")(_show)
    app.command("export")(_export_command(export_flows))
    app.command("prune")(_prune)
    return app
