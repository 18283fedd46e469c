"""The lean server's direct hook dispatch keeps mitmproxy's semantics: handlers run in chain
order (children included), a failing handler is logged and the next one runs, AddonHalt stops
the event, addons added later are seen."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mitmproxy import exceptions, master, options
from mitmproxy.http import HTTPFlow
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import tflow

from addons.server import _direct_hook_dispatch


class Recorder:
    def __init__(self, name: str, seen: list[str], fail: Exception | None = None) -> None:
        self.name, self.seen, self.fail = name, seen, fail

    def request(self, flow: HTTPFlow) -> None:
        self.seen.append(self.name)
        if self.fail is not None:
            raise self.fail


class AsyncRecorder(Recorder):
    async def request(self, flow: HTTPFlow) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self.seen.append(self.name)


class Parent:
    def __init__(self, seen: list[str]) -> None:
        self.addons = [Recorder("child", seen)]


def run(m: master.Master, flow: Any) -> None:
    async def go() -> None:
        await m.addons.trigger_event(HttpRequestHook(flow))

    asyncio.run(go())


@pytest.fixture
def lean() -> master.Master:
    async def make() -> master.Master:
        return master.Master(options.Options(), with_termlog=False)

    m = asyncio.run(make())
    _direct_hook_dispatch(m.addons)
    return m


def test_order_children_async_and_errors(lean: master.Master, caplog: Any) -> None:
    seen: list[str] = []
    lean.addons.add(
        Recorder("a", seen),
        Recorder("broken", seen, fail=ValueError("boom")),
        AsyncRecorder("b", seen),
        Parent(seen),
    )
    with caplog.at_level(logging.ERROR):
        run(lean, tflow.tflow())
    assert seen == ["a", "broken", "b", "child"]
    assert "Addon error: boom" in caplog.text


def test_addon_halt_stops_the_event(lean: master.Master) -> None:
    seen: list[str] = []
    lean.addons.add(Recorder("a", seen, fail=exceptions.AddonHalt()), Recorder("b", seen))
    run(lean, tflow.tflow())
    assert seen == ["a"]


def test_addons_added_later_are_dispatched(lean: master.Master) -> None:
    seen: list[str] = []
    lean.addons.add(Recorder("a", seen))
    run(lean, tflow.tflow())
    lean.addons.add(Recorder("late", seen))
    run(lean, tflow.tflow())
    assert seen == ["a", "a", "late"]
