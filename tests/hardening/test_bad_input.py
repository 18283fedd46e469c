"""Bad input at the running gateway: tokens, paths, headers, bodies. Each gets a clear error in
the provider's shape (never a 5xx of ours), and nothing that should not reaches the upstream
(asserted on the fake's request log)."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from gateway.store import SYSTEM_ACTOR
from gateway.store import users as ustore
from tests.e2e.conftest import Setup
from tests.hardening.support import (
    CHAT,
    IID,
    MESSAGES,
    Reply,
    anthropic_error,
    error_page,
    exchange,
    hwm_bytes,
    openai_error,
    request_bytes,
    rss_bytes,
    wait_closed,
)

MSG = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
BODY = json.dumps(MSG).encode()
JSON = ("Content-Type", "application/json")


def _send(
    h: Setup,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes = BODY,
    *,
    timeout: float = 15.0,
) -> Reply:
    return exchange(h.gw.port, request_bytes(method, path, headers, body), timeout=timeout)


def _auth(h: Setup) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {h.token}"), JSON]


@pytest.fixture(scope="module")
def dead_tokens(hard: Setup) -> dict[str, str]:
    """An expired token, a revoked one, and one of a disabled user."""
    admin = hard.gw.admin
    admin.add_user("bob")
    expired = admin.token("bob", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    revoked = admin.token("bob", name="rev")
    with Session(admin.engine) as s:
        for row, _ in ustore.list_tokens(s, user=ustore.get_user(s, username="bob")):
            if row.name == "rev":
                ustore.revoke_token(s, token=row, actor=SYSTEM_ACTOR)
        s.commit()
    admin.add_user("carol")
    disabled = admin.token("carol")
    with Session(admin.engine) as s:
        user = ustore.get_user(s, username="carol")
        ustore.update_user(s, user=user, actor=SYSTEM_ACTOR, disabled=True)
        s.commit()
    hard.gw.sync()
    return {"expired": expired, "revoked": revoked, "disabled": disabled}


# -- tokens ------------------------------------------------------------------------------------

# (headers, fragment of the message). tests/e2e/test_rejections.py covers the Anthropic shape
# for: none, "Bearer ", "Bearer", Basic, unknown, 10 KB / SQL / non-ASCII in X-Api-Key, two
# Authorization headers, Bearer + different X-Api-Key. These are the rest, on both shapes.
BAD_TOKENS = [
    pytest.param(
        [("Authorization", "Bearer " + "a" * 10240)], "invalid gateway token", id="10KB-bearer"
    ),
    pytest.param(
        [("Authorization", "Bearer ' OR '1'='1' --")], "invalid gateway token", id="sql-bearer"
    ),
    pytest.param(
        [("Authorization", "Bearer aib_'; DROP TABLE api_token; --")],
        "invalid gateway token",
        id="sql-token-shape",
    ),
    pytest.param(
        [("Authorization", "Bearer aib_tökén€")], "invalid gateway token", id="non-ascii-bearer"
    ),
    pytest.param(
        [("Authorization", "Bearer aib_\x01\x7f")], "invalid gateway token", id="control-chars"
    ),
    pytest.param([("Authorization", "Token aib_x")], "Bearer scheme", id="token-scheme"),
    pytest.param([("Authorization", "Digest username=x")], "Bearer scheme", id="digest-scheme"),
    pytest.param([("Authorization", "")], "Bearer scheme", id="empty-authorization"),
    pytest.param([("X-Api-Key", "")], "empty", id="empty-x-api-key"),
    pytest.param([("X-Api-Key", "a"), ("X-Api-Key", "b")], "more than one", id="two-x-api-key"),
    pytest.param([("X-AIBridge-Token", "")], "empty", id="empty-aibridge-token"),
    pytest.param(
        [("X-AIBridge-Token", "aib_nope")], "invalid gateway token", id="unknown-aibridge-token"
    ),
    pytest.param(
        [("X-AIBridge-Token", "a"), ("X-AIBridge-Token", "b")],
        "more than one",
        id="two-aibridge-tokens",
    ),
    pytest.param([("X-Api-Key", "aib_" + "x" * 600)], "invalid gateway token", id="over-512"),
]


@pytest.mark.parametrize("headers,fragment", BAD_TOKENS)
@pytest.mark.parametrize("shape", ["anthropic", "openai"])
def test_bad_tokens_are_401_in_the_provider_shape(
    h: Setup, headers: list[tuple[str, str]], fragment: str, shape: str
) -> None:
    path = MESSAGES if shape == "anthropic" else CHAT
    reply = _send(h, "POST", path, [*headers, JSON])
    if shape == "anthropic":
        message = anthropic_error(reply, 401, "authentication_error")
    else:
        message = openai_error(reply, 401, "invalid_api_key")
    assert fragment in message
    assert reply.headers.get(IID)
    assert h.fake.requests == []


@pytest.mark.parametrize("kind", ["expired", "revoked", "disabled"])
@pytest.mark.parametrize("header", ["Authorization", "X-Api-Key", "X-AIBridge-Token"])
def test_dead_tokens_in_every_header_on_openai(
    h: Setup, dead_tokens: dict[str, str], kind: str, header: str
) -> None:
    token = dead_tokens[kind]
    value = f"Bearer {token}" if header == "Authorization" else token
    reply = _send(h, "POST", CHAT, [(header, value), JSON])
    assert kind in openai_error(reply, 401, "invalid_api_key")
    assert h.fake.requests == []


@pytest.mark.parametrize(
    "headers,fragment",
    [
        # X-AIBridge-Token + a different gateway token in Authorization: never forwarded as a
        # provider key
        (
            lambda t: [("X-AIBridge-Token", t), ("Authorization", "Bearer aib_other_token_value")],
            "cannot be used as a provider key",
        ),
        (
            lambda t: [
                ("X-AIBridge-Token", t),
                ("Authorization", "Bearer sk-one"),
                ("X-Api-Key", "sk-two"),
            ],
            "different keys",
        ),
        (lambda t: [("X-Api-Key", t), ("Authorization", f"Bearer {t}x")], "different"),
    ],
    ids=["gateway-token-as-byok", "two-byok-keys", "near-miss"],
)
def test_two_auth_headers_with_different_values(h: Setup, headers: Any, fragment: str) -> None:
    reply = _send(h, "POST", MESSAGES, [*headers(h.token), JSON])
    assert fragment in anthropic_error(reply, 401, "authentication_error")
    assert h.fake.requests == []


def test_same_token_in_both_headers_is_accepted_and_never_forwarded(h: Setup) -> None:
    reply = _send(
        h, "POST", MESSAGES, [*_auth(h), ("X-Api-Key", h.token), ("X-AIBridge-Token", h.token)]
    )
    assert reply.status == 200, reply.body[:300]
    (got,) = h.fake.requests
    assert h.token not in repr(got.headers)
    assert got.header("x-api-key") == h.anthropic_key


# -- paths -------------------------------------------------------------------------------------

# test_rejections.py covers `../name`, `%2e%2e` as the name, an uppercase name, an empty name,
# `name%2fx`, `%2e%2e` and `//` in the sub-path, fullwidth dots as the name, `name;x` and a
# 200-character name. These are the rest.
BAD_PATHS = [
    "/api/v2/aibridge/anthropic/v1/./messages",
    "/api/v2/aibridge/anthropic/./v1/messages",
    "/api/v2/aibridge/anthropic/v1%2fmessages",
    "/api/v2/aibridge/anthropic/v1%2Fmessages",
    "/api/v2/aibridge/anthropic/v1%5cmessages",
    "/api/v2/aibridge/anthropic/v1\\messages",
    "/api/v2/aibridge/anthropic/v1/messages%00",
    "/api/v2/aibridge/anthropic%00/v1/messages",
    "/api/v2/aibridge/%2e/v1/messages",
    "/api/v2/aibridge/anthropic/%2E%2E/anthropic/v1/messages",
    "/api/v2/aibridge/anthropic/v1/%EF%BC%8E%EF%BC%8E/messages",
    "/api/v2/aibridge/%EF%BD%81nthropic/v1/messages",  # fullwidth "a"
    "/api/v2/aibridge/anthropic/v1/messages;x",
    "/api/v2/aibridge/anthropic/v1/messages/",
    "/api/v2/aibridge/anthropic/V1/MESSAGES",
    "/api/v2/aibridge/ANTHROPIC/v1/messages",
    "/api/v2/aibridge/anthropic-/v1/messages",
    "/api/v2/aibridge/an--thropic/v1/messages",
    "/api/v2/aibridge/anthropic.x/v1/messages",
    "/api/v2/aibridge/" + "a" * 64 + "/v1/messages",
    "/api/v2/aibridge/" + "a" * 10000 + "/v1/messages",
    "/api/v2/aibridge/anthropic/v1/" + "m" * 10000,
    "/api/v2/aibridge/anthropic/v1/complete",
    "/api/v2/aibridge/anthropic/v1/chat/completions",
    "/api/v2/aibridge/anthropic/v2/messages",
    "/api/v2/aibridge/anthropic/../../../healthz",
    "/api/v2/aibridge/anthropic/v1/messages/../../v1/messages",
]


@pytest.mark.parametrize("path", BAD_PATHS, ids=lambda p: p[17:60])
def test_bad_paths_are_404_json_and_not_forwarded(h: Setup, path: str) -> None:
    reply = _send(h, "POST", path, _auth(h))
    assert reply.status == 404, (reply.status, reply.body[:200])
    body = reply.json()
    assert "error" in body and body["error"]["message"], body
    assert h.fake.requests == []


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "GET", "FOO"])
@pytest.mark.parametrize("path", [MESSAGES, CHAT])
def test_wrong_methods_are_404_in_the_provider_shape(h: Setup, method: str, path: str) -> None:
    reply = _send(h, method, path, _auth(h))
    sub = path.split("/", 5)[5]
    if path == MESSAGES:
        message = anthropic_error(reply, 404, "not_found_error")
    else:
        message = openai_error(reply, 404, "not_found")
    assert message == f"route not supported: {method} /{sub}"
    assert h.fake.requests == []


def test_unknown_provider_on_openai_path_is_openai_shaped(h: Setup) -> None:
    reply = _send(h, "POST", "/api/v2/aibridge/nope/v1/chat/completions", _auth(h))
    assert "unknown provider 'nope'" in openai_error(reply, 404, "not_found")
    assert h.fake.requests == []


# -- headers -----------------------------------------------------------------------------------


def _head(h: Setup, *lines: str, body: bytes = BODY) -> bytes:
    start = [
        f"POST {MESSAGES} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        f"Authorization: Bearer {h.token}",
        "Content-Type: application/json",
        *lines,
    ]
    return ("\r\n".join(start) + "\r\n\r\n").encode("latin-1") + body


SMUGGLING = [
    pytest.param(
        lambda n: ["Content-Length: 4", "Transfer-Encoding: chunked"],
        lambda b: f"{len(b):x}\r\n".encode() + b + b"\r\n0\r\n\r\n",
        id="te-and-cl",
    ),
    pytest.param(lambda n: [f"Content-Length: {n}", "Content-Length: 5"], None, id="dup-cl"),
    pytest.param(lambda n: [f"Content-Length: {n}, {n + 1}"], None, id="cl-list"),
    pytest.param(lambda n: ["Content-Length: -1"], None, id="negative-cl"),
    pytest.param(lambda n: [f"Content-Length : {n}"], None, id="space-before-colon"),
    pytest.param(lambda n: ["Transfer-Encoding: xchunked"], None, id="unknown-te"),
    pytest.param(
        lambda n: ["Transfer-Encoding: chunked", "Transfer-Encoding: identity"], None, id="two-te"
    ),
]


@pytest.mark.parametrize("lines,encode", SMUGGLING)
def test_smuggling_framing_is_400_json(h: Setup, lines: Any, encode: Any) -> None:
    body = encode(BODY) if encode else BODY
    reply = exchange(h.gw.port, _head(h, *lines(len(BODY)), body=body))
    assert 400 <= reply.status < 500, reply.raw[:300]
    error_page(reply, reply.status)
    assert h.fake.requests == []


@pytest.mark.parametrize(
    "line",
    [
        "X-A: a\rX-Injected: 1",
        "X-A: a\r\n x-injected: 1",  # obs-fold: joined into one value with a CRLF
        "X-A: a\x00b",
        "X-Api-Key: \r\n x",
    ],
    ids=["bare-cr", "obs-fold", "nul", "folded-auth"],
)
def test_control_bytes_in_header_values_are_400(h: Setup, line: str) -> None:
    reply = exchange(h.gw.port, _head(h, line, f"Content-Length: {len(BODY)}"))
    assert 400 <= reply.status < 500, reply.raw[:300]
    assert reply.json()["type"] == "error"
    assert h.fake.requests == []


@pytest.mark.parametrize("size", [64 * 1024, 1024 * 1024], ids=["64KB", "1MB"])
def test_huge_headers_are_431_and_not_forwarded(h: Setup, size: int) -> None:
    reply = _send(h, "POST", MESSAGES, [*_auth(h), ("X-Big", "a" * size)])
    assert "exceed the gateway limit" in anthropic_error(reply, 431, "invalid_request_error")
    assert h.fake.requests == []


def test_many_small_headers_are_431(h: Setup) -> None:
    headers = [(f"X-H{i}", "v" * 8) for i in range(3000)]
    reply = _send(h, "POST", CHAT, [*_auth(h), *headers])
    openai_error(reply, 431, "request_header_fields_too_large")
    assert h.fake.requests == []


@pytest.mark.parametrize(
    "listed",
    [
        "x-api-key",
        "authorization",
        "x-api-key, authorization, x-aibridge-token",
        "content-length, transfer-encoding, host, content-type",
        "anthropic-version",
    ],
)
def test_connection_header_cannot_remove_the_key_or_framing(h: Setup, listed: str) -> None:
    reply = _send(
        h,
        "POST",
        MESSAGES,
        [*_auth(h), ("Connection", listed), ("anthropic-version", "2023-06-01")],
    )
    assert reply.status == 200, reply.body[:300]
    (got,) = h.fake.requests
    assert got.header("x-api-key") == h.anthropic_key  # injected after stripping
    assert got.header("authorization") is None and got.header("x-aibridge-token") is None
    assert got.header("content-length") == str(len(BODY))
    assert got.header("content-type") == "application/json"
    assert got.json() == MSG
    assert h.token not in repr(got.headers)
    if "anthropic-version" in listed:
        assert got.header("anthropic-version") is None  # the client asked for it to go


def test_connection_close_is_honoured(h: Setup) -> None:
    """The client's `Connection: close` closes the connection after the response (the
    exchange helper reads until the server closes: it would time out otherwise)."""
    started = time.monotonic()
    reply = exchange(h.gw.port, request_bytes("POST", MESSAGES, _auth(h), BODY), timeout=5)
    assert reply.status == 200 and reply.complete
    assert time.monotonic() - started < 3


def test_underscore_variants_of_auth_and_framing_headers_are_dropped(h: Setup) -> None:
    reply = _send(
        h,
        "POST",
        MESSAGES,
        [
            *_auth(h),
            ("X_Api_Key", "sk-smuggled-key"),
            ("Proxy_Authorization", "Basic c211Z2dsZWQ="),
            ("X_AIBridge_Token", h.token),
            ("Content_Length", "3"),
            ("Transfer_Encoding", "chunked"),
            ("x_custom_header", "kept"),
        ],
    )
    assert reply.status == 200, reply.body[:300]
    (got,) = h.fake.requests
    names = {k.lower() for k in got.header_names()}
    assert not names & {
        "x_api_key",
        "proxy_authorization",
        "x_aibridge_token",
        "content_length",
        "transfer_encoding",
    }
    assert got.header("x_custom_header") == "kept"
    assert got.header("x-api-key") == h.anthropic_key


# -- bodies ------------------------------------------------------------------------------------


def _record(h: Setup, reply: Any) -> Any:
    iid = reply.headers[IID]
    return wait_closed(h.gw.admin.engine, [iid])[iid]


def test_declared_huge_body_is_413_before_the_upload(h: Setup) -> None:
    """A Content-Length beyond mitmproxy's backstop (2 x the limit, at least limit + 16 MiB) is
    answered from the headers alone: the body is never sent (nor buffered)."""
    head = _head(h, f"Content-Length: {1 << 40}", body=b"")
    reply = exchange(h.gw.port, head, timeout=10)
    assert "exceeds" in anthropic_error(reply, 413, "request_too_large")
    assert h.fake.requests == []


def test_declared_oversized_body_is_413_in_the_provider_shape(h: Setup) -> None:
    body = b"x" * (9 * 1024 * 1024)  # over the battery's 8 MiB limit
    reply = _send(h, "POST", CHAT, _auth(h), body, timeout=30)
    assert "exceeds the gateway limit" in openai_error(reply, 413, "request_too_large")
    assert h.fake.requests == []


def test_chunked_oversized_body_is_413(h: Setup) -> None:
    chunk = b"x" * (1 << 20)
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(9)) + b"0\r\n\r\n"
    reply = exchange(h.gw.port, _head(h, "Transfer-Encoding: chunked", body=body))
    assert "exceeds the gateway limit" in anthropic_error(reply, 413, "request_too_large")
    assert h.fake.requests == []


@pytest.mark.parametrize(
    "body",
    [b'{"model": "m", "messages": [', b"not json", b"", b"[1, 2, 3]", b'"a string"', b"null"],
    ids=["cut", "text", "empty", "array", "string", "null"],
)
def test_malformed_json_is_forwarded_and_recorded_unparsed(h: Setup, body: bytes) -> None:
    reply = _send(h, "POST", MESSAGES, _auth(h), body)
    assert reply.status == 400  # the fake's own answer, passed through
    (got,) = h.fake.requests
    assert got.body == body
    rec = _record(h, reply)
    assert rec.parsed is False and rec.status == "upstream_error" and rec.upstream_status == 400


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_forwarded_as_is(h: Setup, ctype: str | None) -> None:
    headers = [("Authorization", f"Bearer {h.token}")]
    if ctype:
        headers.append(("Content-Type", ctype))
    reply = _send(h, "POST", MESSAGES, headers)
    assert reply.status == 200
    (got,) = h.fake.requests
    assert got.header("content-type") == ctype and got.body == BODY
    rec = _record(h, reply)
    assert rec.parsed is True and rec.model == "m" and rec.status == "completed"


def test_gzip_bomb_is_forwarded_as_is_without_blowing_up_memory(h: Setup) -> None:
    inflated = 512 * 1024 * 1024  # 512 MiB of JSON whitespace: ~500 KiB compressed
    bomb = gzip.compress(b'{"model": "m", "messages": []' + b" " * inflated + b"}", 9)
    assert len(bomb) < 1024 * 1024
    pid = h.gw.proc.pid
    before = rss_bytes(pid)
    reply = _send(h, "POST", MESSAGES, [*_auth(h), ("Content-Encoding", "gzip")], bomb)
    assert reply.status == 400  # the fake cannot read it either
    (got,) = h.fake.requests
    assert got.body == bomb and got.header("content-encoding") == "gzip"
    rec = _record(h, reply)
    assert rec.parsed is False
    # decoding for parsing stops at the body limit (8 MiB): far below the 512 MiB
    assert hwm_bytes(pid) - before < 200 * 1024 * 1024
    ok = _send(h, "POST", MESSAGES, _auth(h))
    assert ok.status == 200


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd", "deflate", "compress", "gzip, br"])
def test_corrupt_or_unknown_content_encoding_is_forwarded_unparsed(h: Setup, encoding: str) -> None:
    reply = _send(
        h, "POST", MESSAGES, [*_auth(h), ("Content-Encoding", encoding)], b"\x1f\x8b\x08garbage"
    )
    assert reply.status == 400
    (got,) = h.fake.requests
    assert got.body == b"\x1f\x8b\x08garbage"
    assert _record(h, reply).parsed is False


def test_deeply_nested_json_is_forwarded_and_recorded_unparsed(h: Setup) -> None:
    depth = 100_000
    body = b'{"model":"m","messages":' + b"[" * depth + b"]" * depth + b"}"
    reply = _send(h, "POST", MESSAGES, _auth(h), body)
    assert reply.status == 400  # the fake's JSON parser gives up as well
    (got,) = h.fake.requests
    assert got.body == body
    assert _record(h, reply).parsed is False


def test_100k_messages_are_forwarded_and_parsed(h: Setup) -> None:
    messages = [{"role": "user", "content": f"m{i}"} for i in range(100_000)]
    body = json.dumps({"model": "m", "max_tokens": 5, "messages": messages}).encode()
    reply = _send(h, "POST", MESSAGES, _auth(h), body, timeout=60)
    assert reply.status == 200
    (got,) = h.fake.requests
    assert got.body == body
    rec = _record(h, reply)
    assert rec.parsed is True and rec.model == "m" and rec.status == "completed"


def test_invalid_utf8_body_is_forwarded_and_recorded_unparsed(h: Setup) -> None:
    body = b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"\xff\xfe\xc3("}]}'
    reply = _send(h, "POST", CHAT, _auth(h), body)
    assert reply.status == 400
    (got,) = h.fake.requests
    assert got.body == body
    assert _record(h, reply).parsed is False


def test_gateway_still_serves_after_the_battery(h: Setup) -> None:
    reply = _send(h, "POST", MESSAGES, _auth(h))
    assert reply.status == 200 and reply.json()["type"] == "message"
    health = h.gw.health()
    assert health is not None and health["status"] == "ok"
    assert health["database_writes"] == "ok"
    assert h.gw.proc.poll() is None
    log = h.gw.logs()
    assert "Traceback" not in log, log[-3000:]
