"""`aibridge server`: an embedded, lean mitmproxy master in reverse mode.

Only the addons the gateway needs are loaded (no dumper, no view, no flow store), which is
what makes it faster than `mitmdump -s addons/aibridge.py`. `--workers N` runs N such
processes sharing the listening port with SO_REUSEPORT under a small supervisor. SIGTERM
stops accepting, lets in-flight requests finish (up to a grace period), flushes the journal to
the database and exits.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitmproxy import addonmanager, exceptions, hooks, http, master, options
from mitmproxy.addons import core, errorcheck, next_layer, proxyserver, tlsconfig

from addons import aibridge_addon
from addons.lifecycle import drain
from addons.options import start_runtime
from addons.state import Gateway
from gateway import settings as gs
from gateway.logs import setup_logging
from gateway.metrics import MULTIPROC_ENV, worker_exited

log = logging.getLogger(__name__)

WORKER_ENV = "AIBRIDGE_WORKER"
GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    overrides: dict[str, Any]
    config_file: str | None
    bootstrap: bool = True
    reuse_port: bool = False


class _ReusePortLoop(asyncio.SelectorEventLoop):
    """An event loop whose listening sockets set SO_REUSEPORT, so workers share one port."""

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:  # type: ignore[override]
        kwargs["reuse_port"] = True
        return await super().create_server(*args, **kwargs)


def _skip_debug_type_checks() -> None:
    """mitmproxy type-checks every field of every Request and Response it parses, in a
    `__post_init__` that exists only `if __debug__` (gone under `python -O`): ~10% of the
    event loop's time here. Its own parser builds these objects with the right types; the lean
    server runs without the check, as mitmproxy does when optimized."""
    if getattr(http.MessageData, "__post_init__", None) is not None:
        http.MessageData.__post_init__ = lambda self: None  # type: ignore[method-assign]


def _direct_hook_dispatch(manager: addonmanager.AddonManager) -> None:
    """mitmproxy's `trigger_event` walks every addon for every event (a generator, a context
    manager and a coroutine per addon, also for the `update` event it adds after each flow
    event), whether the addon has the hook or not. The lean server has a fixed set of addons:
    look the handlers of each event up once and call only those, with the same error handling
    (an exception is logged and the next handler runs; AddonHalt stops the event)."""
    handlers: dict[str, list[Callable[..., Any]]] = {}
    known = [len(manager.chain)]

    async def trigger_event(event: hooks.Hook) -> None:
        if len(manager.chain) != known[0]:  # an addon was added or removed: look up again
            handlers.clear()
            known[0] = len(manager.chain)
        funcs = handlers.get(event.name)
        if funcs is None:
            funcs = handlers[event.name] = [
                func for addon in manager.chain for _, func in manager._iter_hooks(addon, event)
            ]
        if not funcs:
            return
        args = event.args()
        for func in funcs:
            try:
                result = func(*args)
                if result is not None and inspect.isawaitable(result):
                    await result
            except exceptions.AddonHalt:
                return
            except exceptions.OptionsError:
                raise
            except Exception as exc:  # as mitmproxy's safecall: log, go on with the next
                log.error("Addon error: %s", exc, exc_info=True)

    manager.trigger_event = trigger_event  # type: ignore[method-assign]


class _UpstreamTlsConfig(tlsconfig.TlsConfig):
    """TLS for the upstream connections. Without the `request` hook: it serves the CRL of
    mitmproxy's own CA and blocks OCSP/CRL lookups of intercepted clients, neither of which
    exists for a reverse proxy that clients reach over plain HTTP or its own certificate."""

    request = None  # type: ignore[assignment]


def build_master(cfg: ServerConfig, gateway: Gateway) -> master.Master:
    _skip_debug_type_checks()
    opts = options.Options()
    m = master.Master(opts, with_termlog=False)
    # mitmproxy forwards every stdlib log record to its addons as a deprecated `add_log` event
    # (formatted, then scheduled on the loop with call_soon_threadsafe). No addon here listens,
    # and with structured logging that is four records per request: our handlers write them.
    m._legacy_log_events.uninstall()
    m.addons.add(
        core.Core(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        _UpstreamTlsConfig(),
        errorcheck.ErrorCheck(),
        aibridge_addon(gateway),
    )
    _direct_hook_dispatch(m.addons)
    settings = gateway.settings
    confdir = settings.data_dir / "mitmproxy"
    confdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    values: dict[str, Any] = {gs.option_name(k): str(v) for k, v in cfg.overrides.items()}
    if cfg.config_file:
        values["ai_gateway_config"] = cfg.config_file
    opts.update(
        mode=[f"reverse:http://localhost:1@{cfg.host}:{cfg.port}"],
        connection_strategy="lazy",
        confdir=str(confdir),
        ai_gateway_bootstrap_admin=cfg.bootstrap,
        **values,
    )
    return m


async def _serve(cfg: ServerConfig, gateway: Gateway) -> None:
    m = build_master(cfg, gateway)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    async def graceful() -> None:
        log.info("stopping: no new connections; waiting for requests in flight")
        m.options.update(server=False)
        left = await drain(gateway, GRACE_SECONDS)
        if left:
            log.warning("%d requests still in flight after %.0fs; stopping anyway", left,
                        GRACE_SECONDS)
        m.shutdown()

    def on_signal() -> None:
        if stopping:
            m.shutdown()
            return
        stopping.append(loop.create_task(graceful()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    # Ready before listening: with several workers on one port, a worker still starting would
    # otherwise be handed connections it can only answer 503.
    await start_runtime(gateway, bootstrap=cfg.bootstrap)
    await m.run()


def run_worker(cfg: ServerConfig) -> int:
    """Run one gateway process in the foreground until stopped."""
    try:
        loaded = gs.load_settings(cfg.overrides, config_file=cfg.config_file)
    except ValueError as exc:
        sys.stderr.write(f"aibridge: {exc}\n")
        return 2
    s = loaded.settings
    gateway = Gateway(own_logging=True)
    logs = setup_logging(
        human=s.log_human,
        json_path=s.log_json,
        level=s.log_level,
        scrubber=lambda: gateway.runtime.scrubber() if gateway.runtime else _empty(),
    )
    gateway.loaded = loaded
    try:
        factory = _ReusePortLoop if cfg.reuse_port else asyncio.SelectorEventLoop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(cfg, gateway))
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        logs.stop()  # (the loop is closed: mitmproxy's log handler cannot take records now)
        sys.stderr.write(f"aibridge: failed to start: {exc}\n")
        return 1
    logs.stop()
    return 0


def _empty() -> Any:
    from gateway.redaction import SecretScrubber

    return SecretScrubber()


def run_supervisor(cfg: ServerConfig, workers: int, argv: list[str]) -> int:
    """Start `workers` processes on one port (SO_REUSEPORT); forward signals; restart crashes."""
    # The workers' metrics go to one directory, so a scrape answered by any of them sums all.
    metrics_dir = tempfile.mkdtemp(prefix="aibridge-metrics-")
    env = {**os.environ, WORKER_ENV: "1", MULTIPROC_ENV: metrics_dir}
    try:
        return _supervise(argv, workers, env)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(argv: list[str], workers: int, env: dict[str, str]) -> int:
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(workers):
        procs.append(subprocess.Popen(argv, env=env))
    while True:
        alive = [p for p in procs if p.poll() is None]
        if stopping:
            for p in alive:
                try:
                    p.wait(GRACE_SECONDS + 15)
                except subprocess.TimeoutExpired:
                    p.kill()
            return 0
        for i, p in enumerate(procs):
            if p.poll() is not None and not stopping:
                sys.stderr.write(
                    f"aibridge: worker {p.pid} exited with {p.returncode}; restarting\n"
                )
                worker_exited(p.pid, env[MULTIPROC_ENV])
                time.sleep(0.5)
                procs[i] = subprocess.Popen(argv, env=env)
        time.sleep(0.2)
