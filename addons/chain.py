"""One entry in mitmproxy's addon chain for all of aibridge's addons.

mitmproxy dispatches every event to every addon in its chain through a context manager and a
coroutine per addon, and follows each flow event with an `update` event; with a dozen small
addons that bookkeeping cost more than the addons' own work (see the benchmark notes in
README). `AIBridge` keeps one class per concern, in the same order, and calls their hooks
directly.

It also fixes mitmproxy's fail-open behaviour for us: if a request hook raises, mitmproxy
would log it and forward the flow; here the flow is answered with a 500 instead (fail closed).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mitmproxy import http

log = logging.getLogger(__name__)

# Hooks that decide whether a request may go upstream: an exception there must not forward.
REQUEST_HOOKS = ("requestheaders", "request")
FLOW_HOOKS = ("requestheaders", "request", "responseheaders", "response", "error")
CONNECT_HOOKS = ("server_connect",)
LIFECYCLE_HOOKS = ("load", "configure", "running", "done")

Handler = Callable[..., Any]


def _fail_closed(flow: http.HTTPFlow, part: object) -> None:
    if flow.response is None:
        import orjson

        message = "aibridge internal error; the request was not forwarded"
        error = {"type": "api_error", "message": message, "code": "internal_error"}
        body = orjson.dumps({"type": "error", "error": error})
        flow.response = http.Response.make(500, body, {"content-type": "application/json"})
    log.exception("aibridge addon %s failed; request answered 500", type(part).__name__)


def _refuse_connection(args: tuple[Any, ...], part: object) -> None:
    args[0].server.error = "aibridge internal error; the connection was not made"
    log.exception("aibridge addon %s failed in server_connect", type(part).__name__)


class AIBridge:
    """Dispatches mitmproxy hooks to aibridge's addons (`parts`), in order."""

    def __init__(self, parts: Sequence[object]) -> None:
        self.parts = list(parts)
        for hook in FLOW_HOOKS + CONNECT_HOOKS + LIFECYCLE_HOOKS:
            handlers = [(p, getattr(p, hook)) for p in self.parts
                        if callable(getattr(p, hook, None))]
            if handlers:
                setattr(self, hook, _dispatcher(hook, handlers))

    @property
    def name(self) -> str:
        return "aibridge"

    def part(self, cls: type) -> Any:
        return next(p for p in self.parts if isinstance(p, cls))


def _dispatcher(hook: str, handlers: list[tuple[object, Handler]]) -> Handler:
    """Calls the handlers in order; when one returns an awaitable, the rest run after it.

    Lifecycle hooks let errors propagate (an OptionsError must reach mitmproxy). Flow hooks
    contain them per part; in request hooks an error answers the flow 500 (fail closed).
    """
    on_error: Callable[[tuple[Any, ...], object], None] | None = None
    if hook in REQUEST_HOOKS:
        on_error = lambda args, part: _fail_closed(args[0], part)  # noqa: E731
    elif hook in CONNECT_HOOKS:
        on_error = _refuse_connection
    elif hook in FLOW_HOOKS:
        on_error = lambda args, part: log.exception(  # noqa: E731
            "aibridge addon %s failed in %s", type(part).__name__, hook)

    def dispatch(*args: Any) -> Awaitable[None] | None:
        for i, (part, handler) in enumerate(handlers):
            try:
                result = handler(*args)
            except Exception:
                if on_error is None:
                    raise
                on_error(args, part)
                continue
            if result is not None and inspect.isawaitable(result):
                return _finish(part, result, handlers[i + 1:], args, on_error)
        return None

    return dispatch


async def _finish(first: object, pending: Awaitable[Any],
                  rest: Sequence[tuple[object, Handler | None]],
                  args: tuple[Any, ...],
                  on_error: Callable[[tuple[Any, ...], object], None] | None) -> None:
    """A part returned a coroutine: await it, then run the remaining parts in order."""
    for part, handler in [(first, None), *rest]:
        try:
            result = pending if handler is None else handler(*args)
            if result is not None and inspect.isawaitable(result):
                await result
        except Exception:
            if on_error is None:
                raise
            on_error(args, part)
