"""The gateway's services, built from Settings in an entry point and passed down.

`Runtime.start()` opens the database (migrations), loads the encryption keys and the routing
snapshot, replays journals left by crashed processes, and starts the background threads
(configuration watcher, database writer). `stop()` flushes everything.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gateway import netpolicy
from gateway.crypto import Keyring
from gateway.db import make_engine, prepare_database
from gateway.journal import Journal
from gateway.logs import structured_logger
from gateway.metrics import Metrics
from gateway.recorder import JournalRecorder
from gateway.redaction import SecretScrubber
from gateway.registry import ConfigStore
from gateway.retention import RetentionScheduler
from gateway.seed import seed_from_environment
from gateway.settings import Settings
from gateway.store.changes import SYSTEM_ACTOR
from gateway.store.providers import UrlCheck
from gateway.store.users import create_token, create_user
from gateway.writer import Writer, replay_orphans
from schema.models import User

log = logging.getLogger(__name__)

BOOTSTRAP_ADMIN = "admin"
METRICS_REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Bootstrap:
    username: str
    token: str


def open_engine(settings: Settings) -> Engine:
    """Engine + migrations: what the CLI's admin commands need."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(settings.data_dir, 0o700)  # key file, journal and SQLite file: owner only
    engine = make_engine(settings.effective_database_url)
    prepare_database(engine)
    return engine


def load_keyring(settings: Settings) -> Keyring:
    configured = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
    return Keyring.load(configured, settings.data_dir)


def bootstrap_admin(engine: Engine) -> Bootstrap | None:
    """On the very first start (no users at all), create `admin` and a token, shown once."""
    with Session(engine) as session:
        if session.execute(select(func.count()).select_from(User)).scalar_one():
            return None
        try:
            user = create_user(session, username=BOOTSTRAP_ADMIN, role="admin", actor=SYSTEM_ACTOR)
            created = create_token(
                session, user=user, name="bootstrap", expires_at=None, actor=SYSTEM_ACTOR
            )
            session.commit()
        except IntegrityError:  # another process started at the same moment and won
            session.rollback()
            return None
    return Bootstrap(BOOTSTRAP_ADMIN, created.token)


def url_checker(settings: Settings) -> UrlCheck | None:
    if settings.allow_private_upstreams:
        return None
    return lambda url: netpolicy.check_url(url, allow_private=False)


class Runtime:
    def __init__(self, settings: Settings, *, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.environ = dict(environ or {})
        """The process environment, for seeding providers (AI_GATEWAY_PROVIDER_<N>_*)."""
        self.instance_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.engine: Engine | None = None
        self.keyring: Keyring | None = None
        self.config: ConfigStore | None = None
        self.journal: Journal | None = None
        self.writer: Writer | None = None
        self.recorder: JournalRecorder | None = None
        self.retention: RetentionScheduler | None = None
        self.metrics = Metrics()
        self.metrics.add_refresher(self._refresh_metrics)
        self._metrics_stop = threading.Event()
        self.started = False

    @property
    def journal_dir(self) -> Path:
        return self.settings.data_dir / "journal"

    def start(self) -> None:
        s = self.settings
        self.engine = open_engine(s)
        self.keyring = load_keyring(s)
        seed_from_environment(self.engine, self.keyring, self.environ, check_url=url_checker(s))
        replayed = replay_orphans(self.engine, self.journal_dir)
        if replayed:
            log.info("replayed %d journalled records from a previous run", replayed)
        self.config = ConfigStore(self.engine, self.keyring, interval=s.reload_interval_seconds)
        self.config.start()
        self.journal = Journal(
            self.journal_dir, self.instance_id, max_pending=s.journal_max_bytes_int
        )
        self.writer = Writer(self.engine, self.journal)
        self.writer.start()
        self.retention = RetentionScheduler(self.engine, s)  # ~5 s after start, then periodic
        self.retention.start()
        slog = structured_logger() if s.structured_logging else None
        self.recorder = JournalRecorder(
            self.journal, self.writer, instance_id=self.instance_id, structured_log=slog
        )
        if self.metrics.multiprocess:  # keep this worker's gauges current for other scrapers
            self._metrics_stop.clear()
            threading.Thread(
                target=self._metrics_loop, name="aibridge-metrics", daemon=True
            ).start()
        self.started = True

    def _refresh_metrics(self, m: Metrics) -> None:
        m.journal_pending.set(self.journal.pending_bytes() if self.journal else 0)
        m.database_ok.set(1 if self.writer is not None and self.writer.healthy else 0)
        m.config_version.set(self.config.snapshot.version if self.config else -1)

    def _metrics_loop(self) -> None:
        while not self._metrics_stop.wait(METRICS_REFRESH_SECONDS):
            try:
                self.metrics.refresh()
            except Exception:  # a gauge refresh must never stop the gateway
                log.exception("metrics refresh failed")

    def scrubber(self) -> SecretScrubber:
        snapshot = self.config.snapshot if self.config else None
        return snapshot.scrubber if snapshot else SecretScrubber()

    def flush(self, timeout: float = 30.0) -> bool:
        return self.writer.flush(timeout) if self.writer else True

    def stop(self) -> None:
        self._metrics_stop.set()
        if self.retention is not None:
            self.retention.stop()
        if self.writer is not None:
            self.writer.stop()
        if self.journal is not None:
            self.journal.close()
        if self.config is not None:
            self.config.stop()
        if self.engine is not None:
            self.engine.dispose()
        self.started = False
