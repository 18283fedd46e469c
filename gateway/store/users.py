"""Users and their gateway tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from gateway import validation
from gateway.auth import hash_token, new_token, token_hint
from gateway.models import TokenCreated, TokenPublic, UserPublic
from gateway.store.changes import Actor, audit
from gateway.store.errors import Conflict, NotFound
from schema.models import ApiToken, User
from schema.types import utcnow

ROLES = ("admin", "auditor", "member")


def get_user(session: Session, *, username: str) -> User:
    stmt = select(User).where(col(User.username) == username)
    user = session.execute(stmt).scalars().first()
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def _username_taken(session: Session, username: str) -> bool:
    stmt = select(col(User.id)).where(col(User.username) == username)
    return session.execute(stmt).first() is not None


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(col(User.username))).scalars())


def create_user(session: Session, *, username: str, role: str, actor: Actor) -> User:
    validation.username(username)
    if role not in ROLES:
        raise validation.InvalidField("role", f"must be one of {', '.join(ROLES)}")
    taken = Conflict("username", f"a user named {username!r} already exists")
    if _username_taken(session, username):
        raise taken
    user = User(username=username, role=role)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # created by another process since the check
        raise taken from exc
    audit(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=user.id,
        target_name=username,
        details={"role": role},
    )
    return user


def update_user(
    session: Session,
    *,
    user: User,
    actor: Actor,
    role: str | None = None,
    disabled: bool | None = None,
) -> User:
    details: dict[str, object] = {}
    if role is not None:
        if role not in ROLES:
            raise validation.InvalidField("role", f"must be one of {', '.join(ROLES)}")
        user.role = role
        details["role"] = role
    if disabled is not None:
        user.disabled = disabled
        details["disabled"] = disabled
    user.updated_at = utcnow()
    session.add(user)
    audit(
        session,
        actor=actor,
        action="user.update",
        target_type="user",
        target_id=user.id,
        target_name=user.username,
        details=details,
    )
    session.flush()
    return user


def user_public(user: User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


def create_token(
    session: Session, *, user: User, name: str, expires_at: datetime | None, actor: Actor
) -> TokenCreated:
    if expires_at is not None and expires_at.utcoffset() is None:
        raise validation.InvalidField("expires_at", "give a timezone (e.g. 2027-01-01T00:00:00Z)")
    validation.token_name(name)
    plaintext = new_token()
    row = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(plaintext),
        hint=token_hint(plaintext),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor=actor,
        action="token.create",
        target_type="token",
        target_id=row.id,
        target_name=name or row.hint,
        details={"user": user.username},
    )
    public = token_public(row, user.username)
    return TokenCreated(**public.model_dump(), token=plaintext)


def list_tokens(session: Session, *, user: User | None = None) -> list[tuple[ApiToken, str]]:
    stmt = select(ApiToken, col(User.username)).join(User, col(User.id) == col(ApiToken.user_id))
    if user is not None:
        stmt = stmt.where(col(ApiToken.user_id) == user.id)
    stmt = stmt.order_by(col(ApiToken.created_at))
    return [(t, name) for t, name in session.execute(stmt).all()]


def get_token(session: Session, *, token_id: uuid.UUID) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    return row


def revoke_token(session: Session, *, token: ApiToken, actor: Actor) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit(
            session,
            actor=actor,
            action="token.revoke",
            target_type="token",
            target_id=token.id,
            target_name=token.name or token.hint,
        )
        session.flush()
    return token


def token_public(row: ApiToken, username: str) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        user_id=row.user_id,
        username=username,
        name=row.name,
        hint=row.hint,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
