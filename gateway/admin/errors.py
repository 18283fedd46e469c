"""JSON errors of the admin API: `{"message": ..., "field": ...}` for every failure.

Store exceptions map to status codes here (InvalidField 422, Conflict 409, NotFound 404), so
the routers only call the store and let them propagate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.store.errors import Conflict, NotFound
from gateway.validation import InvalidField


class ErrorBody(BaseModel):
    message: str
    field: str | None = None


class ApiError(Exception):
    """Raised by dependencies and routers; rendered as an ErrorBody."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


_DESCRIPTIONS = {
    400: "The body could not be parsed",
    401: "Missing, invalid, revoked or expired gateway token",
    403: "The token's role does not allow this",
    404: "Not found",
    409: "Conflict (e.g. a live provider already has this name)",
    422: "Invalid value; `field` names it",
    503: "The gateway is starting",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error statuses a route can answer (401/403/422/503 always)."""
    wanted = sorted({401, 403, 422, 503, *codes})
    return {c: {"model": ErrorBody, "description": _DESCRIPTIONS[c]} for c in wanted}


def error_response(status: int, message: str, field: str | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(message=message, field=field).model_dump(exclude_none=True)
    hdrs = {"cache-control": "no-store", **(headers or {})}
    return JSONResponse(body, status_code=status, headers=hdrs)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        return parts[1]
    return parts[0] if parts else "body"


def validation_message(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if not errors:
        return "invalid request", "body"
    first = errors[0]
    field = _field_of(first.get("loc", ()))
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{field}: {msg}", field


HtmlError = Callable[[Request, int, str], Response]
"""Renders an error page for the dashboard's paths."""


def install(app: FastAPI, *, html_error: HtmlError | None = None, html_prefix: str = "") -> None:
    """Register the handlers that turn every error into an ErrorBody (or, under `html_prefix`,
    an HTML page from `html_error`)."""

    def page(request: Request) -> bool:
        return bool(html_error and html_prefix and request.url.path.startswith(html_prefix))

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if page(request) and html_error is not None:
            return html_error(request, exc.status, exc.message)
        return error_response(exc.status, exc.message, exc.field, exc.headers)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidField)
        if page(request) and html_error is not None:
            return html_error(request, 422, exc.message)
        return error_response(422, exc.message, exc.field)

    async def on_conflict(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Conflict)
        return error_response(409, exc.message, exc.field)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        if page(request) and html_error is not None:
            return html_error(request, 404, str(exc))
        return error_response(404, str(exc))

    async def on_request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, field = validation_message(exc)
        if page(request) and html_error is not None:
            return html_error(request, 422, message)
        return error_response(422, message, field)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if page(request) and html_error is not None:
            return html_error(request, exc.status_code, str(exc.detail))
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(InvalidField, on_invalid)
    app.add_exception_handler(Conflict, on_conflict)
    app.add_exception_handler(NotFound, on_not_found)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
