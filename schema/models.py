"""The aibridge tables (SQLModel). Nothing here imports the rest of the project.

Conventions (tiangolo's style): UUID primary keys, timezone-aware UTC timestamps, indexes on
the columns the CLI, admin API and retention filter by.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, String, Text, text
from sqlmodel import Field, SQLModel

from schema.types import UTCDateTime, utcnow


def _ts(*, index: bool = False, nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_type=UTCDateTime,
        index=index,
        nullable=nullable,
    )


def _opt_ts(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, index=index, nullable=True)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


# --- configuration: providers, users, tokens -------------------------------------------------


class Provider(SQLModel, table=True):
    __tablename__ = "providers"
    __table_args__ = (
        # Names are unique among live providers and reusable after a (soft) delete.
        Index(
            "uq_providers_live_name",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: str = Field(max_length=32)
    name: str = Field(max_length=63, index=True)
    display_name: str = Field(default="", max_length=200)
    enabled: bool = True
    base_url: str = Field(max_length=2048)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    deleted_at: datetime | None = _opt_ts(index=True)


class ProviderKey(SQLModel, table=True):
    """One API key of a provider, encrypted (AES-GCM). `position` 0 is the key in use."""

    __tablename__ = "provider_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    provider_id: uuid.UUID = Field(foreign_key="providers.id", index=True, ondelete="CASCADE")
    position: int = 0
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    masked: str = Field(max_length=32)
    created_at: datetime = _ts()


class ProviderSeed(SQLModel, table=True):
    """A provider once created from the environment (deprecated path): never seeded twice."""

    __tablename__ = "provider_seeds"

    name: str = Field(primary_key=True, max_length=63)
    provider_id: uuid.UUID | None = None
    seeded_at: datetime = _ts()


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    role: str = Field(default="member", max_length=16)
    disabled: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """A user's gateway token. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(default="", max_length=100)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    hint: str = Field(max_length=32)
    created_at: datetime = _ts()
    expires_at: datetime | None = _opt_ts()
    last_used_at: datetime | None = _opt_ts()
    revoked_at: datetime | None = _opt_ts()


class GatewayState(SQLModel, table=True):
    """A single row whose `version` is bumped by every configuration change (hot reload)."""

    __tablename__ = "gateway_state"

    id: int = Field(default=1, primary_key=True)
    version: int = 0
    updated_at: datetime = _ts()


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = _ts(index=True)
    actor_id: uuid.UUID | None = None
    actor: str = Field(default="", max_length=64)
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=32)
    target_id: str | None = Field(default=None, max_length=64)
    target_name: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = _json()


# --- recording -------------------------------------------------------------------------------


class Interception(SQLModel, table=True):
    __tablename__ = "interceptions"
    __table_args__ = (Index("ix_interceptions_open", "ended_at", "started_at"),)

    id: uuid.UUID = Field(primary_key=True)
    initiator_id: uuid.UUID | None = Field(default=None, index=True)
    api_token_id: uuid.UUID | None = None
    provider_type: str = Field(max_length=32)
    provider_name: str = Field(max_length=63, index=True)
    provider_id: uuid.UUID | None = None
    api: str = Field(default="", max_length=64)
    model: str | None = Field(default=None, max_length=256, index=True)
    client: str = Field(default="Unknown", max_length=64, index=True)
    client_session_id: str | None = Field(default=None, max_length=256)
    user_agent: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    credential_kind: str = Field(default="centralized", max_length=32)
    credential_hint: str | None = Field(default=None, max_length=32)
    streamed: bool = False
    parsed: bool = True
    started_at: datetime = _ts(index=True)
    ended_at: datetime | None = _opt_ts()
    status: str | None = Field(default=None, max_length=32, index=True)
    upstream_status: int | None = None
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    correlating_tool_call_id: str | None = Field(default=None, max_length=256)
    instance_id: str | None = Field(default=None, max_length=64, index=True)
    """The gateway process that recorded it: open ones of a crashed process are closed on start."""
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )


class TokenUsage(SQLModel, table=True):
    __tablename__ = "token_usages"

    id: uuid.UUID = Field(primary_key=True)
    interception_id: uuid.UUID = Field(foreign_key="interceptions.id", index=True)
    provider_response_id: str | None = Field(default=None, max_length=256)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    created_at: datetime = _ts(index=True)


class PromptUsage(SQLModel, table=True):
    __tablename__ = "prompt_usages"

    id: uuid.UUID = Field(primary_key=True)
    interception_id: uuid.UUID = Field(foreign_key="interceptions.id", index=True)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts()


class ToolUsage(SQLModel, table=True):
    __tablename__ = "tool_usages"

    id: uuid.UUID = Field(primary_key=True)
    interception_id: uuid.UUID = Field(foreign_key="interceptions.id", index=True)
    provider_response_id: str | None = Field(default=None, max_length=256)
    tool_call_id: str | None = Field(default=None, max_length=256)
    tool: str = Field(max_length=256)
    input: str = Field(sa_column=Column(Text, nullable=False))
    injected: bool = False
    server_url: str | None = Field(default=None, max_length=2048)
    invocation_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    created_at: datetime = _ts()


class ModelThought(SQLModel, table=True):
    __tablename__ = "model_thoughts"

    id: uuid.UUID = Field(primary_key=True)
    interception_id: uuid.UUID = Field(foreign_key="interceptions.id", index=True)
    provider_response_id: str | None = Field(default=None, max_length=256)
    content: str = Field(sa_column=Column(Text, nullable=False))
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    created_at: datetime = _ts()


RECORD_TABLES = (TokenUsage, PromptUsage, ToolUsage, ModelThought)
