"""Query parameters shared by the API and the dashboard: interception filters (with the
caller's role applied), times, cursors. Values a database would choke on are 422s here."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime

import orjson

from gateway.admin.deps import ADMIN, AUDITOR
from gateway.admin.errors import ApiError
from gateway.auth import Principal
from gateway.store.interceptions import InterceptionFilter
from gateway.validation import InvalidField

MAX_FILTER = 256
# RFC 3339 (with `Z` or an offset; without one, UTC is assumed). Not a bare number: pydantic
# would take that for a Unix time.
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?"
)


def text_value(value: str | None, field: str) -> str | None:
    """An optional filter string: empty means unset; NUL and oversized values are refused."""
    if value is None or value == "":
        return None
    if "\x00" in value or len(value) > MAX_FILTER:
        raise InvalidField(field, f"at most {MAX_FILTER} characters, no NUL")
    return value


def utc_value(value: datetime | str | None, field: str) -> datetime | None:
    """A time filter in UTC; a time without a zone is taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if not RFC3339.fullmatch(value):
            raise InvalidField(field, "give an RFC 3339 time, e.g. 2026-01-31T00:00:00Z")
        try:
            value = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError as exc:
            raise InvalidField(field, f"not a valid time: {exc}") from exc
    try:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidField(field, "out of range") from exc


def check_cursor(cursor: str | None) -> str | None:
    """Refuse a cursor that list_interceptions could not use (before it reaches SQL)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, iid = orjson.loads(raw)
        when = datetime.fromisoformat(started)
        uuid.UUID(str(iid))
        if when.tzinfo is None:
            raise ValueError("naive")
        when.astimezone(UTC)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise InvalidField("cursor", "invalid cursor: use next_cursor of a previous page") from exc
    return cursor


def can_see_everyone(principal: Principal) -> bool:
    return principal.role in (ADMIN, AUDITOR)


def interception_filter(
    principal: Principal,
    *,
    user: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    client: str | None = None,
    status: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    q: str | None = None,
) -> InterceptionFilter:
    """The filter a caller may use: members only ever see their own interceptions."""
    user = text_value(user, "user")
    user_id = None
    if not can_see_everyone(principal):
        if user is not None and user != principal.username:
            raise ApiError(403, "members can only see their own interceptions")
        user, user_id = None, principal.user_id
    return InterceptionFilter(
        user_id=user_id,
        username=user,
        provider=text_value(provider, "provider"),
        model=text_value(model, "model"),
        client=text_value(client, "client"),
        status=text_value(status, "status"),
        since=utc_value(since, "since"),
        until=utc_value(until, "until"),
        search=text_value(q, "q"),
    )
