"""gateway.clients: which agent sent a request, from real captures and known header sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway import clients
from gateway.clients import ClientInfo, detect

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shared" / "captures"


def getter(pairs: list[list[str]] | list[tuple[str, str]] | dict[str, str]):  # type: ignore[no-untyped-def]
    items = list(pairs.items()) if isinstance(pairs, dict) else [tuple(p) for p in pairs]

    def get(name: str) -> str | None:
        values = [v for k, v in items if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    return get


def captured(pattern: str) -> list[dict[str, Any]]:
    files = sorted(CAPTURES.glob(pattern))
    if not files:
        pytest.fail(f"no captures {pattern} in {CAPTURES}")
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]


def header(request: dict[str, Any], name: str) -> str:
    return next(v for k, v in request["headers"] if k.lower() == name)


def test_claude_code_captures() -> None:
    posts = [r for r in captured("claude-*.jsonl") if r["method"] == "POST"]
    assert len(posts) >= 5
    for request in posts:
        info = detect(getter(request["headers"]))
        assert info == ClientInfo("Claude Code", header(request, "x-claude-code-session-id"))
        assert len(info.session_id or "") == 36


def test_claude_code_preflight_is_not_claimed() -> None:
    heads = [r for r in captured("claude-*.jsonl") if r["method"] == "HEAD"]
    assert heads
    for request in heads:  # `HEAD /` from Bun's fetch: no agent headers at all
        assert detect(getter(request["headers"])) == ClientInfo("Unknown", None)


def test_codex_captures() -> None:
    requests = captured("codex-*.jsonl")
    assert len(requests) >= 4
    for request in requests:
        info = detect(getter(request["headers"]))
        assert info == ClientInfo("Codex", header(request, "session-id"))


def test_sdk_captures_are_unknown() -> None:
    requests = captured("sdk*.jsonl")
    assert len(requests) >= 10
    for request in requests:
        assert detect(getter(request["headers"])) == ClientInfo("Unknown", None)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # Claude Code (CLI and the VS Code extension share the CLI user agent)
        ({"User-Agent": "claude-cli/2.0.67 (external, claude-vscode)"}, ("Claude Code", None)),
        ({"X-Claude-Code-Session-Id": "s-1", "User-Agent": "Bun/1.2"}, ("Claude Code", "s-1")),
        # Codex: CLI, exec, VS Code extension
        (
            {
                "User-Agent": "codex_cli_rs/0.87.0 (Mac OS 26.2.0; arm64) ghostty/1.3.0",
                "session_id": "c-1",
            },
            ("Codex", "c-1"),
        ),
        ({"originator": "codex_vscode", "User-Agent": "x"}, ("Codex", None)),
        # Cursor (its backend calls custom endpoints with connect-es)
        (
            {
                "User-Agent": "connect-es/1.6.1",
                "x-cursor-client-version": "0.50.0",
                "x-session-id": "cur-1",
            },
            ("Cursor", "cur-1"),
        ),
        ({"x-cursor-checksum": "abc"}, ("Cursor", None)),
        ({"User-Agent": "Cursor/1.4.2 (darwin arm64)"}, ("Cursor", None)),
        # Zed
        ({"User-Agent": "Zed/0.219.4+stable.119.abc123 (macos; aarch64)"}, ("Zed", None)),
        (
            {"User-Agent": "reqwest", "x-zed-version": "0.200.1", "x-zed-session-id": "z-1"},
            ("Zed", "z-1"),
        ),
        # GitHub Copilot in VS Code
        (
            {
                "User-Agent": "GitHubCopilotChat/0.37.2026011603",
                "editor-version": "vscode/1.99.3",
                "editor-plugin-version": "copilot-chat/0.37.0",
                "copilot-integration-id": "vscode-chat",
                "vscode-sessionid": "vs-1",
                "x-interaction-id": "i-1",
            },
            ("GitHub Copilot (VS Code)", "vs-1"),
        ),
        ({"editor-version": "vscode/1.95.0"}, ("GitHub Copilot (VS Code)", None)),
        ({"User-Agent": "GitHubCopilotChat/0.30.0"}, ("GitHub Copilot (VS Code)", None)),
        # GitHub Copilot CLI
        (
            {
                "User-Agent": "copilot/0.0.403 (client/cli linux v24.11.1)",
                "copilot-integration-id": "copilot-developer-cli",
                "x-interaction-id": "i-2",
            },
            ("GitHub Copilot (CLI)", "i-2"),
        ),
        (
            {"User-Agent": "copilot/0.0.330 (linux v22.19.0) term/unknown"},
            ("GitHub Copilot (CLI)", None),
        ),
        (
            {"copilot-integration-id": "copilot-developer-cli", "User-Agent": "node"},
            ("GitHub Copilot (CLI)", None),
        ),
        # Kilo Code: OpenRouter-style headers and its own version header
        (
            {
                "User-Agent": "Kilo-Code/4.86.0",
                "HTTP-Referer": "https://kilocode.ai",
                "X-Title": "Kilo Code",
                "X-KiloCode-Version": "4.86.0",
                "X-KiloCode-TaskId": "task-7",
            },
            ("Kilo Code", "task-7"),
        ),
        ({"User-Agent": "kilo/latest/7.8.3/cli"}, ("Kilo Code", None)),
        ({"originator": "kilo-code"}, ("Kilo Code", None)),
        ({"X-Title": "Kilo Code", "User-Agent": "OpenAI/JS 4.96.0"}, ("Kilo Code", None)),
        # Roo Code
        (
            {
                "User-Agent": "RooCode/3.25.4",
                "HTTP-Referer": "https://github.com/RooVetGit/Roo-Cline",
                "X-Title": "Roo Code",
            },
            ("Roo Code", None),
        ),
        (
            {
                "HTTP-Referer": "https://github.com/RooVetGit/Roo-Cline",
                "X-Title": "Roo Code",
                "User-Agent": "OpenAI/JS 5.0.1",
            },
            ("Roo Code", None),
        ),
        (
            {
                "User-Agent": "roo-code/3.45.0 (darwin 25.2.0; arm64) node/22.21.1",
                "x-task-id": "t-1",
            },
            ("Roo Code", "t-1"),
        ),
        ({"originator": "roo-code"}, ("Roo Code", None)),
        # OpenCode: to a custom provider it sends x-session-affinity
        (
            {"User-Agent": "opencode/1.0.134", "x-session-affinity": "ses_abc"},
            ("OpenCode", "ses_abc"),
        ),
        (
            {
                "User-Agent": "opencode/0.15.0 ai-sdk/provider-utils/3.0.9 runtime/bun/1.3.0",
                "x-opencode-session": "ses_1",
                "x-opencode-request": "msg_1",
            },
            ("OpenCode", "ses_1"),
        ),
        (
            {
                "HTTP-Referer": "https://opencode.ai/",
                "X-Title": "opencode",
                "User-Agent": "ai-sdk/openai-compatible/1.0.0",
            },
            ("OpenCode", None),
        ),
        # Crush
        ({"User-Agent": "Charm-Crush/v0.97.1 (https://charm.land/crush)"}, ("Crush", None)),
        ({"User-Agent": "Charm Crush/0.7.0"}, ("Crush", None)),
        # Unknown
        (
            {"User-Agent": "Anthropic/Python 2.16.0", "X-Stainless-Lang": "python"},
            ("Unknown", None),
        ),
        ({"User-Agent": "OpenAI/Python 3.60.0", "session_id": "not-an-agent"}, ("Unknown", None)),
        ({"User-Agent": "ccclaude-cli/calude-with-wrong-prefix"}, ("Unknown", None)),
        ({"User-Agent": "curl/8.5.0"}, ("Unknown", None)),
        ({"User-Agent": "kubectl-precursor/1.0 (not cursor)"}, ("Unknown", None)),
        ({}, ("Unknown", None)),
    ],
)
def test_synthetic_header_sets(headers: dict[str, str], expected: tuple[str, str | None]) -> None:
    assert detect(getter(headers)) == ClientInfo(*expected)


def test_more_specific_agents_win_over_copilot_headers() -> None:
    # OpenCode talking to GitHub Copilot adds Copilot's editor headers to its own user agent.
    get = getter(
        {
            "User-Agent": "opencode/1.0.0",
            "Editor-Version": "vscode/1.99.0",
            "Copilot-Integration-Id": "vscode-chat",
        }
    )
    assert detect(get).name == "OpenCode"


def test_session_id_is_capped() -> None:
    info = detect(getter({"X-Claude-Code-Session-Id": "s" * 1000}))
    assert info.session_id == "s" * 256


def test_every_named_client_has_session_headers() -> None:
    names = {
        v
        for k, v in vars(clients).items()
        if k.isupper() and isinstance(v, str) and k not in ("UNKNOWN",)
    }
    assert names == set(clients._SESSION_HEADERS)


def test_detection_reads_few_headers() -> None:
    asked: list[str] = []

    def get(name: str) -> str | None:
        asked.append(name)
        return None

    assert detect(get) == ClientInfo("Unknown", None)
    assert len(asked) <= 16
