"""The 0.x anthropic SDK (sends X-Api-Key, anthropic-version 2023-06-01) and the 1.x openai
SDK through the gateway, in their own interpreter path (.cache/sdk-old, from scripts/test-deps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import Setup
from tests.harness import REPO

OLD = REPO / ".cache" / "sdk-old"


def test_old_sdks_blocking_and_streaming(shared: Setup) -> None:
    if not (OLD / ".done").exists():
        pytest.fail("old SDKs missing: run scripts/test-deps (scripts/test does)")
    shared.fake.clear()
    env = {**os.environ, "PYTHONPATH": str(OLD)}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests/e2e/clients/old_sdks.py"),
            shared.gw.base_url,
            shared.token,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["anthropic_version"].startswith("0.")
    assert out["openai_version"].startswith("1.")
    assert out["anthropic_blocking"] == "Hello from the fake provider."
    assert out["anthropic_stream_blocks"][0] == "thinking"
    assert out["anthropic_stream_output_tokens"] > 0
    assert out["chat_blocking"] and out["chat_stream_usage"] and out["responses_stream"]
    anthropic_reqs = [r for r in shared.fake.requests if r.path == "/v1/messages"]
    assert anthropic_reqs and all(
        r.header("x-api-key") == shared.anthropic_key for r in anthropic_reqs
    )
    assert all(r.header("anthropic-version") == "2023-06-01" for r in anthropic_reqs)
    for r in shared.fake.requests:
        assert shared.token not in repr(r.headers)
