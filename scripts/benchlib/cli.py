"""`python scripts/bench.py [--quick] [--targets a,b] [--duration S] [--rounds N] ...`."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape

from . import parsecost, render
from .measure import Driver
from .options import Options, parse
from .procs import Pinning, Processes
from .report import machine, run_errors
from .runner import (
    Outcome,
    Say,
    check_recording,
    fold_all,
    memory_phase,
    probe_all,
    run_rounds,
    start_targets,
    warm_up,
)
from .targets import Paths
from .workloads import plan_cells

WIDE = 200


async def bench(opts: Options, paths: Paths, workdir: Path, say: Say) -> Outcome:
    cells = plan_cells(opts.quick)
    outcome = Outcome(opts, cells)
    pinning = Pinning.choose(opts.pin)
    pinning.pin_self()
    outcome.pinning = pinning.describe()
    driver = Driver.choose(workdir, opts.loadgen, opts.stream_delay,
                           pinning.prefix(pinning.helpers))
    outcome.loadgen = ("wrk (blocking cells, one thread per connection) + asyncio client "
                       "(streams)" if driver.use_wrk else "built-in asyncio client")
    with Processes(pinning) as procs:
        say(f"starting targets: {', '.join(opts.targets)}")
        targets, fake = await start_targets(opts, procs, paths, workdir, outcome)
        await probe_all(targets, cells, opts.stream_delay, outcome)
        say("warming up")
        await warm_up(targets, 0.5 if opts.quick else 1.0, opts.stream_delay)
        runs = await run_rounds(opts, targets, fake, driver, cells, say)
        outcome.stats = fold_all(cells, targets, runs)
        direct = next((t for t in targets if t.name == "direct"), None)
        if direct is not None:
            say("stream parsing cost (in-process, the fake's 50-event answers)")
            outcome.parse_costs = await asyncio.to_thread(
                parsecost.measure, direct.port, direct.endpoints, opts.stream_delay)
        if opts.memory:
            await memory_phase(opts, targets, outcome, say)
        for target in targets:
            if target.db_path is not None:
                say(f"recording check: waiting for {target.name}'s writer")
                outcome.recording[target.name] = await check_recording(target)
        say("stopping targets")
    return outcome


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _write_outputs(opts: Options, outcome: Outcome, paths: Paths) -> None:
    mach = machine(paths)
    render.to_console(Console(width=None if sys.stdout.isatty() else WIDE), outcome, mach)
    if opts.markdown:
        opts.markdown.write_text(render.to_markdown(outcome, mach))
    if opts.json:
        opts.json.write_text(render.to_json(outcome, mach))


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    progress = Console(stderr=True, width=None if sys.stderr.isatty() else WIDE)

    def say(message: str) -> None:
        progress.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {escape(message)}",
                       highlight=False)

    signal.signal(signal.SIGTERM, _interrupt)
    paths = Paths.discover()
    workdir = Path(tempfile.mkdtemp(prefix="aibridge-bench-"))
    started = time.monotonic()
    try:
        outcome = asyncio.run(bench(opts, paths, workdir, say))
    except KeyboardInterrupt:
        say("interrupted: all processes stopped")
        return 130
    except (RuntimeError, TimeoutError, OSError) as exc:  # e.g. the fake provider did not start
        print(f"bench.py: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if opts.keep:
            say(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    outcome.wall_s = time.monotonic() - started
    _write_outputs(opts, outcome, paths)
    errors = run_errors(outcome)
    for error in errors:
        print(f"bench.py: error: {error}", file=sys.stderr)
    return 1 if errors else 0
