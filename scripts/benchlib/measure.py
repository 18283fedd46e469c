"""One measurement: a load generator against a target while its CPU and RSS are watched."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .httpload import Load, run_load
from .procs import Child, cpu_seconds, machine_busy_seconds, rss_bytes
from .targets import Target
from .workloads import Cell, knob_headers, raw_request, request_body
from .wrkload import run_wrk, write_script

RSS_INTERVAL = 0.2
STREAM_STAGGER = 0.004  # 256 streams start over ~1 s, not in lockstep


@dataclass
class Run:
    """One round of one cell on one target (latencies in seconds)."""

    target: str
    cell: str
    round: int
    loadgen: str
    ok: int
    non2xx: int
    errors: int
    cut: int
    elapsed: float
    cpu: float
    peak_rss: int
    loadgen_cpu: float
    background_cpu: float = 0.0  # CPU seconds of processes outside the benchmark
    window: float = 0.0  # wall seconds the CPU counters covered
    events: int = 0
    p50: float = 0.0
    p99: float = 0.0
    samples: list[float] = field(default_factory=list, repr=False)
    ttfb: list[float] = field(default_factory=list, repr=False)
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Driver:
    """How cells are driven: wrk for blocking cells when available, else asyncio."""

    workdir: Path
    use_wrk: bool
    stream_delay: float
    wrk_prefix: tuple[str, ...] = ()

    @classmethod
    def choose(cls, workdir: Path, loadgen: str, stream_delay: float,
               prefix: list[str]) -> Driver:
        have = shutil.which("wrk") is not None
        if loadgen == "wrk" and not have:
            raise RuntimeError("--loadgen wrk: wrk is not installed (scripts/bench-deps)")
        return cls(workdir, have and loadgen != "asyncio", stream_delay, tuple(prefix))

    def name_for(self, cell: Cell) -> str:
        return "wrk" if self.use_wrk and not cell.workload.stream else "asyncio"


class RssWatch:
    """Samples the summed RSS of `pids` every RSS_INTERVAL seconds until stopped."""

    def __init__(self, pids: list[int], interval: float = RSS_INTERVAL) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> RssWatch:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def _loop(self) -> None:
        while True:
            self.samples.append((time.monotonic(), rss_bytes(self.pids)))
            await asyncio.sleep(self.interval)

    async def stop(self) -> int:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.samples.append((time.monotonic(), rss_bytes(self.pids)))
        return max(rss for _, rss in self.samples)


async def _drive(driver: Driver, target: Target, cell: Cell, duration: float) -> Run:
    workload = cell.workload
    route = target.endpoints.route(workload.api)
    body = request_body(workload)
    if driver.name_for(cell) == "wrk":
        body_file = driver.workdir / f"body-{workload.name}.json"
        if not body_file.exists():
            body_file.write_bytes(body)
        script = driver.workdir / f"wrk-{target.name}-{workload.name}.lua"
        write_script(script, route)
        res = await run_wrk(target.port, route, body_file, script, cell.concurrency, duration,
                            list(driver.wrk_prefix))
        failures = {k: int(res.raw[k]) for k in ("connect", "read", "write", "timeout")
                    if res.raw.get(k)}
        return Run(target.name, cell.key, 0, "wrk", res.ok, res.bad, res.errors, res.cut,
                   res.elapsed, 0.0, 0, res.loadgen_cpu, p50=res.p50, p99=res.p99,
                   statuses=failures)
    payload = raw_request(target.port, route, body, knob_headers(workload, driver.stream_delay))
    stagger = STREAM_STAGGER if workload.stream else 0.0
    tally = await run_load(Load(target.port, payload, cell.concurrency, duration,
                                stagger=stagger))
    return Run(target.name, cell.key, 0, "asyncio", tally.ok, tally.non2xx, tally.errors,
               tally.cut, tally.elapsed, 0.0, 0, 0.0,
               events=tally.events, samples=tally.latencies, ttfb=tally.ttfb,
               statuses=dict(tally.statuses))


async def measure(driver: Driver, target: Target, cell: Cell, duration: float,
                  round_no: int, fake: Child) -> Run:
    """Run one cell; CPU of the target, of the fake provider (when it is not the target), of
    the load generator (this process + wrk), and of everything else on the machine."""
    pids = target.pids()
    helpers = [] if target.child is fake else fake.pids()
    watch = RssWatch(pids).start()
    start = (time.monotonic(), cpu_seconds(pids), cpu_seconds(helpers), time.process_time(),
             machine_busy_seconds())
    try:
        run = await _drive(driver, target, cell, duration)
    finally:
        peak = await watch.stop()
    run.window = time.monotonic() - start[0]
    run.cpu = cpu_seconds(pids) - start[1]
    fake_cpu = cpu_seconds(helpers) - start[2]
    run.loadgen_cpu += time.process_time() - start[3]
    busy = machine_busy_seconds() - start[4]
    run.background_cpu = max(0.0, busy - run.cpu - fake_cpu - run.loadgen_cpu)
    run.peak_rss = peak
    run.round = round_no
    target.answered += run.ok
    return run
