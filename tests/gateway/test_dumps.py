"""gateway.dumps: file names, wire format, streaming, scrubbing, reading back, path safety."""

from __future__ import annotations

import gzip
import logging
import os
import stat
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from gateway.dumps import (
    FILE_NAME,
    Dump,
    DumpScrubber,
    DumpWriter,
    UnsafeDumpPath,
    dump_stem,
    index_dumps,
    parse_message,
    parse_stem_time,
    read_dump,
    render_body,
)
from gateway.redaction import SecretScrubber

IID = uuid.UUID("6b5da2d6-dee0-49e9-ba8c-eb23e188d5df")
WHEN = datetime(2026, 12, 3, 10, 15, 0, 123456, tzinfo=UTC)
KEY = "sk-ant-api03-known-provider-key-0001"


def new_dump(
    tmp_path: Path,
    *,
    iid: uuid.UUID = IID,
    when: datetime = WHEN,
    provider: str = "anthropic",
    passthrough: bool = False,
) -> Dump:
    dump = DumpWriter(tmp_path / "d").open(
        provider=provider,
        interception_id=iid,
        passthrough=passthrough,
        when=when,
        scrubber=SecretScrubber([KEY]),
    )
    assert dump is not None
    return dump


def test_stem_is_utc_millis_then_id() -> None:
    assert dump_stem(WHEN, IID) == f"20261203T101500.123Z-{IID}"
    local = WHEN.astimezone(timezone(timedelta(hours=5)))
    assert dump_stem(local, IID) == f"20261203T101500.123Z-{IID}"
    m = FILE_NAME.fullmatch(f"20261203T101500.123Z-{IID}.req.http")
    assert m and m["kind"] == "req" and m["id"] == str(IID)
    assert parse_stem_time(m["ts"]) == WHEN.replace(microsecond=123000)
    assert FILE_NAME.fullmatch(f"20261203T101500.123Z-{IID}.req.http.tmp") is None


def test_request_wire_format(tmp_path: Path) -> None:
    dump = new_dump(tmp_path)
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    dump.request(
        method="POST",
        target="/v1/messages?key=sk-query-0123456789abc&beta=true",
        version="HTTP/1.1",
        ctype="application/json",
        body=body,
        headers=[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
    )
    data = dump.request_path.read_bytes()
    name = f"20261203T101500.123Z-{IID}.req.http"
    assert dump.request_path == tmp_path / "d" / "anthropic" / name
    assert data == (
        b"POST /v1/messages?key=sk-q...9abc&beta=true HTTP/1.1\r\n"
        b"x-api-key: sk-a...0001\r\n"
        b"anthropic-version: 2023-06-01\r\n"
        b"\r\n" + orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"
    )


def test_response_blocking_and_passthrough_folder(tmp_path: Path) -> None:
    dump = new_dump(tmp_path, passthrough=True)
    dump.response_head(
        version="HTTP/1.1",
        status=404,
        reason="Not Found",
        headers=[("content-type", "application/json")],
    )
    dump.response_body(b'{"error":{"message":"no"}}', "application/json")
    dump.close()
    assert dump.response_path.parent == tmp_path / "d" / "anthropic" / "passthrough"
    assert dump.response_path.read_bytes() == (
        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\r\n"
        b'{\n  "error": {\n    "message": "no"\n  }\n}\n'
    )


@pytest.mark.parametrize(
    ("body", "ctype"),
    [(b"not json {", "application/json"), (b'{"a":1}', "text/plain"), (b"", "application/json")],
)
def test_non_json_bodies_are_written_as_they_are(body: bytes, ctype: str) -> None:
    assert render_body(body, ctype) == body


def test_stream_writes_complete_lines_as_they_arrive(tmp_path: Path) -> None:
    dump = new_dump(tmp_path)
    dump.response_head(
        version="HTTP/1.1",
        status=200,
        reason="OK",
        headers=[("content-type", "text/event-stream")],
    )
    head = dump.response_path.read_bytes()

    def body() -> bytes:
        return dump.response_path.read_bytes()[len(head) :]

    dump.stream(b"data: one\n\nda")
    assert body() == b"data: one\n\n"
    dump.stream(b"ta: tw")
    assert body() == b"data: one\n\n"  # an unfinished line waits for its end
    dump.stream(b"o\n\ndata: tail-without-newline")
    assert body() == b"data: one\n\ndata: two\n\n"
    dump.stream(b"")
    assert body() == b"data: one\n\ndata: two\n\ndata: tail-without-newline"


def test_gzip_stream_is_written_decoded(tmp_path: Path) -> None:
    dump = new_dump(tmp_path)
    dump.response_head(
        version="HTTP/1.1",
        status=200,
        reason="OK",
        encoding="gzip",
        headers=[("content-type", "text/event-stream"), ("content-encoding", "gzip")],
    )
    packed = gzip.compress(b"data: a\n\ndata: b\n\n")
    for i in range(0, len(packed), 7):
        dump.stream(packed[i : i + 7])
    dump.stream(b"")
    dump.close()
    assert dump.response_path.read_bytes().endswith(b"\r\n\r\ndata: a\n\ndata: b\n\n")


def test_scrubber_masks_known_secrets_and_gateway_tokens() -> None:
    scrub = DumpScrubber(SecretScrubber([KEY]))
    token = "aib_" + "Q" * 43
    out = scrub.data(f"k={KEY} t={token} ok".encode())
    assert out == b"k=sk-a...0001 t=aib_...QQQQ ok"
    clean = b"nothing to see"
    assert scrub.data(clean) is clean
    assert scrub.text(f"Bearer {token}") == "Bearer aib_...QQQQ"


def test_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    dump = new_dump(tmp_path)
    dump.request(method="GET", target="/", version="HTTP/1.1", headers=[], body=b"", ctype="")
    assert stat.S_IMODE(dump.request_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "d" / "anthropic").stat().st_mode) == 0o700
    again = new_dump(tmp_path)  # same id and time: O_EXCL refuses to reuse the file
    again.request(method="GET", target="/x", version="HTTP/1.1", headers=[], body=b"", ctype="")
    assert again.writer.failures == 1
    assert dump.request_path.read_bytes().startswith(b"GET / HTTP/1.1")


