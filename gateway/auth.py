"""Gateway tokens: generation, hashing, and checking a request's credentials.

Tokens are random (`aib_` + 43 url-safe characters), shown once and stored only as SHA-256.
Checking happens against the in-memory snapshot (no database round trip per request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.redaction import mask_secret

TOKEN_PREFIX = "aib_"  # noqa: S105 - a prefix, not a password
GATEWAY_TOKEN_HEADER = "x-aibridge-token"  # noqa: S105 - a header name
MAX_TOKEN_LENGTH = 512


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def token_hint(token: str) -> str:
    return mask_secret(token)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    token_id: uuid.UUID
    token_hash: str
    user_id: uuid.UUID
    username: str
    role: str
    user_disabled: bool
    expires_at: datetime | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    username: str
    role: str
    token_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Presented:
    """Credentials found on a request: the gateway token, and a client-supplied provider key
    (BYOK) when the gateway token came in X-AIBridge-Token."""

    token: str | None
    byok_key: str | None = None
    problem: str | None = None


class AuthError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


HeaderGetter = Callable[[str], list[str]]
"""Returns every value of a header (case-insensitive name)."""


def _bearer(values: list[str]) -> tuple[str | None, str | None]:
    if not values:
        return None, None
    if len(values) > 1:
        return None, "more than one Authorization header"
    parts = values[0].split(None, 1)  # any whitespace after the scheme: "Bearer\t<token>"
    if not parts or parts[0].lower() != "bearer":
        return None, "the Authorization header must use the Bearer scheme"
    if len(parts) < 2 or not parts[1].strip():
        return None, "the Authorization header has an empty Bearer token"
    return parts[1].strip(), None


def _single(values: list[str], name: str) -> tuple[str | None, str | None]:
    if not values:
        return None, None
    if len(values) > 1:
        return None, f"more than one {name} header"
    value = values[0].strip()
    return (value, None) if value else (None, f"the {name} header is empty")


def extract(get: HeaderGetter) -> Presented:
    """Find the gateway token (and a BYOK provider key) in a request's headers."""
    bearer, problem = _bearer(get("authorization"))
    if problem:
        return Presented(None, problem=problem)
    api_key, problem = _single(get("x-api-key"), "X-Api-Key")
    if problem:
        return Presented(None, problem=problem)
    explicit, problem = _single(get(GATEWAY_TOKEN_HEADER), "X-AIBridge-Token")
    if problem:
        return Presented(None, problem=problem)
    if explicit is not None:
        return _with_explicit_token(explicit, bearer, api_key)
    if bearer and api_key and bearer != api_key:
        return Presented(None, problem="Authorization and X-Api-Key carry different credentials")
    token = bearer or api_key
    if token is None:
        return Presented(
            None,
            problem="missing gateway token: "
            "send it as 'Authorization: Bearer <token>' or 'X-Api-Key'",
        )
    return Presented(token)


def _with_explicit_token(explicit: str, bearer: str | None, api_key: str | None) -> Presented:
    """X-AIBridge-Token carries the gateway token; Authorization / X-Api-Key a BYOK key."""
    if bearer and api_key and bearer != api_key:
        return Presented(None, problem="Authorization and X-Api-Key carry different keys")
    byok = bearer or api_key
    if byok == explicit:
        # The same gateway token in both places is not a provider key: never forward it.
        return Presented(explicit)
    if byok is not None and byok.startswith(TOKEN_PREFIX):
        return Presented(None, problem="a gateway token cannot be used as a provider key")
    return Presented(explicit, byok_key=byok)


def authenticate(tokens: Mapping[str, TokenEntry], token: str, now: datetime) -> Principal:
    """Check a presented token against the snapshot; AuthError with a clear reason otherwise."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise AuthError("invalid gateway token")
    digest = hash_token(token)
    entry = tokens.get(digest)
    if entry is None or not hmac.compare_digest(entry.token_hash, digest):
        raise AuthError("invalid gateway token")
    if entry.revoked:
        raise AuthError("this gateway token has been revoked")
    if entry.expires_at is not None and _aware(entry.expires_at) <= _aware(now):
        raise AuthError("this gateway token has expired")
    if entry.user_disabled:
        raise AuthError("this user is disabled")
    return Principal(entry.user_id, entry.username, entry.role, entry.token_id)


def _aware(moment: datetime) -> datetime:
    """Naive timestamps (a SQLite row read without our column type) are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
