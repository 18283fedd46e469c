from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.harness import GatewayProcess, start_gateway


@dataclass
class Setup:
    gw: GatewayProcess
    fake: Any
    token: str
    anthropic_key: str
    openai_key: str

    def claude(self, **kwargs: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.gw.url("anthropic"), api_key=self.token, max_retries=0, **kwargs
        )

    def oai(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.gw.url("openai", "/v1"), api_key=self.token, max_retries=0, **kwargs
        )


def make_setup(gw: GatewayProcess, fake: Any) -> Setup:
    akey, okey = "sk-ant-upstream-5a7e1c9d2b", "sk-openai-upstream-8f3d0b6e4a"
    gw.admin.add_provider("anthropic", "anthropic", fake.base_url, [akey])
    gw.admin.add_provider("openai", "openai", f"{fake.base_url}/v1", [okey])
    gw.admin.add_user("alice")
    token = gw.admin.token("alice")
    gw.sync()
    return Setup(gw, fake, token, akey, okey)


@pytest.fixture
def setup(gateway: GatewayProcess, fake: Any) -> Setup:
    return make_setup(gateway, fake)


@pytest.fixture
def setup_any_db(tmp_path: Path, db_url: str, fake: Any) -> Iterator[Setup]:
    gw = start_gateway(tmp_path, db_url)
    try:
        yield make_setup(gw, fake)
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """One gateway + fake provider for a whole module of read-only tests (faster)."""
    from tests.fakeprovider import running_fake_provider

    workdir = tmp_path_factory.mktemp("gw")
    with running_fake_provider(bigevent_mb=1) as fake:
        gw = start_gateway(workdir, f"sqlite:///{workdir / 'test.db'}")
        try:
            yield make_setup(gw, fake)
        finally:
            gw.stop()
