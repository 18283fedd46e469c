"""Faults while requests flow: client disconnects, upstream timeouts, database outages, full
disks and journals, SIGKILL, providers disabled or deleted in flight, concurrent admin edits,
retention purges. Each time the gateway keeps serving and the database ends consistent: one
closed interception per answered request, no duplicates, nothing left open."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Setup, make_setup
from tests.hardening.conftest import Budget, hardening_env
from tests.hardening.support import IID, assert_consistent, interceptions
from tests.harness import GatewayProcess, postgres_schema, start_gateway
from tests.tcpproxy import tcp_proxy

A_HEADERS = {"anthropic-version": "2023-06-01"}


def _msg(text: str = "hi", stream: bool = False) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 5,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    }


def _chat(text: str = "hi", stream: bool = False) -> dict[str, Any]:
    return {
        "model": "m",
        "stream": stream,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": text}],
    }


def _responses(text: str = "hi", stream: bool = False) -> dict[str, Any]:
    return {"model": "m", "stream": stream, "input": text}


API = {
    "messages": ("anthropic", "/v1/messages", _msg, b"message_stop", b'"usage"'),
    "chat": ("openai", "/v1/chat/completions", _chat, b"[DONE]", b'"usage"'),
    "responses": ("openai", "/v1/responses", _responses, b"response.completed", b'"usage"'),
}


@dataclass
class Load:
    """Clients looping over the three APIs (streaming and blocking); what was answered whole."""

    setup: Setup
    answered: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok_statuses: tuple[int, ...] = (200,)

    def one(self, client: httpx.Client, i: int, text: str = "hi") -> None:
        api = ("messages", "chat", "responses")[i % 3]
        provider, path, body, end_stream, end_block = API[api]
        stream = i % 2 == 0
        try:
            r = client.post(
                self.setup.gw.url(provider, path),
                json=body(text, stream),
                headers={"authorization": f"Bearer {self.setup.token}", **A_HEADERS},
            )
        except httpx.HTTPError as exc:
            with self.lock:
                self.errors.append(repr(exc))
            return
        whole = r.status_code == 200 and (end_stream if stream else end_block) in r.content
        with self.lock:
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            if whole:
                self.answered.append(r.headers[IID])
            elif r.status_code == 200:
                self.errors.append(f"incomplete 200 body: {r.content[-200:]!r}")

    def loop(self, n: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = n
            while not self.stop.is_set():
                self.one(client, i)
                i += 1

    @contextlib.contextmanager
    def running(self, clients: int) -> Iterator[Load]:
        pool = ThreadPoolExecutor(clients)
        futures = [pool.submit(self.loop, n) for n in range(clients)]
        try:
            yield self
        finally:
            self.stop.set()
            for f in futures:
                f.result(60)
            pool.shutdown()

    def bad_statuses(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if s not in self.ok_statuses}


def _gateway(tmp_path: Path, url: str, **env: str) -> GatewayProcess:
    return start_gateway(tmp_path, url, env=hardening_env(tmp_path, url, **env))


@contextlib.contextmanager
def _db(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'faults.db'}"
    else:
        with postgres_schema() as url:
            yield url


DBS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _keeps_serving(setup: Setup) -> str:
    """A normal request succeeds; returns its interception id."""
    r = httpx.post(
        setup.gw.url("anthropic", "/v1/messages"),
        json=_msg(),
        headers={"x-api-key": setup.token, **A_HEADERS},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert setup.gw.proc.poll() is None
    return r.headers[IID]


def _no_tracebacks(gw: GatewayProcess) -> None:
    log = gw.logs()
    assert "Traceback" not in log, log[-4000:]


# -- client disconnects ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DBS)
def test_clients_disconnect_mid_stream_on_every_api(
    kind: str, tmp_path: Path, fake: Any, budget: Budget
) -> None:
    with _db(kind, tmp_path) as url:
        gw = _gateway(tmp_path, url)
        try:
            setup = make_setup(gw, fake)
            cut: list[str] = []
            whole: list[str] = []
            lock = threading.Lock()

            def stream(i: int) -> None:
                api = ("messages", "chat", "responses")[i % 3]
                provider, path, body, end, _ = API[api]
                headers = {
                    "authorization": f"Bearer {setup.token}",
                    "x-fake-delay": "0.05",
                    "x-fake-events": "40",
                    **A_HEADERS,
                }
                with (
                    httpx.Client(timeout=30) as client,
                    client.stream(
                        "POST", gw.url(provider, path), json=body("hi", True), headers=headers
                    ) as r,
                ):
                    assert r.status_code == 200
                    iid = r.headers[IID]
                    chunks = r.iter_raw()
                    if i % 4 == 3:  # a quarter read to the end
                        data = b"".join(chunks)
                        assert end in data
                        with lock:
                            whole.append(iid)
                        return
                    for _ in range(1 + i % 3):
                        next(chunks)
                with lock:
                    cut.append(iid)

            with ThreadPoolExecutor(budget.clients * 2) as pool:
                list(pool.map(stream, range(budget.clients * 6)))
            rows = assert_consistent(gw.admin.engine, cut + whole)
            assert {rows[i].status for i in cut} == {"client_disconnected"}
            assert {rows[i].status for i in whole} == {"completed"}
            assert all(rows[i].streamed for i in cut + whole)
            _keeps_serving(setup)
            _no_tracebacks(gw)
        finally:
            gw.stop()


# -- upstream timeout --------------------------------------------------------------------------


def test_upstream_timeout_under_load(tmp_path: Path, fake: Any, budget: Budget) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    gw = _gateway(tmp_path, url, AI_GATEWAY_UPSTREAM_TIMEOUT="1s")
    try:
        setup = make_setup(gw, fake)
        hung: list[httpx.Response] = []

        def hang(i: int) -> None:
            api = ("messages", "chat", "responses")[i % 3]
            provider, path, body, _, _ = API[api]
            r = httpx.post(
                gw.url(provider, path),
                json=body("HANG", i % 2 == 0),
                headers={"authorization": f"Bearer {setup.token}", **A_HEADERS},
                timeout=20,
            )
            hung.append(r)

        load = Load(setup)
        with ThreadPoolExecutor(6) as pool, load.running(budget.clients):
            started = time.monotonic()
            list(pool.map(hang, range(6)))
            elapsed = time.monotonic() - started
        assert elapsed < 8, elapsed  # 6 hangs in parallel, each cut at 1 s
        assert load.bad_statuses() == {} and load.errors == [] and len(load.answered) > 10
        for r in hung:
            assert r.status_code == 504, r.text
            err = r.json()["error"]
            assert err.get("type") == "timeout_error" or err.get("code") == "upstream_timeout"
            assert r.headers["x-aibridge-timeout"] == "1s"
        rows = assert_consistent(gw.admin.engine, load.answered + [r.headers[IID] for r in hung])
        for r in hung:
            rec = rows[r.headers[IID]]
            assert rec.status == "upstream_error" and rec.upstream_status == 504
        _keeps_serving(setup)
    finally:
        gw.stop()


# -- database outages ----------------------------------------------------------------------------


@contextlib.contextmanager
def _outage_control(
    kind: str, tmp_path: Path
) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """(database URL for the gateway, cut(), restore()): PostgreSQL behind a TCP proxy that is
    cut, or SQLite held under an exclusive lock."""
    if kind == "postgres":
        with postgres_schema() as url, tcp_proxy("127.0.0.1", 5432) as proxy:
            yield url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"), proxy.cut, proxy.restore
        return
    path = tmp_path / "outage.db"
    holder: list[sqlite3.Connection] = []

    def cut() -> None:
        conn = sqlite3.connect(path, timeout=5, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        holder.append(conn)

    def restore() -> None:
        while holder:
            conn = holder.pop()
            conn.rollback()
            conn.close()

    try:
        yield f"sqlite:///{path}", cut, restore
    finally:
        restore()


@pytest.mark.parametrize("kind", DBS)
def test_database_outage_under_load(kind: str, tmp_path: Path, fake: Any, budget: Budget) -> None:
    with _outage_control(kind, tmp_path) as (url, cut, restore):
        gw = _gateway(tmp_path, url)
        try:
            setup = make_setup(gw, fake)
            load = Load(setup)
            with load.running(budget.clients):
                time.sleep(1)
                cut()
                try:
                    served_before = len(load.answered)
                    time.sleep(budget.outage_seconds)
                    health = gw.health()
                    assert health is not None and health["journal_pending_bytes"] > 0
                    if kind == "postgres":  # SQLite's writer waits on the lock instead
                        assert health["database_writes"] == "failing"
                    assert len(load.answered) > served_before + 5  # served during the outage
                finally:
                    restore()
                time.sleep(1)
            assert load.bad_statuses() == {} and load.errors == [], (load.statuses, load.errors[:3])
            rows = assert_consistent(gw.admin.engine, load.answered, timeout=60)
            assert {r.status for r in rows.values()} == {"completed"}
            deadline = time.monotonic() + 20
            while gw.health()["database_writes"] != "ok":  # type: ignore[index]
                assert time.monotonic() < deadline
                time.sleep(0.2)
            _keeps_serving(setup)
        finally:
            gw.stop()


@pytest.mark.parametrize("kind", DBS)
def test_full_journal_is_503_with_retry_after_then_recovers(
    kind: str, tmp_path: Path, fake: Any
) -> None:
    with _outage_control(kind, tmp_path) as (url, cut, restore):
        gw = _gateway(tmp_path, url, AI_GATEWAY_JOURNAL_MAX_BYTES="24KiB")
        try:
            setup = make_setup(gw, fake)
            _keeps_serving(setup)
            cut()
            answered: list[str] = []
            refused: list[httpx.Response] = []
            in_flight: list[str] = []
            try:
                # a slow stream that began before the journal filled must still be closed
                with (
                    httpx.Client(timeout=30) as client,
                    client.stream(
                        "POST",
                        gw.url("anthropic", "/v1/messages"),
                        json=_msg("hi", True),
                        headers={
                            "x-api-key": setup.token,
                            "x-fake-delay": "0.05",
                            "x-fake-events": "60",
                            **A_HEADERS,
                        },
                    ) as slow,
                ):
                    in_flight.append(slow.headers[IID])
                    for i in range(400):
                        provider, path, body, _, _ = API[("messages", "chat")[i % 2]]
                        fake.clear()
                        r = client.post(
                            gw.url(provider, path),
                            json=body("x" * 500),
                            headers={"authorization": f"Bearer {setup.token}", **A_HEADERS},
                        )
                        if r.status_code == 503:
                            assert fake.requests == []  # refused before the upstream
                            refused.append(r)
                            if len(refused) >= 4:
                                break
                        else:
                            assert r.status_code == 200, r.text
                            answered.append(r.headers[IID])
                    assert b"message_stop" in b"".join(slow.iter_bytes())
            finally:
                restore()
            assert len(refused) == 4 and len(answered) >= 5, (len(refused), len(answered))
            for r in refused:
                assert r.headers["retry-after"] == "10"
                body = r.json()
                if body.get("type") == "error":
                    assert body["error"]["type"] == "overloaded_error"
                else:
                    assert body["error"]["code"] == "gateway_unavailable"
            # back: new requests are taken again once the journal has drained
            deadline = time.monotonic() + 30
            while True:
                r = httpx.post(
                    gw.url("anthropic", "/v1/messages"),
                    json=_msg(),
                    headers={"x-api-key": setup.token, **A_HEADERS},
                    timeout=10,
                )
                if r.status_code == 200:
                    answered.append(r.headers[IID])
                    break
                assert r.status_code == 503 and time.monotonic() < deadline
                time.sleep(0.2)
            rows = assert_consistent(
                gw.admin.engine, answered + in_flight, extra_allowed=1, timeout=60
            )
            assert rows[in_flight[0]].status == "completed"
            _no_tracebacks(gw)
        finally:
            gw.stop()


# -- full disks ----------------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(path: Path, size: str) -> Iterator[bool]:
    """A `size` tmpfs mounted at `path` (root only); yields False when mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        timeout=10,
    )
    try:
        yield done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def test_full_dump_disk_never_fails_a_request(tmp_path: Path, fake: Any) -> None:
    dumps = tmp_path / "dumps"
    with tiny_disk(dumps, "1m") as mounted:
        if not mounted:  # no mount rights: a dump "folder" that is a file fails the same way
            dumps.rmdir()
            dumps.write_text("not a folder")
        url = f"sqlite:///{tmp_path / 'd.db'}"
        gw = _gateway(tmp_path, url, AI_GATEWAY_DUMP_DIR=str(dumps))
        try:
            setup = make_setup(gw, fake)
            ids = []
            with httpx.Client(timeout=30) as client:
                for i in range(30):  # 30 x ~100 KB prompts: far over 1 MiB of dumps
                    provider, path, body, end, _ = API[("messages", "chat", "responses")[i % 3]]
                    r = client.post(
                        gw.url(provider, path),
                        json=body("y" * 100_000, True),
                        headers={"authorization": f"Bearer {setup.token}", **A_HEADERS},
                    )
                    assert r.status_code == 200 and end in r.content
                    ids.append(r.headers[IID])
            rows = assert_consistent(gw.admin.engine, ids)
            assert {r.status for r in rows.values()} == {"completed"}
            health = gw.health()
            assert health is not None and health["dump_failures"] > 0
            assert gw.logs().count("API dumps cannot be written") == 1
            _keeps_serving(setup)
            _no_tracebacks(gw)
        finally:
            gw.stop()


