"""Routing: which API a path belongs to, auth, the generation driver and its fault triggers."""

import asyncio
import base64
from types import MappingProxyType
from typing import Any, Protocol

import orjson

from . import wire_anthropic, wire_chat, wire_responses
from .httpserver import Incoming, ReceivedRequest, Responder
from .scenario import (
    DRIP_DELAY,
    INVALID_UTF8_EVENT,
    MALFORMED_SSE,
    SLOW_SECONDS,
    Ids,
    Json,
    Knobs,
    Scenario,
    StreamPlan,
    Triggers,
    clamp_events,
)

RETRY_AFTER_SECONDS = "7"
MAX_STORED_RESPONSES = 1024
ANTHROPIC_PREFIXES = ("/v1/messages", "/v1/complete")
OPENAI_PREFIXES = ("/v1/chat/", "/v1/responses", "/v1/completions", "/v1/embeddings")


class WireApi(Protocol):
    """What a wire module (wire_anthropic, wire_chat, wire_responses) provides."""

    NAME: str
    REQUEST_ID_HEADER: str

    def scenario(self, request: Json, knobs: Knobs) -> Scenario: ...
    def blocking(self, scen: Scenario, ids: Ids) -> Json: ...
    def stream(self, scen: Scenario, ids: Ids, request_id: str) -> StreamPlan: ...
    def error_body(self, kind: str, message: str, request_id: str) -> bytes: ...
    def models_list(self) -> Json: ...
    def model_object(self, model_id: str) -> Json: ...


API_BY_NAME: MappingProxyType[str, WireApi] = MappingProxyType(
    {
        "anthropic": wire_anthropic,
        "messages": wire_anthropic,
        "chat": wire_chat,
        "chat.completions": wire_chat,
        "chat_completions": wire_chat,
        "responses": wire_responses,
    }
)


def expected_usage(api: str, request_json: Json) -> Json:
    """The exact `usage` object the fake returns for this request body, in the API's shape.

    `api` is "anthropic" (Messages), "chat" (Chat Completions) or "responses". Pass the body
    the fake received (e.g. `provider.requests[-1].json()`) when something rewrote it.
    """
    module = API_BY_NAME.get(api)
    if module is None:
        raise ValueError(f"unknown api {api!r}; expected one of {sorted(API_BY_NAME)}")
    return module.scenario(request_json, Knobs()).usage


def _api_for(path: str, lower: dict[str, str]) -> WireApi:
    if path.startswith(ANTHROPIC_PREFIXES):
        return wire_anthropic
    if path.startswith(OPENAI_PREFIXES):
        return wire_chat
    if "anthropic-version" in lower or "x-api-key" in lower:
        return wire_anthropic
    return wire_chat


def _authorized(api: WireApi, lower: dict[str, str]) -> bool:
    if api is wire_anthropic:
        return "x-api-key" in lower or "authorization" in lower
    scheme, _, token = lower.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _knobs(defaults: Knobs, lower: dict[str, str]) -> Knobs:
    """Apply x-fake-delay / x-fake-events / x-fake-bigevent-mb; ValueError when malformed."""
    delay = lower.get("x-fake-delay")
    events = lower.get("x-fake-events")
    big = lower.get("x-fake-bigevent-mb")
    if delay is None and events is None and big is None:
        return defaults
    knobs = Knobs(
        delay=float(delay) if delay is not None else defaults.delay,
        events=clamp_events(int(events)) if events is not None else defaults.events,
        bigevent_bytes=int(float(big) * 1024 * 1024)
        if big is not None
        else defaults.bigevent_bytes,
    )
    if knobs.delay < 0 or knobs.bigevent_bytes < 0:
        raise ValueError("negative knob")
    return knobs


def _request_json(record: ReceivedRequest) -> dict[str, Any]:
    return {
        "method": record.method,
        "path": record.path,
        "query": record.query,
        "headers": record.headers,
        "body_b64": base64.b64encode(record.body).decode(),
    }


