"""Property-based API tests: schemathesis generates requests from the served OpenAPI document
(as an admin) and checks that nothing answers 5xx and every response matches the document.

Bounded: a few examples per operation, no deadline per example, the whole run well under a
minute (pytest-timeout stops it at 60 s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.gateway.admin import PUBLIC_URL, Api, add_interception, at, running_api

MAX_EXAMPLES = 8
# The store validates names, endpoints and keys beyond what the request models' JSON schema
# can say (lowercase hyphenated names, no credentials in URLs, keys without whitespace), so a
# schema-valid body may rightly be a 422: only that check is left out.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture
def admin_api(tmp_path: Path, sqlite_url: str) -> Iterator[Api]:
    # Private upstreams allowed: generated hosts are never resolved (no DNS on this machine).
    with running_api(tmp_path, sqlite_url, allow_private=True) as api:
        for name in ("anthropic", "openai"):
            r = api.client.post("/api/v2/ai/providers", headers=api.auth("root"), json={
                "type": name, "name": name, "base_url": PUBLIC_URL,
                "api_keys": [f"sk-{name}-0123456789abcdef"]})
            assert r.status_code == 201, r.text
        add_interception(api, user="mia", started_at=at(1), prompt="hello",
                         tools=[("read_file", "{}")], thoughts=["hmm"])
        yield api


def check_operation(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

    run()


@pytest.mark.timeout(60)
def test_api_conforms_to_its_schema(admin_api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v2/openapi.json", admin_api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == 16
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            check_operation(operation, mode, admin_api.auth("root"))
    assert time.monotonic() - started < 50, "keep this test bounded"
