"""The in-memory configuration snapshot the request path reads, and the watcher that swaps it.

The request path never queries the database: it reads `ConfigStore.snapshot`, an immutable
value replaced atomically (one attribute assignment) when the configuration version changes.
A request keeps the snapshot it started with. Changes made by any process reach every process
within `reload_interval` (SQLite: a version poll) or at once (PostgreSQL: LISTEN/NOTIFY, with
the poll as a safety net).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlmodel import Session

from gateway.auth import TokenEntry
from gateway.crypto import Keyring
from gateway.providers import get_provider_type
from gateway.providers.base import ProviderType
from gateway.redaction import SecretScrubber
from gateway.store.changes import current_version
from gateway.store.providers import load_live_providers
from schema.models import ApiToken, User

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Upstream:
    scheme: str
    host: str
    port: int
    path: str
    """Path prefix of the base URL, without a trailing slash ("" or "/v1")."""

    @classmethod
    def parse(cls, base_url: str) -> Upstream:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname or "", port, parts.path.rstrip("/"))

    def join(self, path: str) -> str:
        """Upstream path for a gateway sub-path; `/v1` is not doubled when the base ends in it."""
        if self.path.endswith("/v1") and (path == "/v1" or path.startswith("/v1/")):
            path = path[3:]
        return self.path + path


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    id: uuid.UUID
    name: str
    type: ProviderType
    enabled: bool
    base_url: str
    upstream: Upstream
    api_key: str | None
    all_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    providers: Mapping[str, ProviderRoute] = field(default_factory=dict)
    tokens: Mapping[str, TokenEntry] = field(default_factory=dict)

    scrubber: SecretScrubber = field(default_factory=SecretScrubber)
    """Masks every provider key of this snapshot inside free text (built once per snapshot)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(k for p in self.providers.values() for k in p.all_keys)


EMPTY = Snapshot(version=-1)


def load_snapshot(engine: Engine, keyring: Keyring) -> Snapshot:
    with Session(engine) as session:
        version = current_version(session)
        providers = {}
        for p in load_live_providers(session, keyring=keyring):
            providers[p.name] = ProviderRoute(
                id=p.id,
                name=p.name,
                type=get_provider_type(p.type),
                enabled=p.enabled,
                base_url=p.base_url,
                upstream=Upstream.parse(p.base_url),
                api_key=p.api_keys[0] if p.api_keys else None,
                all_keys=p.api_keys,
            )
        rows = session.execute(
            select(ApiToken, User).join(User, User.id == ApiToken.user_id)  # type: ignore[arg-type]
        ).all()
        tokens = {
            t.token_hash: TokenEntry(
                token_id=t.id,
                token_hash=t.token_hash,
                user_id=u.id,
                username=u.username,
                role=u.role,
                user_disabled=u.disabled,
                expires_at=t.expires_at,
                revoked=t.revoked_at is not None,
            )
            for t, u in rows
        }
    keys = [k for p in providers.values() for k in p.all_keys]
    return Snapshot(version, MappingProxyType(providers), MappingProxyType(tokens),
                    SecretScrubber(keys))


class ConfigStore:
    """Holds the current snapshot; a background thread reloads it when the version changes."""

    def __init__(self, engine: Engine, keyring: Keyring, *, interval: float = 1.0) -> None:
        self._engine = engine
        self._keyring = keyring
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._swap = threading.Lock()
        self.snapshot: Snapshot = EMPTY

    def reload(self) -> Snapshot:
        """Load the database's configuration. Reloads run concurrently (every admin commit
        reloads at once, besides the poller): one loaded earlier never replaces a newer one."""
        loaded = load_snapshot(self._engine, self._keyring)
        with self._swap:
            if loaded.version >= self.snapshot.version:
                self.snapshot = loaded
            return self.snapshot

    def start(self) -> None:
        self.reload()
        poller = threading.Thread(target=self._poll_loop, name="aibridge-config-poll", daemon=True)
        self._threads.append(poller)
        if self._engine.dialect.name == "postgresql":
            listener = threading.Thread(
                target=self._listen_loop, name="aibridge-config-listen", daemon=True
            )
            self._threads.append(listener)
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=5)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with Session(self._engine) as session:
                    version = current_version(session)
                if version != self.snapshot.version:
                    self.reload()
                    log.info("configuration reloaded (version %d)", self.snapshot.version)
            except Exception as exc:  # noqa: BLE001 - keep serving the last good snapshot
                log.warning(
                    "configuration reload failed, keeping version %d: %s",
                    self.snapshot.version,
                    exc,
                )

    def _listen_loop(self) -> None:
        """PostgreSQL LISTEN: wake the poller as soon as any process commits a change."""
        from gateway.db import listen_notifications

        while not self._stop.is_set():
            try:
                for _ in listen_notifications(self._engine, self._stop):
                    self._wake.set()
            except Exception as exc:  # noqa: BLE001 - reconnect after a pause
                log.warning("LISTEN connection lost (%s); retrying", exc)
                time.sleep(1.0)