@pytest.mark.parametrize("kind", DBS)
def test_full_journal_disk_is_503_not_500(kind: str, tmp_path: Path, fake: Any) -> None:
    """The journal's own disk fills up (ENOSPC) while the database is away: new requests are
    refused with 503 (never an internal 500) and nothing is lost once the database is back."""
    journal = tmp_path / "data" / "journal"
    with (
        tiny_disk(journal, "64k") as mounted,
        _outage_control(kind, tmp_path) as (url, cut, restore),
    ):
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        gw = _gateway(tmp_path, url)
        try:
            setup = make_setup(gw, fake)
            cut()
            answered: list[str] = []
            statuses: list[int] = []
            try:
                with httpx.Client(timeout=30) as client:
                    for _ in range(300):
                        r = client.post(
                            gw.url("anthropic", "/v1/messages"),
                            json=_msg("z" * 800),
                            headers={"x-api-key": setup.token, **A_HEADERS},
                        )
                        statuses.append(r.status_code)
                        if r.status_code == 200:
                            answered.append(r.headers[IID])
                        elif statuses.count(503) >= 3:
                            break
            finally:
                restore()
            assert set(statuses) <= {200, 503}, statuses
            assert statuses.count(503) >= 3 and len(answered) >= 5
            deadline = time.monotonic() + 30
            while True:
                r = httpx.post(
                    gw.url("anthropic", "/v1/messages"),
                    json=_msg(),
                    headers={"x-api-key": setup.token, **A_HEADERS},
                    timeout=10,
                )
                if r.status_code == 200:
                    answered.append(r.headers[IID])
                    break
                assert r.status_code == 503 and time.monotonic() < deadline, r.text
                time.sleep(0.3)
            assert_consistent(gw.admin.engine, answered, extra_allowed=3, timeout=60)
        finally:
            gw.stop()


