"""Which coding agent sent a request, and its session id, from the client's own headers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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

# Where each client puts its session (conversation) id, first match wins.
_SESSION_HEADERS = {
    CLAUDE_CODE: ("x-claude-code-session-id",),
    CODEX: ("session-id", "session_id", "conversation_id"),
    CURSOR: ("x-session-id",),
    COPILOT_VSCODE: ("vscode-sessionid", "x-interaction-id"),
    COPILOT_CLI: ("x-interaction-id", "vscode-sessionid"),
    KILO_CODE: ("x-kilocode-taskid", "x-session-id", "x-task-id"),
    ROO_CODE: ("x-session-id", "x-task-id"),
    # OpenCode: x-opencode-session to its own providers, x-session-affinity to any other.
    OPENCODE: ("x-opencode-session", "x-session-affinity", "x-session-id", "session_id"),
    CRUSH: ("x-session-id",),
    ZED: ("x-zed-session-id", "x-session-id"),
}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    name: str
    session_id: str | None


_ROO_REFERERS = ("roocode", "roo-cline", "roo-code")


@dataclass(frozen=True, slots=True)
class _Seen:
    """The few request headers detection looks at, lower-cased once."""

    ua: str
    originator: str
    title: str
    referer: str


def _agent(get: HeaderGet, seen: _Seen) -> str | None:
    """Agents that say who they are (user agent, originator, OpenRouter-style X-Title)."""
    ua, originator, title, referer = seen.ua, seen.originator, seen.title, seen.referer
    if get("x-claude-code-session-id") or ua.startswith("claude-cli/") or "claude-code" in ua:
        return CLAUDE_CODE
    if originator.startswith("codex") or ua.startswith(("codex_", "codex/", "codex-")):
        return CODEX
    # Kilo Code and Roo Code (forks of Cline): `Kilo-Code/<v>` / `RooCode/<v>` user agents,
    # `X-Title`, and `HTTP-Referer` https://kilocode.ai / https://github.com/RooVetGit/Roo-Cline.
    if (
        ua.startswith("kilo")
        or originator == "kilo-code"
        or title == "kilo code"
        or "kilocode" in referer
        or get("x-kilocode-version")
    ):
        return KILO_CODE
    if (
        ua.startswith(("roocode", "roo-code", "roo code"))
        or originator == "roo-code"
        or title == "roo code"
        or any(r in referer for r in _ROO_REFERERS)
    ):
        return ROO_CODE
    if (
        ua.startswith(("opencode/", "opencode2/"))
        or "opencode.ai" in referer
        or title == "opencode"
        or get("x-opencode-session")
    ):
        return OPENCODE
    # Crush: `Charm-Crush/v0.x (https://charm.land/crush)` (older: `Charm Crush/`).
    if ua.startswith(("charm-crush/", "charm crush/", "crush/")) or title == "crush":
        return CRUSH
    if ua.startswith("zed/") or " zed/" in ua or get("x-zed-version"):
        return ZED
    return None


def _copilot(get: HeaderGet, ua: str) -> str | None:
    """GitHub Copilot: `GitHubCopilotChat/<v>` + `editor-version: vscode/1.x` +
    `copilot-integration-id: vscode-chat` in VS Code; `copilot/<v> (client/cli ...)` and
    `copilot-integration-id: copilot-developer-cli` from the CLI."""
    integration = (get("copilot-integration-id") or "").lower()
    editor = (get("editor-version") or "").lower()
    if not ("copilot" in ua or integration or editor):
        return None
    if (
        "cli" in integration
        or ua.startswith(("copilot/", "copilot-cli"))
        or editor.startswith("copilot-cli")
    ):
        return COPILOT_CLI
    if (
        ua.startswith("githubcopilotchat/")
        or "vscode" in integration
        or editor.startswith("vscode")
        or "vscode" in ua
    ):
        return COPILOT_VSCODE
    return COPILOT_CLI if "cli" in ua else COPILOT_VSCODE


def _client_name(get: HeaderGet) -> str:
    seen = _Seen(
        ua=(get("user-agent") or "").lower(),
        originator=(get("originator") or "").lower(),
        title=(get("x-title") or "").strip().lower(),
        referer=(get("http-referer") or get("referer") or "").lower(),
    )
    name = _agent(get, seen) or _copilot(get, seen.ua)
    if name:
        return name
    cursor_ua = seen.ua.startswith("cursor/") or " cursor/" in seen.ua
    if cursor_ua or get("x-cursor-client-version") or get("x-cursor-checksum"):
        return CURSOR
    return UNKNOWN


def header_map(fields: Iterable[tuple[bytes, bytes]]) -> HeaderGet:
    """A getter over raw header fields, built once: detection asks for a dozen headers, and a
    lookup in mitmproxy's Headers scans every field. Repeated headers are joined with ", "
    (as mitmproxy's `Headers.get` does)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("utf-8", "surrogateescape")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found.get


def detect(get: HeaderGet) -> ClientInfo:
    name = _client_name(get)
    session = None
    for header in _SESSION_HEADERS.get(name, ()):
        value = get(header)
        if value:
            session = value[:256]
            break
    return ClientInfo(name, session)
