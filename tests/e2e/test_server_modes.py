"""How people run it: `aibridge server --workers 2`, `mitmdump -s addons/aibridge.py`,
settings from flags and YAML, the gateway disabled, first-start bootstrap."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import make_setup
from tests.e2e.recorded import all_interceptions
from tests.harness import AIBRIDGE, BIN, REPO, free_port, gateway_env, start_gateway

MSG = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def test_workers_share_the_port(tmp_path: Path, fake: Any) -> None:
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'w.db'}", args=["--workers", "2"])
    try:
        setup = make_setup(gw, fake)
        # New connections are spread by the kernel; keep asking until both workers answered.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for _ in range(10):
                r = httpx.post(
                    gw.url("anthropic", "/v1/messages"),
                    json=MSG,
                    headers={"x-api-key": setup.token},
                    timeout=10,
                )
                assert r.status_code == 200
            time.sleep(0.3)
            instances = {i.instance_id for i in all_interceptions(gw.admin.engine)}
            if len(instances) == 2:
                break
        assert len(instances) == 2, instances
    finally:
        assert gw.stop() == 0
    time.sleep(0.5)
    leftover = subprocess.run(
        ["pgrep", "-f", f"127.0.0.1:{gw.port}"], capture_output=True, text=True
    )
    assert leftover.stdout.strip() == "", "workers survived the supervisor's SIGTERM"


def test_first_start_bootstrap_prints_admin_token_once(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'b.db'}")
    try:
        token = re.search(r"aib_[A-Za-z0-9_-]{20,}", gw.logs())
        assert token, gw.logs()
        r = httpx.get(gw.url("anthropic", "/v1/models"), headers={"x-api-key": token.group(0)})
        assert r.status_code == 404 and "unknown provider" in r.text  # authenticated
    finally:
        gw.stop()
    again = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'b.db'}", env=gw.env)
    again.stop()
    assert "aib_" not in again.logs()  # not created twice
    db = tmp_path / "b.db"
    data = gw.data_dir
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert (
        stat.S_IMODE(os.stat(data / "encryption.key").st_mode) == 0o600
        if (data / "encryption.key").exists()
        else True
    )
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def test_disabled_gateway_answers_404(tmp_path: Path, fake: Any) -> None:
    gw = start_gateway(
        tmp_path, f"sqlite:///{tmp_path / 'd.db'}", args=["--ai-gateway-enabled=false"]
    )
    try:
        setup = make_setup(gw, fake)
        r = httpx.post(
            gw.url("anthropic", "/v1/messages"), json=MSG, headers={"x-api-key": setup.token}
        )
        assert r.status_code == 404
        assert "disabled" in r.json()["error"]["message"]
        assert fake.requests == []
    finally:
        gw.stop()


def test_yaml_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "aibridge.yaml"
    cfg.write_text("ai_gateway:\n  retention: 90d\n  api_dump_dir: /tmp/dumps-x\n")
    env = gateway_env(
        tmp_path / "data", f"sqlite:///{tmp_path / 'y.db'}", {"AI_GATEWAY_RETENTION": "12h"}
    )
    out = subprocess.run(
        [str(AIBRIDGE), "--config", str(cfg), "config", "show", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    import json

    shown = json.loads(out.stdout)
    assert shown["retention"] == {**shown["retention"], "value": "12h", "source": "env"}
    assert shown["dump_dir"]["value"] == "/tmp/dumps-x"
    assert shown["dump_dir"]["source"].startswith("yaml:")
    assert shown["encryption_keys"]["value"] != env["AI_GATEWAY_ENCRYPTION_KEYS"]
    bad = subprocess.run(
        [str(AIBRIDGE), "server", "--ai-gateway-retention", "soon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "retention" in bad.stderr


def test_mitmdump_script(tmp_path: Path, fake: Any) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'm.db'}"
    env = gateway_env(tmp_path / "data", db)
    proc = subprocess.Popen(
        [
            str(BIN / "mitmdump"),
            "-q",
            "-s",
            str(REPO / "addons/aibridge.py"),
            "--mode",
            f"reverse:http://localhost:1@127.0.0.1:{port}",
            "--set",
            "connection_strategy=lazy",
            "--set",
            "ai_gateway_reload_interval=200ms",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        from gateway.crypto import Keyring
        from gateway.db import make_engine
        from tests.harness import Admin, GatewayProcess

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        engine = make_engine(db)
        gw = GatewayProcess(
            port,
            proc,
            tmp_path / "data",
            env,
            tmp_path / "none.log",
            tmp_path / "none.jsonl",
            Admin(engine, Keyring.from_text(env["AI_GATEWAY_ENCRYPTION_KEYS"])),
        )
        setup = make_setup(gw, fake)
        r = httpx.post(
            gw.url("anthropic", "/v1/messages"),
            json=MSG,
            headers={"x-api-key": setup.token},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert fake.requests[-1].header("x-api-key") == setup.anthropic_key
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