def test_a_planted_symlink_file_is_not_followed(tmp_path: Path) -> None:
    dump = new_dump(tmp_path)
    target = tmp_path / "victim"
    target.write_text("keep")
    os.symlink(target, dump.request_path)
    dump.request(method="GET", target="/", version="HTTP/1.1", headers=[], body=b"", ctype="")
    assert target.read_text() == "keep" and dump.writer.failures == 1


def test_folder_must_be_exactly_under_the_base(tmp_path: Path) -> None:
    writer = DumpWriter(tmp_path / "d")
    assert writer.folder("corp-1", passthrough=True) == (tmp_path / "d" / "corp-1" / "passthrough")
    for name in ("..", "a/../b", "/abs", "CORP", "corp_1", ""):
        with pytest.raises(UnsafeDumpPath):
            writer.folder(name, passthrough=False)
    (tmp_path / "d" / "file-here").write_text("")
    with pytest.raises(UnsafeDumpPath):
        writer.folder("file-here", passthrough=False)


def test_failures_logged_once_until_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.dumps")
    writer = DumpWriter(tmp_path / "d")
    for _ in range(3):
        writer.failed(OSError(28, "No space left on device"))
    assert writer.failures == 3
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    writer.recovered()
    writer.failed(OSError(13, "Permission denied"))
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "WARNING"]
    assert "Permission denied" in (writer.last_error or "")


def test_index_reads_heads_ignores_strangers_and_sorts_newest_first(tmp_path: Path) -> None:
    older, newer = uuid.uuid4(), uuid.uuid4()
    for iid, when, provider, passthrough in (
        (older, WHEN, "anthropic", False),
        (newer, WHEN.replace(hour=11), "openai", True),
    ):
        dump = new_dump(tmp_path, iid=iid, when=when, provider=provider, passthrough=passthrough)
        dump.request(
            method="POST",
            target="/v1/x",
            version="HTTP/1.1",
            headers=[],
            body=b"{}",
            ctype="application/json",
        )
        dump.response_head(
            version="HTTP/1.1",
            status=201,
            reason="Created",
            headers=[("content-type", "application/json")],
        )
        dump.response_body(b"{}", "application/json")
        dump.close()
    base = tmp_path / "d"
    (base / "anthropic" / "notes.txt").write_text("not a dump")
    (base / "Not-A-Provider").mkdir()
    (base / "Not-A-Provider" / f"20261203T101500.123Z-{uuid.uuid4()}.req.http").write_text("x")
    os.symlink(base / "anthropic", base / "linked")
    entries = index_dumps(base)
    assert [e.interception_id for e in entries] == [newer, older]
    first = entries[0]
    assert (
        first.provider,
        first.passthrough,
        first.method,
        first.target,
        first.status,
        first.content_type,
    ) == ("openai", True, "POST", "/v1/x", 201, "application/json")
    req, resp = read_dump(first)
    assert req is not None and resp is not None
    assert resp.status == 201 and resp.body == b"{}\n"
    assert first.size == first.request_file.stat().st_size + first.response_file.stat().st_size  # type: ignore[union-attr]


def test_parse_message_accepts_lf_only() -> None:
    msg = parse_message(b"HTTP/1.1 200 OK\ncontent-type: text/plain\n\nbody\n\nmore")
    assert (msg.status, msg.header("Content-Type"), msg.body) == (
        200,
        "text/plain",
        b"body\n\nmore",
    )


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "", "Anthropic", ".", "x" * 64, "a\x00"])
def test_invalid_provider_names_cannot_make_a_path(tmp_path: Path, name: str) -> None:
    writer = DumpWriter(tmp_path / "dumps")
    assert (
        writer.open(
            provider=name,
            interception_id=uuid.uuid4(),
            passthrough=False,
            scrubber=SecretScrubber(),
        )
        is None
    )
    assert writer.failures == 1
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
