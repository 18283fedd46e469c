"""scripts/bench.py's implementation (loaded by path: scripts/ is not a package).

    procs      child processes: pinning, process groups, /proc CPU and RSS
    workloads  workloads, cells, request bodies, raw HTTP requests, endpoints
    httpload   the asyncio keep-alive load generator (blocking and streams)
    wrkload    blocking cells through wrk with a graceful, exact stop
    targets    direct / mitmdump / aibridge / aibridge-w2 / litellm: start and readiness
    measure    one cell on one target with CPU and RSS watched
    runner     probes, warm-up, interleaved rounds, memory phase, recording check
    stats      rounds folded into rows; report: ratios and PASS/MISS; render: outputs
"""

from .cli import main

__all__ = ["main"]
