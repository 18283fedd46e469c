"""`aibridge dumps list|show|export|prune` on a dump folder written by gateway.dumps, joined
with interceptions in a SQLite (and PostgreSQL) database."""

from __future__ import annotations

import json
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from mitmproxy import io as mio
from mitmproxy.http import HTTPFlow
from sqlmodel import Session
from typer.testing import CliRunner, Result

from addons.cli import build
from addons.flowfile import EXPORTERS, request_origin
from gateway.cli.app import make_app
from gateway.cli.dumps import make_dumps_app
from gateway.db import make_engine, prepare_database
from gateway.dumps import DumpWriter, parse_message
from gateway.redaction import SecretScrubber
from schema.models import Interception, User

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SSE = (FIXTURES / "messages" / "thinking_tools_cache.sse").read_bytes()
REQUEST = orjson.dumps(
    {
        "model": "claude-opus-4-8",
        "stream": True,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "read it"}],
    }
)
CHAT_SSE = (
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant",'
    b'"content":"Hel"}}]}\n\n'
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
    b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,'
    b'"total_tokens":11}}\n\ndata: [DONE]\n\n'
)


def factory(exporters: bool = True) -> typer.Typer:
    """The console script (mitmproxy exporters), or the plain admin app (none)."""
    app = build() if exporters else make_app()
    if "dumps" not in {g.name for g in app.registered_groups}:  # not registered there yet
        app.add_typer(make_dumps_app(EXPORTERS if exporters else None), name="dumps")
    return app


@dataclass
class World:
    tmp: Path
    db_url: str
    base: Path
    sse_id: uuid.UUID
    json_id: uuid.UUID
    models_id: uuid.UUID
    chat_id: uuid.UUID

    def run(self, *args: str, db_url: str | None = None, flows: bool = True) -> Result:
        root = ["--database-url", db_url or self.db_url, "--data-dir", str(self.tmp / "data")]
        return CliRunner().invoke(
            factory(flows),
            [*root, "dumps", *args],
            env={"AI_GATEWAY_DUMP_DIR": str(self.base), "COLUMNS": "300"},
            catch_exceptions=False,
        )

    def json(self, *args: str, **kw: Any) -> Any:
        result = self.run(*args, "--json", **kw)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)


def write(
    base: Path,
    provider: str,
    when: datetime,
    *,
    method: str,
    target: str,
    body: bytes,
    status: int,
    ctype: str,
    resp: bytes,
    passthrough: bool = False,
) -> uuid.UUID:
    iid = uuid.uuid4()
    dump = DumpWriter(base).open(
        provider=provider,
        interception_id=iid,
        passthrough=passthrough,
        when=when,
        scrubber=SecretScrubber(),
    )
    assert dump is not None
    dump.request(
        method=method,
        target=target,
        version="HTTP/1.1",
        body=body,
        ctype="application/json",
        headers=[
            ("Host", "api.anthropic.com" if provider == "anthropic" else "127.0.0.1:8123"),
            ("content-type", "application/json"),
            ("x-api-key", "sk-ant-api03-cli-test-key-0000"),
        ],
    )
    dump.response_head(
        version="HTTP/1.1",
        status=status,
        reason="OK" if status < 400 else "Too Many Requests",
        headers=[("content-type", ctype)],
    )
    if ctype == "text/event-stream":
        dump.stream(resp)
        dump.stream(b"")
    else:
        dump.response_body(resp, ctype)
    dump.close()
    return iid


def seed(db_url: str, rows: list[tuple[uuid.UUID, str, str, str, str, str]]) -> None:
    """Users and interceptions for (id, user, model, status, provider type, api)."""
    engine = make_engine(db_url)
    prepare_database(engine)
    with Session(engine) as s:
        users = {name: User(username=name) for name in {r[1] for r in rows}}
        s.add_all(users.values())
        s.flush()
        for iid, user, model, status, ptype, api in rows:
            s.add(
                Interception(
                    id=iid,
                    initiator_id=users[user].id,
                    provider_type=ptype,
                    provider_name=ptype,
                    api=api,
                    model=model,
                    status=status,
                )
            )
        s.commit()
    engine.dispose()


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> World:
    base, now = tmp_path / "dumps", datetime.now(UTC)
    error = b'{"type":"error","error":{"type":"rate_limit_error"}}'
    post: dict[str, Any] = {"method": "POST", "body": REQUEST, "status": 200}
    sse_id = write(
        base,
        "anthropic",
        now - timedelta(minutes=3),
        **post,
        target="/v1/messages?beta=true",
        ctype="text/event-stream",
        resp=SSE,
    )
    json_id = write(
        base,
        "anthropic",
        now - timedelta(days=2),
        **{**post, "status": 429},
        target="/v1/messages",
        ctype="application/json",
        resp=error,
    )
    models_id = write(
        base,
        "anthropic",
        now - timedelta(minutes=1),
        method="GET",
        body=b"",
        status=200,
        target="/v1/models",
        ctype="application/json",
        resp=b'{"data":[]}',
        passthrough=True,
    )
    chat_id = write(
        base,
        "openai",
        now - timedelta(minutes=2),
        **post,
        target="/v1/chat/completions",
        ctype="text/event-stream",
        resp=CHAT_SSE,
    )
    seed(
        db_url,
        [
            (sse_id, "alice", "claude-opus-4-8", "completed", "anthropic", "anthropic.messages"),
            (json_id, "bob", "claude-haiku", "upstream_error", "anthropic", "anthropic.messages"),
            (chat_id, "alice", "gpt-x", "completed", "openai", "openai.chat"),
        ],
    )
    return World(tmp_path, db_url, base, sse_id, json_id, models_id, chat_id)


