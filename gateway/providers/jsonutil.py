"""Lenient JSON helpers shared by the wire formats: read by path, never raise.

Provider bodies are read, not validated: every accessor returns a neutral value (None, {}, [],
0) when a field is missing or of an unexpected type, so a parser built on them cannot raise on
odd input and still picks up everything it recognises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.providers.records import TokenUsage, UpstreamError

_BOM = b"\xef\xbb\xbf"


def loads(data: bytes | str) -> Any:
    """Parse JSON; None when it is not valid JSON (a leading UTF-8 BOM is tolerated)."""
    if isinstance(data, bytes) and data.startswith(_BOM):
        data = data[len(_BOM) :]
    elif isinstance(data, str) and data.startswith("\ufeff"):
        data = data[1:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def load_object(data: bytes | str) -> dict[str, Any] | None:
    """Parse a JSON object; None for anything else."""
    value = loads(data)
    return value if isinstance(value, dict) else None


def dumps(value: Any) -> str:
    """Compact JSON text (no spaces after separators, non-ASCII kept as is)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """An int index/count, or None (bools and non-integral values are not ints here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def flatten_numbers(value: Mapping[str, Any], prefix: str = "") -> dict[str, int | float]:
    """Numeric leaves of nested objects, keyed by dotted path; lists, strings, bools skipped."""
    flat: dict[str, int | float] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, bool):
            continue
        if isinstance(item, int | float):
            flat[path] = item
        elif isinstance(item, dict):
            flat.update(flatten_numbers(item, f"{path}."))
    return flat


@dataclass(frozen=True, slots=True)
class UsageKeys:
    """Where one wire format keeps its token counts, as `flatten_numbers` paths."""

    input: str
    output: str
    cache_read: str
    cache_write: str | None = None
    input_includes_cache_read: bool = False
    """OpenAI counts cached tokens inside the prompt/input total; Anthropic does not."""
    ignored: frozenset[str] = frozenset()
    """Paths left out of the metadata (e.g. totals derivable from the counts)."""


def _count(flat: Mapping[str, int | float], key: str | None) -> int:
    if key is None:
        return 0
    value = flat.get(key, 0)
    return max(int(value), 0)


def token_usage(
    response_id: str | None, flat: Mapping[str, int | float], keys: UsageKeys
) -> TokenUsage:
    """Build a TokenUsage from flattened usage; other non-zero numbers go to metadata."""
    cache_read = _count(flat, keys.cache_read)
    raw_input = _count(flat, keys.input)
    used = {keys.input, keys.output, keys.cache_read, keys.cache_write} | keys.ignored
    return TokenUsage(
        response_id=response_id,
        input=max(raw_input - cache_read, 0) if keys.input_includes_cache_read else raw_input,
        output=_count(flat, keys.output),
        cache_read=cache_read,
        cache_write=_count(flat, keys.cache_write),
        metadata={k: v for k, v in flat.items() if k not in used and v},
    )


def upstream_error(
    obj: Mapping[str, Any], type_keys: tuple[str, ...] = ("type", "code")
) -> UpstreamError:
    """Read `{"error": {"message", "type"|"code"}}`, or the same fields at the top level."""
    err = obj.get("error")
    source = err if isinstance(err, dict) else obj
    message = as_str(source.get("message"))
    if message is None:
        message = err if isinstance(err, str) else ""
    kind = next((v for v in (as_str(source.get(k)) for k in type_keys) if v), None)
    return UpstreamError(message=message, type=kind)


def compact_or_raw(text: str) -> str:
    """JSON text re-serialised compactly, or the text unchanged when it is not valid JSON."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return dumps(value)
