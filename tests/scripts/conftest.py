from collections.abc import Iterator
from types import ModuleType
from typing import Any

import anthropic
import openai
import pytest

from tests.fakeprovider import load_fake_provider, running_fake_provider


@pytest.fixture(scope="session")
def fpm() -> ModuleType:
    """The scripts/fake_provider.py module."""
    return load_fake_provider()


@pytest.fixture
def provider() -> Iterator[Any]:
    """A fresh fake provider per test (ids restart at 1), small BIGEVENT for speed."""
    with running_fake_provider(bigevent_mb=1) as fp:
        yield fp


@pytest.fixture
def claude(provider: Any) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=provider.base_url, api_key="sk-ant-test", max_retries=0)
    with client:
        yield client


@pytest.fixture
def oai(provider: Any) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{provider.base_url}/v1", api_key="sk-test", max_retries=0)
    with client:
        yield client
