"""One bench run: start the targets, probe, warm up, interleaved rounds, memory, recording."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import memory
from .httpload import NET_ERRORS, Load, one_request, run_load
from .measure import Driver, Run, measure
from .options import Options
from .procs import Child, Processes
from .stats import CellStats, fold
from .targets import (
    Launch,
    Paths,
    StartError,
    Target,
    direct_target,
    start_aibridge,
    start_fake,
    start_litellm,
    start_mitmdump,
    wait_ready,
)
from .workloads import CHAT_8K, STREAM_50, Cell, Workload, knob_headers, raw_request, request_body

PROBE_SECONDS = 15.0
DRAIN_STALL_SECONDS = 10.0
SETTLE_SECONDS = 0.3
Say = Callable[[str], None]


@dataclass
class Outcome:
    """Everything a run produced; rendered by report/render."""

    options: Options
    cells: tuple[Cell, ...]
    loadgen: str = ""
    pinning: str = ""
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: list[CellStats] = field(default_factory=list)
    long_runs: list[memory.LongRun] = field(default_factory=list)
    big_bodies: list[memory.BigBody] = field(default_factory=list)
    recording: dict[str, dict[str, Any]] = field(default_factory=dict)
    parse_costs: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0


async def _start_one(name: str, launch: Launch, direct: Target) -> Target:
    if name == "direct":
        return direct
    if name == "mitmdump":
        target = start_mitmdump(launch)
    elif name == "litellm":
        target = start_litellm(launch)
    else:
        target = await start_aibridge(launch, name, 2 if name == "aibridge-w2" else 1)
    try:
        await wait_ready(target)
    except BaseException:
        launch.procs.stop(target.child)
        raise
    return target


def _litellm_available(opts: Options, paths: Paths, outcome: Outcome) -> bool:
    if paths.litellm.exists():
        return True
    if opts.require_litellm:
        raise StartError(f"--require-litellm: {paths.litellm} missing (run scripts/bench-deps)")
    message = f"litellm skipped: {paths.litellm} missing (run scripts/bench-deps)"
    outcome.notes.append(message)
    outcome.targets["litellm"] = {"status": "skipped", "note": message}
    return False


async def start_targets(opts: Options, procs: Processes, paths: Paths, workdir: Path,
                        outcome: Outcome) -> tuple[list[Target], Child]:
    """The fake provider and the targets that came up (failures are noted in `outcome`)."""
    fake, fake_port = start_fake(procs, paths, workdir, opts.stream_delay)
    launch = Launch(procs, paths, workdir, fake_port)
    direct = direct_target(fake, fake_port)
    names = [n for n in opts.targets
             if n != "litellm" or _litellm_available(opts, paths, outcome)]
    results = await asyncio.gather(*(_start_one(n, launch, direct) for n in names),
                                   return_exceptions=True)
    targets = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, Target):
            targets.append(result)
            outcome.targets[name] = {"status": "ok", "port": result.port,
                                     "cpus": result.cpus or "any"}
        elif isinstance(result, (StartError, OSError, TimeoutError, RuntimeError)):
            outcome.errors.append(f"{name} failed to start: {result}")
            outcome.targets[name] = {"status": "failed", "note": str(result)[:2000]}
        else:
            raise result
    return targets, fake


async def _probe(target: Target, workload: Workload, delay: float) -> str | None:
    """None once one request of `workload` is answered 2xx, else why not."""
    route = target.endpoints.route(workload.api)
    payload = raw_request(target.port, route, request_body(workload),
                          knob_headers(workload, delay))
    deadline = time.monotonic() + PROBE_SECONDS
    while True:
        try:
            status, body = await one_request(target.port, payload)
        except NET_ERRORS as exc:
            status, body = 0, repr(exc).encode()
        if 200 <= status < 300:
            target.answered += 1
            return None
        if time.monotonic() > deadline or target.name == "litellm":
            return f"HTTP {status}: {body[:300].decode(errors='replace')}"
        await asyncio.sleep(0.2)


async def probe_all(targets: list[Target], cells: tuple[Cell, ...], delay: float,
                    outcome: Outcome) -> None:
    workloads = list(dict.fromkeys(cell.workload for cell in cells))
    for target in targets:
        for workload in workloads:
            reason = await _probe(target, workload, delay)
            if reason is None:
                continue
            target.unsupported[workload.name] = reason
            message = f"{target.name}: {workload.name} not measured ({reason})"
            (outcome.notes if target.name == "litellm" else outcome.errors).append(message)


async def warm_up(targets: list[Target], seconds: float, delay: float) -> None:
    for target in targets:
        for workload in (CHAT_8K, STREAM_50):
            if workload.name in target.unsupported:
                continue
            route = target.endpoints.route(workload.api)
            payload = raw_request(target.port, route, request_body(workload),
                                  knob_headers(workload, delay))
            tally = await run_load(Load(target.port, payload, 4, seconds))
            target.answered += tally.ok


def _rotated(targets: list[Target], by: int) -> list[Target]:
    if not targets:
        return []
    by %= len(targets)
    return targets[by:] + targets[:by]


def _progress(run: Run, cell: Cell, say: Say, total: int, done: int) -> None:
    rps = (run.ok + run.non2xx) / run.elapsed
    extra = f" ttfb p50 {sorted(run.ttfb)[len(run.ttfb) // 2] * 1000:.1f} ms" if run.ttfb else ""
    bad = f" errors {run.errors + run.non2xx + run.cut}" if run.errors + run.non2xx + run.cut \
        else ""
    say(f"[{done}/{total}] r{run.round + 1} {cell.key:<16} {run.target:<12} "
        f"{rps:9.1f} req/s cpu {run.cpu:5.2f}s bg {100 * run.background_cpu / run.window:3.0f}%"
        f"{extra}{bad}")


async def run_rounds(opts: Options, targets: list[Target], fake: Child, driver: Driver,
                     cells: tuple[Cell, ...], say: Say) -> dict[tuple[str, str], list[Run]]:
    runs: dict[tuple[str, str], list[Run]] = {}
    plan = [(r, i, cell) for r in range(opts.rounds) for i, cell in enumerate(cells)]
    total = sum(1 for _r, _i, cell in plan for t in targets
                if cell.workload.name not in t.unsupported)
    done = 0
    for round_no, index, cell in plan:
        for target in _rotated(targets, round_no + index):
            if cell.workload.name in target.unsupported or not target.child.alive():
                continue
            run = await measure(driver, target, cell, opts.duration, round_no, fake)
            runs.setdefault((target.name, cell.key), []).append(run)
            done += 1
            _progress(run, cell, say, total, done)
            await asyncio.sleep(SETTLE_SECONDS)
    return runs


def count_rows(db: Path) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                                timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM interceptions").fetchone()[0])
    except sqlite3.Error:
        return None


async def check_recording(target: Target) -> dict[str, Any]:
    """Poll the target's SQLite file until rows == answered, or no progress for 10 s."""
    assert target.db_path is not None
    started = changed = time.monotonic()
    last: int | None = -1
    while True:
        rows = count_rows(target.db_path)
        if rows == target.answered:
            break
        if rows != last:
            last, changed = rows, time.monotonic()
        elif time.monotonic() - changed > DRAIN_STALL_SECONDS:
            break
        await asyncio.sleep(0.2)
    return {"recorded": rows, "answered": target.answered, "equal": rows == target.answered,
            "drain_s": round(time.monotonic() - started, 2)}


async def memory_phase(opts: Options, targets: list[Target], outcome: Outcome,
                       say: Say) -> None:
    by_name = {t.name: t for t in targets}
    if "aibridge" in by_name:
        say(f"memory: long run on aibridge (<= {opts.memory_requests} requests, "
            f"<= {opts.memory_duration:g} s)")
        outcome.long_runs.append(await memory.long_run(
            by_name["aibridge"], opts.memory_duration, opts.memory_requests))
    for name in ("mitmdump", "aibridge"):
        if name in by_name:
            say(f"memory: 20 MB request bodies on {name}")
            outcome.big_bodies.append(await memory.big_body(by_name[name]))


def fold_all(cells: tuple[Cell, ...], targets: list[Target],
             runs: dict[tuple[str, str], list[Run]]) -> list[CellStats]:
    return [fold(cell, runs[(t.name, cell.key)]) for cell in cells for t in targets
            if (t.name, cell.key) in runs]
