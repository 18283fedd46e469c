"""--memory: RSS over a long blocking run (flat?) and RSS growth for a 20 MB request body."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

from .httpload import Load, run_load
from .measure import RssWatch
from .procs import rss_bytes
from .stats import MB
from .targets import Target
from .workloads import BIG_20M, CHAT_8K, raw_request, request_body

FLAT_TOLERANCE = 0.10
LONG_CONCURRENCY = 16
BIG_REPEATS = 3
BIG_SECONDS = 120.0


@dataclass(frozen=True)
class LongRun:
    target: str
    requests: int
    ok: int
    elapsed_s: float
    first_mb: float
    last_mb: float
    peak_mb: float
    growth_pct: float
    flat: bool
    samples_mb: list[float]


@dataclass(frozen=True)
class BigBody:
    target: str
    body_mb: float
    requests: int
    ok: int
    baseline_mb: float
    peak_mb: float
    after_mb: float
    growth_mb: float
    growth_per_body: float
    retained_mb: float


async def long_run(target: Target, duration: float, max_requests: int) -> LongRun:
    """A c=16 8 KB blocking run of at most `max_requests` requests or `duration` seconds;
    RSS sampled each second. `first` is the first sample after a tenth of the run (warm-up)."""
    payload = raw_request(target.port, target.endpoints.chat, request_body(CHAT_8K))
    watch = RssWatch(target.pids(), interval=1.0).start()
    tally = await run_load(Load(target.port, payload, LONG_CONCURRENCY, duration,
                                max_requests=max_requests))
    await watch.stop()
    target.answered += tally.ok
    start = watch.samples[0][0]
    warm = [rss for t, rss in watch.samples if t - start >= tally.elapsed / 10] or [
        watch.samples[-1][1]]
    first, last = warm[0], watch.samples[-1][1]
    peak = max(rss for _, rss in watch.samples)
    growth = (last - first) / first if first else 0.0
    return LongRun(target.name, tally.answered + tally.errors, tally.ok, round(tally.elapsed, 2),
                   first / MB, last / MB, peak / MB, 100 * growth, growth <= FLAT_TOLERANCE,
                   [round(rss / MB, 1) for _, rss in watch.samples])


async def big_body(target: Target) -> BigBody:
    """BIG_REPEATS sequential 20 MB Chat Completions requests; RSS sampled every 20 ms."""
    body = request_body(BIG_20M)
    payload = raw_request(target.port, target.endpoints.chat, body)
    pids = target.pids()
    await asyncio.sleep(0.5)
    baseline = rss_bytes(pids)
    watch = RssWatch(pids, interval=0.02).start()
    tally = await run_load(Load(target.port, payload, 1, BIG_SECONDS, max_requests=BIG_REPEATS))
    peak = await watch.stop()
    await asyncio.sleep(1.0)
    after = rss_bytes(pids)
    target.answered += tally.ok
    growth = max(0, peak - baseline)
    return BigBody(target.name, len(body) / MB, tally.answered + tally.errors, tally.ok,
                   baseline / MB, peak / MB, after / MB, growth / MB, growth / len(body),
                   (after - baseline) / MB)


def to_json(item: LongRun | BigBody) -> dict[str, object]:
    return asdict(item)
