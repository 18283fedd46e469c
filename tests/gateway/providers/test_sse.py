from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.providers.sse import SSEDecoder, SSEEvent
from tests.gateway.providers.conftest import chunks


def decode(pieces: Iterable[bytes], **kwargs: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**kwargs)
    events: list[SSEEvent] = []
    for piece in pieces:
        if piece:
            events.extend(decoder.feed(piece))
    events.extend(decoder.feed(b""))
    return events


def decode_every_way(data: bytes, **kwargs: int) -> list[SSEEvent]:
    whole = decode([data], **kwargs)
    assert decode([data[i : i + 1] for i in range(len(data))], **kwargs) == whole
    for step in (2, 3, 7):
        assert decode([data[i : i + step] for i in range(0, len(data), step)], **kwargs) == whole
    return whole


def test_events_with_type_data_and_id() -> None:
    data = b'event: message_start\ndata: {}\n\nevent: ping\ndata: {"type": "ping"}\nid: 7\n\n'
    assert decode_every_way(data) == [
        SSEEvent(event="message_start", data="{}"),
        SSEEvent(event="ping", data='{"type": "ping"}', id="7"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode_every_way(b"data: a\ndata:\ndata: c\n\n") == [SSEEvent(data="a\n\nc")]


def test_lf_crlf_and_lone_cr_line_endings_are_equivalent() -> None:
    lf = b"event: x\ndata: 1\ndata: 2\n\ndata: 3\n\n"
    expected = [SSEEvent(event="x", data="1\n2"), SSEEvent(data="3")]
    assert decode_every_way(lf) == expected
    assert decode_every_way(lf.replace(b"\n", b"\r\n")) == expected
    assert decode_every_way(lf.replace(b"\n", b"\r")) == expected
    assert decode_every_way(b"event: x\r\ndata: 1\rdata: 2\n\r\ndata: 3\r\r") == expected


def test_crlf_split_between_feeds_is_one_line_ending() -> None:
    assert decode([b"data: a\r", b"\n", b"\r", b"\ndata: b\n\n"]) == [
        SSEEvent(data="a"),
        SSEEvent(data="b"),
    ]


def test_comments_are_ignored_and_retry_is_read() -> None:
    data = b": ping\n:\ndata: x\n: in the middle\nretry: 1500\n\nretry: soon\ndata: y\n\n"
    assert decode_every_way(data) == [SSEEvent(data="x", retry=1500), SSEEvent(data="y")]


def test_field_names_without_a_colon() -> None:
    assert decode_every_way(b"data\ndata\n\nevent\ndata: z\n\n") == [
        SSEEvent(data="\n"),
        SSEEvent(event=None, data="z"),
    ]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert decode_every_way(b"data:x\n\ndata:  two\n\nevent:   e\ndata: \n\n") == [
        SSEEvent(data="x"),
        SSEEvent(data=" two"),
        SSEEvent(event="  e", data=""),
    ]


def test_bom_is_stripped_at_stream_start_only() -> None:
    bom = b"\xef\xbb\xbf"
    assert decode_every_way(bom + b"data: a\n\n" + bom + b"data: b\n\ndata: c\n\n") == [
        SSEEvent(data="a"),
        SSEEvent(data="c"),
    ]
    assert decode_every_way(bom) == []
    assert decode_every_way(bom[:2] + b"data: d\n\n") == []


def test_final_event_without_blank_line_is_flushed_at_end() -> None:
    assert decode_every_way(b"data: a\n\ndata: b\ndata: c") == [
        SSEEvent(data="a"),
        SSEEvent(data="b\nc"),
    ]
    assert decode_every_way(b"event: e\r\ndata: f\r\n") == [SSEEvent(event="e", data="f")]


def test_blank_lines_and_comments_alone_dispatch_nothing() -> None:
    assert decode_every_way(b"\n\n\r\n: keepalive\n\n\r\r") == []


def test_an_event_with_a_field_but_no_data_is_dispatched() -> None:
    assert decode_every_way(b"event: done\n\n") == [SSEEvent(event="done", data="")]


def test_last_event_id_persists_and_ids_with_nul_are_ignored() -> None:
    data = b"id: 1\ndata: a\n\ndata: b\n\nid: bad\x00\ndata: c\n\nid\ndata: d\n\n"
    assert decode_every_way(data) == [
        SSEEvent(data="a", id="1"),
        SSEEvent(data="b", id="1"),
        SSEEvent(data="c", id="1"),
        SSEEvent(data="d", id=""),
    ]


def test_unknown_fields_are_ignored() -> None:
    assert decode_every_way(b"foo: bar\nDATA: no\ndata: yes\n\n") == [SSEEvent(data="yes")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode_every_way(b"data: a\xff\xfeb\xc3\n\nevent: \x80\ndata: x\n\n") == [
        SSEEvent(data="a\ufffd\ufffdb\ufffd"),
        SSEEvent(event="\ufffd", data="x"),
    ]


def test_multibyte_characters_split_anywhere_survive() -> None:
    text = "é€😀 ünïcödé"
    assert decode_every_way(f"data: {text}\n\n".encode()) == [SSEEvent(data=text)]


def test_unicode_line_separators_are_not_sse_line_endings() -> None:
    text = "a\x0bb\x0cc\x1cd\x85e\u2028f\u2029g"
    assert decode_every_way(f"data: {text}\n\n".encode()) == [SSEEvent(data=text)]


def test_event_over_the_size_limit_loses_its_data_and_is_marked() -> None:
    data = b"event: big\ndata: " + b"x" * 200 + b"\ndata: more\n\nevent: small\ndata: ok\n\n"
    assert decode_every_way(data, max_event_size=100) == [
        SSEEvent(event="big", data="", truncated=True),
        SSEEvent(event="small", data="ok"),
    ]


def test_many_small_lines_over_the_limit_are_dropped_too() -> None:
    data = b"data: 0123456789\n" * 20 + b"\ndata: next\n\n"
    assert decode_every_way(data, max_event_size=100) == [
        SSEEvent(data="", truncated=True),
        SSEEvent(data="next"),
    ]


def test_overlong_unterminated_line_is_not_buffered() -> None:
    decoder = SSEDecoder(max_event_size=64)
    assert decoder.feed(b"data: " + b"y" * 50) == []
    for _ in range(1000):
        assert decoder.feed(b"z" * 1000) == []
    assert decoder.feed(b"\r") == []
    assert decoder.feed(b"\n\r\ndata: fine\n\n") == [
        SSEEvent(data="", truncated=True),
        SSEEvent(data="fine"),
    ]


def test_decoder_is_reusable_after_end_of_input() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: a") == []
    assert decoder.feed(b"") == [SSEEvent(data="a", id="1")]
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == [SSEEvent(data="b")]


line_text = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]))
event_parts = st.tuples(
    st.one_of(st.none(), line_text.filter(bool)),
    st.lists(line_text, min_size=1, max_size=4),
    st.one_of(st.none(), line_text),
)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(event_parts, max_size=6),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_generated_streams_decode_to_their_events_in_any_split(
    events: list[tuple[str | None, list[str], str | None]], ending: str, cuts: list[int]
) -> None:
    text = ""
    expected: list[SSEEvent] = []
    last_id: str | None = None
    for name, lines, event_id in events:
        if name is not None:
            text += f"event: {name}{ending}"
        text += "".join(f"data: {line}{ending}" for line in lines)
        if event_id is not None:
            text += f"id: {event_id}{ending}"
            last_id = event_id
        text += ending
        expected.append(SSEEvent(event=name, data="\n".join(lines), id=last_id))
    data = text.encode()
    assert decode([data]) == expected
    assert decode(chunks(data, cuts)) == expected


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=400) | st.text(alphabet="data:evntirySX \r\n\ufeff").map(str.encode),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20),
    limit=st.sampled_from([8, 64, 1 << 26]),
)
def test_arbitrary_bytes_never_raise_and_split_does_not_matter(
    data: bytes, cuts: list[int], limit: int
) -> None:
    whole = decode([data], max_event_size=limit)
    assert decode(chunks(data, cuts), max_event_size=limit) == whole
    assert decode([data[i : i + 1] for i in range(len(data))], max_event_size=limit) == whole
