"""gateway.units: human durations and sizes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("0d", timedelta(0)),
        ("250ms", timedelta(milliseconds=250)),
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1m30s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("1h1ms", timedelta(hours=1, milliseconds=1)),
        (" 7D ", timedelta(days=7)),
        (
            "1w2d3h4m5s6ms",
            timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5, milliseconds=6),
        ),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "5",
        "d",
        "-1d",
        "+1d",
        "1x",
        "1d 12h",
        "12h5",
        "1.d",
        ".5h",
        "1e3s",
        "1dd",
        "1mss",
        "٣d",
        "３d",
        "1d\x00",
        "0x10s",
        "99999999999999999999w",
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert "duration" in str(exc.value)


def test_parse_duration_message_names_the_input() -> None:
    with pytest.raises(ValueError, match=r"invalid duration 'abc': use a number with a unit"):
        parse_duration("abc")


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0"),
        (timedelta(days=90), "12w6d"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(seconds=59), "59s"),
        (timedelta(weeks=2), "2w"),
        (timedelta(hours=1, seconds=1), "1h1s"),
        (timedelta(milliseconds=250), "0"),  # whole seconds only
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-5))


@given(st.integers(min_value=0, max_value=10**10))
def test_format_then_parse_round_trips(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(_UNITS)), st.integers(0, 10**4)), min_size=1, max_size=6
    )
)
def test_parse_composite_duration_is_the_sum(parts: list[tuple[str, int]]) -> None:
    text = "".join(f"{n}{unit}" for unit, n in parts)
    assert parse_duration(text) == timedelta(seconds=sum(n * _UNITS[u] for u, n in parts))


@given(st.integers(min_value=1, max_value=10**10))
def test_parse_then_format_is_canonical(seconds: int) -> None:
    text = format_duration(timedelta(seconds=seconds))
    assert format_duration(parse_duration(text)) == text
    assert text[0] != "0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32MiB", 32 * 1024**2),
        ("512k", 512 * 1024),
        ("1g", 1024**3),
        ("1048576", 1048576),
        ("0", 0),
        ("1t", 1024**4),
        ("10b", 10),
        ("1kb", 1024),
        ("1KiB", 1024),
        ("1ki", 1024),
        ("10 MB", 10 * 1024**2),
        ("1.5k", 1536),
        ("512MiB", 512 * 1024**2),
        (" 2G ", 2 * 1024**3),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "lots", "MiB", "-1k", "1x", "1ib", "1i", "1kk", "1e3", "１k", "1 k b", "1pb"],
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(
        [
            ("", 1),
            ("k", 1024),
            ("KiB", 1024),
            ("m", 1024**2),
            ("MiB", 1024**2),
            ("G", 1024**3),
            ("gb", 1024**3),
            ("TiB", 1024**4),
            ("B", 1),
        ]
    ),
)
def test_size_with_unit_round_trips(n: int, unit: tuple[str, int]) -> None:
    suffix, factor = unit
    assert parse_size(f"{n}{suffix}") == n * factor
