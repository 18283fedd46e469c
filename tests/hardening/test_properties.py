"""Properties the existing unit tests (tests/gateway, tests/addons) do not state yet: stream
parsers on arbitrary bytes are split-invariant, glued to real streams too; path and name
validation never lets through what an upstream could read differently; redaction of bodies and
of odd queries leaves no 6-character piece of a secret; unit parsing raises only ValueError."""

from __future__ import annotations

import itertools
import posixpath
import string
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addons.paths import _ambiguous, split_gateway_path
from gateway import validation
from gateway.providers.chat import ChatWire
from gateway.providers.messages import MessagesWire
from gateway.providers.responses import ResponsesWire
from gateway.providers.sse import SSEDecoder
from gateway.redaction import (
    SENSITIVE_FIELDS,
    SecretScrubber,
    mask_secret,
    redact_body_fields,
    redact_path,
)
from gateway.units import parse_duration, parse_size

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WIRES = {"messages": MessagesWire(), "chat": ChatWire(), "responses": ResponsesWire()}
STREAMS = {
    "messages": FIXTURES / "messages" / "thinking_tools_cache.sse",
    "chat": None,
    "responses": FIXTURES / "responses" / "codex_tool_calls.sse",
}
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
cuts = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=25)


def _pieces(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


def _records(api: str, pieces: list[bytes]) -> list[object]:
    parser = WIRES[api].stream_parser()
    out: list[object] = []
    for piece in pieces:
        if piece:
            out.extend(parser.feed(piece))
    return out + parser.feed(b"")


# -- stream parsers ------------------------------------------------------------------------------


@SLOW
@given(api=st.sampled_from(sorted(WIRES)), data=st.binary(max_size=2000), points=cuts)
def test_stream_parsers_are_split_invariant_on_any_bytes(
    api: str, data: bytes, points: list[int]
) -> None:
    whole = _records(api, [data])
    assert _records(api, _pieces(data, points)) == whole
    assert _records(api, [data[i : i + 1] for i in range(len(data))]) == whole


@SLOW
@given(
    api=st.sampled_from(["messages", "responses"]),
    before=st.binary(max_size=200),
    after=st.binary(max_size=200),
    points=cuts,
)
def test_garbage_around_a_real_stream_never_raises_and_is_split_invariant(
    api: str, before: bytes, after: bytes, points: list[int]
) -> None:
    path = STREAMS[api]
    assert path is not None
    data = before + path.read_bytes() + after
    assert _records(api, _pieces(data, points)) == _records(api, [data])


@SLOW
@given(data=st.binary(max_size=1500), points=cuts, limit=st.sampled_from([1, 16, 300, 1 << 20]))
def test_sse_fields_never_carry_line_endings_or_nul_ids(
    data: bytes, points: list[int], limit: int
) -> None:
    decoder = SSEDecoder(max_event_size=limit)
    events = [e for p in _pieces(data, points) if p for e in decoder.feed(p)] + decoder.feed(b"")
    for event in events:
        assert event.event is None or not set(event.event) & {"\r", "\n"}
        assert event.id is None or "\x00" not in event.id
        assert "\r" not in event.data
        if event.truncated:
            assert event.data == ""
        if event.retry is not None:
            assert event.retry >= 0


@SLOW
@given(data=st.binary(max_size=3000))
def test_request_and_blocking_parsers_accept_any_bytes(data: bytes) -> None:
    for wire in WIRES.values():
        summary = wire.parse_request(data)
        assert summary.model is None or isinstance(summary.model, str)
        assert summary.prompt is None or isinstance(summary.prompt, str)
        assert isinstance(wire.parse_response(data), list)


# -- paths and names -----------------------------------------------------------------------------

name_chars = st.characters(codec="utf-8") | st.sampled_from(list("/.%-_AZaz09\\ \x00;"))
path_text = st.text(name_chars, max_size=80)


@settings(max_examples=500, deadline=None)
@given(raw=path_text)
def test_provider_names_are_lowercase_ascii_words_only(raw: str) -> None:
    accepted = validation.is_provider_name(raw)
    try:
        validation.provider_name(raw)
        strict = True
    except validation.InvalidField:
        strict = False
    assert accepted is strict
    if accepted:
        assert raw.isascii() and raw == raw.lower()
        assert not set(raw) & set("/.%_ \\;\x00") and 0 < len(raw) <= validation.MAX_NAME
        assert set(raw) <= set(string.ascii_lowercase + string.digits + "-")


@settings(max_examples=500, deadline=None)
@given(name=path_text, rest=path_text, query=st.text(max_size=20))
def test_split_gateway_path_never_decodes_a_name(name: str, rest: str, query: str) -> None:
    path = f"/api/v2/aibridge/{name}/{rest}" + (f"?{query}" if query else "")
    parts = split_gateway_path(path)
    assert parts is not None
    got, subpath, raw, _ = parts
    if got:
        assert got == name.partition("?")[0] and validation.is_provider_name(got)
        assert "%" not in got and "." not in got and "/" not in got
    assert subpath == (unquote(raw, errors="replace") if "%" in raw else raw)


@settings(max_examples=800, deadline=None)
@given(
    raw=st.text(
        st.sampled_from(list("/.%2fFe5cC0ab\\")) | st.characters(codec="ascii"), max_size=40
    ).map(lambda s: "/" + s)
)
def test_an_unambiguous_sub_path_is_already_normal(raw: str) -> None:
    """What passes the guard is what a normalising upstream would read: no dot segments, no
    `//`, no encoded separators."""
    decoded = unquote(raw, errors="replace") if "%" in raw else raw
    if _ambiguous(decoded, raw):
        return
    trimmed = decoded.rstrip("/") or "/"
    assert posixpath.normpath(trimmed) == trimmed
    assert "\\" not in decoded and "\x00" not in decoded
    assert not {"%2f", "%5c", "%00"} & {raw.lower()[i : i + 3] for i in range(len(raw))}


# -- redaction -----------------------------------------------------------------------------------

SECRET_CHARS = string.ascii_letters + string.digits + "-_"
secret_text = st.text(st.sampled_from(SECRET_CHARS), min_size=16, max_size=80)


def _no_piece(secret: str, shown: str | bytes) -> None:
    text = shown.decode("utf-8", "replace") if isinstance(shown, bytes) else shown
    for i in range(len(secret) - 5):
        assert secret[i : i + 6] not in text, (secret, text)


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.characters(blacklist_characters="."), max_size=200))
def test_mask_secret_keeps_at_most_eight_characters(value: str) -> None:
    masked = mask_secret(value)
    assert len(masked.replace("...", "")) <= 8
    if len(value) >= 6:
        _no_piece(value, masked)


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.text(max_size=10)
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    secret=secret_text,
    field=st.sampled_from(sorted(SENSITIVE_FIELDS)),
    depth=st.integers(min_value=0, max_value=4),
    shape=st.sampled_from(["str", "list", "objects"]),
    other=st.dictionaries(
        st.text(st.sampled_from("abcxyz"), min_size=1, max_size=5), json_leaf, max_size=4
    ),
)
def test_body_fields_keep_no_piece_of_a_secret(
    secret: str, field: str, depth: int, shape: str, other: dict[str, object]
) -> None:
    import orjson

    value: object = {
        "str": secret,
        "list": [secret],
        "objects": [{"api_key": secret}, {"id": "k1"}],
    }[shape]
    doc: object = {field.upper() if depth % 2 else field: value, **other}
    for _ in range(depth):
        doc = {"data": [doc], "n": 1}
    body = orjson.dumps(doc)
    shown = redact_body_fields(body, "application/json; charset=utf-8")
    _no_piece(secret, shown)
    inner = orjson.loads(shown)
    for _ in range(depth):
        inner = inner["data"][0]
    assert {k: v for k, v in inner.items() if k.lower() != field} == other
    form = f"{field}={secret}&keep=1".encode()
    shown_form = redact_body_fields(form, "application/x-www-form-urlencoded")
    _no_piece(secret, shown_form)
    assert b"keep=1" in shown_form


