"""The real Claude Code and Codex CLIs through the real gateway, fully offline: a tool round trip
each (the fake provider asks for a harmless tool call, the CLI runs it, sends the result, the fake
answers "Done."), then the rows in the database are checked against what the fake received.

The CLIs come from `scripts/test-deps` (.cache/npm); a missing one fails the test. Each runs
with a throw-away HOME (and CODEX_HOME), stdin closed, no TTY, a hard timeout (killed with its
whole session), telemetry and updates off, and HTTP(S)_PROXY pointing at a closed loopback port
so only loopback is reachable (except the preconnect test: Claude Code skips its HEAD preconnect
when a proxy is set; it still only knows the gateway's loopback URL). A small TCP relay
(`WireTap`) between the CLI and the gateway notes what the CLI sent and what the gateway answered
(the HEAD preconnect, WebSocket attempts and their timing).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.e2e.conftest import Setup
from tests.e2e.recorded import Recorded, all_interceptions, wait_recorded
from tests.fakeprovider import load_fake_provider
from tests.harness import REPO, free_port

pytestmark = pytest.mark.cli_agents

NPM_BIN = REPO / ".cache" / "npm" / "node_modules" / ".bin"
CLAUDE = NPM_BIN / "claude"
CODEX = NPM_BIN / "codex"
CLI_TIMEOUT = 90.0
RUN_OUTPUT = "hi-from-fake"  # what the fake's TOOLRUN command prints


def require(binary: Path) -> str:
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: run scripts/test-deps (installs the agent CLIs)")
    return str(binary)


# --- a relay noting what the CLI sent and what the gateway answered ---------------------------


@dataclass
class Exchange:
    method: str
    target: str
    status: int | None
    sent_at: float  # time.monotonic() when the request's first bytes arrived
    stray: bytes = b""  # bytes after this response that do not frame as HTTP (should be none)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # request's, lower-cased

    def __str__(self) -> str:
        extra = f" + {len(self.stray)} stray bytes {self.stray[:60]!r}" if self.stray else ""
        return f"{self.method} {self.target} -> {self.status}{extra}"


@dataclass
class _Stream:
    """One direction of a relayed connection: its bytes and when each chunk arrived."""

    data: bytearray = field(default_factory=bytearray)
    chunks: list[tuple[int, float]] = field(default_factory=list)  # (start offset, monotonic)

    def time_at(self, offset: int) -> float:
        return next((t for start, t in reversed(self.chunks) if start <= offset), 0.0)


class WireTap:
    """A loopback TCP relay in front of the gateway; `exchanges()` parses the HTTP/1.1 traffic
    (keep-alive, no pipelining: what the CLIs do) into request line -> response status."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._connections: list[tuple[_Stream, _Stream]] = []
        self._sockets: list[socket.socket] = []
        self._pumps: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def url(self, provider: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/aibridge/{provider}{path}"

    def __enter__(self) -> WireTap:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for pump in self._pumps:
            pump.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            sent, received = _Stream(), _Stream()
            with self._lock:
                self._sockets += [client, upstream]
                self._connections.append((sent, received))
            for args in ((client, upstream, sent), (upstream, client, received)):
                pump = threading.Thread(target=self._pump, args=args, daemon=True)
                self._pumps.append(pump)
                pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket, log: _Stream) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                with self._lock:
                    log.chunks.append((len(log.data), time.monotonic()))
                    log.data += chunk
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def exchanges(self) -> list[Exchange]:
        out: list[Exchange] = []
        with self._lock:
            for sent, received in self._connections:
                requests, _ = _messages(bytes(sent.data), lambda n, start: False)
                methods = [start.split(b" ")[0] for _, start, _ in requests]

                def bodiless(n: int, status_line: bytes, methods: list[bytes] = methods) -> bool:
                    code = status_line[9:12]
                    return (
                        (n < len(methods) and methods[n] == b"HEAD")
                        or code[:1] == b"1"
                        or code in (b"204", b"304")
                    )

                responses, stray = _messages(bytes(received.data), bodiless)
                for n, (offset, start, fields) in enumerate(requests):
                    method, target, _ = start.decode("latin-1").split(" ", 2)
                    status = int(responses[n][1][9:12]) if n < len(responses) else None
                    garbage = stray if n == len(responses) - 1 else b""
                    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in fields.items()}
                    out.append(
                        Exchange(method, target, status, sent.time_at(offset), garbage, headers)
                    )
        return sorted(out, key=lambda e: e.sent_at)


