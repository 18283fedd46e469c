"""Live inspection in mitmweb / mitmdump: who asked what, errors marked, secrets masked.

Active only when something shows or saves flows (mitmproxy's `view`, `save`, `dumper` or
`savehar` addon is loaded); in the lean `aibridge server` every hook returns at once.

- `flow.comment`: user, provider, model, client and token usage, set when the flow ends;
  `flow.marked` is ":warning:" for errors (HTTP >= 400 or a failed flow).
- Secrets: sensitive headers and query values are masked on the flow as soon as our
  `requestheaders` hooks are done (mitmproxy's view adds the flow right after, and mitmweb
  sends it to the browser) and the real values are put back in the `request` hook, before
  the request goes upstream: by `FlowView.unmask` when it is registered early (before Admin,
  whose `request` hook reads the admin's Authorization), else by FlowView itself, for gateway
  flows only. They are masked again for good in `responseheaders` / `error` / `response`,
  with known secrets scrubbed from the request body.
  Response headers are masked once they are sent (streamed responses): a blocking response is
  sent after the `response` hook and is never changed for the client.
- Memory: `ai_gateway_flow_limit` (default 1000, 0 = unlimited) keeps the last N finished flows
  in mitmproxy's view; without a view addon nothing is trimmed.
"""

from __future__ import annotations

import collections
import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, exceptions, http

from addons.dumps import compose_tap, flow_scrubber
from addons.state import FlowContext, Gateway
from gateway import clients
from gateway.dumps import DumpScrubber
from gateway.interception import BodyDecoder, decode_body
from gateway.providers.base import WireFormat
from gateway.providers.records import Record, TokenUsage
from gateway.redaction import (
    SENSITIVE_HEADERS,
    mask_header_value,
    redact_body_fields,
    redact_path,
)

log = logging.getLogger(__name__)

MARK_ERROR = ":warning:"
FLOW_LIMIT_OPTION = "ai_gateway_flow_limit"
INSPECTING_ADDONS = ("view", "save", "dumper", "savehar")


@dataclass
class Notes:
    """What FlowView learns about one flow."""

    user: str | None = None
    provider: str | None = None
    model: str | None = None
    client: str | None = None
    usage: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    stashed: list[tuple[str, list[str]]] = field(default_factory=list)
    real_path: str | None = None
    final: bool = False
    """The request is masked for good (it went upstream, or never will)."""
    finished: bool = False

    def add(self, records: Sequence[Record]) -> None:
        for rec in records:
            if isinstance(rec, TokenUsage):
                for i, n in enumerate((rec.input, rec.output, rec.cache_read, rec.cache_write)):
                    self.usage[i] += n

    def comment(self, problem: str | None) -> str:
        i, o, r, w = self.usage
        parts = [
            f"user {self.user or '-'}",
            f"provider {self.provider or '-'}",
            f"model {self.model or '-'}",
            f"client {self.client or '-'}",
            f"tokens in {i} out {o} cache read {r} write {w}",
        ]
        if problem:
            parts.append(problem)
        return " | ".join(parts)


def mask_request(req: http.Request) -> tuple[list[tuple[str, list[str]]], str | None]:
    """Mask sensitive headers and query values in place; returns the real values."""
    stashed = []
    for name in sorted({k.lower() for k in req.headers} & SENSITIVE_HEADERS):
        values = req.headers.get_all(name)
        masked = [mask_header_value(name, v) for v in values]
        if masked != values:
            stashed.append((name, values))
            req.headers.set_all(name, masked)
    path = redact_path(req.path)
    real_path = None
    if path != req.path:
        real_path, req.path = req.path, path
    return stashed, real_path


def mask_response_headers(resp: http.Response) -> None:
    for name in {k.lower() for k in resp.headers} & SENSITIVE_HEADERS:
        resp.headers.set_all(name, [mask_header_value(name, v) for v in resp.headers.get_all(name)])


