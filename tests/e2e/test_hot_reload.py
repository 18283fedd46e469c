"""Changes take effect without restart, in every process, within 2 seconds, with no failed
request: two gateway processes on one PostgreSQL database (LISTEN/NOTIFY; the version poll
is set to 30 s here so only the notification can explain a fast switch), and SQLite (poll)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.models import KeyRef, ProviderUpdate
from tests.fakeprovider import running_fake_provider
from tests.harness import GatewayProcess, gateway_env, postgres_schema, start_gateway

MSG = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


class Traffic:
    """Requests to every gateway in a loop; remembers each answer's status and time."""

    def __init__(self, gateways: list[GatewayProcess], token: str) -> None:
        self.gateways = gateways
        self.token = token
        self.results: list[tuple[float, int, int]] = []  # (time, gateway index, status)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(i,)) for i in range(len(gateways))
        ]

    def _loop(self, i: int) -> None:
        gw = self.gateways[i]
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(
                        gw.url("p", "/v1/messages"), json=MSG, headers={"x-api-key": self.token}
                    )
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1
                self.results.append((time.monotonic(), i, status))
                time.sleep(0.01)

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def _wait_until(cond: Any, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout}s")


def _two_gateways(tmp_path: Path, db_url: str, poll: str) -> list[GatewayProcess]:
    gws = []
    shared_env = gateway_env(tmp_path / "data-0", db_url, {"AI_GATEWAY_RELOAD_INTERVAL": poll})
    for i in range(2):
        env = {**shared_env, "AI_GATEWAY_DATA_DIR": str(tmp_path / f"data-{i}")}
        gws.append(start_gateway(tmp_path / f"gw{i}", db_url, env=env))
    return gws


def _scenario(gws: list[GatewayProcess]) -> None:
    admin = gws[0].admin
    with running_fake_provider() as one, running_fake_provider() as two:
        admin.add_provider("p", "anthropic", one.base_url, ["sk-ant-first-key-000001"])
        admin.add_user("u")
        token = admin.token("u")
        for gw in gws:
            gw.sync()
        with Traffic(gws, token) as traffic:
            time.sleep(0.5)
            changed_at = time.monotonic()
            admin.update_provider(
                "p",
                ProviderUpdate(
                    base_url=two.base_url, api_keys=[KeyRef(api_key="sk-ant-second-key-000002")]
                ),
            )
            took = _last_request_to(one, traffic, changed_at) - changed_at
            assert took <= 2.0, f"a gateway still routed to the old endpoint {took:.2f}s later"
            assert {r.header("x-api-key") for r in two.requests} == {"sk-ant-second-key-000002"}
            disabled_at = time.monotonic()
            admin.update_provider("p", ProviderUpdate(enabled=False))
            took = _wait_until(lambda: _both_status(traffic, disabled_at, 403), 5.0)
            assert took <= 2.0, f"disable took {took:.2f}s"
        statuses = Counter(s for _, _, s in traffic.results)
        assert set(statuses) <= {200, 403}, statuses  # never a failed request
        assert statuses[200] > 20


def _last_request_to(old: Any, traffic: Traffic, since: float, quiet: float = 0.5) -> float:
    """When the old upstream got its last request: once it has had none for `quiet` seconds
    while both gateways kept answering 200, every process has switched."""
    last_count, last_change = len(old.requests), since
    deadline = since + 6.0
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = time.monotonic()
        if len(old.requests) != last_count:
            last_count, last_change = len(old.requests), now
        window = {i for t, i, s in traffic.results if t > now - quiet and s == 200}
        if now - last_change >= quiet and window == {0, 1}:
            return last_change
    raise AssertionError("the old endpoint kept receiving requests")


def _both_status(traffic: Traffic, since: float, status: int) -> bool:
    return {i for t, i, s in traffic.results if t > since and s == status} == {0, 1}


@pytest.mark.postgres
def test_two_processes_postgres_listen_notify(tmp_path: Path) -> None:
    with postgres_schema() as url:
        gws = _two_gateways(tmp_path, url, poll="30s")
        try:
            _scenario(gws)
        finally:
            for gw in gws:
                gw.stop()


def test_two_processes_sqlite_poll(tmp_path: Path) -> None:
    gws = _two_gateways(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}", poll="1s")
    try:
        _scenario(gws)
    finally:
        for gw in gws:
            gw.stop()
