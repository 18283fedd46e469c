"""The measured targets: how each is started, addressed and found ready.

    direct       the fake provider itself
    mitmdump     bare `mitmdump --mode reverse:...` (default addons, no script)
    aibridge     `aibridge server` (one worker): auth, routing, credentials, recording, logs
    aibridge-w2  the same with `--workers 2`
    litellm      LiteLLM proxy from .cache/litellm-venv, no database, callbacks off
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .httpload import one_request
from .procs import Child, Processes, wait_for_file
from .workloads import CHAT_MODEL, MESSAGES_MODEL, STREAM_EVENTS, Endpoints, provider_endpoints

ALL_TARGETS = ("direct", "mitmdump", "aibridge", "aibridge-w2", "litellm")
QUICK_TARGETS = ("direct", "mitmdump", "aibridge")
OPENAI_KEY = "sk-bench-openai-0000"
ANTHROPIC_KEY = "sk-ant-bench-0000"
AIBRIDGE_PREFIX = "/api/v2/aibridge"
READY_SECONDS = 120.0


class StartError(RuntimeError):
    """A target did not come up."""


@dataclass(frozen=True)
class Paths:
    repo: Path
    bin: Path
    litellm: Path

    @classmethod
    def discover(cls) -> Paths:
        repo = Path(__file__).resolve().parents[2]
        venv = repo / ".venv" / "bin"
        return cls(repo=repo, bin=venv if venv.is_dir() else Path(sys.executable).parent,
                   litellm=repo / ".cache" / "litellm-venv" / "bin" / "litellm")


@dataclass
class Target:
    name: str
    port: int
    endpoints: Endpoints
    child: Child
    health_path: str = "/"
    db_path: Path | None = None
    answered: int = 0  # 2xx answers on recorded routes, all phases included
    unsupported: dict[str, str] = field(default_factory=dict)

    @property
    def cpus(self) -> str:
        return self.child.cpus

    def pids(self) -> list[int]:
        return self.child.pids()


@dataclass(frozen=True)
class Launch:
    """What starting a target needs."""

    procs: Processes
    paths: Paths
    workdir: Path
    fake_port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_fake(procs: Processes, paths: Paths, workdir: Path, stream_delay: float
               ) -> tuple[Child, int]:
    """The fake provider; 50-event streams by default so peers that drop x-fake-* agree."""
    port_file = workdir / "fake.port"
    cmd = [str(paths.bin / "python"), str(paths.repo / "scripts" / "fake_provider.py"),
           "--no-record", "--port", "0", "--port-file", str(port_file),
           "--events", str(STREAM_EVENTS), "--delay", f"{stream_delay:g}"]
    child = procs.start("fake", cmd, log_path=workdir / "fake.log", cpus=procs.pinning.helpers)
    return child, int(wait_for_file(port_file, child, 30.0))


def direct_target(fake: Child, fake_port: int) -> Target:
    return Target("direct", fake_port, provider_endpoints(OPENAI_KEY, ANTHROPIC_KEY), fake)


def start_mitmdump(launch: Launch) -> Target:
    port = free_port()
    confdir = launch.workdir / "mitmdump-conf"
    confdir.mkdir(exist_ok=True)
    cmd = [str(launch.paths.bin / "mitmdump"),
           "--mode", f"reverse:http://127.0.0.1:{launch.fake_port}@127.0.0.1:{port}",
           "-q", "--set", "termlog_verbosity=error", "--set", "flow_detail=0",
           "--set", f"confdir={confdir}"]
    child = launch.procs.start("mitmdump", cmd, log_path=launch.workdir / "mitmdump.log",
                               cpus=launch.procs.pinning.target)
    return Target("mitmdump", port, provider_endpoints(OPENAI_KEY, ANTHROPIC_KEY), child)


def _aibridge_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_GATEWAY_")}
    env.update({
        "AI_GATEWAY_DATA_DIR": str(data),
        "AI_GATEWAY_DATABASE_URL": f"sqlite:///{data / 'aibridge.db'}",
        "AI_GATEWAY_ALLOW_PRIVATE_UPSTREAMS": "true",
        "AI_GATEWAY_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AI_GATEWAY_STRUCTURED_LOGGING": "true",
        "AI_GATEWAY_LOG_JSON": str(data / "gateway.jsonl"),
        "AI_GATEWAY_LOG_HUMAN": "",
        "AI_GATEWAY_LOG_LEVEL": "info",
    })
    return env


async def _cli(paths: Paths, env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(paths.bin / "aibridge"), *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode:
        raise StartError(f"aibridge {' '.join(args[:2])} failed ({proc.returncode}): "
                         f"{err.decode(errors='replace')[-800:]}")
    return out.decode()


async def _configure_aibridge(launch: Launch, env: dict[str, str]) -> str:
    """Register both providers and a member user through the admin CLI; its token."""
    base = f"http://127.0.0.1:{launch.fake_port}"
    await _cli(launch.paths, env, "providers", "add", "--type", "openai", "--name", "openai",
               "--base-url", f"{base}/v1", "--api-key", OPENAI_KEY)
    await _cli(launch.paths, env, "providers", "add", "--type", "anthropic", "--name",
               "anthropic", "--base-url", base, "--api-key", ANTHROPIC_KEY)
    await _cli(launch.paths, env, "users", "create", "bench", "--role", "member")
    out = await _cli(launch.paths, env, "tokens", "create", "--user", "bench", "--json")
    return str(json.loads(out)["token"])


async def start_aibridge(launch: Launch, name: str, workers: int) -> Target:
    data = launch.workdir / name
    data.mkdir(exist_ok=True)
    env = _aibridge_env(data)
    token = await _configure_aibridge(launch, env)
    port = free_port()
    cmd = [str(launch.paths.bin / "aibridge"), "server", "--listen", f"127.0.0.1:{port}"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    pinning = launch.procs.pinning
    child = launch.procs.start(name, cmd, env=env, cwd=data, log_path=data / "server.log",
                               cpus=pinning.wide if workers > 1 else pinning.target)
    return Target(name, port, provider_endpoints(token, token, AIBRIDGE_PREFIX), child,
                  health_path="/healthz", db_path=data / "aibridge.db")


def _litellm_config(fake_port: int, master_key: str) -> dict[str, object]:
    base = f"http://127.0.0.1:{fake_port}"
    return {
        "model_list": [
            {"model_name": CHAT_MODEL, "litellm_params": {
                "model": f"openai/{CHAT_MODEL}", "api_base": f"{base}/v1", "api_key": OPENAI_KEY}},
            {"model_name": MESSAGES_MODEL, "litellm_params": {
                "model": f"anthropic/{MESSAGES_MODEL}", "api_base": base,
                "api_key": ANTHROPIC_KEY}},
        ],
        "litellm_settings": {"telemetry": False, "success_callback": [], "failure_callback": [],
                             "callbacks": [], "turn_off_message_logging": True,
                             "drop_params": True, "json_logs": False},
        "general_settings": {"master_key": master_key, "disable_spend_logs": True,
                             "disable_error_logs": True},
    }


def start_litellm(launch: Launch) -> Target:
    master_key = f"sk-{secrets.token_hex(32)}"
    config = launch.workdir / "litellm.yaml"  # JSON is YAML
    config.write_text(json.dumps(_litellm_config(launch.fake_port, master_key), indent=1))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LITELLM_", "DATABASE_URL", "AI_GATEWAY_"))}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                "NO_DOCS": "True", "DISABLE_ADMIN_UI": "True"})
    port = free_port()
    cmd = [str(launch.paths.litellm), "--config", str(config), "--port", str(port),
           "--host", "127.0.0.1", "--num_workers", "1"]
    child = launch.procs.start("litellm", cmd, env=env, cwd=launch.workdir,
                               log_path=launch.workdir / "litellm.log",
                               cpus=launch.procs.pinning.target)
    return Target("litellm", port, provider_endpoints(master_key, master_key), child,
                  health_path="/health/liveliness")


async def wait_ready(target: Target, timeout: float = READY_SECONDS) -> None:
    """Until the target answers HTTP on its health path (any status: it is up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    payload = (f"GET {target.health_path} HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
               "Connection: close\r\n\r\n").encode()
    while loop.time() < deadline:
        if not target.child.alive():
            raise StartError(f"{target.name} exited {target.child.proc.returncode}:\n"
                             f"{target.child.log_tail()}")
        try:
            status, _ = await one_request(target.port, payload, timeout=5.0)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            status = 0
        if status == 200 or (status and target.health_path == "/"):
            return
        await asyncio.sleep(0.1)
    raise StartError(f"{target.name} not ready in {timeout:.0f}s:\n{target.child.log_tail()}")
