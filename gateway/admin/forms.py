"""Dashboard forms -> the store's models, and every failure -> a message next to its field.

Plaintext keys typed into a form are never rendered back: a form shown again after an error
has its key fields empty.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from pydantic import ValidationError

from gateway.models import KeyRef, ProviderCreate, ProviderPublic, ProviderUpdate
from gateway.providers import PROVIDER_TYPE_NAMES, get_provider_type
from gateway.store.errors import Conflict
from gateway.validation import InvalidField

FIELD_ALIASES = {"api_keys": "api_key", "username": "name"}
KEY_HELP = "The first key is the one in use; the others are kept until you remove them."


@dataclass(frozen=True)
class TypeChoice:
    name: str
    default_base_url: str

    @property
    def label(self) -> str:
        return {"anthropic": "Anthropic", "openai": "OpenAI",
                "openai-compat": "OpenAI-compatible"}.get(self.name, self.name)


def type_choices() -> list[TypeChoice]:
    return [TypeChoice(n, get_provider_type(n).default_base_url or "")
            for n in PROVIDER_TYPE_NAMES]


@dataclass
class FormErrors:
    by_field: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.by_field.setdefault(FIELD_ALIASES.get(name, name), message)

    def __bool__(self) -> bool:
        return bool(self.by_field)


def from_exception(exc: Exception) -> FormErrors:
    """Field errors from the store (InvalidField, Conflict) or pydantic."""
    errors = FormErrors()
    if isinstance(exc, InvalidField | Conflict):
        errors.add(exc.field, exc.message)
    elif isinstance(exc, ValidationError):
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            errors.add(loc[0] if loc else "form", msg)
    else:
        raise exc
    return errors


def new_provider(*, type_: str, name: str, display_name: str, base_url: str, api_key: str,
                 enabled: bool) -> ProviderCreate:
    """Raises ValidationError (pydantic) or InvalidField."""
    if not api_key:
        raise InvalidField("api_keys", "enter the provider's API key")
    return ProviderCreate.model_validate({
        "type": type_, "name": name, "display_name": display_name,
        "base_url": base_url or None, "api_keys": [api_key], "enabled": enabled,
    })


def provider_changes(current: ProviderPublic, *, display_name: str, base_url: str,
                     enabled: bool, new_key: str, remove: list[str]) -> ProviderUpdate:
    """Only what changed. A new key goes first (in use at once); removed keys are dropped."""
    changes: dict[str, object] = {}
    if display_name != current.display_name:
        changes["display_name"] = display_name
    if base_url != current.base_url:
        if not base_url:
            raise InvalidField("base_url", "an endpoint URL is required")
        changes["base_url"] = base_url
    if enabled != current.enabled:
        changes["enabled"] = enabled
    drop = set()
    for value in remove:
        try:
            drop.add(uuid.UUID(value))
        except ValueError as exc:
            raise InvalidField("api_keys", "unknown key") from exc
    if new_key or drop:
        refs = [KeyRef(api_key=new_key)] if new_key else []
        refs += [KeyRef(id=k.id) for k in current.api_keys if k.id not in drop]
        if not refs:
            raise InvalidField("api_keys", "a provider needs at least one key: add one first")
        changes["api_keys"] = refs
    return ProviderUpdate.model_validate(changes)
