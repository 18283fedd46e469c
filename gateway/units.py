"""Human durations ("90d", "1d12h", "0") and sizes ("32MiB", "512k")."""

from __future__ import annotations

import re
from datetime import timedelta

# ASCII digits only: `\d` would also accept Arabic-Indic or fullwidth digits.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(?:([kmgt])(i)?)?(b)?", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(text: str) -> timedelta:
    """Parse `90d`, `12h`, `2w`, `1d12h`, `30s`, `250ms` or `0` (zero). Raises ValueError."""
    value = text.strip().lower()
    if value in ("0", "0s"):
        return timedelta(0)
    if not value:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(value) or pos == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit (w, d, h, m, s, ms), "
            "e.g. 90d, 12h, 1d12h, or 0"
        )
    try:
        return timedelta(seconds=total)
    except OverflowError as exc:
        raise ValueError(f"duration {text!r} is too long") from exc


def format_duration(delta: timedelta) -> str:
    """The inverse of `parse_duration` for whole seconds: 1 day 12 hours -> `1d12h`."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0"
    if seconds < 0:
        raise ValueError("a negative duration has no text form")
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_UNIT_SECONDS[unit])
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def parse_size(text: str) -> int:
    """Parse `32MiB`, `512k`, `1g`, `1048576`, `10b`. Units are binary (k = 1024).

    Raises ValueError.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"invalid size {text!r}: use e.g. 32MiB, 512k, 1g or a byte count")
    unit = (match.group(2) or "").lower()
    try:
        return int(float(match.group(1)) * _SIZE_FACTORS[unit])
    except OverflowError as exc:  # "1" * 400: a float infinity has no integer value
        raise ValueError(f"size {text!r} is too large") from exc
