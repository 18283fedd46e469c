"""Validation of the names, URLs and keys an operator enters."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PROVIDER_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# A DNS name (dot-separated labels of letters, digits, '_' and inner '-', an optional final
# dot) or a bracketed IPv6 literal, as it appears in the URL's authority (lower-cased).
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOST = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?|\[[0-9a-f:.%a-z]+\]")
MAX_NAME = 63
MAX_URL = 2048
MAX_DISPLAY_NAME = 200
MAX_TOKEN_NAME = 100


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


def _printable_ascii(text: str) -> bool:
    return all(0x21 <= ord(c) <= 0x7E for c in text)


def base_url(url: str) -> str:
    """An absolute http(s) URL without credentials, query or fragment; trailing '/' removed."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidField("base_url", "an endpoint URL is required")
    if url != url.strip():
        raise InvalidField("base_url", "remove the surrounding whitespace")
    if len(url) > MAX_URL:
        raise InvalidField("base_url", f"at most {MAX_URL} characters")
    if not _printable_ascii(url) or "\\" in url:
        # urlsplit silently drops tabs and newlines; the stored URL must not keep them.
        raise InvalidField(
            "base_url", "use printable ASCII without spaces (IDN hosts in their xn-- form)"
        )
    if "?" in url or "#" in url:
        raise InvalidField("base_url", "must not have a query string or fragment")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidField("base_url", f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidField("base_url", "must start with http:// or https://")
    if not parts.hostname:
        raise InvalidField("base_url", "must name a host")
    host = parts.netloc.rpartition("@")[2].lower()
    host = host.rpartition(":")[0] if port is not None else host.removesuffix(":")
    if not _HOST.fullmatch(host):
        raise InvalidField("base_url", f"not a valid host name: {parts.hostname!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidField("base_url", "must not contain credentials; put the key in api_keys")
    if port == 0:
        raise InvalidField("base_url", "port 0 is not valid")
    return url.rstrip("/")


def api_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidField("api_keys", "an API key must not be empty")
    if key != key.strip():
        raise InvalidField("api_keys", "an API key must not have surrounding whitespace")
    if len(key) > 4096:
        raise InvalidField("api_keys", "an API key must be at most 4096 characters")
    if not _printable_ascii(key):
        # It goes into an HTTP header: no spaces, control characters or non-ASCII.
        raise InvalidField(
            "api_keys", "an API key must be printable ASCII without spaces or control characters"
        )
    return key


def _label(value: str, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidField(field, "must be text")
    if len(value) > limit:
        raise InvalidField(field, f"at most {limit} characters")
    if any(not c.isprintable() for c in value):
        raise InvalidField(field, "must not contain control characters")
    return value


def display_name(value: str) -> str:
    """A provider's display name: free text, one line, at most 200 characters."""
    return _label(value, "display_name", MAX_DISPLAY_NAME)


def token_name(value: str) -> str:
    """A token's label: free text, one line, at most 100 characters."""
    return _label(value, "name", MAX_TOKEN_NAME)
