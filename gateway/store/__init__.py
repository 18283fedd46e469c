"""CRUD on the configuration tables. Every function takes the session explicitly, keyword-only,
and every change bumps the configuration version (hot reload) and writes the audit log."""

from __future__ import annotations

from gateway.store.changes import SYSTEM_ACTOR, Actor, bump_version, current_version
from gateway.store.errors import Conflict, NotFound

__all__ = ["SYSTEM_ACTOR", "Actor", "Conflict", "NotFound", "bump_version", "current_version"]