def usage_feed(notes: Notes, wire: WireFormat, encoding: str) -> Callable[[bytes], None] | None:
    """A stream copy that sums token usage with the wire format's own parser."""
    try:
        decoder = BodyDecoder.for_encoding(encoding)
    except ValueError:
        return None
    parser = wire.stream_parser()

    def feed(chunk: bytes) -> None:
        try:
            data = decoder.decode(chunk) if decoder is not None else chunk
            if data:
                notes.add(parser.feed(data))
            if not chunk:
                notes.add(parser.feed(b""))
        except Exception:  # inspection must never break the client's stream
            log.debug("flow view: usage parsing stopped", exc_info=True)

    return feed


class FlowViewUnmask:
    """FlowView's early half: register it before every addon whose `request` hook reads
    credentials (Admin) so that they, and the upstream, see the real values."""

    def __init__(self, owner: FlowView) -> None:
        self.owner = owner

    def load(self, loader: Any) -> None:
        self.owner.early = True

    def request(self, flow: http.HTTPFlow) -> None:
        self.owner.restore(flow)


class FlowView:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.unmask = FlowViewUnmask(self)
        self.early = False
        """True when `unmask` is registered: non-gateway flows are masked early too."""
        self.active = False
        self.view: Any = None
        self._limit: int | None = None
        self._done: collections.deque[str] = collections.deque()
        self._notes: weakref.WeakKeyDictionary[http.HTTPFlow, Notes] = weakref.WeakKeyDictionary()

    @property
    def limit(self) -> int:
        if self._limit is not None:
            return self._limit
        return self.gateway.settings.flow_limit if self.gateway.loaded is not None else 1000

    def configure(self, updated: set[str]) -> None:
        if FLOW_LIMIT_OPTION not in updated:
            return
        value = getattr(ctx.options, FLOW_LIMIT_OPTION, None)
        if value is None:
            self._limit = None
            return
        try:
            limit = int(value)
        except ValueError:
            limit = -1
        if limit < 0:
            raise exceptions.OptionsError(f"{FLOW_LIMIT_OPTION} must be a number >= 0")
        self._limit = limit

    def load(self, loader: Any) -> None:
        # The tool's own addons (view, save, dumper) are added before scripts are loaded, and
        # flows (health checks) may finish before the `running` hook.
        self.running()

    def running(self) -> None:
        addons = ctx.master.addons
        self.view = addons.get("view")
        self.active = any(addons.get(name) is not None for name in INSPECTING_ADDONS)

    # -- request: mask for the view, put the real values back before going upstream ----------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not self.active:
            return
        notes = self._notes[flow] = Notes()
        fctx = self.gateway.context(flow)
        if fctx is not None:
            notes.provider = fctx.provider_name or None
            notes.user = fctx.principal.username if fctx.principal else None
            notes.client = clients.detect(flow.request.headers.get).name
        if flow.response or flow.error:  # answered by the gateway: never goes upstream
            self._finalize(flow, notes, None)
        elif fctx is not None or self.early:
            notes.stashed, notes.real_path = mask_request(flow.request)

    def restore(self, flow: http.HTTPFlow) -> None:
        """Put the real credentials back before the request goes on (once)."""
        notes = self._notes.get(flow) if self.active else None
        if notes is None or notes.final or not (notes.stashed or notes.real_path):
            return
        if flow.response or flow.error:
            notes.final = True
            return
        for name, values in notes.stashed:
            flow.request.headers.set_all(name, values)
        if notes.real_path is not None:
            flow.request.path = notes.real_path
        notes.stashed, notes.real_path = [], None

    def request(self, flow: http.HTTPFlow) -> None:
        notes = self._notes.get(flow) if self.active else None
        if notes is None:
            return
        self.restore(flow)
        fctx = self.gateway.context(flow)
        if flow.response or flow.error:
            return
        if fctx is not None and fctx.route is not None and fctx.route.wire is not None:
            limit = self.gateway.settings.max_request_body_bytes
            body = decode_body(
                flow.request.raw_content or b"",
                flow.request.headers.get("content-encoding", ""),
                limit,
            )
            if body is not None:
                notes.model = fctx.route.wire.parse_request(body).model

    def _finalize(self, flow: http.HTTPFlow, notes: Notes, fctx: FlowContext | None) -> None:
        """Mask the request for good once it has gone upstream (or never will)."""
        if notes.final:
            return
        notes.final = True
        if notes.stashed or notes.real_path:  # still masked since requestheaders
            notes.stashed, notes.real_path = [], None
        else:
            mask_request(flow.request)
        if fctx is None:
            # admin API / dashboard writes carry provider keys and tokens in their bodies
            if flow.request.method in ("POST", "PATCH", "PUT") and flow.request.raw_content:
                ctype = flow.request.headers.get("content-type", "")
                body = flow.request.get_content(strict=False) or b""
                masked = redact_body_fields(body, ctype)
                if masked != body:
                    flow.request.headers.pop("content-encoding", None)
                    flow.request.content = masked
            return
        body = flow.request.get_content(strict=False) or b""
        scrubbed = DumpScrubber(flow_scrubber(fctx)).data(body)
        if scrubbed != body:
            try:
                flow.request.content = scrubbed  # encoded again as the header says
            except ValueError:  # an encoding mitmproxy cannot produce: keep it decoded
                flow.request.headers.pop("content-encoding", None)
                flow.request.content = scrubbed

    # -- response ------------------------------------------------------------------------------

    def _answered(
        self, flow: http.HTTPFlow
    ) -> tuple[Notes, FlowContext | None, http.Response] | None:
        """A viewed flow with a response, its request masked for good; None otherwise."""
        notes = self._notes.get(flow) if self.active else None
        resp = flow.response
        if notes is None or resp is None:
            return None
        fctx = self.gateway.context(flow)
        self._finalize(flow, notes, fctx)
        return notes, fctx, resp

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if (answered := self._answered(flow)) is None:
            return
        notes, fctx, resp = answered
        wire = fctx.route.wire if fctx is not None and fctx.route is not None else None
        if wire is not None and callable(resp.stream):
            feed = usage_feed(notes, wire, resp.headers.get("content-encoding", ""))
            if feed is not None:
                resp.stream = compose_tap(resp.stream, feed)

    def response(self, flow: http.HTTPFlow) -> None:
        if (answered := self._answered(flow)) is None:
            return
        notes, fctx, resp = answered
        if resp.stream:
            mask_response_headers(resp)  # already sent to the client
        else:
            self._blocking_usage(notes, fctx, resp)
        problem = f"HTTP {resp.status_code}" if resp.status_code >= 400 else None
        self._annotate(flow, notes, fctx, problem)

    def _blocking_usage(self, notes: Notes, fctx: FlowContext | None, resp: http.Response) -> None:
        wire = fctx.route.wire if fctx is not None and fctx.route is not None else None
        if wire is None or resp.status_code >= 400 or fctx is None or fctx.rejected:
            return
        try:
            notes.add(wire.parse_response(resp.get_content(strict=False) or b""))
        except Exception:  # a body our parser rejects is still shown
            log.debug("flow view: no usage in the response body", exc_info=True)

    def error(self, flow: http.HTTPFlow) -> None:
        notes = self._notes.get(flow) if self.active else None
        if notes is None:
            return
        fctx = self.gateway.context(flow)
        self._finalize(flow, notes, fctx)
        if flow.response is not None:
            mask_response_headers(flow.response)
        message = flow.error.msg if flow.error else "failed"
        self._annotate(flow, notes, fctx, f"error: {message}")

    def _annotate(
        self, flow: http.HTTPFlow, notes: Notes, fctx: FlowContext | None, problem: str | None
    ) -> None:
        first, notes.finished = not notes.finished, True
        if fctx is not None:
            text = notes.comment(problem)
            flow.comment = DumpScrubber(flow_scrubber(fctx)).text(text)
        if problem:
            flow.marked = MARK_ERROR
        if first:
            self._trim(flow)

    def _trim(self, flow: http.HTTPFlow) -> None:
        """Keep only the last `limit` finished flows in the view."""
        view, limit = self.view, self.limit
        if view is None or limit <= 0:
            return
        self._done.append(flow.id)
        while len(self._done) > limit:
            old = view.get_by_id(self._done.popleft())
            if old is not None:
                view.remove([old])
