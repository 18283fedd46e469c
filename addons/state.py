"""State shared by the aibridge addons: the runtime and each live flow's context.

One `Gateway` object is created with the addon list and handed to every addon's constructor;
nothing here is module-level.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field

from mitmproxy import http

from gateway.auth import Principal
from gateway.dumps import DumpWriter
from gateway.interception import InterceptionSession
from gateway.metrics import Metrics
from gateway.providers.base import ProviderType, Route
from gateway.registry import ProviderRoute, Snapshot
from gateway.runtime import Runtime
from gateway.settings import LoadedSettings, Settings


@dataclass
class FlowContext:
    """What the addons learn about one gateway request, in order."""

    provider_name: str
    subpath: str
    """Path after /api/v2/aibridge/<name>, without the query, decoded (e.g. /v1/messages)."""
    raw_subpath: str
    """The same, as the client sent it (forwarded upstream)."""
    query: str
    guessed_type: ProviderType
    """The provider type used to shape errors before the provider is known."""
    interception_id: uuid.UUID = field(default_factory=uuid.uuid4)
    snapshot: Snapshot | None = None
    provider: ProviderRoute | None = None
    route: Route | None = None
    principal: Principal | None = None
    byok_key: str | None = None
    session: InterceptionSession | None = None
    rejected: bool = False

    @property
    def error_type(self) -> ProviderType:
        return self.provider.type if self.provider else self.guessed_type


class Gateway:
    def __init__(self, *, own_logging: bool = False) -> None:
        self.own_logging = own_logging
        self.loaded: LoadedSettings | None = None
        self.runtime: Runtime | None = None
        self.flows: weakref.WeakKeyDictionary[http.HTTPFlow, FlowContext] = (
            weakref.WeakKeyDictionary()
        )
        self.live: set[http.HTTPFlow] = set()
        self.dump_writer: DumpWriter | None = None
        """Set by the Dumps addon when dumping is on (its failure count shows on /healthz)."""

    @property
    def settings(self) -> Settings:
        if self.loaded is None:
            raise RuntimeError("aibridge settings are not loaded yet")
        return self.loaded.settings

    @property
    def ready(self) -> bool:
        return self.runtime is not None and self.runtime.started

    def context(self, flow: http.HTTPFlow) -> FlowContext | None:
        return self.flows.get(flow)

    def refresh_metrics(self, m: Metrics) -> None:
        """The gauges only the addons know (called before scrapes, maybe from a thread)."""
        m.in_flight.set(len(self.live))
        m.dump_failures.set(self.dump_writer.failures if self.dump_writer else 0)
