#!/usr/bin/env python3
"""Side-by-side performance of the fake provider, bare mitmdump, aibridge and LiteLLM.

    .venv/bin/python scripts/bench.py            # full run (< 15 min), all five targets
    .venv/bin/python scripts/bench.py --quick    # about a minute: direct, mitmdump, aibridge
    .venv/bin/python scripts/bench.py --targets direct,aibridge --duration 3 --rounds 2 \\
        --markdown bench.md --json bench.json

Cells (workload x concurrency) run on every target in interleaved, rotated rounds. Blocking
cells use wrk when installed (scripts/bench-deps installs it and LiteLLM's venv), else the
built-in asyncio client; streams always use the asyncio client (TTFB per stream). Reported:
req/s, p50/p99, CPU seconds per 1000 requests and peak RSS of the target, TTFB and stream
times, added latency over direct, recorded == answered for aibridge, memory (--memory), and
PASS/MISS against the performance targets. Exit 1 only on errors (a target failed to start,
> 1% failed requests in a cell), never on a MISS. All processes are stopped on exit/Ctrl-C.

The implementation is the `scripts/benchlib/` package, loaded by path like fake_provider.py.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "benchlib"


def _load_package() -> ModuleType:
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None:
        return loaded
    package_dir = Path(__file__).resolve().parent / PACKAGE
    spec = importlib.util.spec_from_file_location(
        PACKAGE, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {package_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return module


main = _load_package().main

if __name__ == "__main__":
    sys.exit(main())
