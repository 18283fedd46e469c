"""The one place secrets are masked before anything leaves the process.

Every header list, URL query and error text written to a log, a dump, a flow file or an error
body passes through here. A masked value keeps a short hint (`sk-a...9xQz`) and no more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "proxy-authenticate",
        "www-authenticate",
        "x-amz-security-token",
        "x-goog-api-key",
        "x-aibridge-token",
        "ocp-apim-subscription-key",
    }
)
SENSITIVE_QUERY_KEYS = frozenset(
    {"key", "api_key", "api-key", "apikey", "token", "access_token", "password", "sig", "signature"}
)
# Body fields that carry credentials in the admin API and dashboard forms (JSON at any depth,
# or urlencoded form fields).
SENSITIVE_FIELDS = frozenset(
    {"api_key", "api_keys", "new_key", "token", "csrf", "password", "secret", "encryption_keys"}
)
_AUTH_SCHEME = re.compile(r"^(Bearer|Basic|Token)\s+", re.IGNORECASE)
# Set-Cookie attributes carry no secret; they stay readable (the cookie's own value is masked).
_COOKIE_ATTRIBUTES = frozenset(
    {
        "path",
        "domain",
        "expires",
        "max-age",
        "secure",
        "httponly",
        "samesite",
        "partitioned",
        "priority",
    }
)


def mask_secret(value: str) -> str:
    """`sk-ant-api03-abcd...wxyz` -> `sk-a...wxyz`; short values reveal nothing."""
    if len(value) >= 16:
        return f"{value[:4]}...{value[-4:]}"
    if len(value) >= 8:
        return f"{value[:2]}...{value[-2:]}"
    return "***"


def mask_header_value(name: str, value: str) -> str:
    if name.lower() not in SENSITIVE_HEADERS:
        return value
    scheme = _AUTH_SCHEME.match(value)
    if scheme:
        return scheme.group(0) + mask_secret(value[scheme.end() :])
    if name.lower() in ("cookie", "set-cookie"):
        attributes_follow = name.lower() == "set-cookie"
        return "; ".join(
            _mask_cookie(part, attribute=attributes_follow and i > 0)
            for i, part in enumerate(value.split(";"))
        )
    return mask_secret(value)


def _mask_cookie(part: str, *, attribute: bool) -> str:
    part = part.strip()
    name, sep, val = part.partition("=")
    # A known attribute stays; "Path=/, b=SECRET" (two folded cookies) does not.
    if attribute and name.strip().lower() in _COOKIE_ATTRIBUTES and "=" not in val:
        return part
    if not part:
        return part
    return f"{name}={mask_secret(val)}" if sep else mask_secret(name)


def _sensitive_query_key(key: str) -> bool:
    return key.strip().lower() in SENSITIVE_QUERY_KEYS


def redact_headers(fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, mask_header_value(name, value)) for name, value in fields]


def redact_query(query: str) -> str:
    """Mask the values of `key=`, `api_key=` (and similar) in a URL query string."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_sensitive_query_key(k) for k, _ in pairs):
        return query
    return urlencode(
        [(k, mask_secret(v) if _sensitive_query_key(k) else v) for k, v in pairs],
        safe="/:.*",
    )


def redact_path(path: str) -> str:
    """A request target (`/a/b?key=...`) with sensitive query values masked."""
    base, sep, query = path.partition("?")
    return base + sep + redact_query(query) if sep else path


class SecretScrubber:
    """Replaces known secret values (provider keys, tokens) inside free text, e.g. an upstream
    error message that echoes the key back."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, mask_secret(secret))
        return text


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secret(value)
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    return value


def _mask_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _mask_value(v) if k.lower() in SENSITIVE_FIELDS else _mask_fields(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_fields(v) for v in value]
    return value


def redact_body_fields(body: bytes, content_type: str) -> bytes:
    """A request body (admin API JSON, dashboard form) with credential fields masked; any other
    body, or one that does not parse, unchanged."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return body
    if ctype == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", "replace")
        pairs = parse_qsl(text, keep_blank_values=True)
        if not any(k.lower() in SENSITIVE_FIELDS for k, _ in pairs):
            return body
        masked = [(k, mask_secret(v) if k.lower() in SENSITIVE_FIELDS else v) for k, v in pairs]
        return urlencode(masked).encode()
    if "json" not in ctype:
        return body
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    masked_doc = _mask_fields(doc)
    return body if masked_doc == doc else orjson.dumps(masked_doc)
