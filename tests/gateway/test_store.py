"""gateway.store on SQLite and PostgreSQL: providers, encrypted keys, version and audit
(users and tokens: test_store_users.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from gateway.crypto import Keyring, KeyringError, generate_key
from gateway.models import KeyRef, ProviderCreate, ProviderUpdate
from gateway.store import Actor, Conflict, NotFound, current_version
from gateway.store import providers as pstore
from gateway.store import users as ustore
from gateway.validation import InvalidField
from schema.models import AuditLog, Provider, ProviderKey

KEY1 = "sk-ant-api03-FIRSTkeyFIRSTkeyFIRSTkey-0001"
KEY2 = "sk-ant-api03-SECONDkeySECONDkeySECOND-0002"
KEY3 = "sk-ant-api03-THIRDkeyTHIRDkeyTHIRDkey-0003"
ALICE = Actor(name="alice", id=uuid.uuid4())


def create(
    session: Session,
    keyring: Keyring,
    name: str = "anthropic-corp",
    keys: list[str] | None = None,
    **kw: object,
) -> Provider:
    data = ProviderCreate(
        type=kw.pop("type", "anthropic"),
        name=name,  # type: ignore[arg-type]
        api_keys=keys or [KEY1],
        **kw,
    )  # type: ignore[arg-type]
    provider = pstore.create_provider(session, data=data, keyring=keyring, actor=ALICE)
    session.commit()
    return provider


def audit_rows(session: Session) -> list[AuditLog]:
    return list(session.execute(select(AuditLog)).scalars())


def raw_ciphertexts(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        return [bytes(r[0]) for r in conn.execute(text("SELECT ciphertext FROM provider_keys"))]


# --- providers --------------------------------------------------------------------------------


def test_create_and_read_back(
    session: Session, keyring: Keyring, new_session: Callable[[], Session]
) -> None:
    p = create(session, keyring, display_name="Corp Anthropic", base_url="https://llm.example.com/")
    with new_session() as s:
        got = pstore.get_provider(s, ref="anthropic-corp")
        assert (got.id, got.type, got.name, got.display_name, got.enabled, got.base_url) == (
            p.id,
            "anthropic",
            "anthropic-corp",
            "Corp Anthropic",
            True,
            "https://llm.example.com",
        )
        assert pstore.get_provider(s, ref=str(p.id)).id == p.id
        assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
        public = pstore.to_public(s, got)
        assert [k.masked for k in public.api_keys] == ["sk-a...0001"]
        assert public.api_keys[0].created_at.tzinfo is not None


def test_default_base_url_per_type(session: Session, keyring: Keyring) -> None:
    a = create(session, keyring, "a")
    o = create(session, keyring, "o", type="openai")
    assert (a.base_url, o.base_url) == ("https://api.anthropic.com", "https://api.openai.com/v1")
    assert a.display_name == "a"
    with pytest.raises(InvalidField, match="base_url: a openai-compat provider needs an endpoint"):
        create(session, keyring, "c", type="openai-compat")


def test_unknown_type_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        ProviderCreate(type="gemini", name="g", api_keys=[KEY1])  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ProviderCreate(type="anthropic", name="g", api_keys=[])


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"keys": ["sk with space"]}, "api_keys"),
        ({"base_url": "ftp://x.example"}, "base_url"),
        ({"base_url": "https://u:p@x.example"}, "base_url"),
        ({"display_name": "x" * 201}, "display_name"),
    ],
)
def test_create_validates(
    session: Session, keyring: Keyring, kw: dict[str, object], field: str
) -> None:
    kw = dict(kw)  # the parameter is shared by both database runs
    name = str(kw.pop("name", "ok-name"))
    with pytest.raises(InvalidField) as exc:
        create(session, keyring, name, **kw)  # type: ignore[arg-type]
    assert exc.value.field == field
    session.rollback()
    assert pstore.list_providers(session) == []
    assert current_version(session) == 0


def test_url_check_is_applied(session: Session, keyring: Keyring) -> None:
    def refuse(url: str) -> None:
        raise ValueError(f"{url} is private")

    data = ProviderCreate(type="anthropic", name="p", base_url="http://10.0.0.1", api_keys=[KEY1])
    with pytest.raises(InvalidField, match=r"^base_url: http://10.0.0.1 is private$"):
        pstore.create_provider(session, data=data, keyring=keyring, actor=ALICE, check_url=refuse)


def test_names_unique_among_live_providers(session: Session, keyring: Keyring) -> None:
    first = create(session, keyring, "dup")
    with pytest.raises(Conflict) as exc:
        create(session, keyring, "dup")
    assert (exc.value.field, exc.value.message) == ("name", "a provider named 'dup' already exists")
    session.rollback()
    pstore.delete_provider(session, provider=first, actor=ALICE)
    session.commit()
    second = create(session, keyring, "dup")
    assert second.id != first.id
    assert [p.id for p in pstore.list_providers(session)] == [second.id]
    assert {p.id for p in pstore.list_providers(session, include_deleted=True)} == {
        first.id,
        second.id,
    }
    assert pstore.get_provider(session, ref="dup").id == second.id


def test_race_on_a_name_is_a_conflict_not_a_crash(
    session: Session, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(session, keyring, "raced")
    # Another process inserted the name between our check and our insert.
    monkeypatch.setattr(pstore, "_live", lambda _s, _n: None)
    with pytest.raises(Conflict, match="already exists"):
        create(session, keyring, "raced")
    session.rollback()
    monkeypatch.undo()
    assert len(pstore.list_providers(session)) == 1


def test_get_unknown_or_deleted(session: Session, keyring: Keyring) -> None:
    p = create(session, keyring, "gone")
    pstore.delete_provider(session, provider=p, actor=ALICE)
    session.commit()
    for ref in ("gone", str(p.id), "nope", str(uuid.uuid4()), "not-a-uuid-at-all"):
        with pytest.raises(NotFound):
            pstore.get_provider(session, ref=ref)


def test_delete_soft_deletes_and_erases_keys(
    session: Session, keyring: Keyring, engine: Engine
) -> None:
    p = create(session, keyring, "del", keys=[KEY1, KEY2])
    pstore.delete_provider(session, provider=p, actor=ALICE)
    session.commit()
    row = session.get(Provider, p.id)
    assert row is not None and row.deleted_at is not None and row.enabled is False
    assert pstore.provider_keys(session, provider_id=p.id) == []
    assert raw_ciphertexts(engine) == []
    assert pstore.load_live_providers(session, keyring=keyring) == []


def test_update_fields(session: Session, keyring: Keyring) -> None:
    p = create(session, keyring, "upd")
    before = p.updated_at
    pstore.update_provider(
        session,
        provider=p,
        keyring=keyring,
        actor=ALICE,
        changes=ProviderUpdate(
            display_name="Shiny", enabled=False, base_url="https://proxy.example/anthropic/"
        ),
    )
    session.commit()
    got = pstore.get_provider(session, ref="upd")
    assert (got.display_name, got.enabled, got.base_url) == (
        "Shiny",
        False,
        "https://proxy.example/anthropic",
    )
    assert got.updated_at >= before
    pstore.update_provider(
        session, provider=got, keyring=keyring, actor=ALICE, changes=ProviderUpdate(display_name="")
    )
    assert got.display_name == "upd"
    with pytest.raises(InvalidField, match="base_url"):
        pstore.update_provider(
            session,
            provider=got,
            keyring=keyring,
            actor=ALICE,
            changes=ProviderUpdate(base_url="https://x.example/?a=1"),
        )


def test_update_model_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ProviderUpdate(name="rename")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="exactly one of id or api_key"):
        KeyRef()
    with pytest.raises(ValidationError, match="exactly one of id or api_key"):
        KeyRef(id=uuid.uuid4(), api_key="x")


# --- keys -------------------------------------------------------------------------------------


def test_keys_encrypted_at_rest(
    session: Session,
    keyring: Keyring,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    db_dump: Callable[[], str],
) -> None:
    create(session, keyring, "enc", keys=[KEY1, KEY2])
    blobs = raw_ciphertexts(engine)
    assert len(blobs) == 2
    for blob in blobs:
        for key in (KEY1, KEY2):
            assert key.encode() not in blob
            assert key[13:29].encode() not in blob
    dump = db_dump()
    for key in (KEY1, KEY2):
        assert key not in dump
        assert key[13:29] not in dump
    if db_url.startswith("sqlite"):
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        files = [p for p in tmp_path.iterdir() if p.name.startswith("test.db")]
        assert files
        raw = b"".join(p.read_bytes() for p in files)
        assert b"sk-a...0001" in raw  # the masked hint is stored in the clear, the key is not
        for key in (KEY1, KEY2):
            assert key.encode() not in raw
            assert key[13:29].encode() not in raw


def test_ciphertext_is_bound_to_its_provider(session: Session, keyring: Keyring) -> None:
    a = create(session, keyring, "a")
    b = create(session, keyring, "b", keys=[KEY2])
    (ka,) = pstore.provider_keys(session, provider_id=a.id)
    (kb,) = pstore.provider_keys(session, provider_id=b.id)
    kb.ciphertext = ka.ciphertext  # copy a's blob into b's row
    session.add(kb)
    session.commit()
    with pytest.raises(KeyringError, match="failed authentication"):
        pstore.load_live_providers(session, keyring=keyring)


def test_masked_hints(session: Session, keyring: Keyring) -> None:
    p = create(session, keyring, "m", keys=[KEY1, "short-key", "tiny"])
    masked = [k.masked for k in pstore.provider_keys(session, provider_id=p.id)]
    assert masked == ["sk-a...0001", "sh...ey", "***"]


def test_patch_style_key_replacement(session: Session, keyring: Keyring, engine: Engine) -> None:
    p = create(session, keyring, "patch", keys=[KEY1, KEY2])
    k1, k2 = pstore.provider_keys(session, provider_id=p.id)
    version = current_version(session)
    changes = ProviderUpdate(api_keys=[KeyRef(api_key=KEY3), KeyRef(id=k1.id)])
    pstore.update_provider(session, provider=p, changes=changes, keyring=keyring, actor=ALICE)
    session.commit()
    rows = pstore.provider_keys(session, provider_id=p.id)
    assert [r.masked for r in rows] == ["sk-a...0003", "sk-a...0001"]
    assert rows[1].id == k1.id and rows[1].ciphertext == k1.ciphertext  # kept, not re-encrypted
    assert session.get(ProviderKey, k2.id) is None
    assert len(raw_ciphertexts(engine)) == 2
    (live,) = pstore.load_live_providers(session, keyring=keyring)
    assert live.api_keys == (KEY3, KEY1)
    assert current_version(session) == version + 1
    last = [a for a in audit_rows(session) if a.action == "provider.update"][-1]
    assert last.details == {"keys": {"kept": 1, "added": 1, "removed": 1}}


@pytest.mark.parametrize("refs", ["unknown", "twice", "empty", "bad-new"])
def test_key_replacement_rejects(session: Session, keyring: Keyring, refs: str) -> None:
    p = create(session, keyring, "rej", keys=[KEY1])
    (k1,) = pstore.provider_keys(session, provider_id=p.id)
    given = {
        "unknown": [KeyRef(id=uuid.uuid4())],
        "twice": [KeyRef(id=k1.id), KeyRef(id=k1.id)],
        "empty": [],
        "bad-new": [KeyRef(api_key="has space")],
    }[refs]
    message = {
        "unknown": "unknown key id",
        "twice": "given twice",
        "empty": "at least one API key",
        "bad-new": "printable ASCII",
    }[refs]
    with pytest.raises(InvalidField, match=message):
        pstore.update_provider(
            session,
            provider=p,
            changes=ProviderUpdate(api_keys=given),
            keyring=keyring,
            actor=ALICE,
        )
    session.rollback()
    assert [k.id for k in pstore.provider_keys(session, provider_id=p.id)] == [k1.id]


def test_key_of_another_provider_is_unknown(session: Session, keyring: Keyring) -> None:
    a = create(session, keyring, "a")
    b = create(session, keyring, "b", keys=[KEY2])
    (kb,) = pstore.provider_keys(session, provider_id=b.id)
    with pytest.raises(InvalidField, match="unknown key id"):
        pstore.update_provider(
            session,
            provider=a,
            keyring=keyring,
            actor=ALICE,
            changes=ProviderUpdate(api_keys=[KeyRef(id=kb.id)]),
        )


def test_load_live_providers_decrypts(session: Session, keyring: Keyring) -> None:
    a = create(session, keyring, "b-second", keys=[KEY2, KEY3])
    b = create(session, keyring, "a-first", enabled=False)
    gone = create(session, keyring, "c-gone")
    pstore.delete_provider(session, provider=gone, actor=ALICE)
    session.commit()
    live = pstore.load_live_providers(session, keyring=keyring)
    assert [(p.name, p.enabled, p.api_keys) for p in live] == [
        ("a-first", False, (KEY1,)),
        ("b-second", True, (KEY2, KEY3)),
    ]
    assert {p.id for p in live} == {a.id, b.id}
    with pytest.raises(KeyringError, match="not configured"):
        pstore.load_live_providers(session, keyring=Keyring.from_text(generate_key()))


def test_rotate_encryption(
    session: Session, keyring: Keyring, key_text: str, engine: Engine
) -> None:
    create(session, keyring, "r1", keys=[KEY1, KEY2])
    create(session, keyring, "r2", keys=[KEY3])
    old_blobs = set(raw_ciphertexts(engine))
    new_key = generate_key()
    both = Keyring.from_text(f"{new_key},{key_text}")
    assert all(both.needs_rotation(b) for b in old_blobs)
    version = current_version(session)
    assert pstore.rotate_encryption(session, keyring=both) == 3
    session.commit()
    blobs = raw_ciphertexts(engine)
    assert not set(blobs) & old_blobs
    assert not any(both.needs_rotation(b) for b in blobs)
    assert pstore.rotate_encryption(session, keyring=both) == 0
    session.commit()
    only_new = Keyring.from_text(new_key)
    assert sorted(
        k for p in pstore.load_live_providers(session, keyring=only_new) for k in p.api_keys
    ) == sorted([KEY1, KEY2, KEY3])
    assert current_version(session) == version + 1
    (row,) = [a for a in audit_rows(session) if a.action == "keys.rotate"]
    assert row.details == {"reencrypted": 3}


def test_rotate_with_a_missing_key_changes_nothing(
    session: Session, keyring: Keyring, engine: Engine
) -> None:
    create(session, keyring, "r", keys=[KEY1])
    before = raw_ciphertexts(engine)
    with pytest.raises(KeyringError):
        pstore.rotate_encryption(session, keyring=Keyring.from_text(generate_key()))
    session.rollback()
    assert raw_ciphertexts(engine) == before


# --- version and audit --------------------------------------------------------------------------


def test_every_change_bumps_the_version_and_is_audited(
    session: Session, keyring: Keyring, db_dump: Callable[[], str]
) -> None:
    seen = [current_version(session)]

    def step() -> None:
        session.commit()
        seen.append(current_version(session))

    p = create(session, keyring, "audited", keys=[KEY1])
    seen.append(current_version(session))
    pstore.update_provider(
        session, provider=p, keyring=keyring, actor=ALICE, changes=ProviderUpdate(enabled=False)
    )
    step()
    pstore.update_provider(
        session,
        provider=p,
        keyring=keyring,
        actor=ALICE,
        changes=ProviderUpdate(api_keys=[KeyRef(api_key=KEY2)]),
    )
    step()
    user = ustore.create_user(session, username="bob", role="member", actor=ALICE)
    step()
    ustore.update_user(session, user=user, actor=ALICE, disabled=True)
    step()
    created = ustore.create_token(session, user=user, name="laptop", expires_at=None, actor=ALICE)
    step()
    ustore.revoke_token(session, token=ustore.get_token(session, token_id=created.id), actor=ALICE)
    step()
    pstore.delete_provider(session, provider=p, actor=ALICE)
    step()
    assert seen == list(range(9))
    actions = sorted(a.action for a in audit_rows(session))
    assert actions == sorted(
        [
            "provider.create",
            "provider.update",
            "provider.update",
            "user.create",
            "user.update",
            "token.create",
            "token.revoke",
            "provider.delete",
        ]
    )
    for row in audit_rows(session):
        assert (row.actor, row.actor_id) == ("alice", ALICE.id)
        assert row.created_at.tzinfo is not None
        blob = json.dumps(row.details) + (row.target_name or "")
        for secret in (KEY1, KEY2, created.token):
            assert secret not in blob
    create_row = next(a for a in audit_rows(session) if a.action == "provider.create")
    assert create_row.details == {
        "type": "anthropic",
        "base_url": "https://api.anthropic.com",
        "enabled": True,
        "keys": 1,
    }
    assert (create_row.target_type, create_row.target_name) == ("provider", "audited")
    dump = db_dump()
    for secret in (KEY1, KEY2, created.token):
        assert secret not in dump
