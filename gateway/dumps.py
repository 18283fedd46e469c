"""API dumps: each interception's upstream request and response as HTTP wire-format files.

Layout: `<base>/<provider_name>/<UTC time>-<interception id>.req.http` and `.resp.http`;
passthrough routes (no wire format, e.g. GET /v1/models) go to `<base>/<provider>/passthrough/`.
Paths are built only from the validated provider name, a timestamp and the interception id,
and must resolve to exactly that folder under the base (a symlinked folder is refused).

What is written is the request *as forwarded upstream* (after credential injection), with every
sensitive header and query value masked by `gateway.redaction` (a short hint is kept), and known
secret values plus anything shaped like a gateway token scrubbed from bodies. Bodies are written
decoded (content-encoding removed for reading) and JSON is pretty-printed, so `Content-Length`
describes the original message, not the file. SSE bodies are appended as they arrive, line by
line (a secret is never split across two writes). Files are 0600, folders 0700. A write error
never fails a request: it is counted on the `DumpWriter` and logged once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from gateway.auth import TOKEN_PREFIX
from gateway.interception import BodyDecoder
from gateway.redaction import SecretScrubber, mask_secret, redact_headers, redact_path
from gateway.validation import is_provider_name

log = logging.getLogger(__name__)

PASSTHROUGH_DIR = "passthrough"
REQUEST_SUFFIX = ".req.http"
RESPONSE_SUFFIX = ".resp.http"
FILE_MODE = 0o600
DIR_MODE = 0o700
FILE_NAME = re.compile(
    r"(?P<ts>\d{8}T\d{6}\.\d{3}Z)-(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{12})\.(?P<kind>req|resp)\.http"
)
_TS_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_TOKEN_SHAPE = re.compile(re.escape(TOKEN_PREFIX).encode() + rb"[A-Za-z0-9_-]{16,}")
_MAX_PARTIAL_LINE = 256 * 1024
Pairs = Iterable[tuple[str, str]]
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeDumpPath(OSError):
    """The dump folder for a provider is not where it must be (symlink, bad name)."""


def dump_stem(when: datetime, interception_id: uuid.UUID) -> str:
    """`20261203T101500.123Z-<uuid>`: the UTC time to the millisecond, then the id."""
    when = when.astimezone(UTC)
    return f"{when.strftime('%Y%m%dT%H%M%S')}.{when.microsecond // 1000:03d}Z-{interception_id}"


def parse_stem_time(ts: str) -> datetime:
    return datetime.strptime(ts, _TS_FORMAT).replace(tzinfo=UTC)


class DumpScrubber:
    """Masks known secret values (provider keys) and anything shaped like a gateway token."""

    def __init__(self, scrubber: SecretScrubber) -> None:
        self._scrubber = scrubber

    def text(self, value: str) -> str:
        if TOKEN_PREFIX not in value:
            return self._scrubber.scrub(value)
        raw = value.encode("utf-8", "surrogateescape")
        return self.data(raw).decode("utf-8", "surrogateescape")

    def data(self, data: bytes) -> bytes:
        if TOKEN_PREFIX.encode() in data:
            data = _TOKEN_SHAPE.sub(lambda m: mask_secret(m.group(0).decode()).encode(), data)
        text = data.decode("utf-8", "surrogateescape")
        scrubbed = self._scrubber.scrub(text)
        return data if scrubbed is text else scrubbed.encode("utf-8", "surrogateescape")


def render_head(start_line: str, headers: Pairs, scrub: DumpScrubber) -> bytes:
    lines = [start_line]
    lines += [f"{name}: {scrub.text(value)}" for name, value in redact_headers(headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def render_body(body: bytes, content_type: str) -> bytes:
    """JSON pretty-printed (two spaces); anything else as it is."""
    if body and "json" in content_type.lower():
        with contextlib.suppress(orjson.JSONDecodeError, orjson.JSONEncodeError):
            return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"
    return body


class DumpWriter:
    """Opens dumps under one base folder; counts (and logs once) what could not be written."""

    def __init__(self, base: Path) -> None:
        self.base = Path(base).absolute()
        self.failures = 0  # dumps (or parts) not written: disk full, permissions, unsafe path
        self.last_error: str | None = None
        self._reported = False

    def open(
        self,
        *,
        provider: str,
        interception_id: uuid.UUID,
        passthrough: bool,
        scrubber: SecretScrubber,
        when: datetime | None = None,
    ) -> Dump | None:
        """A new dump, or None when its folder cannot be used (counted, logged once)."""
        try:
            folder = self.folder(provider, passthrough=passthrough)
        except OSError as exc:
            self.failed(exc)
            return None
        stem = dump_stem(when or datetime.now(UTC), interception_id)
        return Dump(self, folder, stem, DumpScrubber(scrubber))

    def folder(self, provider: str, *, passthrough: bool) -> Path:
        """The provider's folder, created 0700; UnsafeDumpPath if it is not a real folder
        exactly at `<base>/<provider>[/passthrough]`."""
        if not is_provider_name(provider):
            raise UnsafeDumpPath(f"invalid provider name for a dump folder: {provider!r}")
        base = self.base.resolve()
        if not base.is_dir():
            base.mkdir(parents=True, exist_ok=True)
            base.chmod(DIR_MODE)
        folder = base / provider
        expected = folder / PASSTHROUGH_DIR if passthrough else folder
        for part in (folder, expected) if passthrough else (folder,):
            with contextlib.suppress(FileExistsError):
                part.mkdir(mode=DIR_MODE)
            if part.is_symlink() or not part.is_dir():
                raise UnsafeDumpPath(f"dump folder {part} is a symlink or not a folder")
        if expected.resolve() != expected:
            raise UnsafeDumpPath(f"dump folder {expected} resolves outside {base}")
        return expected

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self._reported:
            self._reported = True
            msg = "API dumps cannot be written (requests are not affected; counting only): %s"
            log.warning(msg, self.last_error)

    def recovered(self) -> None:
        if self._reported:
            self._reported = False
            log.info("API dumps are being written again (%d failures so far)", self.failures)


class Dump:
    """One interception's two files. Every method swallows OSError (counted on the writer)."""

    def __init__(self, writer: DumpWriter, folder: Path, stem: str, scrub: DumpScrubber) -> None:
        self.writer = writer
        self.folder = folder
        self.stem = stem
        self.scrub = scrub
        self._resp: IO[bytes] | None = None
        self._decoder: BodyDecoder | None = None
        self._partial = b""
        self._broken = False
        self.has_response = False

    @property
    def request_path(self) -> Path:
        return self.folder / (self.stem + REQUEST_SUFFIX)

    @property
    def response_path(self) -> Path:
        return self.folder / (self.stem + RESPONSE_SUFFIX)

    def _create(self, path: Path) -> IO[bytes]:
        return os.fdopen(os.open(path, _OPEN_FLAGS, FILE_MODE), "wb", buffering=0)

    def _fail(self, exc: OSError) -> None:
        self._broken = True
        self.writer.failed(exc)
        self.close()

    def request(
        self, *, method: str, target: str, version: str, headers: Pairs, body: bytes, ctype: str
    ) -> None:
        """The whole request: `body` already decoded (or as sent when it could not be)."""
        start = f"{method} {self.scrub.text(redact_path(target))} {version}"
        body = self.scrub.data(render_body(body, ctype))
        data = render_head(start, headers, self.scrub) + body
        try:
            with self._create(self.request_path) as fh:
                fh.write(data)
        except OSError as exc:
            self._fail(exc)
            return
        self.writer.recovered()

    def response_head(
        self, *, version: str, status: int, reason: str, headers: Pairs, encoding: str = ""
    ) -> None:
        if self._broken or self.has_response:
            return
        self.has_response = True
        start = f"{version} {status} {reason}".rstrip()
        try:
            self._decoder = BodyDecoder.for_encoding(encoding)
        except ValueError:
            self._decoder = None  # written as received
        try:
            self._resp = self._create(self.response_path)
            self._resp.write(render_head(start, headers, self.scrub))
        except OSError as exc:
            self._fail(exc)

    def response_body(self, body: bytes, ctype: str) -> None:
        """A whole (blocking) response body, already decoded."""
        if self._resp is None:
            return
        try:
            self._resp.write(self.scrub.data(render_body(body, ctype)))
        except OSError as exc:
            self._fail(exc)

    def stream(self, chunk: bytes) -> None:
        """A copy of one streamed chunk; b"" ends the stream. Complete lines are written."""
        resp = self._resp
        if resp is None:
            return
        try:
            data = self._decoder.decode(chunk) if self._decoder is not None else chunk
        except Exception:  # noqa: BLE001 - a corrupt body is written as received from now on
            self._decoder, data = None, chunk
        data, self._partial = self._partial + data, b""
        if chunk:
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < _MAX_PARTIAL_LINE:
                self._partial = data
                return
            if cut:
                data, self._partial = data[:cut], data[cut:]
        try:
            resp.write(self.scrub.data(data))
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        resp, self._resp = self._resp, None
        if resp is None:
            return
        try:
            if self._partial:
                resp.write(self.scrub.data(self._partial))
            resp.close()
        except OSError as exc:
            self._partial = b""
            self._broken = True
            self.writer.failed(exc)


