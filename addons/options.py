"""Every aibridge setting as a mitmproxy option, resolved into Settings; the runtime's life.

`mitmdump -s addons/aibridge.py --set ai_gateway_retention=90d` and `aibridge server
--ai-gateway-retention 90d` end up in the same place: these options (highest precedence), then
`AI_GATEWAY_*`, then the YAML file, then defaults.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from mitmproxy import ctx, exceptions

from addons.errors import install_error_pages
from addons.state import Gateway
from gateway import settings as gs
from gateway.logs import LogSetup, setup_logging
from gateway.runtime import Runtime, bootstrap_admin

log = logging.getLogger(__name__)

CONFIG_OPTION = "ai_gateway_config"
BOOTSTRAP_OPTION = "ai_gateway_bootstrap_admin"


class Options:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._logging: LogSetup | None = None
        self._started = False
        self._applied = False

    def load(self, loader: Any) -> None:
        install_error_pages()
        loader.add_option(
            CONFIG_OPTION, str, "", "aibridge YAML config file (keys under ai_gateway:)."
        )
        loader.add_option(
            BOOTSTRAP_OPTION,
            bool,
            True,
            "On the first start (no users), create an admin user and print its token once.",
        )
        for field in gs.field_names():
            loader.add_option(
                gs.option_name(field),
                Optional[str],  # noqa: UP045 - mitmproxy's option types
                None,
                f"{gs.field_help(field)} (env {gs.env_name(field)})",
            )

    def overrides(self) -> dict[str, Any]:
        values = {}
        for field in gs.field_names():
            value = getattr(ctx.options, gs.option_name(field))
            if value is not None:
                values[field] = value
        return values

    def configure(self, updated: Sequence[str] | set[str]) -> None:
        # The first call always applies: the lean server sets no ai_gateway_* option when
        # everything comes from the environment, and mitmproxy's own options (body_size_limit,
        # http2) must still follow the settings.
        relevant = {gs.option_name(f) for f in gs.field_names()} | {CONFIG_OPTION}
        if self._applied and not (set(updated) & relevant):
            return
        self._applied = True
        try:
            loaded = gs.load_settings(
                self.overrides(), config_file=ctx.options.ai_gateway_config or None
            )
        except ValueError as exc:
            raise exceptions.OptionsError(f"aibridge: {exc}") from exc
        if self._started and self.gateway.loaded is not None:
            changed = [
                f
                for f in gs.field_names()
                if getattr(loaded.settings, f) != getattr(self.gateway.settings, f)
            ]
            if changed:
                log.warning("aibridge settings %s change only after a restart", ", ".join(changed))
            return
        self.gateway.loaded = loaded
        s = loaded.settings
        ctx.options.update(http2=s.http2, connection_strategy="lazy")
        body_limit = s.max_request_body_bytes
        # mitmproxy's own limit is a backstop for bodies without Content-Length; ours (413 with a
        # provider-shaped body) is checked first in the BodyLimit addon.
        ctx.options.update(body_size_limit=str(max(body_limit * 2, body_limit + (16 << 20))))

    async def running(self) -> None:
        settings = self.gateway.settings
        if self.gateway.own_logging is False and (settings.log_json or settings.structured_logging):
            self._logging = setup_logging(
                human="", json_path=settings.log_json, level=settings.log_level
            )
        self._started = True
        if self.gateway.runtime is not None:
            return  # the lean server started it before listening
        try:
            await start_runtime(self.gateway, bootstrap=ctx.options.ai_gateway_bootstrap_admin)
        except Exception as exc:  # noqa: BLE001 - report clearly, then stop the proxy
            log.error("aibridge failed to start: %s", exc)
            ctx.master.shutdown()

    async def done(self) -> None:
        runtime = self.gateway.runtime
        if runtime is not None:
            await asyncio.to_thread(runtime.stop)
        if self._logging is not None:
            self._logging.stop()


async def start_runtime(gateway: Gateway, *, bootstrap: bool) -> None:
    """Open the database, load the snapshot, start the writer; on the very first start create
    the admin user and show its token once. The gateway is `ready` only afterwards."""
    runtime = Runtime(gateway.settings, environ=os.environ)
    runtime.metrics.add_refresher(gateway.refresh_metrics)
    await asyncio.to_thread(runtime.start)
    if bootstrap and runtime.engine is not None:
        created = await asyncio.to_thread(bootstrap_admin, runtime.engine)
        if created is not None and runtime.config is not None:
            await asyncio.to_thread(runtime.config.reload)
            # Deliberately not through logging: the token is shown once, on the console only.
            sys.stderr.write(
                f"\naibridge: first start: created admin user {created.username!r}.\n"
                f"aibridge: its token (shown once, store it now): {created.token}\n\n"
            )
            sys.stderr.flush()
    gateway.runtime = runtime
    log.info("aibridge ready (instance %s)", runtime.instance_id)
