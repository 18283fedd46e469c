"""Providers and their encrypted API keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from gateway import validation
from gateway.crypto import Keyring
from gateway.models import KeyRef, ProviderCreate, ProviderKeyPublic, ProviderPublic, ProviderUpdate
from gateway.providers import get_provider_type
from gateway.redaction import mask_secret
from gateway.store.changes import SYSTEM_ACTOR, Actor, audit
from gateway.store.errors import Conflict, NotFound
from schema.models import Provider, ProviderKey
from schema.types import utcnow

UrlCheck = Callable[[str], None]
"""Raises ValueError when a base URL is not allowed (see gateway.netpolicy)."""


def key_aad(provider_id: uuid.UUID) -> bytes:
    """Bind each ciphertext to its provider: a key blob copied to another row won't decrypt."""
    return b"aibridge-provider-key:" + provider_id.bytes


def _live(session: Session, name: str) -> Provider | None:
    stmt = select(Provider).where(col(Provider.name) == name, col(Provider.deleted_at).is_(None))
    return session.execute(stmt).scalars().first()


def get_provider(session: Session, *, ref: str) -> Provider:
    """A live provider by name or id; NotFound otherwise."""
    provider = _live(session, ref)
    if provider is None:
        try:
            provider = session.get(Provider, uuid.UUID(ref))
        except ValueError:
            provider = None
    if provider is None or provider.deleted_at is not None:
        raise NotFound(f"no provider named {ref!r}")
    return provider


def list_providers(session: Session, *, include_deleted: bool = False) -> list[Provider]:
    stmt = select(Provider).order_by(col(Provider.name), col(Provider.created_at))
    if not include_deleted:
        stmt = stmt.where(col(Provider.deleted_at).is_(None))
    return list(session.execute(stmt).scalars())


def provider_keys(session: Session, *, provider_id: uuid.UUID) -> list[ProviderKey]:
    stmt = (
        select(ProviderKey)
        .where(col(ProviderKey.provider_id) == provider_id)
        .order_by(col(ProviderKey.position), col(ProviderKey.created_at))
    )
    return list(session.execute(stmt).scalars())


def _resolve_base_url(ptype_name: str, base_url: str | None, check: UrlCheck | None) -> str:
    ptype = get_provider_type(ptype_name)
    if not base_url:
        if ptype.default_base_url is None:
            raise validation.InvalidField("base_url", f"a {ptype_name} provider needs an endpoint")
        base_url = ptype.default_base_url
    url = validation.base_url(base_url)
    if check is not None:
        try:
            check(url)
        except ValueError as exc:
            raise validation.InvalidField("base_url", str(exc)) from exc
    return url


def create_provider(
    session: Session,
    *,
    data: ProviderCreate,
    keyring: Keyring,
    actor: Actor,
    check_url: UrlCheck | None = None,
) -> Provider:
    name = validation.provider_name(data.name)
    display = validation.display_name(data.display_name) or name
    keys = [validation.api_key(k) for k in data.api_keys]
    if not keys:
        raise validation.InvalidField("api_keys", "at least one API key is required")
    url = _resolve_base_url(data.type, data.base_url, check_url)
    taken = Conflict("name", f"a provider named {name!r} already exists")
    if _live(session, name) is not None:
        raise taken
    provider = Provider(
        type=data.type, name=name, display_name=display, enabled=data.enabled, base_url=url
    )
    session.add(provider)
    try:
        session.flush()
    except IntegrityError as exc:  # another process created the same name since the check
        raise taken from exc
    for position, key in enumerate(keys):
        session.add(_new_key(provider.id, position, key, keyring))
    audit(
        session,
        actor=actor,
        action="provider.create",
        target_type="provider",
        target_id=provider.id,
        target_name=name,
        details={"type": data.type, "base_url": url, "enabled": data.enabled, "keys": len(keys)},
    )
    session.flush()
    return provider


def _new_key(provider_id: uuid.UUID, position: int, key: str, keyring: Keyring) -> ProviderKey:
    return ProviderKey(
        provider_id=provider_id,
        position=position,
        ciphertext=keyring.encrypt(key, aad=key_aad(provider_id)),
        masked=mask_secret(key),
    )


def update_provider(
    session: Session,
    *,
    provider: Provider,
    changes: ProviderUpdate,
    keyring: Keyring,
    actor: Actor,
    check_url: UrlCheck | None = None,
) -> Provider:
    details: dict[str, object] = {}
    if changes.display_name is not None:
        provider.display_name = validation.display_name(changes.display_name) or provider.name
        details["display_name"] = provider.display_name
    if changes.enabled is not None:
        provider.enabled = changes.enabled
        details["enabled"] = changes.enabled
    if changes.base_url is not None:
        provider.base_url = _resolve_base_url(provider.type, changes.base_url, check_url)
        details["base_url"] = provider.base_url
    if changes.api_keys is not None:
        details["keys"] = _replace_keys(session, provider, changes.api_keys, keyring)
    provider.updated_at = utcnow()
    session.add(provider)
    audit(
        session,
        actor=actor,
        action="provider.update",
        target_type="provider",
        target_id=provider.id,
        target_name=provider.name,
        details=details,
    )
    session.flush()
    return provider


