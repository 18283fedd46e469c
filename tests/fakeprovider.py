"""Load scripts/fake_provider.py for tests (scripts/ is not a package) and run it.

from tests.fakeprovider import load_fake_provider, running_fake_provider

with running_fake_provider(delay=0.01) as fp:
    client = anthropic.Anthropic(base_url=fp.base_url, api_key="sk-ant-test")
"""

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fake_provider.py"
MODULE_NAME = "fake_provider"


def load_fake_provider() -> ModuleType:
    """The scripts/fake_provider.py module (loaded once per process)."""
    loaded = sys.modules.get(MODULE_NAME)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(MODULE_NAME, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def running_fake_provider(**options: Any) -> Iterator[Any]:
    """A FakeProvider started in a background thread, stopped on exit."""
    provider = load_fake_provider().FakeProvider(**options).start_in_thread()
    try:
        yield provider
    finally:
        provider.stop_in_thread()
