"""Output: the same tables as rich (terminal) and Markdown (README), plus the JSON document."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from . import memory
from .report import Check, Summary, background, checks, peer_notes, run_errors
from .runner import Outcome
from .stats import CellStats

RESULT_STYLE = MappingProxyType({"PASS": "green", "MISS": "yellow", "FAIL": "red", "n/a": "dim"})


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _failed(s: CellStats) -> str:
    bad = s.non2xx + s.errors + s.cut
    return f"{bad} ({100 * s.error_rate:.1f}%)" if bad else "0"


def _blocking(summary: Summary, stats: list[CellStats]) -> Table:
    rows = []
    for s in stats:
        if s.stream:
            continue
        base = summary.get("mitmdump", s.key)
        ratio = f"{s.rps / base.rps:.2f}x" if base and base.rps else "-"
        rows.append((s.workload, str(s.concurrency), s.target, f"{s.rps:.0f}", ratio,
                     _ms(s.p50_ms), _ms(s.p99_ms), f"{s.cpu_s_per_1k:.2f}",
                     f"{s.peak_rss_mb:.0f}", _failed(s), f"{s.background_cpu_pct:.0f}"))
    return Table("Blocking requests", ("workload", "c", "target", "req/s", "vs mitmdump",
                                       "p50 ms", "p99 ms", "CPU s/1k req", "peak RSS MB",
                                       "failed", "bg CPU %"), tuple(rows))


def _streams(stats: list[CellStats]) -> Table:
    rows = tuple(
        (str(s.concurrency), s.target, f"{s.rps:.1f}", f"{s.events_per_s:.0f}",
         _ms(s.ttfb_p50_ms), _ms(s.ttfb_p99_ms), _ms(s.p50_ms), _ms(s.p99_ms),
         f"{s.cpu_s_per_1k:.2f}", f"{s.peak_rss_mb:.0f}", _failed(s),
         f"{s.background_cpu_pct:.0f}")
        for s in stats if s.stream)
    return Table("Streaming (50 events per answer)",
                 ("streams", "target", "streams/s", "events/s", "TTFB p50 ms", "TTFB p99 ms",
                  "total p50 ms", "total p99 ms", "CPU s/1k streams", "peak RSS MB", "failed",
                  "bg CPU %"), rows)


def _added(summary: Summary, targets: list[str]) -> Table:
    rows = []
    for t in targets:
        if t == "direct":
            continue
        vals = (summary.added(t, "p50_ms"), summary.added(t, "p99_ms"),
                summary.added(t, "ttfb_p50_ms", summary.stream_low),
                summary.added(t, "ttfb_p99_ms", summary.stream_low))
        rows.append((t, *("-" if v is None else f"{v:+.2f}" for v in vals)))
    return Table(f"Added latency over direct (8 KB chat c=1; TTFB at "
                 f"{summary.stream_low.split('/')[-1]})",
                 ("target", "p50 ms", "p99 ms", "TTFB p50 ms", "TTFB p99 ms"), tuple(rows))


def _recording(outcome: Outcome) -> Table:
    rows = tuple((name, str(r["answered"]), str(r["recorded"]), "yes" if r["equal"] else "NO",
                  f"{r['drain_s']:.1f}") for name, r in outcome.recording.items())
    return Table("Recording (interceptions rows vs 2xx answers seen)",
                 ("target", "answered", "recorded", "recorded == answered", "drain wait s"), rows)


def _memory(outcome: Outcome) -> list[Table]:
    longs = tuple((m.target, str(m.requests), f"{m.elapsed_s:.0f}", f"{m.first_mb:.0f}",
                   f"{m.last_mb:.0f}", f"{m.peak_mb:.0f}", f"{m.growth_pct:+.1f}%",
                   "yes" if m.flat else "NO") for m in outcome.long_runs)
    bigs = tuple((b.target, f"{b.body_mb:.0f}", f"{b.ok}/{b.requests}", f"{b.baseline_mb:.0f}",
                  f"{b.peak_mb:.0f}", f"{b.growth_mb:.0f}", f"{b.growth_per_body:.1f}x",
                  f"{b.retained_mb:+.0f}") for b in outcome.big_bodies)
    out = []
    if longs:
        out.append(Table("Memory: long blocking run (c=16, 8 KB)",
                         ("target", "requests", "s", "first MB", "last MB", "peak MB",
                          "last vs first", "flat (<= 10%)"), longs))
    if bigs:
        out.append(Table("Memory: 20 MB request bodies (3 sequential)",
                         ("target", "body MB", "2xx", "baseline MB", "peak MB", "growth MB",
                          "growth / body", "retained MB"), bigs))
    return out


def _parsing(outcome: Outcome, summary: Summary) -> Table:
    cpu = summary.stream_cpu_ms("aibridge")
    rows = tuple(
        (c.api, str(c.events_bytes), str(c.chunks), f"{c.us_per_stream:.0f}",
         "-" if cpu is None or c.api != "chat" else f"{100 * c.us_per_stream / 1000 / cpu:.1f}%")
        for c in outcome.parse_costs)
    return Table("Stream parsing (in-process, per 50-event answer)",
                 ("api", "bytes", "chunks", "parse us", "of aibridge CPU per stream"), rows)


def _ratios(summary: Summary, verdicts: list[Check]) -> list[Table]:
    ratio_rows = tuple((name, "-" if v is None else f"{v:.2f}")
                       for name, v in summary.ratios().items())
    verdict_rows = tuple((c.name, c.value, c.goal, c.result) for c in verdicts)
    return [Table("Summary", ("ratio", "value"), ratio_rows),
            Table("Targets", ("check", "value", "goal", "result"), verdict_rows)]


def tables(outcome: Outcome) -> list[Table]:
    summary = Summary(outcome.stats)
    names = [n for n in outcome.options.targets if outcome.targets.get(n, {}).get("status") == "ok"]
    out = [_blocking(summary, outcome.stats), _streams(outcome.stats), _added(summary, names)]
    if outcome.recording:
        out.append(_recording(outcome))
    out += _memory(outcome)
    out.append(_parsing(outcome, summary))
    out += _ratios(summary, checks(outcome, summary))
    return [t for t in out if t.rows]


def header_lines(outcome: Outcome, mach: dict[str, Any]) -> list[str]:
    o = outcome.options
    lines = [
        f"command: {o.command}",
        f"date: {mach['date']}  wall time: {outcome.wall_s:.0f} s",
        f"machine: {mach['cores']} cores ({mach['cpu']}), Linux {mach['kernel']}, "
        f"Python {mach['python']}, mitmproxy {mach['mitmproxy']}, litellm {mach['litellm']}, "
        f"{mach['wrk']}",
        f"load generator: {outcome.loadgen}; pinning: {outcome.pinning}",
        f"cells: {o.duration:g} s each x {o.rounds} round(s), targets interleaved and rotated "
        "per round; stream answers: 50 events, "
        f"{o.stream_delay * 1000:g} ms apart",
        f"note: the load generator, the fake provider and the target share {mach['cores']} "
        "cores; CPU s/1k counts the target's processes only (direct: the fake provider)",
        "note: bare mitmdump buffers whole responses (no streaming), so its TTFB is its total",
        "note: throughput ratios are geometric means over the blocking cells at c >= 16; "
        "latencies are pooled over rounds (asyncio) or the median of rounds (wrk)",
    ]
    lines.append(f"background load: {background(outcome)}")
    lines += [f"note: {n}" for n in [*outcome.notes, *peer_notes(outcome)]]
    lines += [f"ERROR: {e}" for e in run_errors(outcome)]
    return lines


def to_console(console: Console, outcome: Outcome, mach: dict[str, Any]) -> None:
    console.rule("aibridge benchmark")
    for line in header_lines(outcome, mach):
        console.print(line, markup=False, style="red" if line.startswith("ERROR") else None)
    for t in tables(outcome):
        table = RichTable(title=t.title, title_justify="left")
        for col in t.columns:
            table.add_column(col, justify="left" if col in ("workload", "target", "check",
                                                             "ratio", "goal") else "right")
        for row in t.rows:
            style = RESULT_STYLE.get(row[-1]) if t.title == "Targets" else None
            table.add_row(*row, style=style)
        console.print(table)


def to_markdown(outcome: Outcome, mach: dict[str, Any]) -> str:
    parts = [f"### aibridge benchmark, {mach['date']}", ""]
    parts += [f"- {line}" for line in header_lines(outcome, mach)]
    for t in tables(outcome):
        parts += ["", f"**{t.title}**", "", "| " + " | ".join(t.columns) + " |",
                  "|" + "|".join("---" for _ in t.columns) + "|"]
        parts += ["| " + " | ".join(row) + " |" for row in t.rows]
    return "\n".join(parts) + "\n"


def to_json(outcome: Outcome, mach: dict[str, Any]) -> str:
    summary = Summary(outcome.stats)
    o = outcome.options
    doc = {
        "command": o.command, "machine": mach, "wall_s": round(outcome.wall_s, 1),
        "options": {k: str(v) if v is not None and not isinstance(v, (int, float, bool, tuple))
                    else v for k, v in asdict(o).items()},
        "loadgen": outcome.loadgen, "pinning": outcome.pinning, "targets": outcome.targets,
        "cells": [s.to_json() for s in outcome.stats],
        "recording": outcome.recording,
        "parse_costs": [c.to_json() for c in outcome.parse_costs],
        "memory": {"long_runs": [memory.to_json(m) for m in outcome.long_runs],
                   "big_bodies": [memory.to_json(b) for b in outcome.big_bodies]},
        "summary": summary.ratios(),
        "checks": [asdict(c) for c in checks(outcome, summary)],
        "background": background(outcome),
        "notes": [*outcome.notes, *peer_notes(outcome)], "errors": run_errors(outcome),
    }
    return json.dumps(doc, indent=2) + "\n"
