"""Command line of scripts/bench.py, parsed into one frozen `Options`."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .targets import ALL_TARGETS, QUICK_TARGETS

FULL_DURATION = 3.0
QUICK_DURATION = 2.0
FULL_ROUNDS = 2


@dataclass(frozen=True)
class Options:
    quick: bool
    targets: tuple[str, ...]
    duration: float
    rounds: int
    memory: bool
    memory_duration: float
    memory_requests: int
    stream_delay: float
    loadgen: str
    pin: bool | None
    require_litellm: bool
    markdown: Path | None
    json: Path | None
    keep: bool
    command: str


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py",
        description="Side-by-side throughput/latency/CPU/RSS of the fake provider, bare "
                    "mitmdump, aibridge (1 and 2 workers) and LiteLLM, in interleaved rounds.")
    p.add_argument("--quick", action="store_true",
                   help="one-minute check: chat 8 KB at c=1,16 and 16 streams; direct, "
                        "mitmdump, aibridge; 1 round; no memory mode")
    p.add_argument("--targets", help=f"comma-separated subset of {','.join(ALL_TARGETS)}")
    p.add_argument("--duration", type=float, help="seconds per cell and round "
                   f"(default {FULL_DURATION:g}, --quick {QUICK_DURATION:g})")
    p.add_argument("--rounds", type=int, help=f"interleaved rounds (default {FULL_ROUNDS}, "
                   "--quick 1)")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                   help="RSS over a long run + 20 MB body test (default on, off with --quick)")
    p.add_argument("--memory-duration", type=float, default=60.0,
                   help="upper bound of the long memory run in seconds (default 60)")
    p.add_argument("--memory-requests", type=int, default=200_000,
                   help="requests in the long memory run (default 200000)")
    p.add_argument("--stream-delay", type=float, default=0.02,
                   help="fake provider delay between streamed events, seconds (default 0.02)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "asyncio"), default="auto",
                   help="blocking cells: wrk when installed (auto) or the asyncio client")
    p.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                   help="taskset: target on core 0, fake + load generator on core 1 "
                        "(default on when taskset exists and there are >= 2 cores)")
    p.add_argument("--require-litellm", action="store_true",
                   help="fail instead of skipping litellm when .cache/litellm-venv is missing")
    p.add_argument("--markdown", type=Path, help="write the Markdown report here")
    p.add_argument("--json", type=Path, help="write the JSON results here")
    p.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    return p


def parse(argv: list[str] | None) -> Options:
    parser = build_parser()
    args = parser.parse_args(argv)
    default_targets = QUICK_TARGETS if args.quick else ALL_TARGETS
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip()) if args.targets \
        else default_targets
    unknown = [t for t in targets if t not in ALL_TARGETS]
    if unknown or not targets:
        parser.error(f"unknown targets {unknown}; choose from {','.join(ALL_TARGETS)}")
    duration = args.duration or (QUICK_DURATION if args.quick else FULL_DURATION)
    rounds = args.rounds or (1 if args.quick else FULL_ROUNDS)
    if duration <= 0 or rounds < 1 or args.stream_delay < 0 or args.memory_duration <= 0:
        parser.error("--duration, --memory-duration must be > 0, --rounds >= 1, "
                     "--stream-delay >= 0")
    words = sys.orig_argv if argv is None else [*sys.argv[:1], *argv]
    return Options(
        quick=args.quick, targets=tuple(dict.fromkeys(targets)), duration=duration,
        rounds=rounds, memory=args.memory if args.memory is not None else not args.quick,
        memory_duration=args.memory_duration, memory_requests=args.memory_requests,
        stream_delay=args.stream_delay, loadgen=args.loadgen, pin=args.pin,
        require_litellm=args.require_litellm, markdown=args.markdown, json=args.json,
        keep=args.keep, command=shlex.join(words),
    )
