"""gateway.redaction: every secret leaving the process is masked to a short hint."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.redaction import (
    SENSITIVE_HEADERS,
    SENSITIVE_QUERY_KEYS,
    SecretScrubber,
    mask_header_value,
    mask_secret,
    redact_headers,
    redact_path,
    redact_query,
)

LONG = "sk-ant-api03-abcdefghijklmnop9xQz"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (LONG, "sk-a...9xQz"),
        ("sk-abcdefghijk9xQz", "sk-a...9xQz"),
        ("0123456789abcdef", "0123...cdef"),  # 16: the long form
        ("0123456789abcde", "01...de"),  # 15
        ("01234567", "01...67"),  # 8
        ("0123456", "***"),  # 7: nothing revealed
        ("abc", "***"),
        ("", "***"),
    ],
)
def test_mask_secret(value: str, masked: str) -> None:
    assert mask_secret(value) == masked


def test_short_values_reveal_no_character() -> None:
    for n in range(8):
        secret = "Q" * n
        assert "Q" not in mask_secret(secret)


@pytest.mark.parametrize("name", sorted(SENSITIVE_HEADERS))
def test_every_sensitive_header_is_masked(name: str) -> None:
    shown = mask_header_value(name, LONG)
    assert LONG not in shown
    assert shown.endswith("sk-a...9xQz")
    assert mask_header_value(name.upper(), LONG) != LONG  # header names are case-insensitive


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Basic", "Token"])
def test_auth_scheme_is_kept(scheme: str) -> None:
    assert mask_header_value("Authorization", f"{scheme} {LONG}") == f"{scheme} sk-a...9xQz"
    assert mask_header_value("Proxy-Authorization", f"{scheme}   {LONG}") == (
        f"{scheme}   sk-a...9xQz"
    )


def test_other_headers_untouched() -> None:
    for name in ("content-type", "user-agent", "anthropic-version", "x-claude-code-session-id"):
        assert mask_header_value(name, LONG) == LONG


def test_cookie_values_masked_names_kept() -> None:
    cookie = f"session={LONG}; theme=dark-mode-on; csrf=0123456789abcdef"
    assert mask_header_value("Cookie", cookie) == (
        "session=sk-a...9xQz; theme=da...on; csrf=0123...cdef"
    )


def test_set_cookie_attributes_stay_readable() -> None:
    value = f"session={LONG}; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; Secure"
    assert mask_header_value("Set-Cookie", value) == (
        "session=sk-a...9xQz; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; Secure"
    )


def test_folded_set_cookie_does_not_leak_the_second_cookie() -> None:
    shown = mask_header_value("set-cookie", f"a=1; Path=/, b={LONG}")
    assert LONG not in shown and "abcdefgh" not in shown


def test_redact_headers_keeps_order_and_duplicates() -> None:
    fields = [
        ("Host", "x"),
        ("X-Api-Key", LONG),
        ("x-api-key", "abcdefghijklmnopq"),
        ("Accept", "*/*"),
    ]
    assert redact_headers(fields) == [
        ("Host", "x"),
        ("X-Api-Key", "sk-a...9xQz"),
        ("x-api-key", "abcd...nopq"),
        ("Accept", "*/*"),
    ]


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        (f"key={LONG}", "key=sk-a...9xQz"),
        (f"alt=sse&key={LONG}&beta=true", "alt=sse&key=sk-a...9xQz&beta=true"),
        (f"api_key={LONG}", "api_key=sk-a...9xQz"),
        (f"API_KEY={LONG}", "API_KEY=sk-a...9xQz"),
        (f"api%5Fkey={LONG}", "api_key=sk-a...9xQz"),
        ("token=abc&x=1", "token=***&x=1"),
        ("beta=true&x=a%20b", "beta=true&x=a%20b"),  # nothing sensitive: untouched
        ("", ""),
    ],
)
def test_redact_query(query: str, shown: str) -> None:
    assert redact_query(query) == shown


def test_every_sensitive_query_key_is_masked() -> None:
    for key in sorted(SENSITIVE_QUERY_KEYS):
        assert redact_query(f"{key}={LONG}&keep=me") == f"{key}=sk-a...9xQz&keep=me"


def test_redact_path() -> None:
    assert redact_path(f"/v1beta/models/x:generate?key={LONG}&alt=sse") == (
        "/v1beta/models/x:generate?key=sk-a...9xQz&alt=sse"
    )
    assert redact_path("/v1/messages") == "/v1/messages"
    assert redact_path("/v1/messages?beta=true") == "/v1/messages?beta=true"


def test_scrubber_replaces_secrets_in_text() -> None:
    scrub = SecretScrubber([LONG, "tiny", "mid-secret-1"])
    text = f"Invalid API key {LONG}; also mid-secret-1 and tiny"
    assert scrub.scrub(text) == "Invalid API key sk-a...9xQz; also mi...-1 and tiny"
    assert SecretScrubber().scrub(text) == text


def test_scrubber_prefers_the_longest_secret() -> None:
    scrub = SecretScrubber(["abcdefgh", "abcdefgh-and-more-1234"])
    assert scrub.scrub("x abcdefgh-and-more-1234 y") == "x abcd...1234 y"


# --- the property: nothing of a secret survives except its hint ------------------------------

# Token-like secrets: no separator the masking itself introduces (".", " ", "=", ";", ",").
_TOKEN_CHARS = string.ascii_letters + string.digits + "-_~+/"
_QUERY_CHARS = string.ascii_letters + string.digits + "-_~"
secrets_ = st.text(alphabet=_TOKEN_CHARS, min_size=12, max_size=120)


def _hint(secret: str) -> str:
    n = 4 if len(secret) >= 16 else 2
    return f"{secret[:n]}...{secret[-n:]}"


def _assert_nothing_long_survives(secret: str, shown: str) -> None:
    for i in range(len(secret) - 5):
        assert secret[i : i + 6] not in shown, (secret, shown)


@given(
    secret=secrets_,
    name=st.sampled_from(sorted(SENSITIVE_HEADERS)),
    form=st.sampled_from(["raw", "bearer", "cookie"]),
)
def test_property_headers_keep_only_the_hint(secret: str, name: str, form: str) -> None:
    value = {"raw": secret, "bearer": f"Bearer {secret}", "cookie": f"sid={secret}"}[form]
    ((shown_name, shown),) = redact_headers([(name, value)])
    assert shown_name == name
    _assert_nothing_long_survives(secret, shown)
    prefix = {"raw": "", "bearer": "Bearer ", "cookie": "sid="}[form]
    if form == "cookie" and name not in ("cookie", "set-cookie"):
        prefix = ""  # not a cookie header: the whole value is one secret
        assert shown == mask_secret(value)
    else:
        assert shown == prefix + _hint(secret)


@given(
    secret=st.text(alphabet=_QUERY_CHARS, min_size=12, max_size=120),
    key=st.sampled_from(sorted(SENSITIVE_QUERY_KEYS)),
)
def test_property_query_keeps_only_the_hint(secret: str, key: str) -> None:
    shown = redact_path(f"/v1/x?alt=sse&{key}={secret}&n=1")
    _assert_nothing_long_survives(secret, shown)
    assert shown == f"/v1/x?alt=sse&{key}={_hint(secret)}&n=1"


@given(
    secret=secrets_,
    before=st.text(alphabet=" !#$%", max_size=20),
    after=st.text(alphabet=" !#$%", min_size=1, max_size=20),
)
def test_property_scrubber_keeps_only_the_hint(secret: str, before: str, after: str) -> None:
    shown = SecretScrubber([secret]).scrub(f"{before}{secret}{after}{secret}")
    _assert_nothing_long_survives(secret, shown)
    assert shown == f"{before}{_hint(secret)}{after}{_hint(secret)}"
