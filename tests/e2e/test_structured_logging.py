"""`--ai-gateway-structured-logging`: one "interception log" record per event, as JSON lines."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import make_setup
from tests.e2e.recorded import wait_recorded
from tests.harness import gateway_env, start_gateway

SEED_FIELDS = {
    "interception_start": {
        "interception_id",
        "initiator_id",
        "provider",
        "model",
        "client",
        "started_at",
    },
    "interception_end": {"interception_id", "ended_at"},
    "token_usage": {
        "interception_id",
        "input_tokens",
        "output_tokens",
        "created_at",
        "msg_id",
        "cache_read_input_tokens",
        "cache_write_input_tokens",
    },
    "prompt_usage": {"interception_id", "prompt", "created_at"},
    "tool_usage": {
        "interception_id",
        "tool",
        "input",
        "server_url",
        "injected",
        "created_at",
        "tool_call_id",
        "invocation_error",
    },
    "model_thought": {"interception_id", "content", "created_at", "metadata"},
}


def test_json_records_for_every_event(tmp_path: Path, fake: Any) -> None:
    env = gateway_env(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        {
            "AI_GATEWAY_STRUCTURED_LOGGING": "true",
            "AI_GATEWAY_LOG_JSON": str(tmp_path / "log.jsonl"),
        },
    )
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", env=env)
    try:
        setup = make_setup(gw, fake)
        with setup.claude() as client:
            raw = client.messages.with_raw_response.create(
                model="claude-sonnet-4-5",
                max_tokens=2048,
                thinking={"type": "enabled", "budget_tokens": 1024},
                tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
                messages=[{"role": "user", "content": "TOOL please"}],
            )
        iid = raw.headers["x-aibridge-interception-id"]
        wait_recorded(gw.admin.engine, iid)
    finally:
        gw.stop()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    records = [
        r for r in lines if r.get("msg") == "interception log" and r.get("interception_id") == iid
    ]
    by_type = {r["record_type"]: r for r in records}
    assert set(by_type) == set(SEED_FIELDS)
    for record_type, fields in SEED_FIELDS.items():
        assert fields <= set(by_type[record_type]), (record_type, by_type[record_type])
    assert by_type["prompt_usage"]["prompt"] == "TOOL please"
    assert by_type["tool_usage"]["tool"] == "get_weather"
    assert json.loads(by_type["tool_usage"]["input"]) == {"location": "Paris"}
    assert by_type["interception_start"]["provider"] == "anthropic"
    assert by_type["interception_start"]["model"] == "claude-sonnet-4-5"
    assert by_type["token_usage"]["input_tokens"] > 0
    assert all(r["level"] == "info" and r["ts"] for r in records)
    text = (tmp_path / "log.jsonl").read_text()
    assert setup.anthropic_key not in text and setup.token not in text
    assert time.time()  # the log file is complete after a graceful stop