# -- SIGKILL -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DBS)
def test_sigkill_with_streams_in_flight_then_restart(
    kind: str, tmp_path: Path, fake: Any, budget: Budget
) -> None:
    with _db(kind, tmp_path) as url:
        gw = _gateway(tmp_path, url)
        setup = make_setup(gw, fake)
        load = Load(setup)

        def slow(_: int) -> None:
            headers = {
                "authorization": f"Bearer {setup.token}",
                "x-fake-delay": "0.1",
                "x-fake-events": "50",
                **A_HEADERS,
            }
            with contextlib.suppress(httpx.HTTPError), httpx.Client(timeout=30) as client:
                client.post(
                    gw.url("anthropic", "/v1/messages"), json=_msg("hi", True), headers=headers
                )

        with ThreadPoolExecutor(4) as pool, load.running(budget.clients):
            slows = [pool.submit(slow, i) for i in range(4)]
            time.sleep(2.0)
            gw.proc.send_signal(signal.SIGKILL)
            gw.proc.wait(10)
            for f in slows:
                f.result(30)
        assert len(load.answered) > 10
        restarted = start_gateway(tmp_path, url, env=gw.env)
        try:
            rows = assert_consistent(
                restarted.admin.engine, load.answered, extra_allowed=budget.clients + 4, timeout=60
            )
            assert all(rows[i].status == "completed" for i in load.answered)
            extra = [r for i, r in rows.items() if i not in set(load.answered)]
            assert len(extra) >= 4  # at least the slow streams were cut in flight
            for r in extra:
                assert r.status == "completed" or (r.status == "failed" and r.error_message)
            assert not list((restarted.data_dir / "journal").glob("*.failed"))
            _keeps_serving(make_setup_again(restarted, setup))
        finally:
            restarted.stop()