class ResponseStore:
    """Created Responses API objects by id, the oldest dropped beyond `limit`."""

    def __init__(self, limit: int = MAX_STORED_RESPONSES) -> None:
        self._limit = limit
        self._items: dict[str, Json] = {}

    def put(self, response: Json) -> None:
        self._items[response["id"]] = response
        if len(self._items) > self._limit:
            del self._items[next(iter(self._items))]

    def get(self, response_id: str) -> Json | None:
        return self._items.get(response_id)


class Router:
    """Answers one request. State: id counters, stored responses, the recorded requests."""

    def __init__(self, defaults: Knobs, requests: list[ReceivedRequest]) -> None:
        self.defaults = defaults
        self.ids = Ids()
        self.responses = ResponseStore()
        self._requests = requests

    async def handle(self, incoming: Incoming, out: Responder) -> bool:
        """Answer `incoming`; returns whether the connection may serve another request."""
        record = incoming.record
        if record.method == "HEAD":
            return await out.send(200, b"", content_type=None)
        path = record.path.rstrip("/") or "/"
        if path.startswith("/_fake/"):
            return await self._introspect(record.method, path, out)
        api = _api_for(path, incoming.lower)
        request_id = self.ids.next("req_fake_")
        if not _authorized(api, incoming.lower):
            message = (
                "x-api-key header is required"
                if api is wire_anthropic
                else "You didn't provide an API key. Use an Authorization: Bearer header."
            )
            return await self._error(out, api, 401, "auth", message, request_id)
        if record.method == "POST" and path in (
            "/v1/messages",
            "/v1/chat/completions",
            "/v1/responses",
        ):
            generator = wire_responses if path == "/v1/responses" else api
            return await self._generate(generator, incoming, out, request_id)
        return await self._resource(api, record.method, path, incoming, out, request_id)

    async def _resource(
        self,
        api: WireApi,
        method: str,
        path: str,
        incoming: Incoming,
        out: Responder,
        request_id: str,
    ) -> bool:
        """count_tokens, models and stored responses; 404 in the API's shape otherwise."""
        headers = [(api.REQUEST_ID_HEADER, request_id)]
        found: Json | None = None
        if method == "POST" and path == "/v1/messages/count_tokens":
            body = _json_object(incoming.record.body)
            if body is None:
                return await self._error(
                    out, api, 400, "invalid_request", "invalid JSON", request_id
                )
            found = wire_anthropic.count_tokens(body)
        elif method == "GET" and path == "/v1/models":
            found = api.models_list()
        elif method == "GET" and path.startswith("/v1/models/"):
            found = api.model_object(path.removeprefix("/v1/models/"))
        elif method == "GET" and path.startswith("/v1/responses/") and path.count("/") == 3:
            response_id = path.removeprefix("/v1/responses/")
            found = self.responses.get(response_id)
            if found is None:
                message = f"No response found with id '{response_id}'."
                return await self._error(out, api, 404, "not_found", message, request_id)
        if found is None:
            message = f"Not found: {method} {path}"
            return await self._error(out, api, 404, "not_found", message, request_id)
        return await out.send(200, orjson.dumps(found), headers=headers)

    async def _error(
        self, out: Responder, api: WireApi, status: int, kind: str, message: str, request_id: str
    ) -> bool:
        body = api.error_body(kind, message, request_id)
        return await out.send(status, body, headers=[(api.REQUEST_ID_HEADER, request_id)])

    async def _introspect(self, method: str, path: str, out: Responder) -> bool:
        """/_fake/requests lists what was received (for subprocess users); /_fake/clear."""
        if method == "GET" and path == "/_fake/requests":
            listing = [_request_json(record) for record in self._requests]
            return await out.send(200, orjson.dumps(listing))
        if method == "POST" and path == "/_fake/clear":
            self._requests.clear()
            return await out.send(200, b"{}")
        return await out.send(404, b'{"error":"unknown /_fake/ endpoint"}')

    async def _generate(
        self, api: WireApi, incoming: Incoming, out: Responder, request_id: str
    ) -> bool:
        body = _json_object(incoming.record.body)
        if body is None:
            message = "The request body is not a valid JSON object."
            return await self._error(out, api, 400, "invalid_request", message, request_id)
        try:
            knobs = _knobs(self.defaults, incoming.lower)
        except ValueError:
            message = "x-fake-delay, x-fake-events and x-fake-bigevent-mb must be numbers >= 0"
            return await self._error(out, api, 400, "invalid_request", message, request_id)
        scen = api.scenario(body, knobs)
        triggers = scen.triggers
        if triggers.hang:
            return await out.wait_disconnect()
        if triggers.reset:
            out.reset()
            return False
        if triggers.slow:
            await asyncio.sleep(SLOW_SECONDS)
        headers = [(api.REQUEST_ID_HEADER, request_id)]
        if triggers.redirect:
            return await self._redirect(incoming, out, headers)
        if triggers.err429:
            error = api.error_body("rate_limit", "Rate limited by the fake provider.", request_id)
            limited = [("retry-after", RETRY_AFTER_SECONDS), *headers]
            return await out.send(429, error, headers=limited, compress=triggers.gzip)
        if triggers.err500:
            error = api.error_body("server", "Internal server error", request_id)
            return await out.send(500, error, headers=headers, compress=triggers.gzip)
        if scen.stream:
            return await self._stream(api, scen, knobs, out, request_id)
        answer = api.blocking(scen, self.ids)
        self._remember(api, scen, answer)
        data = orjson.dumps(answer)
        if triggers.resetmid:
            return await out.send_partial(200, data, headers=headers)
        if triggers.truncjson:
            data = data[: len(data) // 2]
        content_type = "text/html; charset=utf-8" if triggers.wrongct else "application/json"
        if triggers.drip:
            delay = knobs.delay or DRIP_DELAY
            return await out.drip(200, data, headers=headers, content_type=content_type,
                                  delay=delay)
        return await out.send(
            200, data, headers=headers, compress=triggers.gzip, content_type=content_type
        )

    async def _redirect(self, incoming: Incoming, out: Responder, headers: list[tuple[str, str]]
                        ) -> bool:
        """REDIRECT: 307 to `x-fake-location` (default: the same path on this server, with
        `?redirected=1`); a gateway must hand it to the client, never follow it."""
        host = incoming.lower.get("host", "127.0.0.1")
        location = incoming.lower.get(
            "x-fake-location", f"http://{host}{incoming.record.path}?redirected=1"
        )
        body = b'{"redirect": true}'
        return await out.send(307, body, headers=[("location", location), *headers])

    async def _stream(
        self, api: WireApi, scen: Scenario, knobs: Knobs, out: Responder, request_id: str
    ) -> bool:
        plan = api.stream(scen, self.ids, request_id)
        triggers = scen.triggers
        options: dict[str, Any] = {
            "headers": [(api.REQUEST_ID_HEADER, request_id)],
            "delay": knobs.delay,
            "compress": triggers.gzip,
        }
        if triggers.errmid:
            events = [*plan.events[: plan.mid], plan.error_event]
            return await out.stream(events, close=api is wire_chat, **options)
        if triggers.resetmid:
            return await out.stream(plan.events, abort_after=plan.mid, **options)
        if plan.final is not None:
            self._remember(api, scen, plan.final)
        events = _broken_events(plan, triggers)
        if triggers.wrongct:
            body = b"".join(events)
            return await out.send(200, body, headers=options["headers"], content_type="text/plain")
        if triggers.drip:
            delay = knobs.delay or DRIP_DELAY
            return await out.drip(200, b"".join(events), headers=options["headers"],
                                  content_type="text/event-stream; charset=utf-8", delay=delay)
        return await out.stream(events, **options)

    def _remember(self, api: WireApi, scen: Scenario, answer: Json) -> None:
        if api is wire_responses and scen.request.get("store") is not False:
            self.responses.put(answer)


def _broken_events(plan: StreamPlan, triggers: Triggers) -> list[bytes]:
    """BADSSE, NODONE and BADUTF8 applied to a stream's events."""
    events = list(plan.events)
    if triggers.nodone:
        events = events[:-1]  # no message_stop / [DONE] / response.completed
    if triggers.badutf8:
        events.insert(plan.mid, INVALID_UTF8_EVENT)
    if triggers.badsse:
        events.insert(0, MALFORMED_SSE)
    return events


def _json_object(body: bytes) -> Json | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
