"""InterceptionSession on its own: a real JournalRecorder over a real journal and database."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from gateway.interception import InterceptionSession, decode_body
from gateway.journal import Journal
from gateway.providers.messages import MessagesWire
from gateway.recorder import LOG_PROMPT_CHARS, InterceptionStart, JournalRecorder
from gateway.redaction import SecretScrubber
from gateway.writer import Writer
from schema.models import PromptUsage
from schema.types import utcnow


def _session(
    engine: Engine, tmp_path: Path, body: bytes, cap: int, slog: logging.Logger | None = None
) -> tuple[InterceptionSession, Writer]:
    journal = Journal(tmp_path / "j", "test", max_pending=1 << 30)
    writer = Writer(engine, journal)
    writer.start()
    recorder = JournalRecorder(journal, writer, instance_id="test", structured_log=slog)
    wire = MessagesWire()
    start = InterceptionStart(
        id=uuid.uuid4(), initiator_id=None, api_token_id=None, provider_type="anthropic",
        provider_name="p", provider_id=None, api=wire.name, model="m", client="Unknown",
        client_session_id=None, user_agent=None, credential_kind="centralized",
        credential_hint=None, started_at=utcnow())
    return InterceptionSession(recorder=recorder, wire=wire, start=start,
                               summary=wire.parse_request(body), scrubber=SecretScrubber(),
                               max_prompt_chars=cap), writer


def test_long_prompt_is_cut_with_a_marker(engine: Engine, tmp_path: Path) -> None:
    text = "x" * 5000
    body = ('{"model":"m","messages":[{"role":"user","content":"' + text + '"}]}').encode()
    session, writer = _session(engine, tmp_path, body, cap=1000)
    session.begin()
    session.complete(b'{"id":"msg_1","type":"message","usage":{"input_tokens":1,"output_tokens":2}}')
    assert writer.flush(10)
    writer.stop()
    with Session(engine) as s:
        prompt = s.execute(select(PromptUsage.prompt)).scalar_one()
    assert prompt.startswith("x" * 1000) and not prompt.startswith("x" * 1001)
    assert prompt.endswith("…[aibridge: prompt cut, 5000 characters in all]")


def test_log_record_carries_a_short_prompt_and_the_database_the_whole(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "y" * (LOG_PROMPT_CHARS * 3)
    body = ('{"model":"m","messages":[{"role":"user","content":"' + text + '"}]}').encode()
    slog = logging.getLogger("test.interceptions")
    with caplog.at_level(logging.INFO, logger=slog.name):
        session, writer = _session(engine, tmp_path, body, cap=0, slog=slog)
        session.begin()
        session.complete(b'{"id":"m1","type":"message","usage":{"input_tokens":1}}')
        assert writer.flush(10)
        writer.stop()
    (record,) = [r for r in caplog.records if getattr(r, "record_type", "") == "prompt_usage"]
    logged = record.fields["prompt"]  # type: ignore[attr-defined]
    assert logged.startswith("y" * LOG_PROMPT_CHARS) and not logged.startswith(
        "y" * (LOG_PROMPT_CHARS + 1)
    )
    assert logged.endswith(f"[{len(text)} characters in all]")
    assert record.fields["prompt_chars"] == len(text)  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert s.execute(select(PromptUsage.prompt)).scalar_one() == text


def test_decode_body_stops_a_gzip_bomb() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    assert decode_body(bomb, "gzip", 1024 * 1024) is None
    assert decode_body(gzip.compress(b"hello"), "gzip", 1024) == b"hello"
    assert decode_body(b"not gzip", "gzip", 1024) is None
    assert decode_body(b"plain", "", 1024) == b"plain"


def _sse_stream() -> bytes:
    events = [
        ("message_start", '{"type":"message_start","message":{"id":"msg_z","model":"m",'
                          '"usage":{"input_tokens":11,"output_tokens":1}}}'),
        ("content_block_start", '{"type":"content_block_start","index":0,'
                                '"content_block":{"type":"text","text":""}}'),
        ("content_block_delta", '{"type":"content_block_delta","index":0,'
                                '"delta":{"type":"text_delta","text":"hi"}}'),
        ("content_block_stop", '{"type":"content_block_stop","index":0}'),
        ("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn"},'
                          '"usage":{"output_tokens":5}}'),
        ("message_stop", '{"type":"message_stop"}'),
    ]
    return "".join(f"event: {e}\ndata: {d}\n\n" for e, d in events).encode()


def _compress(encoding: str, data: bytes) -> bytes:
    import gzip
    import zlib

    import brotli
    import zstandard

    return {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
            "zstd": zstandard.ZstdCompressor().compress}[encoding](data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_compressed_streams_are_recorded(engine: Engine, tmp_path: Path, encoding: str) -> None:
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    session, writer = _session(engine, tmp_path, body, cap=0)
    session.begin()
    assert session.response_headers(200, "text/event-stream", encoding)
    blob = _compress(encoding, _sse_stream())
    for i in range(0, len(blob), 7):  # arbitrary chunk boundaries inside the compressed bytes
        session.feed(blob[i:i + 7])
    session.feed(b"")
    session.finish()
    assert writer.flush(10)
    writer.stop()
    from schema.models import Interception, TokenUsage

    with Session(engine) as s:
        usage = s.execute(select(TokenUsage)).scalar_one()
        row = s.execute(select(Interception)).scalar_one()
    assert (usage.provider_response_id, usage.input_tokens, usage.output_tokens) == ("msg_z", 11, 5)
    assert row.status == "completed" and row.parsed and row.streamed
