"""Provider types by name. The only place that knows which types exist."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from gateway.providers.base import ProviderType

PROVIDER_TYPE_NAMES: tuple[str, ...] = ("anthropic", "openai", "openai-compat")


@functools.cache
def provider_types() -> Mapping[str, ProviderType]:
    from gateway.providers.anthropic import AnthropicType
    from gateway.providers.openai import OpenAICompatType, OpenAIType

    found: list[ProviderType] = [AnthropicType(), OpenAIType(), OpenAICompatType()]
    return MappingProxyType({t.name: t for t in found})


def get_provider_type(name: str) -> ProviderType:
    """Return the provider type called `name`; KeyError for an unknown one."""
    return provider_types()[name]