def test_list_joins_the_database_and_filters(world: World) -> None:
    rows = world.json("list")
    assert [r["id"] for r in rows] == [
        str(world.models_id),
        str(world.chat_id),
        str(world.sse_id),
        str(world.json_id),
    ]
    by_id = {r["id"]: r for r in rows}
    sse = by_id[str(world.sse_id)]
    assert (
        sse["provider"],
        sse["passthrough"],
        sse["method"],
        sse["target"],
        sse["http_status"],
        sse["content_type"],
        sse["user"],
        sse["model"],
        sse["status"],
    ) == (
        "anthropic",
        False,
        "POST",
        "/v1/messages?beta=true",
        200,
        "text/event-stream",
        "alice",
        "claude-opus-4-8",
        "completed",
    )
    models = by_id[str(world.models_id)]
    assert models["passthrough"] is True and models["user"] is None
    assert "/passthrough/" in models["request_file"]
    assert [r["id"] for r in world.json("list", "--provider", "openai")] == [str(world.chat_id)]
    assert [r["id"] for r in world.json("list", "--user", "bob")] == [str(world.json_id)]
    assert [r["id"] for r in world.json("list", "--model", "gpt-x")] == [str(world.chat_id)]
    assert [r["id"] for r in world.json("list", "--status", "429")] == [str(world.json_id)]
    assert [r["id"] for r in world.json("list", "--status", "upstream_error")] == [
        str(world.json_id)
    ]
    assert len(world.json("list", "--since", "1d")) == 3
    table = world.run("list")
    assert table.exit_code == 0 and "anthropic (passthrough)" in table.stdout
    assert str(world.sse_id) in table.stdout and "claude-opus-4-8" in table.stdout


def test_list_without_the_database(world: World) -> None:
    dead = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    rows = world.json("list", db_url=dead)
    assert len(rows) == 4 and all(r["user"] is None for r in rows)
    result = world.run("list", "--user", "alice", db_url=dead)
    assert result.exit_code == 1 and "need the database" in result.stderr


def test_show_assembles_the_stream(world: World) -> None:
    view = world.json("show", str(world.sse_id)[:8])
    assert view["id"] == str(world.sse_id) and view["recorded"]["api"] == "anthropic.messages"
    req = view["request"]
    assert req["start_line"] == "POST /v1/messages?beta=true HTTP/1.1"
    assert ["x-api-key", "sk-a...0000"] in req["headers"]
    assert req["body"]["messages"][0]["content"] == "read it"
    stream = view["response"]["stream"]
    assert stream["text"] == "Reading it."
    assert stream["thinking"] == ["Let me check the file."]
    assert [(t["id"], t["name"], t["arguments"]) for t in stream["tool_calls"]] == [
        ("toolu_read", "Read", '{"file_path":"/tmp/é.txt"}'),
        ("toolu_nodelta", "Noop", '{"a":1}'),
    ]
    assert stream["usage"] == {"input": 12, "output": 321, "cache_read": 30000, "cache_write": 2048}
    assert stream["events"][0]["event"] == "message_start"
    chat = world.json("show", str(world.chat_id))["response"]["stream"]
    assert chat["text"] == "Hello" and chat["usage"]["input"] == 9
    blocking = world.json("show", str(world.json_id))["response"]
    assert blocking["start_line"] == "HTTP/1.1 429 Too Many Requests"
    assert blocking["body"]["error"]["type"] == "rate_limit_error"
    rich = world.run("show", str(world.sse_id))
    assert rich.exit_code == 0
    for text in ("Reading it.", "Let me check the file.", "toolu_read", "cache read 30000"):
        assert text in rich.stdout


