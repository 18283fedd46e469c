"""Which coding agent sent a request, and its session id, from the client's own headers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

HeaderGet = Callable[[str], str | None]

CLAUDE_CODE = "Claude Code"
CODEX = "Codex"
CURSOR = "Cursor"
ZED = "Zed"
COPILOT_VSCODE = "GitHub Copilot (VS Code)"
COPILOT_CLI = "GitHub Copilot (CLI)"
KILO_CODE = "Kilo Code"
ROO_CODE = "Roo Code"
OPENCODE = "OpenCode"
CRUSH = "Crush"
UNKNOWN = "Unknown"

# (client, predicate on the lower-cased user agent and headers), most specific first.
_SESSION_HEADERS = {
    CLAUDE_CODE: ("x-claude-code-session-id",),
    CODEX: ("session-id", "session_id", "conversation_id"),
    CURSOR: ("x-session-id",),
    COPILOT_VSCODE: ("vscode-sessionid", "x-interaction-id"),
    COPILOT_CLI: ("x-interaction-id", "vscode-sessionid"),
    KILO_CODE: ("x-session-id", "x-task-id"),
    ROO_CODE: ("x-session-id", "x-task-id"),
    OPENCODE: ("x-opencode-session", "x-session-id", "session_id"),
    CRUSH: ("x-session-id",),
    ZED: ("x-zed-session-id", "x-session-id"),
}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    name: str
    session_id: str | None


def _client_name(get: HeaderGet) -> str:
    ua = (get("user-agent") or "").lower()
    originator = (get("originator") or "").lower()
    title = (get("x-title") or "").lower()
    referer = (get("http-referer") or get("referer") or "").lower()
    if get("x-claude-code-session-id") or ua.startswith("claude-cli/") or "claude-code" in ua:
        return CLAUDE_CODE
    if originator.startswith("codex") or ua.startswith("codex_") or ua.startswith("codex/"):
        return CODEX
    if "kilo" in ua or "kilo code" in title or "kilocode" in referer:
        return KILO_CODE
    if "roocode" in ua or "roo-code" in ua or "roo code" in title or "roocode" in referer:
        return ROO_CODE
    if ua.startswith("opencode") or "opencode" in referer or title == "opencode":
        return OPENCODE
    if ua.startswith("crush") or "charm-crush" in ua or title == "crush":
        return CRUSH
    if ua.startswith("zed/") or " zed/" in ua or get("x-zed-version"):
        return ZED
    if "copilot" in ua or get("copilot-integration-id") or get("editor-version"):
        editor = (get("editor-version") or "").lower()
        integration = (get("copilot-integration-id") or "").lower()
        if "cli" in integration or ua.startswith("copilot-cli") or "copilot/cli" in ua:
            return COPILOT_CLI
        if editor.startswith("vscode") or "vscode" in integration or "vscode" in ua:
            return COPILOT_VSCODE
        return COPILOT_CLI if "cli" in ua else COPILOT_VSCODE
    if "cursor" in ua or get("x-cursor-client-version") or get("x-cursor-checksum"):
        return CURSOR
    return UNKNOWN


def detect(get: HeaderGet) -> ClientInfo:
    name = _client_name(get)
    session = None
    for header in _SESSION_HEADERS.get(name, ()):
        value = get(header)
        if value:
            session = value[:256]
            break
    return ClientInfo(name, session)
