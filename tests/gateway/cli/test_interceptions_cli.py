"""`aibridge interceptions list|show`, `aibridge usage` and `aibridge demo`."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from addons.cli import build
from gateway.writer import Entry, apply_entries
from tests.harness import AIBRIDGE


def _seed(engine: Engine) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    from sqlmodel import Session

    from gateway.store import SYSTEM_ACTOR
    from gateway.store.users import create_user

    with Session(engine) as s:
        alice = create_user(s, username="alice", role="member", actor=SYSTEM_ACTOR).id
        bob = create_user(s, username="bob", role="member", actor=SYSTEM_ACTOR).id
        s.commit()
    ids, entries = [], []
    for n, (user, model, provider, tokens) in enumerate(
        [
            (alice, "claude-sonnet-4-5", "anthropic", (100, 10, 5, 2)),
            (alice, "gpt-4.1", "openai", (50, 5, 0, 0)),
            (bob, "claude-sonnet-4-5", "anthropic", (7, 3, 1, 0)),
        ]
    ):
        iid = uuid.uuid4()
        ids.append(iid)
        started = now - timedelta(minutes=10 - n)
        entries.append(
            Entry(
                "interception",
                {
                    "id": iid,
                    "initiator_id": user,
                    "provider_type": provider,
                    "provider_name": provider,
                    "api": "x",
                    "model": model,
                    "client": "Claude Code",
                    "started_at": started,
                    "ended_at": started + timedelta(seconds=1),
                    "status": "completed",
                    "credential_kind": "centralized",
                    "metadata": {},
                },
            )
        )
        entries.append(
            Entry(
                "token_usage",
                {
                    "id": uuid.uuid4(),
                    "interception_id": iid,
                    "input_tokens": tokens[0],
                    "output_tokens": tokens[1],
                    "cache_read_input_tokens": tokens[2],
                    "cache_write_input_tokens": tokens[3],
                    "metadata": {},
                    "created_at": started,
                },
            )
        )
        entries.append(
            Entry(
                "prompt_usage",
                {
                    "id": uuid.uuid4(),
                    "interception_id": iid,
                    "prompt": f"prompt {n}",
                    "created_at": started,
                },
            )
        )
    apply_entries(engine, entries)
    return ids


def _run(db_url: str, tmp_path: Path, *args: str) -> object:
    return CliRunner(env={"COLUMNS": "240"}).invoke(
        build(), ["--database-url", db_url, "--data-dir", str(tmp_path), *args]
    )


def test_list_filters_pagination_show_and_usage(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    ids = _seed(engine)
    r = _run(db_url, tmp_path, "interceptions", "list", "--json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    items = json.loads(r.stdout)["items"]  # type: ignore[attr-defined]
    assert [i["id"] for i in items] == [str(x) for x in reversed(ids)]  # newest first
    r = _run(
        db_url,
        tmp_path,
        "interceptions",
        "list",
        "--user",
        "alice",
        "--provider",
        "anthropic",
        "--json",
    )
    assert [i["prompt"] for i in json.loads(r.stdout)["items"]] == ["prompt 0"]  # type: ignore[attr-defined]
    page1 = json.loads(
        _run(db_url, tmp_path, "interceptions", "list", "--limit", "2", "--json").stdout
    )  # type: ignore[attr-defined]
    page2 = json.loads(
        _run(
            db_url,
            tmp_path,
            "interceptions",
            "list",
            "--limit",
            "2",
            "--cursor",
            page1["next_cursor"],
            "--json",
        ).stdout
    )  # type: ignore[attr-defined]
    assert [i["id"] for i in page1["items"] + page2["items"]] == [str(x) for x in reversed(ids)]
    assert page2["next_cursor"] is None
    shown = json.loads(
        _run(db_url, tmp_path, "interceptions", "show", str(ids[0]), "--json").stdout
    )  # type: ignore[attr-defined]
    assert shown["initiator"] == "alice" and shown["token_usages"][0]["input_tokens"] == 100
    by_user = json.loads(_run(db_url, tmp_path, "usage", "--by", "user", "--json").stdout)  # type: ignore[attr-defined]
    assert [
        (
            u["key"],
            u["interceptions"],
            u["input_tokens"],
            u["output_tokens"],
            u["cache_read_input_tokens"],
        )
        for u in by_user
    ] == [("alice", 2, 150, 15, 5), ("bob", 1, 7, 3, 1)]
    by_model = json.loads(_run(db_url, tmp_path, "usage", "--by", "model", "--json").stdout)  # type: ignore[attr-defined]
    assert {u["key"]: u["input_tokens"] for u in by_model} == {
        "claude-sonnet-4-5": 107,
        "gpt-4.1": 50,
    }
    by_day = json.loads(_run(db_url, tmp_path, "usage", "--by", "day", "--json").stdout)  # type: ignore[attr-defined]
    assert sum(u["interceptions"] for u in by_day) == 3 and len(by_day[0]["key"]) == 10
    assert _run(db_url, tmp_path, "usage", "--by", "color").exit_code == 2  # type: ignore[attr-defined]
    assert _run(db_url, tmp_path, "interceptions", "show", "nope").exit_code == 2  # type: ignore[attr-defined]
    assert _run(db_url, tmp_path, "interceptions", "show", str(uuid.uuid4())).exit_code == 1  # type: ignore[attr-defined]
    human = _run(db_url, tmp_path, "interceptions", "list", "--since", "1h")  # rich table
    assert human.exit_code == 0 and "alice" in human.stdout  # type: ignore[attr-defined]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(AIBRIDGE), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("-> 200") == 4
    assert out.stdout.count("completed") == 4