def _replace_keys(
    session: Session, provider: Provider, refs: Sequence[KeyRef], keyring: Keyring
) -> dict[str, int]:
    """Make `refs` the provider's full key set, in order. Returns counts for the audit log."""
    if not refs:
        raise validation.InvalidField("api_keys", "at least one API key is required")
    existing = {k.id: k for k in provider_keys(session, provider_id=provider.id)}
    kept: set[uuid.UUID] = set()
    rows: list[ProviderKey] = []
    for position, ref in enumerate(refs):
        if ref.id is not None:
            row = existing.get(ref.id)
            if row is None:
                raise validation.InvalidField("api_keys", f"unknown key id {ref.id}")
            if ref.id in kept:
                raise validation.InvalidField("api_keys", f"key id {ref.id} given twice")
            kept.add(ref.id)
            row.position = position
            rows.append(row)
        else:
            key = validation.api_key(ref.api_key or "")
            rows.append(_new_key(provider.id, position, key, keyring))
    removed = [kid for kid in existing if kid not in kept]
    if removed:
        session.execute(delete(ProviderKey).where(col(ProviderKey.id).in_(removed)))
    session.add_all(rows)
    return {"kept": len(kept), "added": len(rows) - len(kept), "removed": len(removed)}


def delete_provider(session: Session, *, provider: Provider, actor: Actor) -> None:
    """Soft delete (the row stays for the records that name it); its API keys are erased."""
    session.execute(delete(ProviderKey).where(col(ProviderKey.provider_id) == provider.id))
    provider.deleted_at = utcnow()
    provider.enabled = False
    provider.updated_at = provider.deleted_at
    session.add(provider)
    audit(
        session,
        actor=actor,
        action="provider.delete",
        target_type="provider",
        target_id=provider.id,
        target_name=provider.name,
    )
    session.flush()


def to_public(session: Session, provider: Provider) -> ProviderPublic:
    keys = provider_keys(session, provider_id=provider.id)
    return ProviderPublic(
        id=provider.id,
        type=provider.type,
        name=provider.name,
        display_name=provider.display_name,
        enabled=provider.enabled,
        base_url=provider.base_url,
        api_keys=[
            ProviderKeyPublic(id=k.id, masked=k.masked, created_at=k.created_at) for k in keys
        ],
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


@dataclass(frozen=True, slots=True)
class DecryptedProvider:
    """A live provider with its plaintext keys: only for the in-memory routing snapshot."""

    id: uuid.UUID
    type: str
    name: str
    display_name: str
    enabled: bool
    base_url: str
    api_keys: tuple[str, ...]


def load_live_providers(session: Session, *, keyring: Keyring) -> list[DecryptedProvider]:
    providers = list_providers(session)
    keys: dict[uuid.UUID, list[ProviderKey]] = {p.id: [] for p in providers}
    if providers:
        stmt = select(ProviderKey).where(col(ProviderKey.provider_id).in_(list(keys)))
        for key in session.execute(stmt).scalars():
            keys[key.provider_id].append(key)
    out = []
    for p in providers:
        ordered = sorted(keys[p.id], key=lambda k: k.position)
        plain = tuple(keyring.decrypt(k.ciphertext, aad=key_aad(p.id)) for k in ordered)
        out.append(
            DecryptedProvider(p.id, p.type, p.name, p.display_name, p.enabled, p.base_url, plain)
        )
    return out


def rotate_encryption(session: Session, *, keyring: Keyring, actor: Actor = SYSTEM_ACTOR) -> int:
    """Re-encrypt every key not sealed with the primary encryption key. Returns the count.

    Raises KeyringError (nothing changed) when a key was sealed with a key not configured.
    """
    count = 0
    for key in session.execute(select(ProviderKey)).scalars():
        if keyring.needs_rotation(key.ciphertext):
            plain = keyring.decrypt(key.ciphertext, aad=key_aad(key.provider_id))
            key.ciphertext = keyring.encrypt(plain, aad=key_aad(key.provider_id))
            session.add(key)
            count += 1
    if count:
        audit(
            session,
            actor=actor,
            action="keys.rotate",
            target_type="provider_keys",
            target_id=None,
            target_name=None,
            details={"reencrypted": count},
        )
    session.flush()
    return count