# --- reading: the index and one dump -----------------------------------------------------------


@dataclass(frozen=True)
class HttpMessage:
    """A dump file parsed back: start line, headers (as written, i.e. masked), body."""

    start_line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def parts(self) -> list[str]:
        return self.start_line.split(" ", 2)

    @property
    def status(self) -> int | None:
        parts = self.parts
        if self.start_line.startswith("HTTP/") and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None


def parse_message(data: bytes) -> HttpMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = head.decode("utf-8", "replace").splitlines()
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return HttpMessage(lines[0] if lines else "", headers, body)


def _read_head(path: Path, limit: int = 256 * 1024) -> HttpMessage:
    with path.open("rb") as fh:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < limit:
            chunk = fh.read(8192)
            if not chunk:
                break
            data += chunk
    return parse_message(data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")


@dataclass
class DumpEntry:
    interception_id: uuid.UUID
    provider: str
    passthrough: bool
    started_at: datetime
    request_file: Path | None = None
    response_file: Path | None = None
    method: str | None = None
    target: str | None = None
    status: int | None = None
    content_type: str | None = None
    size: int = 0


def dump_files(base: Path) -> Iterator[tuple[str, bool, os.DirEntry[str], re.Match[str]]]:
    """Every dump file under `base` (no symlink is followed, other files are ignored)."""
    try:
        providers = [
            e
            for e in os.scandir(base)
            if e.is_dir(follow_symlinks=False) and is_provider_name(e.name)
        ]
    except OSError:
        return
    for provider in providers:
        folders = [(Path(provider.path), False), (Path(provider.path) / PASSTHROUGH_DIR, True)]
        for folder, passthrough in folders:
            if folder.is_symlink() or not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                match = FILE_NAME.fullmatch(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    yield provider.name, passthrough, entry, match


def index_dumps(base: Path, *, heads: bool = True) -> list[DumpEntry]:
    """All dumps under `base`, newest first; `heads` reads each file's start line and headers."""
    found: dict[uuid.UUID, DumpEntry] = {}
    for provider, passthrough, entry, match in dump_files(base):
        iid = uuid.UUID(match["id"])
        item = found.get(iid)
        if item is None:
            item = found[iid] = DumpEntry(iid, provider, passthrough, parse_stem_time(match["ts"]))
        item.size += entry.stat(follow_symlinks=False).st_size
        if match["kind"] == "req":
            item.request_file = Path(entry.path)
        else:
            item.response_file = Path(entry.path)
    items = sorted(
        found.values(), key=lambda d: (d.started_at, str(d.interception_id)), reverse=True
    )
    if heads:
        for item in items:
            _fill_head(item)
    return items


def _fill_head(item: DumpEntry) -> None:
    try:
        if item.request_file is not None:
            parts = _read_head(item.request_file).parts
            item.method = parts[0] if parts else None
            item.target = parts[1] if len(parts) > 1 else None
        if item.response_file is not None:
            head = _read_head(item.response_file)
            item.status = head.status
            item.content_type = head.header("content-type")
    except OSError as exc:
        log.warning("cannot read dump %s: %s", item.interception_id, exc)


def read_dump(entry: DumpEntry) -> tuple[HttpMessage | None, HttpMessage | None]:
    def read(path: Path | None) -> HttpMessage | None:
        return parse_message(path.read_bytes()) if path is not None else None

    return read(entry.request_file), read(entry.response_file)
