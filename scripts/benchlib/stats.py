"""Rounds of one cell on one target folded into one row (and the ratios between rows)."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

from .measure import Run
from .workloads import Cell

MB = 1024 * 1024


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of unsorted `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class CellStats:
    target: str
    workload: str
    concurrency: int
    stream: bool
    loadgen: str
    rounds: int
    answered: int
    ok: int
    non2xx: int
    errors: int
    cut: int
    elapsed_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    events_per_s: float
    cpu_s_per_1k: float
    peak_rss_mb: float
    loadgen_cpu_pct: float
    background_cpu_pct: float
    error_rate: float

    @property
    def key(self) -> str:
        return f"{self.workload}/c{self.concurrency}"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _latencies(runs: list[Run], attr: str, q: float) -> float:
    """Pooled percentile when the runs kept samples, else the median of per-run values."""
    pooled = [v for run in runs for v in getattr(run, attr)]
    if pooled:
        return percentile(pooled, q) * 1000
    if attr != "samples":
        return 0.0
    per_run = [run.p50 if q == 50 else run.p99 for run in runs]
    return statistics.median(per_run) * 1000 if per_run else 0.0


def fold(cell: Cell, runs: list[Run]) -> CellStats:
    ok = sum(r.ok for r in runs)
    non2xx = sum(r.non2xx for r in runs)
    errors = sum(r.errors for r in runs)
    cut = sum(r.cut for r in runs)
    elapsed = sum(r.elapsed for r in runs)
    answered = ok + non2xx
    attempted = answered + errors + cut
    cpu = sum(r.cpu for r in runs)
    window = max(sum(r.window for r in runs), 1e-9)
    return CellStats(
        target=runs[0].target, workload=cell.workload.name, concurrency=cell.concurrency,
        stream=cell.workload.stream, loadgen=runs[0].loadgen, rounds=len(runs),
        answered=answered, ok=ok, non2xx=non2xx, errors=errors, cut=cut,
        elapsed_s=round(elapsed, 3), rps=answered / elapsed if elapsed else 0.0,
        p50_ms=_latencies(runs, "samples", 50), p99_ms=_latencies(runs, "samples", 99),
        ttfb_p50_ms=_latencies(runs, "ttfb", 50) if cell.workload.stream else 0.0,
        ttfb_p99_ms=_latencies(runs, "ttfb", 99) if cell.workload.stream else 0.0,
        events_per_s=sum(r.events for r in runs) / elapsed if elapsed else 0.0,
        cpu_s_per_1k=cpu / answered * 1000 if answered else 0.0,
        peak_rss_mb=max(r.peak_rss for r in runs) / MB,
        loadgen_cpu_pct=100 * sum(r.loadgen_cpu for r in runs) / window,
        background_cpu_pct=100 * sum(r.background_cpu for r in runs) / window,
        error_rate=(attempted - ok) / attempted if attempted else 1.0,
    )


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))
