"""A local append-only journal: records survive a crash of the process right after a response.

Each process appends JSON lines to its own segment file (`<instance>-<n>.jsonl`, mode 0600) and
holds an exclusive `flock` on it while alive. Appends are single `os.write` calls on an
O_APPEND descriptor: once `append` returns, the bytes are in the kernel and survive `kill -9`.
The writer acknowledges committed offsets in a sidecar `.ack` file; a fully acknowledged
segment that is no longer active is deleted. On start, segments no live process holds are
replayed (records are idempotent) and removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SEGMENT_BYTES = 64 * 1024 * 1024
_ACK = struct.Struct("<Q")


@dataclass
class Segment:
    path: Path
    fd: int
    size: int
    acked: int

    @property
    def ack_path(self) -> Path:
        return self.path.with_suffix(".ack")


class JournalFull(Exception):
    pass


class Journal:
    def __init__(self, directory: Path, instance_id: str, *, max_pending: int) -> None:
        self.directory = directory
        self.instance_id = instance_id
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._seq = 0
        self._segments: dict[Path, Segment] = {}
        self._active: Segment | None = None
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)

    # -- writing (request path) ---------------------------------------------------------------

    def append(self, data: bytes, *, over_cap: bool = False) -> tuple[Path, int]:
        """Append complete lines; returns (segment, end offset). Raises JournalFull at the cap
        (unless `over_cap`: records of an interception already under way) and when the disk
        refuses the write (nothing of `data` stays: a torn line is cut off again)."""
        with self._lock:
            if not over_cap and self.pending_bytes() + len(data) > self.max_pending:
                raise JournalFull(f"journal holds more than {self.max_pending} unwritten bytes")
            seg = self._active
            try:
                if seg is None or seg.size >= SEGMENT_BYTES:
                    seg = self._open_segment()
                written = os.write(seg.fd, data)
                while written < len(data):  # short writes are rare but legal
                    written += os.write(seg.fd, data[written:])
            except OSError as exc:  # ENOSPC, EDQUOT, EIO: the journal cannot take records
                if seg is not None:
                    with contextlib.suppress(OSError):
                        os.ftruncate(seg.fd, seg.size)
                raise JournalFull(f"journal cannot be written: {exc}") from exc
            seg.size += len(data)
            return seg.path, seg.size

    def pending_bytes(self) -> int:
        return sum(s.size - s.acked for s in self._segments.values())

    def _open_segment(self) -> Segment:
        self._seq += 1
        path = self.directory / f"{self.instance_id}-{self._seq:06d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seg = Segment(path, fd, os.fstat(fd).st_size, 0)
        self._segments[path] = seg
        self._active = seg
        return seg

    # -- acknowledging (writer thread) --------------------------------------------------------

    def ack(self, path: Path, offset: int) -> None:
        with self._lock:
            seg = self._segments.get(path)
            if seg is None or offset <= seg.acked:
                return
            seg.acked = offset
            if seg is not self._active and seg.acked >= seg.size:
                self._remove(seg)
                return
        _write_ack(seg.ack_path, offset)

    def close(self) -> None:
        """Release the segments; fully acknowledged ones are deleted (clean shutdown)."""
        with self._lock:
            for seg in list(self._segments.values()):
                if seg.acked >= seg.size:
                    self._remove(seg)
                else:
                    _write_ack(seg.ack_path, seg.acked)
                    os.close(seg.fd)
            self._segments.clear()
            self._active = None

    def _remove(self, seg: Segment) -> None:
        for p in (seg.path, seg.ack_path):
            p.unlink(missing_ok=True)
        os.close(seg.fd)
        self._segments.pop(seg.path, None)
        if self._active is seg:
            self._active = None


def _write_ack(path: Path, offset: int) -> None:
    """Best effort: a lost acknowledgement only means more (idempotent) replay after a crash,
    so a full disk must not stop the writer thread that calls this."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, _ACK.pack(offset), 0)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("journal acknowledgement %s not written: %s", path.name, exc)


def _read_ack(path: Path) -> int:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return _ACK.unpack(data[: _ACK.size])[0] if len(data) >= _ACK.size else 0


@dataclass(frozen=True)
class Orphan:
    """A segment left by a process that is gone: its unacknowledged lines need replaying."""

    path: Path
    instance_id: str
    fd: int

    def lines(self) -> Iterator[bytes]:
        start = _read_ack(self.path.with_suffix(".ack"))
        with open(self.path, "rb") as f:
            f.seek(start)
            for line in f:
                if line.endswith(b"\n"):  # a torn last line was never acknowledged to anyone
                    yield line

    def quarantine(self) -> Path:
        """Move the segment aside (`*.failed`) so it is not replayed again; returns the path."""
        target = self.path.with_suffix(".failed")
        self.path.rename(target)
        os.close(self.fd)
        return target

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".ack").unlink(missing_ok=True)
        os.close(self.fd)


def find_orphans(directory: Path) -> list[Orphan]:
    """Segments whose owner is gone (no flock held). Each returned one is locked by us."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.jsonl")):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        instance = path.stem.rsplit("-", 1)[0]
        found.append(Orphan(path, instance, fd))
    return found
