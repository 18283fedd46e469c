"""Derived numbers: machine facts, ratios between targets, and PASS/MISS against the targets."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .runner import Outcome
from .stats import CellStats, geomean
from .targets import Paths

ERROR_RATE_LIMIT = 0.01
LATENCY_CELL = "chat-8k/c1"
PEERS = ("litellm",)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine(paths: Paths) -> dict[str, Any]:
    try:
        from mitmproxy.version import VERSION as mitm
    except ImportError:
        mitm = _version_of([str(paths.bin / "mitmdump"), "--version"])
    litellm = sorted(paths.litellm.parents[1].glob("lib/python*/site-packages/litellm-*.dist-info"))
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "mitmproxy": mitm,
        "litellm": litellm[-1].name.removeprefix("litellm-").removesuffix(".dist-info")
        if litellm else "not installed",
        "wrk": _version_of(["wrk", "-v"]).split(" [")[0],
    }


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    goal: str
    result: str  # PASS / MISS / n/a


class Summary:
    """Ratios over the folded cells of one run."""

    def __init__(self, stats: list[CellStats]) -> None:
        self.by = {(s.target, s.key): s for s in stats}
        self.blocking = sorted({s.key for s in stats if not s.stream})
        streams = sorted({s.concurrency for s in stats if s.stream})
        self.stream_low = f"stream-50/c{streams[0]}" if streams else ""
        self.stream_high = f"stream-50/c{streams[-1]}" if streams else ""

    def get(self, target: str, key: str) -> CellStats | None:
        return self.by.get((target, key))

    def throughput(self, a: str, b: str) -> float | None:
        """Geometric mean of req/s ratios a/b over blocking cells at c >= 16 (all if none)."""
        keys = [k for k in self.blocking if not k.endswith("/c1")] or self.blocking
        ratios = []
        for key in keys:
            x, y = self.get(a, key), self.get(b, key)
            if x and y and y.rps:
                ratios.append(x.rps / y.rps)
        return geomean(ratios)

    def added(self, target: str, attr: str, key: str = LATENCY_CELL) -> float | None:
        x, base = self.get(target, key), self.get("direct", key)
        if not x or not base:
            return None
        return float(getattr(x, attr) - getattr(base, attr))

    def stream_ratio(self, target: str) -> float | None:
        x, base = self.get(target, self.stream_high), self.get("direct", self.stream_high)
        return x.p99_ms / base.p99_ms if x and base and base.p99_ms else None

    def stream_cpu_ms(self, target: str) -> float | None:
        """CPU ms the target spends per stream (CPU s per 1k streams), at the lowest count."""
        x = self.get(target, self.stream_low)
        return x.cpu_s_per_1k if x and x.cpu_s_per_1k else None

    def parse_share(self, costs: list[Any]) -> float | None:
        """Chat stream parsing as a fraction of aibridge's CPU per (chat) stream."""
        cpu = self.stream_cpu_ms("aibridge")
        chat = next((c for c in costs if c.api == "chat"), None)
        return chat.us_per_stream / 1000 / cpu if cpu and chat else None

    def ratios(self) -> dict[str, float | None]:
        return {
            "aibridge/mitmdump throughput": self.throughput("aibridge", "mitmdump"),
            "aibridge-w2/aibridge throughput": self.throughput("aibridge-w2", "aibridge"),
            "aibridge/litellm throughput": self.throughput("aibridge", "litellm"),
            "aibridge added p50 ms (8 KB, c=1)": self.added("aibridge", "p50_ms"),
            "aibridge added p99 ms (8 KB, c=1)": self.added("aibridge", "p99_ms"),
            "aibridge TTFB added p50 ms": self.added("aibridge", "ttfb_p50_ms", self.stream_low),
            "aibridge stream total p99 / direct (max streams)": self.stream_ratio("aibridge"),
        }


def _judge(value: float | None, goal: float, higher: bool, fmt: str) -> tuple[str, str]:
    if value is None:
        return "n/a", "n/a"
    ok = value >= goal if higher else value <= goal
    return format(value, fmt), "PASS" if ok else "MISS"


def checks(outcome: Outcome, summary: Summary) -> list[Check]:
    r = summary.ratios()
    rows = [
        ("aibridge vs mitmdump, blocking throughput", r["aibridge/mitmdump throughput"],
         0.9, True, ".2f", ">= 0.9x"),
        ("aibridge-w2 vs aibridge throughput", r["aibridge-w2/aibridge throughput"],
         1.8, True, ".2f", ">= 1.8x"),
        ("aibridge vs litellm throughput", r["aibridge/litellm throughput"], 6.0, True, ".1f",
         ">= 6x"),
        ("added latency p50 (8 KB, c=1)", r["aibridge added p50 ms (8 KB, c=1)"], 1.0, False,
         ".2f", "<= 1 ms"),
        ("added latency p99 (8 KB, c=1)", r["aibridge added p99 ms (8 KB, c=1)"], 3.0, False,
         ".2f", "<= 3 ms"),
        ("TTFB added (stream p50)", r["aibridge TTFB added p50 ms"], 2.0, False, ".2f",
         "<= 2 ms"),
        (f"stream total p99 vs direct ({summary.stream_high.split('/')[-1]})",
         r["aibridge stream total p99 / direct (max streams)"], 1.3, False, ".2f", "<= 1.3x"),
        ("stream parsing share of aibridge CPU", summary.parse_share(outcome.parse_costs), 0.10,
         False, ".1%", "<= 10%"),
    ]
    out = []
    for name, v, goal, higher, fmt, goal_text in rows:
        value, result = _judge(v, goal, higher, fmt)
        out.append(Check(name, value, goal_text, result))
    for name, rec in outcome.recording.items():
        out.append(Check(f"{name}: recorded == answered",
                         f"{rec['recorded']} / {rec['answered']}", "equal",
                         "PASS" if rec["equal"] else "FAIL"))
    for run in outcome.long_runs:
        out.append(Check(f"{run.target}: RSS flat over long run", f"{run.growth_pct:+.1f}%",
                         "<= +10%", "PASS" if run.flat else "MISS"))
    return out


def _failure(s: CellStats) -> str:
    return (f"{s.target} {s.key}: {100 * s.error_rate:.1f}% failed requests "
            f"({s.non2xx} non-2xx, {s.errors} errors, {s.cut} cut)")


def run_errors(outcome: Outcome) -> list[str]:
    """Start failures plus cells of ours whose load generator saw more than 1% failures."""
    errors = list(outcome.errors)
    errors += [_failure(s) for s in outcome.stats
               if s.error_rate > ERROR_RATE_LIMIT and s.target not in PEERS]
    return errors


def peer_notes(outcome: Outcome) -> list[str]:
    """A peer gateway failing under load is a measurement, not an error of the run."""
    return [f"{_failure(s)} (peer, not an error)" for s in outcome.stats
            if s.error_rate > ERROR_RATE_LIMIT and s.target in PEERS]


def background(outcome: Outcome) -> str:
    if not outcome.stats:
        return "n/a"
    values = [s.background_cpu_pct for s in outcome.stats]
    cores = os.cpu_count() or 1
    return (f"other processes on the machine used {sum(values) / len(values):.0f}% CPU on "
            f"average during the cells (max {max(values):.0f}% in one cell; "
            f"{100 * cores}% = all {cores} cores)")
