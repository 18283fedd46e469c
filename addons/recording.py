"""Recording glue: request/response hooks feed an `InterceptionSession`.

The stream tap returns every chunk unchanged; parsing happens on a copy of the bytes.
"""

from __future__ import annotations

from mitmproxy import http

from addons.errors import INTERCEPTION_HEADER, reject
from addons.state import FlowContext, Gateway
from gateway import clients, errors
from gateway.interception import InterceptionSession, decode_body
from gateway.providers.records import RequestSummary
from gateway.recorder import InterceptionStart, RecorderUnavailable
from gateway.redaction import mask_secret
from schema.types import utcnow


def request_body(flow: http.HTTPFlow, limit: int) -> bytes | None:
    """The request body decoded for parsing, at most `limit` bytes; None when it cannot be."""
    return decode_body(
        flow.request.raw_content or b"", flow.request.headers.get("content-encoding", ""), limit
    )


class Recording:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def request(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.rejected or flow.response or flow.error or not flow.live:
            return
        if fctx.route is None or fctx.route.wire is None:
            return
        runtime = self.gateway.runtime
        assert runtime is not None and runtime.recorder is not None
        if not runtime.recorder.accepting:
            self._unavailable(flow, fctx)
            return
        body = request_body(flow, self.gateway.settings.max_request_body_bytes)
        wire = fctx.route.wire
        summary = wire.parse_request(body) if body is not None else RequestSummary(parsed=False)
        session = InterceptionSession(
            recorder=runtime.recorder,
            wire=wire,
            start=self._start(flow, fctx, summary),
            summary=summary,
            scrubber=runtime.scrubber(),
            max_prompt_chars=self.gateway.settings.max_prompt_chars,
            metrics=runtime.metrics,
        )
        try:
            session.begin()
        except RecorderUnavailable:
            self._unavailable(flow, fctx)
            return
        fctx.session = session

    def _unavailable(self, flow: http.HTTPFlow, fctx: FlowContext) -> None:
        fctx.rejected = True
        reject(
            flow,
            fctx.error_type,
            errors.UNAVAILABLE,
            "aibridge cannot record right now (the database is unreachable and the local "
            "journal is full); retry later",
            headers={"retry-after": "10"},
        )

    def _start(
        self, flow: http.HTTPFlow, fctx: FlowContext, summary: RequestSummary
    ) -> InterceptionStart:
        provider, principal, route = fctx.provider, fctx.principal, fctx.route
        assert provider is not None and principal is not None and route is not None
        assert route.wire is not None
        get = clients.header_map(flow.request.headers.fields)
        client = clients.detect(get)
        return InterceptionStart(
            id=fctx.interception_id,
            initiator_id=principal.user_id,
            initiator_name=principal.username,
            api_token_id=principal.token_id,
            provider_type=provider.type.name,
            provider_name=provider.name,
            provider_id=provider.id,
            api=route.wire.name,
            model=summary.model,
            client=client.name,
            client_session_id=client.session_id,
            user_agent=get("user-agent"),
            credential_kind="byok" if fctx.byok_key else "centralized",
            credential_hint=mask_secret(fctx.byok_key or provider.api_key or ""),
            started_at=utcnow(),
            correlating_tool_call_id=summary.correlating_tool_call_id,
            parsed=summary.parsed,
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or flow.response is None:
            return
        flow.response.headers[INTERCEPTION_HEADER] = str(fctx.interception_id)
        session = fctx.session
        ctype = flow.response.headers.get("content-type", "")
        if session is None:
            if ctype.startswith("text/event-stream"):
                flow.response.stream = True
            return
        if session.response_headers(
            flow.response.status_code, ctype, flow.response.headers.get("content-encoding", "")
        ):
            feed = session.feed

            def tap(chunk: bytes) -> bytes:
                feed(chunk)
                return chunk

            flow.response.stream = tap

    def response(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or flow.response is None:
            return
        flow.response.headers[INTERCEPTION_HEADER] = str(fctx.interception_id)
        session = fctx.session
        if session is None or session.ended:
            return
        body = None
        if not flow.response.stream:
            try:
                body = flow.response.get_content(strict=False) or b""
            except ValueError:
                body = flow.response.raw_content or b""
        session.complete(body)

    def error(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.session is None or fctx.session.ended:
            return
        message = flow.error.msg if flow.error else "unknown error"
        disconnected = "client disconnected" in message.lower()
        fctx.session.finish(client_disconnected=disconnected, error=message)
