"""FakeProvider: the listening server, its lifecycle (asyncio or a background thread), recording."""

import asyncio
import concurrent.futures
import ipaddress
import logging
import os
import threading
from types import TracebackType
from typing import Self

from .httpserver import (
    MAX_HEAD_BYTES,
    HttpError,
    ReceivedRequest,
    Responder,
    read_request,
    send_http_error,
)
from .routes import Router
from .scenario import DEFAULT_BIGEVENT_MB, DEFAULT_EVENTS, Knobs, clamp_events

log = logging.getLogger(__name__)

BIGEVENT_ENV = "FAKE_PROVIDER_BIGEVENT_MB"
DEFAULT_MAX_RECORDED = 1000


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the fake provider binds loopback addresses only, not {host!r}")


class FakeProvider:
    """A protocol-faithful fake Anthropic + OpenAI upstream on a loopback port.

    Use `await start()` / `await stop()` inside a running loop, `start_in_thread()` /
    `stop_in_thread()` (or `with FakeProvider() as fp:`) from synchronous code.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delay: float = 0.0,
        events: int | None = None,
        bigevent_mb: float | None = None,
        record: bool = True,
        max_recorded: int = DEFAULT_MAX_RECORDED,
    ) -> None:
        _check_loopback(host)
        if delay < 0:
            raise ValueError("delay must be >= 0")
        if bigevent_mb is None:
            bigevent_mb = float(os.environ.get(BIGEVENT_ENV, DEFAULT_BIGEVENT_MB))
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.knobs = Knobs(
            delay=delay,
            events=clamp_events(events if events is not None else DEFAULT_EVENTS),
            bigevent_bytes=int(bigevent_mb * 1024 * 1024),
        )
        self.requests: list[ReceivedRequest] = []
        self._record = record
        self._max_recorded = max(1, max_recorded)
        self._router = Router(self.knobs, self.requests)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fake provider is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def clear(self) -> None:
        """Forget the recorded requests (ids and stored responses are kept)."""
        self.requests.clear()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self._requested_port, limit=MAX_HEAD_BYTES
        )
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("fake provider listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("connection ended: %r", exc)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                incoming = await read_request(reader, writer)
            except HttpError as error:
                await send_http_error(writer, error)
                return
            if incoming is None:
                return
            if self._record and not incoming.record.path.startswith("/_fake/"):
                self._remember(incoming.record)
            if not await self._router.handle(incoming, Responder(reader, writer, incoming)):
                return

    def _remember(self, record: ReceivedRequest) -> None:
        if len(self.requests) >= self._max_recorded:
            del self.requests[: len(self.requests) - self._max_recorded + 1]
        self.requests.append(record)

    # -- synchronous helpers -------------------------------------------------------------

    def start_in_thread(self, timeout: float = 10.0) -> Self:
        """Run the server on its own event loop in a daemon thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("already running in a thread")
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop_requested = asyncio.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="fake-provider", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout)
        except BaseException:
            self._thread.join(timeout)
            self._thread = None
            raise
        return self

    def stop_in_thread(self, timeout: float = 10.0) -> None:
        thread, loop, event = self._thread, self._loop, self._stop_requested
        if thread is None or loop is None or event is None:
            return
        loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the fake provider thread did not stop")
        self._thread = self._loop = self._stop_requested = None

    def _thread_main(self, ready: concurrent.futures.Future[None]) -> None:
        with asyncio.Runner() as runner:
            self._loop = runner.get_loop()
            try:
                runner.run(self.start())
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            runner.run(self._run_until_stopped())

    async def _run_until_stopped(self) -> None:
        assert self._stop_requested is not None
        await self._stop_requested.wait()
        await self.stop()

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_in_thread()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
