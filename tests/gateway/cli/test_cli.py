"""The admin CLI end to end: `aibridge` (addons.cli.build) and gateway.cli.app.make_app,
on a temporary SQLite database and data directory, parsing `--json` output."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from sqlmodel import Session
from typer.testing import CliRunner

from addons.cli import build
from gateway.cli.app import make_app
from gateway.crypto import KEY_FILE_NAME, Keyring, generate_key
from gateway.db import make_engine
from gateway.store import providers as pstore

KEY = "sk-ant-api03-CLIkeyCLIkeyCLIkeyCLIkey-0001"
KEY2 = "sk-ant-api03-NEWkeyNEWkeyNEWkeyNEWkey-0002"
ALLOW = {"AI_GATEWAY_ALLOW_PRIVATE_UPSTREAMS": "true"}


@dataclass
class Cli:
    """Runs one app factory against a private database and data directory."""

    factory: Callable[[], typer.Typer]
    db: Path
    data: Path
    env: dict[str, str | None] = field(default_factory=dict)

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        root: tuple[str, ...] | None = None,
    ) -> Result:
        roots = (
            root
            if root is not None
            else ("--database-url", f"sqlite:///{self.db}", "--data-dir", str(self.data))
        )
        return CliRunner().invoke(
            self.factory(),
            [*roots, *args],
            env={**self.env, **(env or {})},
            input=input,
            catch_exceptions=False,
        )

    def ok(self, *args: str, **kw: Any) -> Result:
        result = self.run(*args, **kw)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kw).stdout)

    def add(self, name: str = "corp", *keys: str, **kw: Any) -> Any:
        args = [
            "providers",
            "add",
            "--type",
            "anthropic",
            "--name",
            name,
            "--base-url",
            "http://127.0.0.1:9",
        ]
        for key in keys or (KEY,):
            args += ["--api-key", key]
        return self.json(*args, env={**ALLOW, **kw.pop("env", {})}, **kw)


def clean_env() -> dict[str, str | None]:
    """Unset every AI_GATEWAY_* variable of the surrounding environment."""
    return {k: None for k in os.environ if k.upper().startswith("AI_GATEWAY_")}


@pytest.fixture(params=[build, make_app], ids=["aibridge", "make_app"])
def cli(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)  # no ./aibridge.yaml from elsewhere
    return Cli(request.param, tmp_path / "cli.db", tmp_path / "data", clean_env())


@pytest.fixture
def aib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The full console-script app only (for the longer scenarios)."""
    monkeypatch.chdir(tmp_path)
    return Cli(build, tmp_path / "cli.db", tmp_path / "data", clean_env())


