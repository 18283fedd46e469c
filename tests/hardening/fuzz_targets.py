"""Fuzz targets for the wire-format parsers, run by test_fuzz.py as subprocesses.

    python tests/hardening/fuzz_targets.py TARGET SECONDS WORKDIR

With atheris installed (coverage-guided, libFuzzer) each target runs for SECONDS; a crash or a
broken property writes `crash-*` into WORKDIR and exits non-zero. Without atheris the same
property runs under hypothesis, batch after batch, until SECONDS are spent.

Every stream target checks two things on arbitrary input: no exception, and the records do not
depend on how the bytes are split (the first input bytes choose the cut points). Request
targets feed the three request parsers and the blocking response parsers.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

try:
    import atheris
except ImportError:  # hypothesis fallback below
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["gateway"]):
        from addons.paths import split_gateway_path
        from gateway import units, validation
        from gateway.providers.chat import ChatWire
        from gateway.providers.messages import MessagesWire
        from gateway.providers.responses import ResponsesWire
        from gateway.providers.sse import SSEDecoder
else:
    from addons.paths import split_gateway_path
    from gateway import units, validation
    from gateway.providers.chat import ChatWire
    from gateway.providers.messages import MessagesWire
    from gateway.providers.responses import ResponsesWire
    from gateway.providers.sse import SSEDecoder

WIRES = {"messages": MessagesWire(), "chat": ChatWire(), "responses": ResponsesWire()}
SEEDS = {
    "messages": ["messages/thinking_tools_cache.sse"],
    "chat": [],
    "responses": [
        "responses/codex_tool_calls.sse",
        "responses/reasoning_text.sse",
        "responses/error_event.sse",
        "responses/incomplete.sse",
    ],
    "requests": [
        "messages/thinking_tools_cache.json",
        "chat/tool_calls.json",
        "messages/server_tools.json",
    ],
}


def _split(data: bytes) -> tuple[list[int], bytes]:
    """The first byte says how many cut points follow (2 bytes each); the rest is the input."""
    if not data:
        return [], b""
    count = data[0] % 16
    head = data[1 : 1 + 2 * count]
    cuts = [int.from_bytes(head[i : i + 2], "big") for i in range(0, len(head) - 1, 2)]
    return cuts, data[1 + 2 * count :]


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _records(make: Callable[[], object], pieces: list[bytes]) -> list[object]:
    parser = make()
    out: list[object] = []
    for piece in pieces:
        if piece:
            out.extend(parser.feed(piece))  # type: ignore[attr-defined]
    out.extend(parser.feed(b""))  # type: ignore[attr-defined]
    return out


def stream_target(name: str) -> Callable[[bytes], None]:
    wire = WIRES[name]

    def target(data: bytes) -> None:
        cuts, body = _split(data)
        whole = _records(wire.stream_parser, [body])
        split = _records(wire.stream_parser, _pieces(body, cuts))
        if split != whole:
            raise AssertionError(f"records depend on the split: {cuts}")

    return target


def sse_target(data: bytes) -> None:
    cuts, body = _split(data)

    def events(pieces: list[bytes]) -> list[object]:
        decoder = SSEDecoder(max_event_size=256)
        out = [e for p in pieces if p for e in decoder.feed(p)]
        return out + decoder.feed(b"")

    whole = events([body])
    if events(_pieces(body, cuts)) != whole:
        raise AssertionError("events depend on the split")
    for event in whole:
        if event.event is not None and ("\r" in event.event or "\n" in event.event):
            raise AssertionError("a line ending inside an event name")


def requests_target(data: bytes) -> None:
    for wire in WIRES.values():
        summary = wire.parse_request(data)
        if summary.parsed and summary.model is not None and not isinstance(summary.model, str):
            raise AssertionError("model is not text")
        wire.parse_response(data)


def paths_target(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    for path in (text, "/api/v2/aibridge/" + text):
        parts = split_gateway_path(path)
        if parts is None:
            continue
        name = parts[0]
        if name and (
            not validation.is_provider_name(name)
            or not name.isascii()
            or any(c in name for c in "/.%")
            or name != name.lower()
        ):
            raise AssertionError(f"accepted provider name {name!r}")
    try:
        validation.provider_name(text)
    except validation.InvalidField:
        return
    if not (text.isascii() and text == text.lower() and not any(c in text for c in "/.% ")):
        raise AssertionError(f"provider_name accepted {text!r}")


def units_target(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for parse in (units.parse_duration, units.parse_size):
        try:
            value = parse(text)
        except ValueError:
            continue
        if isinstance(value, int) and value < 0:
            raise AssertionError(f"negative size from {text!r}")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "messages": stream_target("messages"),
    "chat": stream_target("chat"),
    "responses": stream_target("responses"),
    "sse": sse_target,
    "requests": requests_target,
    "paths": paths_target,
    "units": units_target,
}


def seed_dir(name: str, workdir: Path) -> Path:
    corpus = workdir / f"corpus-{name}"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, rel in enumerate(SEEDS.get(name, [])):
        path = REPO / "tests" / "fixtures" / rel
        if path.exists():
            (corpus / f"seed{i}").write_bytes(b"\x00" + path.read_bytes())
    return corpus


def run_atheris(name: str, seconds: int, workdir: Path) -> None:
    corpus = seed_dir(name, workdir)
    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        "-rss_limit_mb=3072",
        "-max_len=65536",
        f"-artifact_prefix={workdir}/",
        "-print_final_stats=1",
    ]
    atheris.Setup(argv, TARGETS[name])
    atheris.Fuzz()


def run_hypothesis(name: str, seconds: int, workdir: Path) -> int:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds = [
        b"\x00" + (REPO / "tests" / "fixtures" / rel).read_bytes()
        for rel in SEEDS.get(name, [])
        if (REPO / "tests" / "fixtures" / rel).exists()
    ]
    for seed in seeds:
        TARGETS[name](seed)
    data = st.binary(max_size=4096)
    if seeds:
        data = data | st.sampled_from(seeds).flatmap(
            lambda s: st.tuples(st.integers(0, len(s)), st.binary(max_size=64)).map(
                lambda t: s[: t[0]] + t[1] + s[t[0] :]
            )
        )

    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data)
    def prop(value: bytes) -> None:
        TARGETS[name](value)

    deadline = time.monotonic() + seconds
    batches = 0
    while time.monotonic() < deadline:
        prop()
        batches += 1
    sys.stderr.write(f"hypothesis: {batches} batches of 300 examples\n")
    return 0


def main() -> int:
    name, seconds, workdir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    workdir.mkdir(parents=True, exist_ok=True)
    sys.argv = [sys.argv[0]]
    if atheris is None:
        return run_hypothesis(name, seconds, workdir)
    run_atheris(name, seconds, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