_START_LINE = re.compile(rb"HTTP/1\.[01] \d{3}( |$)|[A-Z]+ \S+ HTTP/1\.[01]$")


def _messages(
    data: bytes,
    bodiless: Callable[[int, bytes], bool],
) -> tuple[list[tuple[int, bytes, dict[bytes, bytes]]], bytes]:
    """(offset, start line, lower-cased headers) of each HTTP/1.1 message of one direction of a
    connection, and the bytes left over that do not frame as a message (e.g. a body sent after
    a HEAD response)."""
    out: list[tuple[int, bytes, dict[bytes, bytes]]] = []
    pos = 0
    while (end := data.find(b"\r\n\r\n", pos)) >= 0:
        start, *lines = data[pos:end].split(b"\r\n")
        if not _START_LINE.match(start):
            break
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in lines)}
        out.append((pos, start, fields))
        pos = end + 4
        if bodiless(len(out) - 1, start):
            continue
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            pos = _after_chunks(data, pos)
        elif b"content-length" in fields:
            pos += int(fields[b"content-length"])
        elif start.startswith(b"HTTP/"):
            return out, b""  # a response delimited by the connection's end
    return out, data[pos:]


def _after_chunks(data: bytes, pos: int) -> int:
    while (eol := data.find(b"\r\n", pos)) >= 0:
        size = int(data[pos:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", eol)
            return trailer_end + 4 if trailer_end >= 0 else len(data)
        pos = eol + 2 + size + 2
    return len(data)


# --- running a CLI -----------------------------------------------------------------------------


@dataclass
class CliRun:
    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self, chars: int = 3000) -> str:
        return (
            f"$ {' '.join(self.cmd)}\nexit {self.returncode} after {self.seconds:.1f}s\n"
            f"--- stdout (tail) ---\n{self.stdout[-chars:]}\n"
            f"--- stderr (tail) ---\n{self.stderr[-chars:]}"
        )


def run_cli(
    cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float = CLI_TIMEOUT
) -> CliRun:
    """Run a CLI in its own session (so all its children can be killed), no stdin, bounded."""
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(proc.pid)
        stdout, stderr = proc.communicate(timeout=10)
        run = CliRun(cmd, -9, stdout, stderr, time.monotonic() - started)
        pytest.fail(f"CLI timed out after {timeout:.0f}s (killed)\n{run.tail()}")
    finally:
        _kill_session(proc.pid)  # what the CLI left behind in its own session, nothing else
    return CliRun(cmd, proc.returncode, stdout, stderr, time.monotonic() - started)


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def offline_env(home: Path, *, dead_proxy: bool = True) -> dict[str, str]:
    """A clean environment: throw-away HOME/XDG dirs; with `dead_proxy`, HTTP(S)_PROXY point at
    a closed loopback port, so only loopback (NO_PROXY) is reachable even on a connected host."""
    for sub in (".config", ".cache", ".local/share", ".local/state", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": "aibridge-test",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
    }
    if dead_proxy:
        closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = closed
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


# --- reading back the database ------------------------------------------------------------------


def closed_interceptions(engine: Engine, count: int, timeout: float = 15.0) -> list[Recorded]:
    """Wait until at least `count` interceptions exist and all are closed; all of them, in order."""
    deadline = time.monotonic() + timeout
    while True:
        rows = all_interceptions(engine)
        if len(rows) >= count and all(r.ended_at is not None for r in rows):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"wanted {count} closed interceptions, have {[(r.id, r.ended_at) for r in rows]}"
            )
        time.sleep(0.05)
    recs = [wait_recorded(engine, r.id) for r in rows]
    return sorted(recs, key=lambda r: r.interception.started_at)


