"""Seeding providers from the environment, once (the deprecated path of the seed document).

On start, `AI_GATEWAY_PROVIDER_<N>_TYPE|NAME|KEY|KEYS|BASE_URL` and the legacy
`AI_GATEWAY_ANTHROPIC_KEY|BASE_URL` / `AI_GATEWAY_OPENAI_KEY|BASE_URL` create the providers
that were never seeded before. A seeded provider that is later deleted is not recreated (the
`provider_seeds` table remembers it). When the database differs from the environment (type or
endpoint), start-up says so. Several processes may start at once: the seed row's primary key
(and on PostgreSQL an advisory lock) makes exactly one of them create each provider.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from gateway.crypto import Keyring
from gateway.models import ProviderCreate
from gateway.providers import PROVIDER_TYPE_NAMES, get_provider_type
from gateway.store.changes import Actor
from gateway.store.errors import Conflict
from gateway.store.providers import UrlCheck, create_provider, list_providers
from gateway.validation import InvalidField
from schema.models import ProviderSeed

log = logging.getLogger(__name__)

SEED_ACTOR = Actor(name="environment")
_NUMBERED = re.compile(r"AI_GATEWAY_PROVIDER_(\d+)_(TYPE|NAME|KEY|KEYS|BASE_URL)")
_LOCK_KEY = 0x41494273


@dataclass(frozen=True)
class SeedSpec:
    source: str
    """The environment variable prefix it came from, for messages."""
    type: str
    name: str
    keys: tuple[str, ...]
    base_url: str | None


def specs_from_environment(environ: Mapping[str, str]) -> tuple[list[SeedSpec], list[str]]:
    """Providers described by the environment, and problems found (as messages)."""
    numbered: dict[int, dict[str, str]] = {}
    for key, value in environ.items():
        m = _NUMBERED.fullmatch(key)
        if m and value.strip():
            numbered.setdefault(int(m.group(1)), {})[m.group(2)] = value.strip()
    specs: list[SeedSpec] = []
    problems: list[str] = []
    for n in sorted(numbered):
        fields, prefix = numbered[n], f"AI_GATEWAY_PROVIDER_{n}"
        keys = [k.strip() for k in fields.get("KEYS", "").split(",") if k.strip()]
        if "KEY" in fields:
            keys.insert(0, fields["KEY"])
        ptype = fields.get("TYPE", "")
        if ptype not in PROVIDER_TYPE_NAMES:
            problems.append(f"{prefix}_TYPE must be one of {', '.join(PROVIDER_TYPE_NAMES)}")
            continue
        if not keys:
            problems.append(f"{prefix}: set {prefix}_KEY or {prefix}_KEYS")
            continue
        specs.append(
            SeedSpec(prefix, ptype, fields.get("NAME", ptype), tuple(keys), fields.get("BASE_URL"))
        )
    for legacy in ("anthropic", "openai"):
        prefix = f"AI_GATEWAY_{legacy.upper()}"
        key = environ.get(f"{prefix}_KEY", "").strip()
        if key:
            specs.append(
                SeedSpec(
                    prefix,
                    legacy,
                    legacy,
                    (key,),
                    environ.get(f"{prefix}_BASE_URL", "").strip() or None,
                )
            )
    return specs, problems


def seed_from_environment(
    engine: Engine,
    keyring: Keyring,
    environ: Mapping[str, str],
    *,
    check_url: UrlCheck | None = None,
) -> list[str]:
    """Create never-seeded providers from the environment. Returns the names created."""
    specs, problems = specs_from_environment(environ)
    for problem in problems:
        log.error("provider seeding: %s", problem)
    if not specs:
        return []
    log.warning(
        "DEPRECATED: providers configured through environment variables (%s) are seeded into "
        "the database once; manage them with the dashboard, the API or `aibridge providers`",
        ", ".join(sorted({s.source for s in specs})),
    )
    created = []
    for spec in specs:
        if _seed_one(engine, keyring, spec, check_url):
            created.append(spec.name)
    return created


def _seed_one(engine: Engine, keyring: Keyring, spec: SeedSpec, check_url: UrlCheck | None) -> bool:
    with Session(engine) as session:
        try:
            created = _seed_in(session, keyring, spec, check_url)
            session.commit()
        except (InvalidField, Conflict) as exc:
            session.rollback()
            log.error("provider seeding from %s failed: %s", spec.source, exc)
            return False
        except IntegrityError:  # another process seeded or adopted it at the same moment
            session.rollback()
            return False
    if created:
        log.info("seeded provider %r (%s) from %s", spec.name, spec.type, spec.source)
    return created


def _seed_in(
    session: Session, keyring: Keyring, spec: SeedSpec, check_url: UrlCheck | None
) -> bool:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    if session.get(ProviderSeed, spec.name) is not None:
        _report_drift(session, spec)
        return False
    live = {p.name: p for p in list_providers(session)}
    if spec.name in live:  # created by hand before seeding ever ran: adopt, never overwrite
        session.add(ProviderSeed(name=spec.name, provider_id=live[spec.name].id))
        session.flush()
        _report_drift(session, spec)
        return False
    data = ProviderCreate(
        type=spec.type,  # type: ignore[arg-type]
        name=spec.name,
        base_url=spec.base_url,
        api_keys=list(spec.keys),
    )
    provider = create_provider(
        session, data=data, keyring=keyring, actor=SEED_ACTOR, check_url=check_url
    )
    session.add(ProviderSeed(name=spec.name, provider_id=provider.id))
    session.flush()
    return True


def _report_drift(session: Session, spec: SeedSpec) -> None:
    live = next((p for p in list_providers(session) if p.name == spec.name), None)
    if live is None:
        return  # seeded, then deleted on purpose: not recreated
    wanted_url = spec.base_url or get_provider_type(spec.type).default_base_url or ""
    differences = []
    if live.type != spec.type:
        differences.append(f"type {live.type!r} in the database, {spec.type!r} in {spec.source}")
    if wanted_url and live.base_url != wanted_url.rstrip("/"):
        differences.append(
            f"endpoint {live.base_url!r} in the database, {wanted_url!r} in {spec.source}"
        )
    if differences:
        log.warning(
            "provider %r differs from the environment (%s); the database wins — change it with "
            "`aibridge providers update` or remove the variables",
            spec.name,
            "; ".join(differences),
        )


def seeded_names(session: Session) -> list[str]:
    return list(session.execute(select(col(ProviderSeed.name))).scalars())