def test_show_unknown_or_short_id_fails(world: World) -> None:
    assert world.run("show", "ffffffff").exit_code == 1
    assert world.run("show", "ab").exit_code == 1


def test_export_har(world: World) -> None:
    out = world.tmp / "out.har"
    result = world.json("export", str(world.sse_id), str(world.models_id), "--har", str(out))
    assert result["dumps"] == 2 and result["har_entries"] == 2
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    har = json.loads(out.read_text())
    assert har["log"]["version"] == "1.2"
    first, second = har["log"]["entries"]
    assert first["request"]["method"] == "POST"
    assert first["request"]["url"] == "https://api.anthropic.com/v1/messages?beta=true"
    assert first["request"]["queryString"] == [{"name": "beta", "value": "true"}]
    assert json.loads(first["request"]["postData"]["text"])["model"] == "claude-opus-4-8"
    assert first["response"]["status"] == 200
    assert first["response"]["content"]["mimeType"] == "text/event-stream"
    assert "Reading it." in first["response"]["content"]["text"]
    assert second["request"]["url"] == "https://api.anthropic.com/v1/models"
    assert second["comment"] == f"aibridge dump {world.models_id} (provider anthropic)"
    assert {"name": "x-api-key", "value": "sk-a...0000"} in first["request"]["headers"]
    everything = world.json("export", "--all", "--har", str(out))
    assert everything["dumps"] == 4 and len(json.loads(out.read_text())["log"]["entries"]) == 4


def test_export_flows_loads_in_mitmproxy(world: World) -> None:
    out = world.tmp / "out.flows"
    result = world.json("export", str(world.json_id), str(world.chat_id), "--flows", str(out))
    assert result["flows_written"] == 2
    with out.open("rb") as fh:
        flows = [f for f in mio.FlowReader(fh).stream() if isinstance(f, HTTPFlow)]
    assert [f.id for f in flows] == [str(world.json_id), str(world.chat_id)]
    blocking, chat = flows
    assert (
        blocking.request.method,
        blocking.request.scheme,
        blocking.request.host,
        blocking.request.port,
        blocking.request.path,
    ) == ("POST", "https", "api.anthropic.com", 443, "/v1/messages")
    assert orjson.loads(blocking.request.content or b"")["model"] == "claude-opus-4-8"
    assert blocking.response is not None and blocking.response.status_code == 429
    assert orjson.loads(blocking.response.content or b"")["error"]["type"] == "rate_limit_error"
    assert (chat.request.scheme, chat.request.host, chat.request.port) == (
        "http",
        "127.0.0.1",
        8123,
    )
    assert chat.response is not None and chat.response.content == CHAT_SSE
    assert chat.response.headers["content-length"] == str(len(CHAT_SSE))


def test_export_usage_errors(world: World) -> None:
    assert world.run("export", str(world.sse_id)).exit_code == 2
    assert world.run("export", "--har", str(world.tmp / "x.har")).exit_code == 2
    no_mitm = world.run("export", str(world.sse_id), "--flows", str(world.tmp / "f"), flows=False)
    assert no_mitm.exit_code == 2 and "mitmproxy" in no_mitm.stderr


def test_prune(world: World) -> None:
    counted = world.json("prune", "--older-than", "1d", "--dry-run")
    assert counted["dump_files"] == 2 and counted["dry_run"] is True
    assert len(world.json("list")) == 4
    assert world.json("prune", "--older-than", "1d")["dump_files"] == 2
    assert {r["id"] for r in world.json("list")} == {
        str(world.sse_id),
        str(world.models_id),
        str(world.chat_id),
    }
    assert world.run("prune", "--older-than", "later").exit_code == 2


def test_no_dump_folder_is_a_usage_error(world: World) -> None:
    root = ["--database-url", world.db_url, "--data-dir", str(world.tmp / "data")]
    result = CliRunner().invoke(
        factory(), [*root, "dumps", "list"], env={"AI_GATEWAY_DUMP_DIR": ""}, catch_exceptions=False
    )
    assert result.exit_code == 2
    missing = world.run("list", "--dir", str(world.tmp / "nope"))
    assert missing.exit_code == 1


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("api.anthropic.com", ("https", "api.anthropic.com", 443)),
        ("127.0.0.1:8123", ("http", "127.0.0.1", 8123)),
        ("example.com:443", ("https", "example.com", 443)),
        ("[::1]:9000", ("http", "::1", 9000)),
        ("[::1]", ("https", "::1", 443)),
    ],
)
def test_request_origin(host: str, origin: tuple[str, str, int]) -> None:
    msg = parse_message(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert request_origin(msg) == origin