def anthropic_usage(request_json: Any) -> tuple[int, int, int, int]:
    u = load_fake_provider().expected_usage("anthropic", request_json)
    return (
        u["input_tokens"],
        u["output_tokens"],
        u["cache_read_input_tokens"],
        u["cache_creation_input_tokens"],
    )


def responses_usage(request_json: Any) -> tuple[int, int, int, int]:
    u = load_fake_provider().expected_usage("responses", request_json)
    cached = u["input_tokens_details"]["cached_tokens"]
    return (u["input_tokens"] - cached, u["output_tokens"], cached, 0)


def diagnostics(setup: Setup, run: CliRun | None, tap: WireTap | None = None) -> str:
    wire = "\n".join(map(str, tap.exchanges())) if tap else "(no tap)"
    fake = "\n".join(f"{r.method} {r.path}?{r.query}" for r in setup.fake.requests)
    return (
        f"{run.tail() if run else ''}\n--- CLI <-> gateway ---\n{wire}\n"
        f"--- fake provider saw ---\n{fake}\n"
        f"--- gateway log (tail) ---\n{setup.gw.logs()[-4000:]}"
    )


def assert_gateway_token_hidden(setup: Setup, key_header: str, key_value: str) -> None:
    """The provider saw its own key, never the user's gateway token (headers or body)."""
    assert setup.fake.requests
    for r in setup.fake.requests:
        leaked = [k for k, v in r.headers if setup.token in v]
        assert not leaked and setup.token.encode() not in r.body, (leaked, r.method, r.path)
        assert r.header(key_header) == key_value, r.headers


def clean_wire(tap: WireTap, why: str) -> list[Exchange]:
    """The relayed exchanges, each response framed cleanly (no bytes after a message's end)."""
    wire = tap.exchanges()
    assert not [str(e) for e in wire if e.stray], why
    return wire


@pytest.fixture
def tap(setup: Setup) -> Iterator[WireTap]:
    with WireTap(setup.gw.port) as relay:
        yield relay


# --- Claude Code -------------------------------------------------------------------------------


