"""Command line: `python scripts/fake_provider.py --port 0 [--delay S] [--events N] ...`."""

import argparse
import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

from .server import FakeProvider


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fake_provider.py",
        description="A fake Anthropic + OpenAI provider on a loopback port (tests, demo, bench).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0 picks a free one)")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds between streamed events (default 0)"
    )
    parser.add_argument(
        "--events", type=int, default=None, help="text deltas in a streamed answer (default 5)"
    )
    parser.add_argument(
        "--bigevent-mb", type=float, default=None, help="size of the BIGEVENT delta in MB"
    )
    parser.add_argument("--port-file", type=Path, default=None, help="write the bound port here")
    parser.add_argument(
        "--no-record", action="store_true", help="do not keep received requests in memory"
    )
    return parser


def _write_port_file(path: Path, port: int) -> None:
    """Write atomically so a parent polling the file never reads a partial number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(tmp, path)


async def serve(args: argparse.Namespace) -> int:
    provider = FakeProvider(
        args.host,
        args.port,
        delay=args.delay,
        events=args.events,
        bigevent_mb=args.bigevent_mb,
        record=not args.no_record,
    )
    await provider.start()
    print(f"listening on {provider.host}:{provider.port}", flush=True)
    if args.port_file is not None:
        _write_port_file(args.port_file, provider.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await provider.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.delay < 0 or (args.events is not None and args.events < 1):
        parser.error("--delay must be >= 0 and --events >= 1")
    try:
        return asyncio.run(serve(args))
    except ValueError as exc:  # e.g. a non-loopback --host
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
