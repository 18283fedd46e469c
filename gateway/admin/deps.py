"""Dependencies of the admin app: the live runtime, a database session, who is calling.

Nothing is created at import time: `create_app(runtime_provider)` stores the callable on
`app.state`, and every request asks it for the runtime the gateway is running with. Tokens are
the gateway's own (`Authorization: Bearer` or `X-Api-Key`), checked against the runtime's
current snapshot, the same way the request path checks them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from gateway.admin.errors import ApiError
from gateway.auth import AuthError, Principal, authenticate, extract
from gateway.runtime import Runtime
from gateway.store.changes import Actor
from gateway.validation import InvalidField
from schema.types import utcnow

log = logging.getLogger(__name__)

RuntimeProvider = Callable[[], Runtime | None]
"""Returns the runtime the gateway currently runs with (None while it starts)."""

ADMIN = "admin"
AUDITOR = "auditor"
MEMBER = "member"
_UNAUTHENTICATED = {"www-authenticate": "Bearer"}


def get_runtime(request: Request) -> Runtime:
    provider: RuntimeProvider = request.app.state.runtime_provider
    runtime = provider()
    if (runtime is None or not runtime.started or runtime.engine is None
            or runtime.config is None or runtime.keyring is None):
        raise ApiError(503, "aibridge is starting; retry shortly")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_db(runtime: RuntimeDep) -> Iterator[Session]:
    """One session per request; routers commit what they change."""
    with Session(runtime.engine, expire_on_commit=False) as session:
        yield session


DbDep = Annotated[Session, Depends(get_db)]


def single_query_values(request: Request) -> None:
    """Every query parameter of the API is a single value: `?model=a&model=b` is a 422, not
    silently the last one."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            raise InvalidField(name, "give this query parameter once")
        seen.add(name)


API_DEPENDENCIES = [Depends(single_query_values)]


def principal_for(runtime: Runtime, token: str) -> Principal:
    """The user behind a gateway token, from the runtime's snapshot; AuthError otherwise."""
    assert runtime.config is not None
    return authenticate(runtime.config.snapshot.tokens, token, utcnow())


# Declared for the OpenAPI document (and its docs page); the headers are parsed by
# gateway.auth.extract, exactly like the gateway routes do.
_bearer = HTTPBearer(auto_error=False, description="A gateway token: `Bearer aib_...`")
_api_key = APIKeyHeader(name="X-Api-Key", auto_error=False, description="A gateway token")


def current_principal(
    request: Request,
    runtime: RuntimeDep,
    _bearer_doc: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
    _key_doc: Annotated[str | None, Security(_api_key)] = None,
) -> Principal:
    presented = extract(request.headers.getlist)
    if presented.problem or presented.token is None:
        raise ApiError(401, presented.problem or "missing gateway token",
                       headers=_UNAUTHENTICATED)
    try:
        return principal_for(runtime, presented.token)
    except AuthError as exc:
        raise ApiError(401, exc.message, headers=_UNAUTHENTICATED) from exc


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only the given roles (403 for the others)."""
    allowed = " or ".join(roles)

    def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, f"this needs the {allowed} role (you are {principal.role})")
        return principal

    return dependency


AnyUser = Annotated[Principal, Depends(current_principal)]
Reader = Annotated[Principal, Depends(require(ADMIN, AUDITOR))]
AdminUser = Annotated[Principal, Depends(require(ADMIN))]


def actor_of(principal: Principal) -> Actor:
    return Actor(name=principal.username, id=principal.user_id)


def commit(session: Session, runtime: Runtime) -> None:
    """Commit a change and reload this process's snapshot at once (other processes follow
    within the reload interval), so the next request already routes with it."""
    session.commit()
    if runtime.config is None:
        return
    try:
        runtime.config.reload()
    except Exception as exc:  # noqa: BLE001 - the watcher retries; the change is committed
        log.warning("configuration reload after an admin change failed: %s", exc)
