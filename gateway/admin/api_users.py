"""Users and their gateway tokens: `/api/v2/users` (admin only).

A created token is returned once (TokenCreated.token); afterwards only its hint is shown.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from gateway.admin.deps import (
    ADMIN,
    API_DEPENDENCIES,
    AdminUser,
    DbDep,
    RuntimeDep,
    actor_of,
    commit,
)
from gateway.admin.errors import ApiError, responses
from gateway.models import (
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from gateway.store import users as store
from gateway.store.errors import Conflict

router = APIRouter(prefix="/api/v2/users", dependencies=API_DEPENDENCIES, tags=["users"])

Username = Annotated[str, Path(
    description="The user's name", min_length=1, max_length=64,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$",
)]


@router.get("", response_model=list[UserPublic], responses=responses())
def list_users(_: AdminUser, session: DbDep) -> list[UserPublic]:
    return [store.user_public(u) for u in store.list_users(session)]


@router.post("", response_model=UserPublic, status_code=201, responses=responses(400, 409))
def create_user(data: UserCreate, principal: AdminUser, session: DbDep,
                runtime: RuntimeDep) -> UserPublic:
    user = store.create_user(session, username=data.username, role=data.role,
                             actor=actor_of(principal))
    public = store.user_public(user)
    commit(session, runtime)
    return public


@router.get("/{username}", response_model=UserPublic, responses=responses(404))
def get_user(username: Username, _: AdminUser, session: DbDep) -> UserPublic:
    return store.user_public(store.get_user(session, username=username))


@router.patch("/{username}", response_model=UserPublic,
              responses=responses(400, 404, 409))
def update_user(username: Username, changes: UserUpdate, principal: AdminUser,
                session: DbDep, runtime: RuntimeDep) -> UserPublic:
    """Change a user's role or disable them. Admins cannot demote or disable themselves (so the
    deployment always keeps the admin making the change)."""
    user = store.get_user(session, username=username)
    if user.id == principal.user_id:
        if changes.role is not None and changes.role != ADMIN:
            raise Conflict("role", "you cannot remove your own admin role")
        if changes.disabled:
            raise Conflict("disabled", "you cannot disable yourself")
    user = store.update_user(session, user=user, actor=actor_of(principal), role=changes.role,
                             disabled=changes.disabled)
    public = store.user_public(user)
    commit(session, runtime)
    return public


@router.get("/{username}/tokens", response_model=list[TokenPublic], responses=responses(404))
def list_tokens(username: Username, _: AdminUser, session: DbDep) -> list[TokenPublic]:
    user = store.get_user(session, username=username)
    return [store.token_public(t, name) for t, name in store.list_tokens(session, user=user)]


@router.post("/{username}/tokens", response_model=TokenCreated, status_code=201,
             responses=responses(400, 404))
def create_token(username: Username, data: TokenCreate, principal: AdminUser,
                 session: DbDep, runtime: RuntimeDep) -> TokenCreated:
    """A new gateway token for the user; `token` is shown in this response only."""
    user = store.get_user(session, username=username)
    created = store.create_token(session, user=user, name=data.name,
                                 expires_at=data.expires_at, actor=actor_of(principal))
    commit(session, runtime)
    return created


@router.delete("/{username}/tokens/{token_id}", status_code=204, response_class=Response,
               responses=responses(404))
def revoke_token(username: Username, token_id: uuid.UUID, principal: AdminUser,
                 session: DbDep, runtime: RuntimeDep) -> Response:
    user = store.get_user(session, username=username)
    token = store.get_token(session, token_id=token_id)
    if token.user_id != user.id:
        raise ApiError(404, f"no token {token_id} for user {username!r}")
    store.revoke_token(session, token=token, actor=actor_of(principal))
    commit(session, runtime)
    return Response(status_code=204)
