"""The gateway's own errors. Each provider type renders them in its own error shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorKind:
    status: int
    anthropic_type: str
    openai_type: str
    code: str


UNAUTHENTICATED = ErrorKind(401, "authentication_error", "invalid_request_error", "invalid_api_key")
FORBIDDEN = ErrorKind(403, "permission_error", "invalid_request_error", "provider_disabled")
NOT_FOUND = ErrorKind(404, "not_found_error", "invalid_request_error", "not_found")
GATEWAY_DISABLED = ErrorKind(404, "not_found_error", "invalid_request_error", "gateway_disabled")
METHOD_NOT_ALLOWED = ErrorKind(
    405, "invalid_request_error", "invalid_request_error", "method_not_allowed"
)
TOO_LARGE = ErrorKind(413, "request_too_large", "invalid_request_error", "request_too_large")
BAD_REQUEST = ErrorKind(400, "invalid_request_error", "invalid_request_error", "bad_request")
HEADERS_TOO_LARGE = ErrorKind(
    431, "invalid_request_error", "invalid_request_error", "request_header_fields_too_large"
)
UNAVAILABLE = ErrorKind(503, "overloaded_error", "server_error", "gateway_unavailable")
BAD_GATEWAY = ErrorKind(502, "api_error", "server_error", "upstream_unreachable")
GATEWAY_TIMEOUT = ErrorKind(504, "timeout_error", "server_error", "upstream_timeout")
UPGRADE_REQUIRED = ErrorKind(
    426, "invalid_request_error", "invalid_request_error", "websocket_not_supported"
)
