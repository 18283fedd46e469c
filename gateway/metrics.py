"""Prometheus metrics: what the gateway answered and recorded, and the state of its pipeline.

One `Metrics` object per process (created by the runtime). With `aibridge server --workers N`
the supervisor sets PROMETHEUS_MULTIPROC_DIR for its workers, so whichever worker answers a
scrape reports the sum of all of them (prometheus-client's multiprocess mode).

Labels are bounded: providers are the configured ones (a name no provider has is "unknown"),
statuses are HTTP codes and recording statuses. Users, tokens and models are not labels: they
are in the database, where the usage API aggregates them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from gateway.providers.records import TokenUsage

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# LLM answers take from a fraction of a second to minutes.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    def __init__(self) -> None:
        self._multi = multiprocess_dir() is not None
        # In multiprocess mode values live in the shared directory, and a scrape collects them
        # from there: the metric objects are registered nowhere.
        self._own = CollectorRegistry(auto_describe=True)
        reg = None if self._multi else self._own

        self.requests = Counter(
            "aibridge_requests",
            "Gateway-route requests answered, by provider, HTTP status and who answered "
            "(upstream, or gateway for its own rejections and errors).",
            ["provider", "status", "source"],
            registry=reg,
        )
        self.interceptions = Counter(
            "aibridge_interceptions",
            "Interceptions closed, by provider and recording status.",
            ["provider", "status"],
            registry=reg,
        )
        self.tokens = Counter(
            "aibridge_tokens",
            "Tokens the providers billed, by provider and type "
            "(input excludes cache reads and writes).",
            ["provider", "type"],
            registry=reg,
        )
        self.tool_calls = Counter(
            "aibridge_tool_calls", "Tool calls the models made.", ["provider"], registry=reg
        )
        self.duration = Histogram(
            "aibridge_request_duration_seconds",
            "From the request's first byte to the response's last byte (whole stream).",
            ["provider"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.ttfb = Histogram(
            "aibridge_upstream_ttfb_seconds",
            "From the request's last byte to the upstream's response headers.",
            ["provider"],
            buckets=TTFB_BUCKETS,
            registry=reg,
        )
        # Gauges set from live state; across workers they sum (livesum) or show the worst
        # (livemin) of the processes alive.
        def gauge(name: str, doc: str, mode: str) -> Gauge:
            return Gauge(name, doc, registry=reg, multiprocess_mode=mode)  # type: ignore[arg-type]

        self.journal_pending = gauge(
            "aibridge_journal_pending_bytes", "Recorded bytes not yet in the database.", "livesum"
        )
        self.database_ok = gauge(
            "aibridge_database_writes_ok",
            "1 while records reach the database, 0 while writes fail (records wait in the "
            "journal).",
            "livemin",
        )
        self.config_version = gauge(
            "aibridge_config_version",
            "The configuration version this gateway routes with.",
            "livemin",
        )
        self.dump_failures = gauge(
            "aibridge_dump_write_failures",
            "API dump writes that failed since start (full disk, unwritable folder).",
            "livesum",
        )
        self.in_flight = gauge(
            "aibridge_requests_in_flight", "Requests being answered now.", "livesum"
        )
        self._refreshers: list[Callable[[Metrics], None]] = []
        self._children: dict[tuple[Any, ...], Any] = {}

    # -- request path (cheap: a few dict lookups and locked adds) -----------------------------

    def answered(
        self,
        provider: str,
        status: int,
        *,
        by_gateway: bool,
        duration: float | None,
        ttfb: float | None,
    ) -> None:
        key = (provider, status, by_gateway)
        child = self._children.get(key)
        if child is None:
            source = "gateway" if by_gateway else "upstream"
            child = self._children[key] = self.requests.labels(provider, str(status), source)
        child.inc()
        if duration is not None and duration >= 0:
            self._child(self.duration, provider).observe(duration)
        if ttfb is not None and ttfb >= 0:
            self._child(self.ttfb, provider).observe(ttfb)

    def interception_closed(self, provider: str, status: str) -> None:
        self._child(self.interceptions, provider, status).inc()

    def token_usage(self, provider: str, usage: TokenUsage) -> None:
        for kind, value in (
            ("input", usage.input),
            ("output", usage.output),
            ("cache_read", usage.cache_read),
            ("cache_write", usage.cache_write),
        ):
            if value > 0:
                self._child(self.tokens, provider, kind).inc(value)

    def tool_call(self, provider: str) -> None:
        self._child(self.tool_calls, provider).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: prometheus-client validates and locks each call."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- scrape -------------------------------------------------------------------------------

    def add_refresher(self, refresh: Callable[[Metrics], None]) -> None:
        """`refresh(metrics)` sets the gauges from live state, before each scrape (and
        periodically in multiprocess mode, so every worker's gauges stay current)."""
        self._refreshers.append(refresh)

    def refresh(self) -> None:
        for refresh in self._refreshers:
            refresh(self)

    def render(self) -> bytes:
        """The text exposition format."""
        self.refresh()
        if not self._multi:
            return generate_latest(self._own)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    @property
    def multiprocess(self) -> bool:
        return self._multi


def worker_exited(pid: int, path: str) -> None:
    """Called by the supervisor when a worker ends: drop its live gauges from `path`."""
    multiprocess.mark_process_dead(pid, path)
