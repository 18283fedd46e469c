"""AI Providers API: `/api/v2/ai/providers` (admin writes; admin and auditor read).

Plaintext keys are accepted on create and PATCH and never returned: a provider's keys come
back as `{id, masked, created_at}` (and not at all for auditors).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from gateway.admin.deps import (
    ADMIN,
    API_DEPENDENCIES,
    AdminUser,
    DbDep,
    Reader,
    RuntimeDep,
    actor_of,
    commit,
)
from gateway.admin.errors import responses
from gateway.models import ProviderCreate, ProviderPublic, ProviderUpdate
from gateway.runtime import url_checker
from gateway.store import providers as store

router = APIRouter(prefix="/api/v2/ai/providers", dependencies=API_DEPENDENCIES, tags=["providers"])

ProviderRef = Annotated[str, Path(
    description="The provider's id or name",
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$",
)]


def visible(public: ProviderPublic, role: str) -> ProviderPublic:
    """Auditors see providers without their keys (not even masked)."""
    return public if role == ADMIN else public.model_copy(update={"api_keys": []})


@router.get("", response_model=list[ProviderPublic], responses=responses())
def list_providers(principal: Reader, session: DbDep) -> list[ProviderPublic]:
    """Every live provider, by name."""
    return [visible(store.to_public(session, p), principal.role)
            for p in store.list_providers(session)]


@router.post("", response_model=ProviderPublic, status_code=201,
             responses=responses(400, 409))
def create_provider(data: ProviderCreate, principal: AdminUser, session: DbDep,
                    runtime: RuntimeDep) -> ProviderPublic:
    """Add a provider; it is routed at `/api/v2/aibridge/<name>/` at once."""
    assert runtime.keyring is not None
    provider = store.create_provider(session, data=data, keyring=runtime.keyring,
                                     actor=actor_of(principal),
                                     check_url=url_checker(runtime.settings))
    public = store.to_public(session, provider)
    commit(session, runtime)
    return public


@router.get("/{ref}", response_model=ProviderPublic, responses=responses(404))
def get_provider(ref: ProviderRef, principal: Reader, session: DbDep) -> ProviderPublic:
    return visible(store.to_public(session, store.get_provider(session, ref=ref)),
                   principal.role)


@router.patch("/{ref}", response_model=ProviderPublic, responses=responses(400, 404))
def update_provider(ref: ProviderRef, changes: ProviderUpdate, principal: AdminUser,
                    session: DbDep, runtime: RuntimeDep) -> ProviderPublic:
    """Change only the fields sent. `api_keys` is the full key set afterwards: `{"id": ...}`
    keeps a key, `{"api_key": ...}` adds one, and keys not listed are removed (rotation)."""
    assert runtime.keyring is not None
    provider = store.update_provider(session, provider=store.get_provider(session, ref=ref),
                                     changes=changes, keyring=runtime.keyring,
                                     actor=actor_of(principal),
                                     check_url=url_checker(runtime.settings))
    public = store.to_public(session, provider)
    commit(session, runtime)
    return public


@router.delete("/{ref}", status_code=204, response_class=Response, responses=responses(404))
def delete_provider(ref: ProviderRef, principal: AdminUser, session: DbDep,
                    runtime: RuntimeDep) -> Response:
    """Soft delete: the name can be reused; recorded interceptions keep naming it."""
    store.delete_provider(session, provider=store.get_provider(session, ref=ref),
                          actor=actor_of(principal))
    commit(session, runtime)
    return Response(status_code=204)