def make_setup_again(gw: GatewayProcess, old: Setup) -> Setup:
    return Setup(gw, old.fake, old.token, old.anthropic_key, old.openai_key)


# -- admin changes while requests are in flight ------------------------------------------------


def _admin_token(gw: GatewayProcess) -> str:
    """A new admin's token, already in the gateway's snapshot."""
    gw.admin.add_user("root", role="admin")
    token = gw.admin.token("root")
    gw.sync()
    return token


def test_provider_disabled_or_deleted_while_streams_are_in_flight(
    tmp_path: Path, fake: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    gw = _gateway(tmp_path, url)
    try:
        setup = make_setup(gw, fake)
        gw.admin.add_provider("second", "anthropic", fake.base_url, ["sk-second-key-12345678"])
        admin = {"authorization": f"Bearer {_admin_token(gw)}"}
        gw.sync()
        api = f"{gw.base_url}/api/v2/ai/providers"

        def slow(provider: str) -> tuple[str, bytes]:
            headers = {
                "authorization": f"Bearer {setup.token}",
                "x-fake-delay": "0.1",
                "x-fake-events": "20",
                **A_HEADERS,
            }
            with (
                httpx.Client(timeout=30) as client,
                client.stream(
                    "POST", gw.url(provider, "/v1/messages"), json=_msg("hi", True), headers=headers
                ) as r,
            ):
                return r.headers[IID], b"".join(r.iter_bytes())

        def new_request(provider: str) -> httpx.Response:
            return httpx.post(
                gw.url(provider, "/v1/messages"),
                json=_msg(),
                headers={"x-api-key": setup.token, **A_HEADERS},
                timeout=10,
            )

        with ThreadPoolExecutor(6) as pool:
            flying = [pool.submit(slow, "anthropic") for _ in range(3)]
            flying += [pool.submit(slow, "second") for _ in range(3)]
            time.sleep(0.5)
            r = httpx.patch(f"{api}/anthropic", json={"enabled": False}, headers=admin, timeout=10)
            assert r.status_code == 200, r.text
            r = httpx.delete(f"{api}/second", headers=admin, timeout=10)
            assert r.status_code in (200, 204), r.text
            gw.sync()
            disabled = new_request("anthropic")
            deleted = new_request("second")
            results = [f.result(30) for f in flying]
        assert disabled.status_code == 403 and "disabled" in disabled.json()["error"]["message"]
        assert deleted.status_code == 404 and "unknown provider" in deleted.text
        for _, body in results:
            assert b"message_stop" in body  # the streams in flight finished
        rows = assert_consistent(gw.admin.engine, [iid for iid, _ in results])
        assert {r.status for r in rows.values()} == {"completed"}
        r = httpx.patch(f"{api}/anthropic", json={"enabled": True}, headers=admin, timeout=10)
        assert r.status_code == 200
        gw.sync()
        _keeps_serving(setup)
    finally:
        gw.stop()


@pytest.mark.parametrize("kind", DBS)
def test_concurrent_admin_edits_of_one_provider(
    kind: str, tmp_path: Path, fake: Any, budget: Budget
) -> None:
    with _db(kind, tmp_path) as url:
        gw = _gateway(tmp_path, url)
        try:
            setup = make_setup(gw, fake)
            admin = {"authorization": f"Bearer {_admin_token(gw)}"}
            api = f"{gw.base_url}/api/v2/ai/providers/anthropic"
            statuses: list[int] = []
            keys: dict[int, str] = {}
            lock = threading.Lock()

            def edit(worker: int) -> None:
                rng = random.Random(worker)
                with httpx.Client(timeout=30, headers=admin) as client:
                    for n in range(budget.requests // 6):
                        i = worker * 1000 + n
                        choice = rng.randrange(4)
                        if choice == 0:
                            change: dict[str, Any] = {"enabled": rng.random() < 0.7}
                        elif choice == 1:
                            change = {"display_name": f"edit {i}"}
                        elif choice == 2:
                            keys[i] = f"sk-rotated-{i:06d}-abcdefgh"
                            change = {"api_keys": [{"api_key": keys[i]}]}
                        else:
                            change = {"base_url": fake.base_url, "enabled": True}
                        r = client.patch(api, json=change)
                        with lock:
                            statuses.append(r.status_code)

            load = Load(setup)
            load.ok_statuses = (200, 403)
            with ThreadPoolExecutor(6) as pool, load.running(2):
                list(pool.map(edit, range(6)))
            assert set(statuses) <= {200, 409}, sorted(set(statuses))
            assert statuses.count(200) >= len(statuses) // 2
            assert load.bad_statuses() == {} and load.errors == [], (load.statuses, load.errors[:3])
            final = httpx.get(api, headers=admin, timeout=10).json()
            assert len(final["api_keys"]) >= 1
            httpx.patch(api, json={"enabled": True}, headers=admin, timeout=10)
            gw.sync()
            fake.clear()
            load.answered.append(_keeps_serving(setup))
            (got,) = fake.requests
            sent = got.header("x-api-key")
            assert sent is not None
            masked = {k["masked"] for k in final["api_keys"]}
            assert f"{sent[:4]}...{sent[-4:]}" in masked  # the gateway routes with a live key
            assert_consistent(
                gw.admin.engine, load.answered, extra_allowed=load.statuses.get(403, 0) + 1
            )
            _no_tracebacks(gw)
        finally:
            gw.stop()


# -- retention under load --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DBS)
def test_retention_purge_under_load_never_deletes_open_interceptions(
    kind: str, tmp_path: Path, fake: Any, budget: Budget
) -> None:
    from gateway.retention import purge
    from schema.types import utcnow

    with _db(kind, tmp_path) as url:
        gw = _gateway(
            tmp_path, url, AI_GATEWAY_RETENTION="1s", AI_GATEWAY_RETENTION_INTERVAL="200ms"
        )
        try:
            setup = make_setup(gw, fake)
            engine = gw.admin.engine
            seen_open: list[str] = []
            problems: list[str] = []

            def slow(i: int) -> None:
                headers = {
                    "authorization": f"Bearer {setup.token}",
                    "x-fake-delay": "0.1",
                    "x-fake-events": "30",
                    **A_HEADERS,
                }
                with (
                    httpx.Client(timeout=30) as client,
                    client.stream(
                        "POST",
                        gw.url("anthropic", "/v1/messages"),
                        json=_msg("hi", True),
                        headers=headers,
                    ) as r,
                ):
                    iid = r.headers[IID]
                    chunks = r.iter_bytes()
                    next(chunks)
                    time.sleep(1.5)  # older than the retention, still open
                    row = {str(x.id): x for x in interceptions(engine)}.get(iid)
                    if row is None or row.ended_at is not None:
                        problems.append(f"{iid}: {row}")
                    else:
                        seen_open.append(iid)
                    rest = b"".join(chunks)
                    if b"message_stop" not in rest:
                        problems.append(f"{iid}: stream cut")

            stop = threading.Event()
            purged: list[int] = []

            def purger() -> None:  # a second purger, as `aibridge retention purge` would be
                while not stop.is_set():
                    purged.append(purge(engine, retention=_seconds(0.5), now=utcnow()).rows)
                    time.sleep(0.1)

            load = Load(setup)
            rounds = 2 if not budget.soak else 8
            with load.running(budget.clients), ThreadPoolExecutor(5) as pool:
                purging = pool.submit(purger)
                time.sleep(5.5)  # the scheduler's first run comes 5 s after start
                for _ in range(rounds):
                    list(pool.map(slow, range(4)))
                stop.set()
                purging.result(30)
            assert problems == []
            assert len(seen_open) == 4 * rounds
            assert load.bad_statuses() == {} and load.errors == []
            assert sum(purged) > 0
            # The background load ran on after the second purger stopped: the gateway's own
            # scheduler (retention 1 s, every 200 ms) must purge those rows.
            deadline = time.monotonic() + 15
            while "retention: deleted" not in gw.logs():
                assert time.monotonic() < deadline, "the retention scheduler purged nothing"
                time.sleep(0.2)
            # what is left is consistent: every row closed, none with orphans
            time.sleep(1)
            assert all(r.ended_at is not None for r in interceptions(engine))
            health = gw.health()
            assert health is not None and health["database_writes"] == "ok"
            assert health["journal_pending_bytes"] == 0
            _keeps_serving(setup)
            _no_tracebacks(gw)
        finally:
            gw.stop()


def _seconds(n: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)
