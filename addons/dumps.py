"""API dump glue: the request as forwarded upstream, the response as it streams back.

Off (`dump_dir` empty) every hook returns after one attribute check. On, the request is written
in the `request` hook (after Credentials and Recording), the response head in `responseheaders`,
and a streamed body through the same stream callable as Recording: this addon runs after it and
wraps whatever `flow.response.stream` holds, returning each chunk unchanged.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from mitmproxy import http

from addons.state import FlowContext, Gateway
from gateway.dumps import Dump, DumpWriter
from gateway.interception import decode_body
from gateway.redaction import SecretScrubber

INLINE_LIMIT = 256 * 1024
StreamTap = Callable[[bytes], Iterable[bytes] | bytes]
"""What mitmproxy accepts as `flow.response.stream` (b"" marks the end of the body)."""


def compose_tap(inner: StreamTap | None, write: Callable[[bytes], None]) -> StreamTap:
    """A stream callable that hands each chunk to `inner` (when there is one) and to `write`."""
    if inner is None:

        def tap(chunk: bytes) -> Iterable[bytes] | bytes:
            write(chunk)
            return chunk

        return tap

    def both(chunk: bytes) -> Iterable[bytes] | bytes:
        out = inner(chunk)
        write(chunk)
        return out

    return both


def offload(work: Callable[[], None], size: int) -> Awaitable[None] | None:
    """Small dumps are written inline; a big body (pretty-printing, scrubbing, writing) in a
    worker thread: mitmproxy awaits what a hook returns before the flow goes on, while the
    event loop keeps serving every other flow."""
    if size <= INLINE_LIMIT:
        work()
        return None
    return asyncio.to_thread(work)


def flow_scrubber(fctx: FlowContext) -> SecretScrubber:
    """Every provider key of the flow's snapshot, and the client's own key (BYOK)."""
    known = fctx.snapshot.secrets if fctx.snapshot is not None else ()
    return SecretScrubber((*known, fctx.byok_key) if fctx.byok_key else known)


class Dumps:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.writer: DumpWriter | None = None
        """Set when dumping is on; `writer.failures` counts what could not be written."""
        self._open: weakref.WeakKeyDictionary[http.HTTPFlow, Dump] = weakref.WeakKeyDictionary()

    def running(self) -> None:
        loaded = self.gateway.loaded
        if loaded is not None and loaded.settings.dump_dir and self.writer is None:
            self.writer = DumpWriter(Path(loaded.settings.dump_dir))
            self.gateway.dump_writer = self.writer

    def _start(self, flow: http.HTTPFlow) -> Dump | None:
        """A dump for a gateway request about to go upstream, when dumping is on."""
        fctx = self.gateway.context(flow) if self.writer is not None else None
        if fctx is None or fctx.rejected or fctx.provider is None or fctx.route is None:
            return None
        if flow.response or flow.error or not flow.live or self.writer is None:
            return None
        return self.writer.open(
            provider=fctx.provider.name,
            interception_id=fctx.interception_id,
            passthrough=fctx.route.wire is None,
            scrubber=flow_scrubber(fctx),
        )

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        # Off: one attribute check (the closures below would cost their cells on every call).
        return self._request(flow) if self.writer is not None else None

    def _request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        dump = self._start(flow)
        if dump is None:
            return None
        self._open[flow] = dump
        req = flow.request
        raw, headers = req.raw_content or b"", list(req.headers.items(multi=True))
        method, target, version = req.method, req.path, req.http_version
        encoding, ctype = (
            req.headers.get("content-encoding", ""),
            req.headers.get("content-type", ""),
        )
        limit = self.gateway.settings.max_request_body_bytes

        def write() -> None:
            body = decode_body(raw, encoding, limit)
            body = raw if body is None else body
            dump.request(
                method=method,
                target=target,
                version=version,
                headers=headers,
                body=body,
                ctype=ctype,
            )

        return offload(write, len(raw))

    def _head(self, dump: Dump, resp: http.Response) -> None:
        dump.response_head(
            version=resp.http_version,
            status=resp.status_code,
            reason=resp.reason,
            headers=list(resp.headers.items(multi=True)),
            encoding=resp.headers.get("content-encoding", ""),
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        dump = self._open.get(flow) if self.writer is not None else None
        resp = flow.response
        if dump is None or resp is None:
            return
        self._head(dump, resp)
        stream = resp.stream
        if callable(stream):
            resp.stream = compose_tap(stream, dump.stream)
        elif stream:
            resp.stream = compose_tap(None, dump.stream)

    def response(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        return self._response(flow) if self.writer is not None else None

    def _response(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        dump = self._open.pop(flow, None)
        resp = flow.response
        if dump is None or resp is None:
            return None
        if not dump.has_response:  # answered without upstream headers (set by an addon)
            self._head(dump, resp)
        if resp.stream:
            dump.close()
            return None

        def write() -> None:
            try:
                body = resp.get_content(strict=False) or b""
            except ValueError:
                body = resp.raw_content or b""
            dump.response_body(body, resp.headers.get("content-type", ""))
            dump.close()

        return offload(write, len(resp.raw_content or b""))

    def error(self, flow: http.HTTPFlow) -> None:
        dump = self._open.pop(flow, None) if self.writer is not None else None
        if dump is not None:
            dump.close()