def run_claude(
    setup: Setup,
    tap: WireTap,
    workdir: Path,
    prompt: str,
    *,
    auth_env: str,
    essential_traffic_only: bool = True,
) -> CliRun:
    """`claude -p` through the relay. Without `essential_traffic_only` Claude Code also sends its
    preconnect `HEAD <base>/api/hello`, which it skips when a proxy is set: then no dead proxy."""
    home, cwd = workdir / "home", workdir / "project"
    cwd.mkdir(parents=True, exist_ok=True)
    env = offline_env(home, dead_proxy=essential_traffic_only)
    env.update(
        {
            "ANTHROPIC_BASE_URL": tap.url("anthropic"),
            auth_env: setup.token,
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_BUG_COMMAND": "1",
            "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        }
    )
    if essential_traffic_only:
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
    trusted = {str(cwd): {"hasTrustDialogAccepted": True}}
    (home / ".claude.json").write_text(
        json.dumps({"hasCompletedOnboarding": True, "projects": trusted})
    )
    cmd = [
        require(CLAUDE),
        "-p",
        prompt,
        "--output-format",
        "json",
        "--max-turns",
        "4",
        "--allowedTools",
        f"Bash({load_fake_provider().RUN_COMMAND})",
        "Read",
    ]
    return run_cli(cmd, env=env, cwd=cwd)


def _last_user(request_json: Any) -> dict[str, Any]:
    user = [m for m in request_json.get("messages", []) if m.get("role") == "user"]
    return user[-1] if user else {}


def _tool_results(request_json: Any) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message."""
    content = _last_user(request_json).get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def check_claude_round_trip(
    setup: Setup, run: CliRun, tool: str, tool_input: dict[str, Any], prompt: str, why: str
) -> str:
    """All the Claude Code rows; returns the tool_result content Claude Code sent back."""
    assert run.returncode == 0, why
    result = json.loads(run.stdout)
    assert result.get("result") == "Done." and not result.get("is_error"), why
    reqs = [r for r in setup.fake.requests if r.method == "POST" and r.path == "/v1/messages"]
    sessions = {r.header("X-Claude-Code-Session-Id") for r in reqs}
    assert len(sessions) == 1 and None not in sessions, (sessions, why)
    session = sessions.pop()
    assert result.get("session_id") == session, why
    recs = closed_interceptions(setup.gw.admin.engine, len(reqs))
    assert len(recs) == len(reqs), why
    for rec in recs:
        i = rec.interception
        assert (i.client, i.client_session_id, i.status) == ("Claude Code", session, "completed"), (
            i.error_message,
            why,
        )
        assert i.provider_name == "anthropic" and i.streamed, why
    callers = [rec for rec in recs if rec.tools]
    assert len(callers) == 1 and len(callers[0].tools) == 1, why
    call = callers[0].tools[0]
    assert (call.tool, json.loads(call.input)) == (tool, tool_input), why
    followers = [rec for rec in recs if rec.interception.correlating_tool_call_id]
    assert [r.interception.correlating_tool_call_id for r in followers] == [call.tool_call_id], why
    # the requests behind them: turn 2 carries the tool_result, turn 1 the prompt and the tool
    turn2 = [
        r.json()
        for r in reqs
        if any(b.get("tool_use_id") == call.tool_call_id for b in _tool_results(r.json()))
    ]
    turn1 = [
        r.json()
        for r in reqs
        if not _tool_results(r.json())
        and prompt in json.dumps(_last_user(r.json()))
        and tool in [t.get("name") for t in r.json().get("tools", [])]
    ]
    assert len(turn1) == len(turn2) == 1, why
    for rec, body in ((callers[0], turn1[0]), (followers[0], turn2[0])):
        assert rec.usage == anthropic_usage(body), why
        assert rec.interception.model == body["model"], why
    assert any(prompt in p.prompt for p in callers[0].prompts), (callers[0].prompts, why)
    assert followers[0].prompts == [] and followers[0].tools == [], why
    assert_gateway_token_hidden(setup, "x-api-key", setup.anthropic_key)
    content = _tool_results(turn2[0])[0].get("content")
    return content if isinstance(content, str) else json.dumps(content)


def test_claude_code_bash_round_trip_with_auth_token(
    setup: Setup, tap: WireTap, tmp_path: Path
) -> None:
    """ANTHROPIC_AUTH_TOKEN (Authorization: Bearer); the fake asks for Bash `echo`."""
    prompt = "TOOLRUN please run the greeting command"
    run = run_claude(setup, tap, tmp_path, prompt, auth_env="ANTHROPIC_AUTH_TOKEN")
    why = diagnostics(setup, run, tap)
    bash_input = {"command": load_fake_provider().RUN_COMMAND, "description": "Print a greeting"}
    output = check_claude_round_trip(setup, run, "Bash", bash_input, prompt, why)
    assert RUN_OUTPUT in output, why
    wire = clean_wire(tap, why)
    assert {(e.method, e.status) for e in wire} == {("POST", 200)}, why
    assert {(e.headers.get("authorization"), e.headers.get("x-api-key")) for e in wire} == {
        (f"Bearer {setup.token}", None)
    }, why


def test_claude_code_read_round_trip_with_api_key(
    setup: Setup, tap: WireTap, tmp_path: Path
) -> None:
    """ANTHROPIC_API_KEY (x-api-key); the fake asks for Read of a file in the project."""
    hello = tmp_path / "project" / "hello.txt"
    hello.parent.mkdir(parents=True)
    hello.write_text("hello from hello.txt\n")
    prompt = f"TOOLREAD:{hello} please read the hello file"
    run = run_claude(setup, tap, tmp_path, prompt, auth_env="ANTHROPIC_API_KEY")
    why = diagnostics(setup, run, tap)
    output = check_claude_round_trip(setup, run, "Read", {"file_path": str(hello)}, prompt, why)
    assert "hello from hello.txt" in output, why
    wire = clean_wire(tap, why)
    assert {(e.method, e.status) for e in wire} == {("POST", 200)}, why
    assert {(e.headers.get("authorization"), e.headers.get("x-api-key")) for e in wire} == {
        (None, setup.token)
    }, why


def test_claude_code_preconnect_head_reaches_gateway(
    setup: Setup, tap: WireTap, tmp_path: Path
) -> None:
    """Default traffic: Claude Code fires `HEAD <base>/api/hello` (no credentials, result
    ignored) next to its first request; the gateway must answer it, and the run still works."""
    run = run_claude(
        setup, tap, tmp_path, "hi", auth_env="ANTHROPIC_API_KEY", essential_traffic_only=False
    )
    why = diagnostics(setup, run, tap)
    assert run.returncode == 0 and json.loads(run.stdout).get("result"), why
    heads = [e for e in tap.exchanges() if e.method == "HEAD"]
    assert [e.target for e in heads] == ["/api/v2/aibridge/anthropic/api/hello"], why
    assert all(e.status is not None and e.status < 500 for e in heads), why
    assert [(e.method, e.status) for e in tap.exchanges() if e.method != "HEAD"] == [
        ("POST", 200)
    ], why
    head = heads[0]
    assert head.status == 200, why  # like the provider root: a credential-free preflight
    assert not head.stray, f"{len(head.stray)} body bytes after a HEAD response: {why}"


# --- Codex -------------------------------------------------------------------------------------

CODEX_MODEL = "gpt-5.1-codex"


def codex_config(base_url: str, *, custom_provider: bool) -> str:
    top = (
        f'model = "{CODEX_MODEL}"\napproval_policy = "never"\ncheck_for_update_on_startup = false\n'
    )
    if not custom_provider:  # the built-in "openai" provider, pointed at the gateway
        return top + f'openai_base_url = "{base_url}"\n\n[analytics]\nenabled = false\n'
    return (
        top
        + f'''model_provider = "aibridge"

[analytics]
enabled = false

[model_providers.aibridge]
name = "aibridge"
base_url = "{base_url}"
env_key = "AIBRIDGE_TOKEN"
wire_api = "responses"
supports_websockets = false
request_max_retries = 0
stream_max_retries = 0
'''
    )


def run_codex(
    setup: Setup, tap: WireTap, workdir: Path, prompt: str, *, custom_provider: bool = True
) -> CliRun:
    home, cwd = workdir / "home", workdir / "project"
    cwd.mkdir(parents=True, exist_ok=True)
    env = offline_env(home)
    codex_home = home / ".codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        codex_config(tap.url("openai", "/v1"), custom_provider=custom_provider)
    )
    env["CODEX_HOME"] = str(codex_home)
    env["AIBRIDGE_TOKEN" if custom_provider else "CODEX_API_KEY"] = setup.token
    # The fake's TOOLRUN command is a fixed `echo`: no need for Codex's sandbox (bubblewrap).
    cmd = [
        require(CODEX),
        "exec",
        "--skip-git-repo-check",
        "--strict-config",
        "--ephemeral",
        "--json",
        "--color",
        "never",
        "--dangerously-bypass-approvals-and-sandbox",
        prompt,
    ]
    return run_cli(cmd, env=env, cwd=cwd)


def codex_events(run: CliRun) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def _input_items(request_json: Any) -> list[dict[str, Any]]:
    items = request_json.get("input")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def check_codex_round_trip(setup: Setup, run: CliRun, prompt: str, why: str) -> None:
    assert run.returncode == 0, why
    events = codex_events(run)
    items = [e["item"] for e in events if e.get("type") == "item.completed"]
    assert [i["text"] for i in items if i["type"] == "agent_message"] == ["Done."], why
    commands = [i for i in items if i["type"] == "command_execution"]
    assert [(c["exit_code"], RUN_OUTPUT in c["aggregated_output"]) for c in commands] == [
        (0, True)
    ], why
    reqs = [r for r in setup.fake.requests if r.method == "POST" and r.path == "/v1/responses"]
    sessions = {r.header("session-id") for r in reqs}
    assert len(sessions) == 1 and None not in sessions, (sessions, why)
    session = sessions.pop()
    assert [e.get("thread_id") for e in events if e.get("type") == "thread.started"] == [session], (
        why
    )
    recs = closed_interceptions(setup.gw.admin.engine, len(reqs))
    assert len(recs) == len(reqs) == 2, why
    for rec in recs:
        i = rec.interception
        assert (i.client, i.client_session_id, i.status) == ("Codex", session, "completed"), (
            i.error_message,
            why,
        )
        assert (i.provider_name, i.model, i.streamed) == ("openai", CODEX_MODEL, True), why
    first, second = recs
    req1, req2 = reqs
    assert _input_items(req1.json())[-1].get("role") == "user", why
    assert prompt in json.dumps(_input_items(req1.json())[-1]), why
    output = _input_items(req2.json())[-1]
    assert output.get("type") == "function_call_output", why
    assert RUN_OUTPUT in str(output.get("output")), why
    echoed = [
        i
        for i in _input_items(req2.json())
        if i.get("type") == "function_call" and i.get("call_id") == output.get("call_id")
    ]
    assert len(echoed) == 1, why
    assert [(t.tool, t.tool_call_id, t.input) for t in first.tools] == [
        ("exec_command", output["call_id"], echoed[0]["arguments"])
    ], why
    assert json.loads(first.tools[0].input) == {"cmd": load_fake_provider().RUN_COMMAND}, why
    assert first.interception.correlating_tool_call_id is None, why
    assert second.interception.correlating_tool_call_id == output["call_id"], why
    assert second.tools == [], why
    assert first.usage == responses_usage(req1.json()), why
    assert second.usage == responses_usage(req2.json()), why
    assert any(prompt in p.prompt for p in first.prompts), (first.prompts, why)
    assert_gateway_token_hidden(setup, "authorization", f"Bearer {setup.openai_key}")


def test_codex_exec_command_round_trip(setup: Setup, tap: WireTap, tmp_path: Path) -> None:
    """Custom provider, wire_api = "responses", supports_websockets = false: HTTP streaming only."""
    prompt = "TOOLRUN please run the greeting command"
    run = run_codex(setup, tap, tmp_path, prompt)
    why = diagnostics(setup, run, tap)
    check_codex_round_trip(setup, run, prompt, why)
    assert [(e.method, e.status) for e in clean_wire(tap, why)] == [("POST", 200)] * 2, why


def test_codex_builtin_provider_falls_back_from_websocket(
    setup: Setup, tap: WireTap, tmp_path: Path
) -> None:
    """Built-in provider + CODEX_API_KEY: Codex first tries a WebSocket upgrade
    (`GET /v1/responses`); the gateway's 426 must make it fall back to HTTP streaming at once."""
    prompt = "TOOLRUN please run the greeting command"
    run = run_codex(setup, tap, tmp_path, prompt, custom_provider=False)
    why = diagnostics(setup, run, tap)
    wire = clean_wire(tap, why)
    upgrades = [e for e in wire if e.method == "GET" and e.target.endswith("/v1/responses")]
    posts = [e for e in wire if e.method == "POST"]
    assert upgrades and all(e.status == 426 for e in upgrades), why
    assert posts and posts[0].sent_at > upgrades[0].sent_at, why
    fallback = posts[0].sent_at - upgrades[0].sent_at
    assert (len(upgrades), fallback < 2.0) == (1, True), (
        f"{len(upgrades)} upgrade attempts, HTTP after {fallback:.2f}s",
        why,
    )
    assert [r.method for r in setup.fake.requests] == ["POST", "POST"], why
    check_codex_round_trip(setup, run, prompt, why)
