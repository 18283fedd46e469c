"""Validation of the names, URLs and keys an operator enters."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PROVIDER_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_NAME = 63


class InvalidField(ValueError):
    """A value an operator sent is not acceptable. `field` names it for forms and APIs."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def provider_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidField("name", "a provider name is required")
    if len(name) > MAX_NAME:
        raise InvalidField("name", f"at most {MAX_NAME} characters")
    if not PROVIDER_NAME.fullmatch(name):
        raise InvalidField(
            "name", "use lowercase letters, digits and single hyphens, e.g. anthropic-corp"
        )
    return name


def is_provider_name(name: str) -> bool:
    return len(name) <= MAX_NAME and PROVIDER_NAME.fullmatch(name) is not None


def username(name: str) -> str:
    if not isinstance(name, str) or not USERNAME.fullmatch(name):
        raise InvalidField(
            "username", "1-64 characters: letters, digits, '.', '_', '@', '-' (not first)"
        )
    return name


def base_url(url: str) -> str:
    """An absolute http(s) URL without credentials, query or fragment; trailing '/' removed."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidField("base_url", "an endpoint URL is required")
    if url != url.strip():
        raise InvalidField("base_url", "remove the surrounding whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidField("base_url", f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidField("base_url", "must start with http:// or https://")
    if not parts.hostname:
        raise InvalidField("base_url", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidField("base_url", "must not contain credentials; put the key in api_keys")
    if parts.query or parts.fragment:
        raise InvalidField("base_url", "must not have a query string or fragment")
    if port == 0:
        raise InvalidField("base_url", "port 0 is not valid")
    return url.rstrip("/")


def api_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidField("api_keys", "an API key must not be empty")
    if key != key.strip():
        raise InvalidField("api_keys", "an API key must not have surrounding whitespace")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in key):
        raise InvalidField("api_keys", "an API key must not contain spaces or control characters")
    if len(key) > 4096:
        raise InvalidField("api_keys", "an API key must be at most 4096 characters")
    return key
