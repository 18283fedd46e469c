"""`GET /metrics`: Prometheus exposition through the real gateway, agreeing with the database.

The counts are checked against what the gateway recorded (not against numbers written here),
and with `--workers 2` a scrape answered by either worker sums both.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlmodel import Session

from schema.models import Interception, TokenUsage, ToolUsage
from tests.e2e.conftest import Setup, make_setup
from tests.harness import GatewayProcess, gateway_env, start_gateway

TOOL = {
    "name": "get_weather",
    "description": "w",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def scrape(
    gw: GatewayProcess, token: str | None
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{gw.base_url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum over samples named `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def recorded(gw: GatewayProcess, n: int) -> dict[str, int]:
    """Wait until `n` interceptions are closed in the database; their totals."""
    deadline = time.monotonic() + 30
    while True:
        with Session(gw.admin.engine) as s:
            closed = s.execute(
                select(func.count()).where(Interception.ended_at.is_not(None))  # type: ignore[union-attr]
            ).scalar_one()
            if closed >= n or time.monotonic() > deadline:
                row = s.execute(
                    select(
                        func.coalesce(func.sum(TokenUsage.input_tokens), 0),
                        func.coalesce(func.sum(TokenUsage.output_tokens), 0),
                        func.coalesce(func.sum(TokenUsage.cache_read_input_tokens), 0),
                    )
                ).one()
                tools = s.execute(select(func.count()).select_from(ToolUsage)).scalar_one()
                return {
                    "closed": closed,
                    "input": row[0],
                    "output": row[1],
                    "cache_read": row[2],
                    "tools": tools,
                }
        time.sleep(0.1)


def admin_token(gw: GatewayProcess, role: str = "admin", name: str = "ops") -> str:
    gw.admin.add_user(name, role=role)
    token = gw.admin.token(name)
    gw.sync()
    return token


def traffic(setup: Setup) -> int:
    """Blocking, streamed and tool-calling requests on both APIs, plus rejections; returns
    how many interceptions they opened."""
    claude, oai = setup.claude(), setup.oai()
    claude.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    with claude.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        tools=[TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "TOOL please"}],
    ) as stream:
        stream.get_final_message()
    oai.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    for _ in oai.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        pass
    bad = httpx.post(
        setup.gw.url("anthropic", "/v1/messages"),
        json={"model": "m", "max_tokens": 1, "messages": []},
        headers={"x-api-key": "aib_not-a-real-token"},
        timeout=10,
    )
    assert bad.status_code == 401
    unknown = httpx.post(
        setup.gw.url("no-such-provider", "/v1/messages"),
        json={},
        headers={"x-api-key": setup.token},
        timeout=10,
    )
    assert unknown.status_code == 404
    return 4


def test_metrics_agree_with_the_database(setup: Setup) -> None:
    gw = setup.gw
    token = admin_token(gw)
    opened = traffic(setup)
    db = recorded(gw, opened)
    assert db["closed"] == opened and db["input"] > 0 and db["tools"] >= 1
    m = scrape(gw, token)
    assert value(m, "aibridge_interceptions_total", status="completed") == opened
    assert value(m, "aibridge_interceptions_total", provider="anthropic") == 2
    assert value(m, "aibridge_tokens_total", type="input") == db["input"]
    assert value(m, "aibridge_tokens_total", type="output") == db["output"]
    assert value(m, "aibridge_tokens_total", type="cache_read") == db["cache_read"]
    assert value(m, "aibridge_tool_calls_total") == db["tools"]
    # every answer is counted once, with who gave it
    assert value(m, "aibridge_requests_total", status="200", source="upstream") == opened
    assert (
        value(m, "aibridge_requests_total", provider="anthropic", status="401", source="gateway")
        == 1
    )
    # a provider name nobody configured never becomes a label
    assert value(m, "aibridge_requests_total", provider="unknown", status="404") == 1
    assert not any("no-such-provider" in str(lab) for _, lab in m)
    assert value(m, "aibridge_request_duration_seconds_count", provider="openai") == 2
    assert value(m, "aibridge_upstream_ttfb_seconds_count") == opened
    assert value(m, "aibridge_database_writes_ok") == 1
    assert value(m, "aibridge_config_version") == gw.admin.version()
    assert value(m, "aibridge_journal_pending_bytes") == 0


def test_metrics_need_an_admin_or_auditor_token(setup: Setup) -> None:
    gw = setup.gw
    url = f"{gw.base_url}/metrics"
    r = httpx.get(url, timeout=10)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "token" in r.json()["message"]
    r = httpx.get(url, headers={"authorization": "Bearer aib_wrong"}, timeout=10)
    assert r.status_code == 401
    r = httpx.get(url, headers={"authorization": f"Bearer {setup.token}"}, timeout=10)
    assert r.status_code == 403 and "member" in r.json()["message"]
    auditor = admin_token(gw, role="auditor", name="watcher")
    assert httpx.get(url, headers={"x-api-key": auditor}, timeout=10).status_code == 200
    r = httpx.post(url, headers={"x-api-key": auditor}, timeout=10)
    assert r.status_code == 405
    # nothing of a token or provider key is in the exposition
    text = httpx.get(url, headers={"x-api-key": auditor}, timeout=10).text
    for secret in (auditor, setup.token, setup.anthropic_key, setup.openai_key):
        assert secret[6:18] not in text


@pytest.mark.parametrize("mode,status", [("public", 200), ("off", 404)])
def test_metrics_public_or_off(tmp_path: Path, fake: Any, mode: str, status: int) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    env = gateway_env(tmp_path / "data", url, {"AI_GATEWAY_METRICS": mode})
    gw = start_gateway(tmp_path, url, env=env)
    try:
        r = httpx.get(f"{gw.base_url}/metrics", timeout=10)
        assert r.status_code == status, r.text
        if mode == "public":
            assert "# TYPE aibridge_requests_total counter" in r.text
            assert "aibridge_database_writes_ok 1.0" in r.text
        else:
            assert "off" in r.json()["message"]
    finally:
        gw.stop()


def test_two_workers_report_the_sum(tmp_path: Path, fake: Any) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    env = gateway_env(tmp_path / "data", url, {"AI_GATEWAY_METRICS": "public"})
    gw = start_gateway(tmp_path, url, env=env, args=["--workers", "2"])
    try:
        setup = make_setup(gw, fake)
        n = 24
        for _ in range(n):  # one connection each: the kernel spreads them over both workers
            with httpx.Client(timeout=10) as client:
                r = client.post(
                    gw.url("anthropic", "/v1/messages"),
                    json={
                        "model": "m",
                        "max_tokens": 8,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                    headers={"x-api-key": setup.token},
                )
                assert r.status_code == 200, r.text
        db = recorded(gw, n)
        workers = {i.instance_id for i in _interceptions(gw)}
        assert len(workers) == 2, "both workers should have served (SO_REUSEPORT)"
        for _ in range(6):  # whichever worker answers the scrape, the totals are the same
            m = scrape(gw, None)
            assert value(m, "aibridge_interceptions_total", provider="anthropic") == n
            assert value(m, "aibridge_tokens_total", type="input") == db["input"]
    finally:
        gw.stop()


def _interceptions(gw: GatewayProcess) -> list[Interception]:
    with Session(gw.admin.engine) as s:
        return list(s.execute(select(Interception)).scalars())
