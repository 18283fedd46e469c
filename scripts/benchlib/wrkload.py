"""Blocking cells driven by wrk (Debian's `wrk`), stopped gracefully so answers are exact.

One wrk thread per connection. The Lua script counts 2xx / other answers per thread and, at
the first answer after the deadline, stops its thread: no request is left in flight, so the
gateway never records a request the load generator did not see answered. Each thread prints
BENCHSTOP; when all did, wrk gets SIGINT (its sleep ends early) and prints BENCHJSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .workloads import Route

GRACE_SECONDS = 30.0
LUA = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local deadline = tonumber(os.getenv("BENCH_DEADLINE"))
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "aibridge-bench/1 (wrk)"
%(headers)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0; t0 = now(); t1 = 0 end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
  local t = now()
  if t >= deadline and t1 == 0 then
    t1 = t
    io.write("BENCHSTOP\\n")
    io.flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local o, b, s, e, open = 0, 0, math.huge, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad"); s = math.min(s, t:get("t0"))
    local stop = t:get("t1")
    if stop == 0 then open = open + 1 else e = math.max(e, stop) end
  end
  local er = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"ok":%%d,"bad":%%d,"start":%%.6f,"end":%%.6f,"open":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, o, b, s, e, open, er.connect, er.read, er.write, er.status, er.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    ok: int
    bad: int
    errors: int
    cut: int
    elapsed: float
    p50: float
    p99: float
    loadgen_cpu: float
    raw: dict[str, float]


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_script(path: Path, route: Route) -> None:
    lines = [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in route.headers]
    path.write_text(LUA % {"headers": "\n".join(lines)})


async def _collect(proc: asyncio.subprocess.Process, threads: int, limit: float) -> str:
    """Read wrk's output; SIGINT it once every thread stopped (or at `limit`)."""
    assert proc.stdout is not None
    stops, result = 0, ""
    deadline = time.monotonic() + limit
    interrupted = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0 and not interrupted:
            proc.send_signal(signal.SIGINT)
            interrupted = True
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), max(left, 0.5))
        except TimeoutError:
            continue
        if not line:
            return result
        text = line.decode(errors="replace")
        if text.startswith("BENCHSTOP"):
            stops += 1
            if stops == threads and not interrupted:
                proc.send_signal(signal.SIGINT)
                interrupted = True
        elif text.startswith("BENCHJSON "):
            result = text[len("BENCHJSON "):]


async def run_wrk(port: int, route: Route, body_file: Path, script: Path, concurrency: int,
                  duration: float, prefix: list[str]) -> WrkResult:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.time()
    env = {**os.environ, "BENCH_DEADLINE": f"{time.time() + duration:.6f}",
           "BENCH_BODY": str(body_file)}
    cmd = [*prefix, "wrk", "-t", str(concurrency), "-c", str(concurrency),
           "-d", f"{int(duration + GRACE_SECONDS + 5)}s", "--timeout", "60s", "-s", str(script),
           f"http://127.0.0.1:{port}{route.path}"]
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        text = await _collect(proc, concurrency, duration + GRACE_SECONDS)
        await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if not text:
        raise RuntimeError(f"wrk printed no result (exit {proc.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    raw = json.loads(text)
    if raw["open"] or raw["end"] <= raw["start"]:  # a thread never stopped: use wall time
        raw["end"], raw["start"] = time.time(), wall
    return WrkResult(
        ok=int(raw["ok"]), bad=int(raw["bad"]),
        errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
        cut=int(raw["open"]), elapsed=max(raw["end"] - raw["start"], 1e-9),
        p50=raw["p50_us"] / 1e6, p99=raw["p99_us"] / 1e6,
        loadgen_cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        raw=raw,
    )
