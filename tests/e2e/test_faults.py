"""Faults: disconnects, upstream resets, database outages, SIGTERM and SIGKILL. Afterwards the
database holds one closed interception per request the gateway took, and nothing is lost."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Setup, make_setup
from tests.e2e.recorded import all_interceptions, wait_recorded
from tests.harness import postgres_schema, start_gateway
from tests.tcpproxy import tcp_proxy

IID = "x-aibridge-interception-id"


def _msg(text: str, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    }


def _headers(setup: Setup, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {setup.token}", "anthropic-version": "2023-06-01", **extra}


def _wait_all_closed(setup: Setup, expected: int, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = all_interceptions(setup.gw.admin.engine)
        if len(rows) >= expected and all(r.ended_at is not None for r in rows):
            return rows
        if time.monotonic() > deadline:
            open_ = [r.id for r in rows if r.ended_at is None]
            raise AssertionError(f"{len(rows)} rows (want {expected}), open: {open_}")
        time.sleep(0.1)


def test_client_disconnect_mid_stream(setup: Setup) -> None:
    url = setup.gw.url("anthropic", "/v1/messages")
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            url,
            json=_msg("hi"),
            headers=_headers(setup, **{"x-fake-delay": "0.2", "x-fake-events": "30"}),
        ) as r,
    ):
        iid = r.headers[IID]
        chunks = r.iter_bytes()
        got = next(chunks) + next(chunks)
        assert b"message_start" in got
    rec = wait_recorded(setup.gw.admin.engine, iid)
    assert rec.interception.status == "client_disconnected"
    assert rec.interception.ended_at is not None
    assert len(rec.usages) == 1 and rec.usages[0].input_tokens > 0  # usage seen so far


def test_upstream_reset_mid_stream(setup: Setup) -> None:
    url = setup.gw.url("anthropic", "/v1/messages")
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", url, json=_msg("RESETMID"), headers=_headers(setup)) as r,
    ):
        iid = r.headers[IID]
        with pytest.raises(httpx.HTTPError):
            for _ in r.iter_bytes():
                pass
    rec = wait_recorded(setup.gw.admin.engine, iid)
    assert rec.interception.status == "upstream_error"
    assert rec.interception.error_message


def _send_many(setup: Setup, n: int, text: str = "hi") -> list[str]:
    ids = []
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            r = client.post(
                setup.gw.url("anthropic", "/v1/messages"),
                json=_msg(text, False),
                headers=_headers(setup),
            )
            assert r.status_code == 200, r.text
            ids.append(r.headers[IID])
    return ids


@pytest.mark.postgres
def test_postgres_outage_then_back(tmp_path: Path, fake: Any) -> None:
    with postgres_schema() as url, tcp_proxy("127.0.0.1", 5432) as proxy:
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        gw = start_gateway(tmp_path, proxied)
        try:
            setup = make_setup(gw, fake)
            before = _send_many(setup, 5)
            proxy.cut()
            during = _send_many(setup, 20)  # served while the database is unreachable
            time.sleep(2)
            assert gw.health() is not None and gw.health()["database_writes"] == "failing"  # type: ignore[index]
            proxy.restore()
            rows = _wait_all_closed(setup, 25)
            assert {str(r.id) for r in rows} >= {*before, *during}
            assert all(r.status == "completed" for r in rows)
        finally:
            gw.stop()


def test_sqlite_locked_then_released(setup: Setup) -> None:
    db = setup.gw.admin.engine.url.database
    assert db
    lock = sqlite3.connect(db, timeout=1)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        ids = _send_many(setup, 10)
        time.sleep(1)
    finally:
        lock.rollback()
        lock.close()
    rows = _wait_all_closed(setup, 10, timeout=40)
    assert {str(r.id) for r in rows} >= set(ids)


def test_sigterm_lets_streams_finish(setup: Setup) -> None:
    url = setup.gw.url("anthropic", "/v1/messages")
    result: dict[str, Any] = {}

    def stream() -> None:
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST",
                url,
                json=_msg("hi"),
                headers=_headers(setup, **{"x-fake-delay": "0.1", "x-fake-events": "20"}),
            ) as r,
        ):
            result["iid"] = r.headers[IID]
            result["body"] = b"".join(r.iter_bytes())

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.7)
    setup.gw.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{setup.gw.base_url}/healthz", timeout=2)  # no longer accepting
    t.join(30)
    assert b"message_stop" in result["body"]
    assert setup.gw.proc.wait(30) == 0
    rec = wait_recorded(setup.gw.admin.engine, result["iid"])
    assert rec.interception.status == "completed"
    assert not list((setup.gw.data_dir / "journal").glob("*.jsonl")), "journal not drained"


def test_kill9_under_load_then_restart(tmp_path: Path, fake: Any) -> None:
    url_db = f"sqlite:///{tmp_path / 'k.db'}"
    gw = start_gateway(tmp_path, url_db)
    setup = make_setup(gw, fake)
    answered: list[str] = []
    failed = 0
    stop = threading.Event()
    lock = threading.Lock()

    def client_loop(i: int) -> None:
        nonlocal failed
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    stream = i % 2 == 0
                    r = client.post(
                        gw.url("anthropic", "/v1/messages"),
                        json=_msg("hi", stream),
                        headers=_headers(setup),
                    )
                    complete = r.status_code == 200 and (
                        b"message_stop" in r.content if stream else b'"usage"' in r.content
                    )
                    with lock:
                        if complete:
                            answered.append(r.headers[IID])
                        else:
                            failed += 1
                except httpx.HTTPError:
                    with lock:
                        failed += 1
                    time.sleep(0.05)

    with ThreadPoolExecutor(8) as pool:
        for i in range(8):
            pool.submit(client_loop, i)
        time.sleep(2.0)
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait()
        time.sleep(0.3)
        stop.set()
    assert len(answered) > 20
    restarted = start_gateway(tmp_path, url_db, env=gw.env)
    try:
        rows = _wait_all_closed(setup, len(answered))
        by_id = {str(r.id): r for r in rows}
        missing = [a for a in answered if a not in by_id]
        assert not missing, f"{len(missing)} answered requests have no interception"
        assert all(by_id[a].status == "completed" for a in answered)
        # Requests the kill caught in flight: those cut mid-way are closed as `failed`; those the
        # provider had fully answered (billed) but whose bytes the client never read stay
        # `completed`. Never more than the 8 clients had in flight.
        extra = [r for r in rows if str(r.id) not in set(answered)]
        assert all(r.ended_at is not None for r in extra)
        assert all(
            r.status == "completed" or (r.status == "failed" and r.error_message) for r in extra
        ), [(r.status, r.error_message) for r in extra]
        assert len(extra) <= 8
        assert len(rows) == len(set(by_id)), "duplicate interceptions"
    finally:
        restarted.stop()


def test_upstream_timeout_is_504_in_provider_shape(tmp_path: Path, fake: Any) -> None:
    from tests.harness import gateway_env

    db = f"sqlite:///{tmp_path / 't.db'}"
    env = gateway_env(tmp_path / "data", db, {"AI_GATEWAY_UPSTREAM_TIMEOUT": "1s"})
    gw = start_gateway(tmp_path, db, env=env)
    try:
        setup = make_setup(gw, fake)
        started = time.monotonic()
        r = httpx.post(
            gw.url("anthropic", "/v1/messages"),
            json=_msg("HANG", False),
            headers=_headers(setup),
            timeout=20,
        )
        assert r.status_code == 504, r.text
        assert 0.9 < time.monotonic() - started < 5
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] == "timeout_error"
        rec = wait_recorded(gw.admin.engine, r.headers[IID])
        assert rec.interception.status == "upstream_error"
        assert rec.interception.upstream_status == 504
        # the gateway keeps serving
        ok = httpx.post(
            gw.url("anthropic", "/v1/messages"),
            json=_msg("hi", False),
            headers=_headers(setup),
            timeout=10,
        )
        assert ok.status_code == 200
        oai = httpx.post(
            gw.url("openai", "/v1/chat/completions"),
            timeout=20,
            json={"model": "m", "messages": [{"role": "user", "content": "HANG"}]},
            headers=_headers(setup),
        )
        assert oai.status_code == 504 and oai.json()["error"]["code"] == "upstream_timeout"
    finally:
        gw.stop()
