"""gateway.store.users on SQLite and PostgreSQL: users, gateway tokens (stored hashed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from gateway.auth import hash_token
from gateway.store import SYSTEM_ACTOR, Conflict, NotFound, current_version
from gateway.store import users as ustore
from gateway.validation import InvalidField
from schema.models import ApiToken

# --- users and tokens ---------------------------------------------------------------------------


def test_users(session: Session) -> None:
    u = ustore.create_user(session, username="alice", role="admin", actor=SYSTEM_ACTOR)
    ustore.create_user(session, username="Bob", role="member", actor=SYSTEM_ACTOR)
    session.commit()
    assert [x.username for x in ustore.list_users(session)] == ["Bob", "alice"]
    pub = ustore.user_public(ustore.get_user(session, username="alice"))
    assert (pub.id, pub.username, pub.role, pub.disabled) == (u.id, "alice", "admin", False)
    with pytest.raises(Conflict) as exc:
        ustore.create_user(session, username="alice", role="member", actor=SYSTEM_ACTOR)
    assert exc.value.field == "username"
    with pytest.raises(InvalidField) as bad_role:
        ustore.create_user(session, username="dave", role="root", actor=SYSTEM_ACTOR)
    assert bad_role.value.field == "role"
    assert "admin, auditor, member" in bad_role.value.message
    with pytest.raises(InvalidField) as bad_name:
        ustore.create_user(session, username="-dave", role="member", actor=SYSTEM_ACTOR)
    assert bad_name.value.field == "username"
    with pytest.raises(NotFound, match="no user named 'zed'"):
        ustore.get_user(session, username="zed")


def test_user_disable_enable_and_role(session: Session) -> None:
    u = ustore.create_user(session, username="erin", role="member", actor=SYSTEM_ACTOR)
    session.commit()
    ustore.update_user(session, user=u, actor=SYSTEM_ACTOR, disabled=True)
    session.commit()
    assert ustore.get_user(session, username="erin").disabled is True
    ustore.update_user(session, user=u, actor=SYSTEM_ACTOR, disabled=False, role="auditor")
    session.commit()
    got = ustore.get_user(session, username="erin")
    assert (got.disabled, got.role) == (False, "auditor")
    with pytest.raises(InvalidField, match="role"):
        ustore.update_user(session, user=u, actor=SYSTEM_ACTOR, role="superuser")


def test_user_race_is_a_conflict(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ustore.create_user(session, username="race", role="member", actor=SYSTEM_ACTOR)
    session.commit()
    # Another process inserted the name between our check and our insert.
    monkeypatch.setattr(ustore, "_username_taken", lambda _s, _n: False)
    with pytest.raises(Conflict, match="a user named 'race' already exists"):
        ustore.create_user(session, username="race", role="member", actor=SYSTEM_ACTOR)
    session.rollback()
    monkeypatch.undo()
    assert [u.username for u in ustore.list_users(session)] == ["race"]


def test_tokens(session: Session, engine: Engine, db_dump: Callable[[], str]) -> None:
    u = ustore.create_user(session, username="frank", role="member", actor=SYSTEM_ACTOR)
    expires = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = ustore.create_token(
        session, user=u, name="laptop", expires_at=expires, actor=SYSTEM_ACTOR
    )
    session.commit()
    assert created.token.startswith("aib_") and len(created.token) == 47
    assert created.hint == f"{created.token[:4]}...{created.token[-4:]}"
    assert (created.username, created.name, created.expires_at) == ("frank", "laptop", expires)
    row = session.execute(select(ApiToken)).scalars().one()
    assert row.token_hash == hash_token(created.token)
    assert created.token not in db_dump()
    ((listed, owner),) = ustore.list_tokens(session)
    public = ustore.token_public(listed, owner)
    assert "token" not in public.model_dump()
    assert created.token not in public.model_dump_json()
    assert public.expires_at == expires and public.expires_at.tzinfo is not None
    assert public.revoked_at is None
    ustore.revoke_token(session, token=listed, actor=SYSTEM_ACTOR)
    session.commit()
    with Session(engine) as fresh:
        again = fresh.get(ApiToken, created.id)
        assert again is not None and again.revoked_at is not None
        assert again.revoked_at.tzinfo is not None
    with pytest.raises(NotFound):
        ustore.get_token(session, token_id=uuid.uuid4())


def test_token_expiry_must_be_aware(session: Session) -> None:
    u = ustore.create_user(session, username="gina", role="member", actor=SYSTEM_ACTOR)
    with pytest.raises(InvalidField) as exc:
        ustore.create_token(
            session, user=u, name="", expires_at=datetime(2031, 1, 1), actor=SYSTEM_ACTOR
        )
    assert exc.value.field == "expires_at"
    other_zone = datetime(2031, 1, 1, 9, tzinfo=timezone(timedelta(hours=9)))
    created = ustore.create_token(
        session, user=u, name="", expires_at=other_zone, actor=SYSTEM_ACTOR
    )
    session.commit()
    row = ustore.get_token(session, token_id=created.id)
    session.refresh(row)
    assert row.expires_at == datetime(2031, 1, 1, 0, tzinfo=UTC)
    with pytest.raises(InvalidField, match="at most 100"):
        ustore.create_token(session, user=u, name="n" * 101, expires_at=None, actor=SYSTEM_ACTOR)


def test_list_tokens_per_user(session: Session) -> None:
    a = ustore.create_user(session, username="ha", role="member", actor=SYSTEM_ACTOR)
    b = ustore.create_user(session, username="hb", role="member", actor=SYSTEM_ACTOR)
    for user in (a, b, a):
        ustore.create_token(
            session, user=user, name=user.username, expires_at=None, actor=SYSTEM_ACTOR
        )
    session.commit()
    assert [n for _, n in ustore.list_tokens(session, user=a)] == ["ha", "ha"]
    assert sorted(n for _, n in ustore.list_tokens(session)) == ["ha", "ha", "hb"]


def test_revoking_twice_is_one_change(session: Session) -> None:
    user = ustore.create_user(session, username="carol", role="member", actor=SYSTEM_ACTOR)
    created = ustore.create_token(session, user=user, name="", expires_at=None, actor=SYSTEM_ACTOR)
    session.commit()
    token = ustore.get_token(session, token_id=created.id)
    ustore.revoke_token(session, token=token, actor=SYSTEM_ACTOR)
    session.commit()
    version, first = current_version(session), token.revoked_at
    ustore.revoke_token(session, token=token, actor=SYSTEM_ACTOR)
    session.commit()
    assert current_version(session) == version and token.revoked_at == first