def assert_error(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert fragment in result.stderr
    assert result.stdout == ""


# --- providers --------------------------------------------------------------------------------


def test_providers_add_json_masks_the_key(cli: Cli) -> None:
    result = cli.ok(
        "providers",
        "add",
        "--type",
        "anthropic",
        "--name",
        "anthropic-corp",
        "--base-url",
        "http://127.0.0.1:9/",
        "--api-key",
        KEY,
        "--json",
        env=ALLOW,
    )
    assert KEY not in result.stdout and KEY not in result.stderr
    p = json.loads(result.stdout)
    assert (p["type"], p["name"], p["display_name"], p["enabled"], p["base_url"]) == (
        "anthropic",
        "anthropic-corp",
        "anthropic-corp",
        True,
        "http://127.0.0.1:9",
    )
    assert [k["masked"] for k in p["api_keys"]] == ["sk-a...0001"]
    # the key file was generated (0600) in the data dir and is what encrypted the key
    key_file = cli.data / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ring = Keyring.from_text(key_file.read_text())
    with Session(make_engine(f"sqlite:///{cli.db}")) as s:
        (live,) = pstore.load_live_providers(s, keyring=ring)
    assert live.api_keys == (KEY,)


def test_providers_add_human_output(cli: Cli) -> None:
    result = cli.ok(
        "providers",
        "add",
        "--type",
        "anthropic",
        "--name",
        "human",
        "--base-url",
        "http://127.0.0.1:9",
        "--api-key",
        KEY,
        env=ALLOW,
    )
    assert "added provider 'human': route /api/v2/aibridge/human/" in result.stderr
    assert "sk-a...0001" in result.stdout
    assert KEY not in result.stdout + result.stderr


def test_loopback_base_url_needs_allow_private_upstreams(cli: Cli) -> None:
    args = (
        "providers",
        "add",
        "--type",
        "openai-compat",
        "--name",
        "local",
        "--base-url",
        "http://127.0.0.1:11434/v1",
        "--api-key",
        KEY,
    )
    refused = cli.run(*args)
    assert_error(refused, 2, "base_url: 127.0.0.1 resolves to a loopback")
    assert "--ai-gateway-allow-private-upstreams" in refused.stderr
    assert cli.json("providers", "list") == []
    accepted = cli.json(*args, env=ALLOW)
    assert accepted["base_url"] == "http://127.0.0.1:11434/v1"


def test_public_ip_is_accepted_without_the_flag(cli: Cli) -> None:
    p = cli.json(
        "providers",
        "add",
        "--type",
        "openai",
        "--name",
        "pub",
        "--base-url",
        "https://8.8.8.8/v1",
        "--api-key",
        KEY,
    )
    assert p["base_url"] == "https://8.8.8.8/v1"


def test_duplicate_and_invalid_names(cli: Cli) -> None:
    cli.add("dup")
    assert_error(
        cli.run(
            "providers",
            "add",
            "--type",
            "anthropic",
            "--name",
            "dup",
            "--base-url",
            "http://127.0.0.1:9",
            "--api-key",
            KEY,
            env=ALLOW,
        ),
        1,
        "a provider named 'dup' already exists",
    )
    assert_error(
        cli.run(
            "providers",
            "add",
            "--type",
            "anthropic",
            "--name",
            "Bad--Name",
            "--base-url",
            "http://127.0.0.1:9",
            "--api-key",
            KEY,
            env=ALLOW,
        ),
        2,
        "name: use lowercase letters, digits and single hyphens",
    )
    assert_error(
        cli.run("providers", "add", "--type", "gemini", "--name", "g", "--api-key", KEY, env=ALLOW),
        2,
        "--type must be one of anthropic, openai, openai-compat",
    )
    assert_error(
        cli.run(
            "providers",
            "add",
            "--type",
            "anthropic",
            "--name",
            "k",
            "--base-url",
            "http://127.0.0.1:9",
            "--api-key",
            "has space",
            env=ALLOW,
        ),
        2,
        "api_keys:",
    )
    assert [p["name"] for p in cli.json("providers", "list")] == ["dup"]


def test_missing_required_option_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("providers", "add", "--type", "anthropic", "--name", "x")
    assert result.exit_code == 2
    assert "--api-key" in result.stderr


def test_provider_lifecycle(cli: Cli) -> None:
    added = cli.add("life")
    listed = cli.json("providers", "list")
    assert [(p["name"], p["id"]) for p in listed] == [("life", added["id"])]
    shown = cli.json("providers", "show", "life")
    assert shown == listed[0]
    assert cli.json("providers", "show", added["id"])["name"] == "life"

    updated = cli.json(
        "providers",
        "update",
        "life",
        "--display-name",
        "Life Inc",
        "--base-url",
        "http://127.0.0.1:10/",
        env=ALLOW,
    )
    assert (updated["display_name"], updated["base_url"]) == ("Life Inc", "http://127.0.0.1:10")
    assert cli.json("providers", "disable", "life")["enabled"] is False
    assert cli.json("providers", "show", "life")["enabled"] is False
    assert cli.json("providers", "enable", "life")["enabled"] is True

    rotated = cli.json("providers", "rotate-key", "life", "--api-key", KEY2)
    assert [k["masked"] for k in rotated["api_keys"]] == ["sk-a...0002"]
    kept = cli.json("providers", "rotate-key", "life", "--api-key", KEY, "--keep-old")
    assert [k["masked"] for k in kept["api_keys"]] == ["sk-a...0001", "sk-a...0002"]
    assert kept["api_keys"][1]["id"] == rotated["api_keys"][0]["id"]

    deleted = cli.run("providers", "delete", "life", "--yes")
    assert deleted.exit_code == 0 and "deleted provider 'life'" in deleted.stderr
    assert cli.json("providers", "list") == []
    assert [p["name"] for p in cli.json("providers", "list", "--deleted")] == ["life"]
    assert_error(cli.run("providers", "show", "life"), 1, "no provider named 'life'")
    again = cli.add("life")  # the name is free again
    assert again["id"] != added["id"]


def test_update_without_changes_is_a_usage_error(cli: Cli) -> None:
    cli.add("same")
    assert_error(cli.run("providers", "update", "same"), 2, "nothing to change")


def test_update_refuses_a_loopback_url_without_the_flag(cli: Cli) -> None:
    cli.add("u")
    assert_error(
        cli.run("providers", "update", "u", "--base-url", "http://localhost:1"), 2, "base_url:"
    )
    assert cli.json("providers", "show", "u")["base_url"] == "http://127.0.0.1:9"


def test_delete_asks_first(cli: Cli) -> None:
    cli.add("keep")
    refused = cli.run("providers", "delete", "keep", input="n\n")
    assert refused.exit_code == 1
    assert "Delete provider 'keep'? [y/N]:" in refused.stderr  # the prompt keeps stdout clean
    assert "error: not deleted" in refused.stderr
    assert "Delete" not in refused.stdout
    assert [p["name"] for p in cli.json("providers", "list")] == ["keep"]
    assert cli.run("providers", "delete", "keep", input="y\n").exit_code == 0
    assert cli.json("providers", "list") == []


def test_unknown_provider_commands_exit_1(cli: Cli) -> None:
    for args in (
        ("show", "ghost"),
        ("enable", "ghost"),
        ("disable", "ghost"),
        ("delete", "ghost", "--yes"),
        ("rotate-key", "ghost", "--api-key", KEY2),
    ):
        assert_error(cli.run("providers", *args), 1, "no provider named 'ghost'")


def test_listing_never_shows_keys(aib: Cli) -> None:
    aib.add("a", KEY, KEY2)
    for args in (
        ("providers", "list"),
        ("providers", "list", "--json"),
        ("providers", "show", "a"),
        ("providers", "show", "a", "--json"),
    ):
        result = aib.ok(*args)
        assert KEY not in result.stdout and KEY2 not in result.stdout
        assert "sk-a...0001" in result.stdout


# --- users and tokens -------------------------------------------------------------------------


def test_users(cli: Cli) -> None:
    created = cli.ok("users", "create", "alice", "--role", "member")
    assert created.stdout.strip() == "created user 'alice' (member)"
    bob = cli.json("users", "create", "bob", "--role", "admin")
    assert (bob["username"], bob["role"], bob["disabled"]) == ("bob", "admin", False)
    users = cli.json("users", "list")
    assert [(u["username"], u["role"], u["disabled"]) for u in users] == [
        ("alice", "member", False),
        ("bob", "admin", False),
    ]
    assert cli.ok("users", "disable", "alice").stdout.strip() == "user 'alice' disabled"
    assert [u["disabled"] for u in cli.json("users", "list")] == [True, False]
    assert cli.ok("users", "enable", "alice").stdout.strip() == "user 'alice' enabled"
    assert [u["disabled"] for u in cli.json("users", "list")] == [False, False]

    assert_error(cli.run("users", "create", "alice"), 1, "a user named 'alice' already exists")
    assert_error(
        cli.run("users", "create", "carol", "--role", "root"),
        2,
        "role: must be one of admin, auditor, member",
    )
    assert_error(cli.run("users", "create", ".carol"), 2, "username:")
    assert_error(cli.run("users", "disable", "ghost"), 1, "no user named 'ghost'")


def test_tokens(cli: Cli) -> None:
    cli.ok("users", "create", "alice")
    created = cli.json("tokens", "create", "--user", "alice", "--name", "laptop")
    token = created["token"]
    assert token.startswith("aib_") and len(token) == 47
    assert (created["username"], created["name"], created["hint"]) == (
        "alice",
        "laptop",
        f"{token[:4]}...{token[-4:]}",
    )
    assert created["expires_at"] is None and created["revoked_at"] is None

    listed = cli.ok("tokens", "list", "--json").stdout
    assert token not in listed
    (entry,) = json.loads(listed)
    assert "token" not in entry
    assert (entry["id"], entry["hint"]) == (created["id"], created["hint"])
    assert token not in cli.ok("tokens", "list").stdout
    assert cli.json("tokens", "list", "--user", "alice")[0]["id"] == created["id"]

    revoked = cli.ok("tokens", "revoke", created["id"])
    assert revoked.stdout.strip() == f"revoked token {created['id']}"
    assert cli.json("tokens", "list")[0]["revoked_at"] is not None


def test_token_human_output_prints_the_token_once_on_stdout(cli: Cli) -> None:
    cli.ok("users", "create", "alice")
    result = cli.ok("tokens", "create", "--user", "alice")
    token = result.stdout.strip()
    assert token.startswith("aib_") and len(token) == 47
    assert "for 'alice' (shown once)" in result.stderr and token not in result.stderr


def test_token_expiry(cli: Cli) -> None:
    cli.ok("users", "create", "alice")
    before = datetime.now(UTC)
    created = cli.json("tokens", "create", "--user", "alice", "--expires-in", "90d")
    expires = datetime.fromisoformat(created["expires_at"])
    assert expires.tzinfo is not None
    assert before + timedelta(days=90) <= expires <= datetime.now(UTC) + timedelta(days=90)
    assert_error(
        cli.run("tokens", "create", "--user", "alice", "--expires-in", "soon"),
        2,
        "--expires-in: invalid duration 'soon'",
    )
    assert_error(
        cli.run("tokens", "create", "--user", "alice", "--expires-in", "0"),
        2,
        "--expires-in must be positive",
    )
    assert len(cli.json("tokens", "list")) == 1


def test_token_errors(cli: Cli) -> None:
    assert_error(cli.run("tokens", "create", "--user", "ghost"), 1, "no user named 'ghost'")
    assert_error(cli.run("tokens", "revoke", "not-a-uuid"), 2, "not a token id: 'not-a-uuid'")
    assert_error(
        cli.run("tokens", "revoke", "00000000-0000-4000-8000-000000000000"),
        1,
        "no token 00000000-0000-4000-8000-000000000000",
    )
    assert_error(cli.run("tokens", "list", "--user", "ghost"), 1, "no user named 'ghost'")


# --- config and keys --------------------------------------------------------------------------


def test_config_show_json_sources_and_masking(cli: Cli, tmp_path: Path) -> None:
    key = generate_key()
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("ai_gateway:\n  log_level: warning\n  api_dump_dir: /tmp/d\n")
    shown = cli.json(
        "config",
        "show",
        env={"AI_GATEWAY_RETENTION": "30d", "AI_GATEWAY_ENCRYPTION_KEYS": key},
        root=("--config", str(cfg), "--data-dir", str(cli.data)),
    )
    assert shown["retention"] == {
        "value": "30d",
        "source": "env",
        "flag": "--ai-gateway-retention",
        "env": "AI_GATEWAY_RETENTION",
        "option": "ai_gateway_retention",
    }
    assert shown["data_dir"]["source"] == "flag" and shown["data_dir"]["value"] == str(cli.data)
    assert (shown["log_level"]["value"], shown["log_level"]["source"]) == ("warning", f"yaml:{cfg}")
    assert (shown["dump_dir"]["value"], shown["dump_dir"]["source"]) == ("/tmp/d", f"yaml:{cfg}")
    assert shown["upstream_timeout"] == {
        "value": "600s",
        "source": "default",
        "flag": "--ai-gateway-upstream-timeout",
        "env": "AI_GATEWAY_UPSTREAM_TIMEOUT",
        "option": "ai_gateway_upstream_timeout",
    }
    assert shown["encryption_keys"]["value"] == f"{key[:4]}...{key[-4:]}"
    assert shown["encryption_keys"]["source"] == "env"
    assert key not in json.dumps(shown)


def test_config_show_table_masks_keys(cli: Cli) -> None:
    key = generate_key()
    result = cli.ok("config", "show", env={"AI_GATEWAY_ENCRYPTION_KEYS": key})
    assert key not in result.stdout
    assert f"{key[:4]}...{key[-4:]}" in result.stdout


def test_config_show_masks_the_database_password(cli: Cli) -> None:
    url = "postgresql+psycopg://aib:hunter2-password@db.example:5432/aib"
    shown = cli.json("config", "show", root=("--database-url", url))
    assert shown["database_url"]["value"] == "postgresql+psycopg://aib:***@db.example:5432/aib"
    assert "hunter2" not in json.dumps(shown)


def test_invalid_settings_are_a_usage_error(cli: Cli) -> None:
    assert_error(
        cli.run("config", "show", env={"AI_GATEWAY_RETENTION": "abc"}),
        2,
        "retention: Value error, invalid duration 'abc'",
    )
    assert_error(cli.run("users", "list", env={"AI_GATEWAY_LOG_LEVEL": "loud"}), 2, "log_level")


def test_unreachable_database_is_an_operational_error(cli: Cli) -> None:
    result = cli.run(
        "users", "list", root=("--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/x")
    )
    assert_error(result, 1, "cannot open the database")


def test_keys_generate(cli: Cli) -> None:
    a = cli.ok("keys", "generate").stdout.strip()
    b = cli.ok("keys", "generate").stdout.strip()
    assert a != b
    assert len(base64.urlsafe_b64decode(a)) == 32
    Keyring.from_text(a)


def test_keys_rotate(aib: Cli) -> None:
    old, new = generate_key(), generate_key()
    aib.add("r1", KEY, KEY2, env={"AI_GATEWAY_ENCRYPTION_KEYS": old})
    aib.add("r2", env={"AI_GATEWAY_ENCRYPTION_KEYS": old})
    # Only the new key: the old ciphertexts cannot be read, nothing is changed.
    missing = aib.run("keys", "rotate", env={"AI_GATEWAY_ENCRYPTION_KEYS": new})
    assert_error(missing, 1, "not configured")
    rotated = aib.ok("keys", "rotate", env={"AI_GATEWAY_ENCRYPTION_KEYS": f"{new},{old}"})
    assert rotated.stdout.strip() == "re-encrypted 3 provider key(s)"
    again = aib.ok("keys", "rotate", env={"AI_GATEWAY_ENCRYPTION_KEYS": f"{new},{old}"})
    assert again.stdout.strip() == "re-encrypted 0 provider key(s)"
    with Session(make_engine(f"sqlite:///{aib.db}")) as s:
        live = pstore.load_live_providers(s, keyring=Keyring.from_text(new))
    assert sorted(k for p in live for k in p.api_keys) == sorted([KEY, KEY2, KEY])


def test_bad_encryption_key_is_an_operational_error(cli: Cli) -> None:
    result = cli.run(
        "providers",
        "add",
        "--type",
        "anthropic",
        "--name",
        "x",
        "--base-url",
        "http://127.0.0.1:9",
        "--api-key",
        KEY,
        env={**ALLOW, "AI_GATEWAY_ENCRYPTION_KEYS": "not-a-key!"},
    )
    assert_error(result, 1, "an encryption key is not valid base64")


def test_error_messages_are_literal_text(cli: Cli) -> None:
    # rich markup in user input must be printed, not interpreted (or crash the CLI)
    result = cli.run("providers", "show", "[bold]x[/bold]")
    assert_error(result, 1, "no provider named '[bold]x[/bold]'")
    result = cli.run("users", "disable", "[/]")
    assert_error(result, 1, "no user named '[/]'")


def test_server_command_only_in_the_console_script(tmp_path: Path) -> None:
    runner = CliRunner()
    full = runner.invoke(build(), ["server", "--help"])
    assert full.exit_code == 0
    assert "--listen" in full.stdout and "--ai-gateway-retention" in full.stdout
    admin_only = runner.invoke(make_app(), ["server", "--help"])
    assert admin_only.exit_code == 2
