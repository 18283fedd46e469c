"""API- and CLI-facing shapes (not tables): XCreate, XUpdate, XPublic in tiangolo's style."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProviderTypeName = Literal["anthropic", "openai", "openai-compat"]
Role = Literal["admin", "auditor", "member"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyRef(_Strict):
    """In PATCH `api_keys`: keep an existing key (`id`) or add a new one (`api_key`)."""

    id: uuid.UUID | None = None
    api_key: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> KeyRef:
        if (self.id is None) == (self.api_key is None):
            raise ValueError("give exactly one of id or api_key")
        return self


class ProviderCreate(_Strict):
    type: ProviderTypeName
    name: str
    display_name: str = ""
    enabled: bool = True
    base_url: str | None = None
    api_keys: list[str] = Field(min_length=1)


class ProviderUpdate(_Strict):
    display_name: str | None = None
    enabled: bool | None = None
    base_url: str | None = None
    api_keys: list[KeyRef] | None = None


class ProviderKeyPublic(BaseModel):
    id: uuid.UUID
    masked: str
    created_at: datetime


class ProviderPublic(BaseModel):
    id: uuid.UUID
    type: str
    name: str
    display_name: str
    enabled: bool
    base_url: str
    api_keys: list[ProviderKeyPublic]
    created_at: datetime
    updated_at: datetime


class UserCreate(_Strict):
    username: str
    role: Role = "member"


class UserUpdate(_Strict):
    role: Role | None = None
    disabled: bool | None = None


class UserPublic(BaseModel):
    id: uuid.UUID
    username: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


class TokenCreate(_Strict):
    name: str = ""
    expires_at: datetime | None = None


class TokenPublic(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str
    """The token itself, shown this once."""