@settings(max_examples=300, deadline=None)
@given(
    secret=secret_text,
    key=st.sampled_from(["key", "KEY", "Api_Key", " token", "apikey"]),
    before=st.sampled_from(["", "a=1&", "alt=sse&"]),
)
def test_query_secrets_under_any_key_case(secret: str, key: str, before: str) -> None:
    _no_piece(secret, redact_path(f"/v1/x?{before}{key}={secret}"))


@settings(max_examples=300, deadline=None)
@given(
    secrets_=st.lists(secret_text, min_size=1, max_size=4),
    glue=st.text(st.sampled_from(" :,\"'"), min_size=1, max_size=3),
)
def test_scrubber_with_overlapping_secrets(secrets_: list[str], glue: str) -> None:
    # secrets that are prefixes/suffixes of one another, side by side in the text
    variants = [*secrets_, *(s[: len(s) // 2 + 8] for s in secrets_)]
    text = glue.join(variants + list(reversed(variants)))
    shown = SecretScrubber(variants).scrub(text)
    for secret in variants:
        if len(secret) >= 16:
            _no_piece(secret, shown)


# -- units ---------------------------------------------------------------------------------------

unit_text = st.text(
    st.sampled_from([*"0123456789.smhdwkKMGTiIbB ", "٣", "１", "\x00"]), max_size=30
) | st.text(max_size=12)


@settings(max_examples=600, deadline=None)
@given(text=unit_text)
def test_units_raise_only_value_error(text: str) -> None:
    for parse in (parse_duration, parse_size):
        try:
            value = parse(text)
        except ValueError:
            continue
        if parse is parse_size:
            assert isinstance(value, int) and value >= 0
        else:
            assert value.total_seconds() >= 0


@pytest.mark.parametrize("text", ["9" * 400, "9" * 400 + "t", "1" * 309 + "k"])
def test_huge_sizes_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_size(text)
