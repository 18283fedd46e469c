"""Seeding providers from the environment: once, never recreated after delete, drift reported,
safe under concurrent starts (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from gateway.crypto import Keyring, generate_key
from gateway.seed import seed_from_environment, specs_from_environment
from gateway.store import SYSTEM_ACTOR
from gateway.store import providers as pstore

ENV = {
    "AI_GATEWAY_PROVIDER_1_TYPE": "anthropic",
    "AI_GATEWAY_PROVIDER_1_NAME": "anthropic-corp",
    "AI_GATEWAY_PROVIDER_1_KEYS": "sk-ant-seed-one-111111,sk-ant-seed-two-222222",
    "AI_GATEWAY_PROVIDER_1_BASE_URL": "https://anthropic.example.com",
    "AI_GATEWAY_PROVIDER_2_TYPE": "openai-compat",
    "AI_GATEWAY_PROVIDER_2_NAME": "local-llm",
    "AI_GATEWAY_PROVIDER_2_KEY": "sk-local-333333",
    "AI_GATEWAY_PROVIDER_2_BASE_URL": "https://llm.example.com/v1",
    "AI_GATEWAY_OPENAI_KEY": "sk-legacy-openai-444444",
}


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_text(generate_key())


def _live(engine: Engine, keyring: Keyring) -> dict[str, pstore.DecryptedProvider]:
    with Session(engine) as s:
        return {p.name: p for p in pstore.load_live_providers(s, keyring=keyring)}


def test_specs_parse_numbered_and_legacy() -> None:
    specs, problems = specs_from_environment(
        {**ENV, "AI_GATEWAY_PROVIDER_3_TYPE": "bogus", "AI_GATEWAY_PROVIDER_4_TYPE": "openai"}
    )
    assert [(s.name, s.type, s.keys) for s in specs] == [
        ("anthropic-corp", "anthropic", ("sk-ant-seed-one-111111", "sk-ant-seed-two-222222")),
        ("local-llm", "openai-compat", ("sk-local-333333",)),
        ("openai", "openai", ("sk-legacy-openai-444444",)),
    ]
    assert len(problems) == 2 and "PROVIDER_3_TYPE" in problems[0] and "PROVIDER_4" in problems[1]


def test_first_start_restart_delete_restart(
    engine: Engine, keyring: Keyring, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        created = seed_from_environment(engine, keyring, ENV)
    assert created == ["anthropic-corp", "local-llm", "openai"]
    assert "DEPRECATED" in caplog.text
    live = _live(engine, keyring)
    assert live["anthropic-corp"].api_keys == ("sk-ant-seed-one-111111", "sk-ant-seed-two-222222")
    assert live["openai"].base_url == "https://api.openai.com/v1"
    assert seed_from_environment(engine, keyring, ENV) == []  # restart: nothing new
    assert len(_live(engine, keyring)) == 3
    with Session(engine) as s:
        pstore.delete_provider(
            s, provider=pstore.get_provider(s, ref="local-llm"), actor=SYSTEM_ACTOR
        )
        s.commit()
    assert seed_from_environment(engine, keyring, ENV) == []  # deleted stays deleted
    assert set(_live(engine, keyring)) == {"anthropic-corp", "openai"}


def test_drift_is_reported(
    engine: Engine, keyring: Keyring, caplog: pytest.LogCaptureFixture
) -> None:
    seed_from_environment(engine, keyring, ENV)
    changed = {**ENV, "AI_GATEWAY_PROVIDER_1_BASE_URL": "https://other.example.com"}
    with caplog.at_level(logging.WARNING):
        seed_from_environment(engine, keyring, changed)
    assert "'anthropic-corp' differs from the environment" in caplog.text
    assert "https://other.example.com" in caplog.text
    assert _live(engine, keyring)["anthropic-corp"].base_url == "https://anthropic.example.com"
    assert "sk-ant-seed" not in caplog.text


def test_existing_provider_is_adopted_not_overwritten(engine: Engine, keyring: Keyring) -> None:
    from gateway.models import ProviderCreate

    with Session(engine) as s:
        pstore.create_provider(
            s,
            data=ProviderCreate(type="openai", name="openai", api_keys=["sk-by-hand-555555"]),
            keyring=keyring,
            actor=SYSTEM_ACTOR,
        )
        s.commit()
    assert "openai" not in seed_from_environment(engine, keyring, ENV)
    assert _live(engine, keyring)["openai"].api_keys == ("sk-by-hand-555555",)


def test_concurrent_starts_create_each_once(engine: Engine, keyring: Keyring) -> None:
    results: list[list[str]] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        results.append(seed_from_environment(engine, keyring, ENV))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    created = sorted(name for r in results for name in r)
    assert created == ["anthropic-corp", "local-llm", "openai"]
    with Session(engine) as s:
        assert len(pstore.list_providers(s)) == 3
