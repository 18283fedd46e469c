"""gateway.auth: where the gateway token is found, and whether it is accepted."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth import (
    MAX_TOKEN_LENGTH,
    TOKEN_PREFIX,
    AuthError,
    Presented,
    TokenEntry,
    authenticate,
    extract,
    hash_token,
    new_token,
    token_hint,
)

TOKEN = "aib_" + "T" * 43
OTHER = "aib_" + "O" * 43
PROVIDER_KEY = "sk-ant-users-own-key-0123456789"
WRONG_SCHEME = "the Authorization header must use the Bearer scheme"


def headers(*pairs: tuple[str, str]) -> Mapping[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return out


def run(*pairs: tuple[str, str]) -> Presented:
    table = headers(*pairs)
    return extract(lambda name: list(table.get(name.lower(), [])))


# --- extract ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((("Authorization", f"Bearer {TOKEN}"),), Presented(TOKEN)),
        ((("Authorization", f"bearer {TOKEN}"),), Presented(TOKEN)),
        ((("Authorization", f"  Bearer   {TOKEN}  "),), Presented(TOKEN)),
        ((("Authorization", f"Bearer\t{TOKEN}"),), Presented(TOKEN)),
        ((("X-Api-Key", TOKEN),), Presented(TOKEN)),
        ((("x-api-key", f" {TOKEN} "),), Presented(TOKEN)),
        ((("Authorization", f"Bearer {TOKEN}"), ("X-Api-Key", TOKEN)), Presented(TOKEN)),
        # BYOK: the gateway token in X-AIBridge-Token, the user's own key as usual
        (
            (("X-AIBridge-Token", TOKEN), ("X-Api-Key", PROVIDER_KEY)),
            Presented(TOKEN, byok_key=PROVIDER_KEY),
        ),
        (
            (("X-AIBridge-Token", TOKEN), ("Authorization", f"Bearer {PROVIDER_KEY}")),
            Presented(TOKEN, byok_key=PROVIDER_KEY),
        ),
        (
            (
                ("X-AIBridge-Token", TOKEN),
                ("Authorization", f"Bearer {PROVIDER_KEY}"),
                ("X-Api-Key", PROVIDER_KEY),
            ),
            Presented(TOKEN, byok_key=PROVIDER_KEY),
        ),
        ((("X-AIBridge-Token", TOKEN),), Presented(TOKEN)),
        # the same gateway token repeated where a provider key goes: not BYOK, never forwarded
        ((("X-AIBridge-Token", TOKEN), ("Authorization", f"Bearer {TOKEN}")), Presented(TOKEN)),
        ((("X-AIBridge-Token", TOKEN), ("X-Api-Key", TOKEN)), Presented(TOKEN)),
    ],
)
def test_extract_accepts(pairs: tuple[tuple[str, str], ...], expected: Presented) -> None:
    assert run(*pairs) == expected


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [
        ((), "missing gateway token: send it as 'Authorization: Bearer <token>' or 'X-Api-Key'"),
        (
            (("Authorization", f"Bearer {TOKEN}"), ("X-Api-Key", OTHER)),
            "Authorization and X-Api-Key carry different credentials",
        ),
        (
            (
                ("X-AIBridge-Token", TOKEN),
                ("Authorization", f"Bearer {PROVIDER_KEY}"),
                ("X-Api-Key", "sk-something-else-entirely"),
            ),
            "Authorization and X-Api-Key carry different keys",
        ),
        (
            (("Authorization", f"Bearer {TOKEN}"), ("Authorization", f"Bearer {TOKEN}")),
            "more than one Authorization header",
        ),
        ((("X-Api-Key", TOKEN), ("X-Api-Key", TOKEN)), "more than one X-Api-Key header"),
        (
            (("X-AIBridge-Token", TOKEN), ("X-AIBridge-Token", TOKEN)),
            "more than one X-AIBridge-Token header",
        ),
        ((("Authorization", "Bearer "),), "the Authorization header has an empty Bearer token"),
        ((("Authorization", "Bearer"),), "the Authorization header has an empty Bearer token"),
        ((("Authorization", ""),), WRONG_SCHEME),
        ((("Authorization", f"Basic {TOKEN}"),), WRONG_SCHEME),
        ((("Authorization", TOKEN),), WRONG_SCHEME),
        ((("Authorization", f"Token {TOKEN}"),), WRONG_SCHEME),
        ((("X-Api-Key", "  "),), "the X-Api-Key header is empty"),
        (
            (("X-AIBridge-Token", ""), ("X-Api-Key", PROVIDER_KEY)),
            "the X-AIBridge-Token header is empty",
        ),
        (
            (("X-AIBridge-Token", TOKEN), ("X-Api-Key", OTHER)),
            "a gateway token cannot be used as a provider key",
        ),
        # a wrong-scheme Authorization is a problem even next to a good X-Api-Key
        ((("Authorization", "Basic dXNlcjpwYXNz"), ("X-Api-Key", TOKEN)), WRONG_SCHEME),
    ],
)
def test_extract_problems(pairs: tuple[tuple[str, str], ...], problem: str) -> None:
    presented = run(*pairs)
    assert presented == Presented(None, problem=problem)


@given(
    st.lists(
        st.sampled_from(
            [
                ("Authorization", f"Bearer {TOKEN}"),
                ("Authorization", f"Bearer {OTHER}"),
                ("Authorization", "Basic eA=="),
                ("Authorization", "Bearer "),
                ("X-Api-Key", TOKEN),
                ("X-Api-Key", PROVIDER_KEY),
                ("X-Api-Key", ""),
                ("X-AIBridge-Token", TOKEN),
                ("X-AIBridge-Token", OTHER),
                ("Authorization", f"Bearer {PROVIDER_KEY}"),
            ]
        ),
        max_size=5,
    )
)
def test_extract_never_returns_both_a_token_and_a_problem(pairs: list[tuple[str, str]]) -> None:
    presented = run(*pairs)
    assert (presented.token is None) == (presented.problem is not None)
    if presented.byok_key is not None:
        assert presented.token is not None
        assert presented.byok_key != presented.token
        assert not presented.byok_key.startswith(TOKEN_PREFIX)


# --- tokens -----------------------------------------------------------------------------------


def test_new_token_shape() -> None:
    token = new_token()
    assert re.fullmatch(r"aib_[A-Za-z0-9_-]{43}", token)
    assert new_token() != token
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token_hint(token) == f"{token[:4]}...{token[-4:]}"


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def entry(token: str, **kw: object) -> TokenEntry:
    values: dict[str, object] = {
        "token_id": uuid.uuid4(),
        "token_hash": hash_token(token),
        "user_id": uuid.uuid4(),
        "username": "alice",
        "role": "member",
        "user_disabled": False,
        "expires_at": None,
        "revoked": False,
    }
    values.update(kw)
    return TokenEntry(**values)  # type: ignore[arg-type]


def table(*entries: TokenEntry) -> dict[str, TokenEntry]:
    return {e.token_hash: e for e in entries}


def test_authenticate_valid() -> None:
    e = entry(TOKEN, expires_at=NOW + timedelta(seconds=1), role="admin")
    principal = authenticate(table(e, entry(OTHER)), TOKEN, NOW)
    assert (principal.user_id, principal.username, principal.role, principal.token_id) == (
        e.user_id,
        "alice",
        "admin",
        e.token_id,
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"revoked": True}, "this gateway token has been revoked"),
        ({"expires_at": NOW}, "this gateway token has expired"),
        ({"expires_at": NOW - timedelta(days=1)}, "this gateway token has expired"),
        ({"user_disabled": True}, "this user is disabled"),
        ({"revoked": True, "user_disabled": True}, "this gateway token has been revoked"),
    ],
)
def test_authenticate_rejects_dead_tokens(kw: dict[str, object], message: str) -> None:
    with pytest.raises(AuthError) as exc:
        authenticate(table(entry(TOKEN, **kw)), TOKEN, NOW)
    assert exc.value.message == message


def test_naive_expiry_is_read_as_utc() -> None:
    past = entry(TOKEN, expires_at=(NOW - timedelta(minutes=1)).replace(tzinfo=None))
    with pytest.raises(AuthError, match="expired"):
        authenticate(table(past), TOKEN, NOW)
    future = entry(TOKEN, expires_at=(NOW + timedelta(minutes=1)).replace(tzinfo=None))
    assert authenticate(table(future), TOKEN, NOW).username == "alice"


@pytest.mark.parametrize(
    "presented",
    [
        OTHER,  # unknown
        TOKEN.lower(),
        TOKEN + " ",
        "aib_" + "T" * (MAX_TOKEN_LENGTH + 1),
        "aib_Tökén",
        "aib_\x00" + "T" * 42,
        "' OR 1=1 --",
        "aib_'; DROP TABLE api_tokens; --",
        "",
    ],
)
def test_authenticate_rejects_invalid(presented: str) -> None:
    with pytest.raises(AuthError) as exc:
        authenticate(table(entry(TOKEN)), presented, NOW)
    assert exc.value.message == "invalid gateway token"


def test_too_long_token_is_rejected_even_when_known() -> None:
    long = "aib_" + "L" * MAX_TOKEN_LENGTH
    with pytest.raises(AuthError, match="invalid gateway token"):
        authenticate(table(entry(long)), long, NOW)
    ok = "aib_" + "L" * (MAX_TOKEN_LENGTH - 4)
    assert authenticate(table(entry(ok)), ok, NOW).username == "alice"


def test_non_ascii_token_is_rejected_even_when_known() -> None:
    odd = "aib_ünïcode-token-value"
    with pytest.raises(AuthError, match="invalid gateway token"):
        authenticate(table(entry(odd)), odd, NOW)
