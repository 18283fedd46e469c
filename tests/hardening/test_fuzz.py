"""Fuzzing, bounded: each target of fuzz_targets.py runs in its own process for the budget
(5 s each, 60 s with --soak). With atheris (coverage-guided) when it is installed, else with
hypothesis for the same time. A crash, a broken split-invariance or a hang fails the test and
shows the input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardening.conftest import Budget

TARGETS = Path(__file__).with_name("fuzz_targets.py")
NAMES = ["messages", "chat", "responses", "sse", "requests", "paths", "units"]


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_target(name: str, budget: Budget, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(TARGETS), name, str(budget.fuzz_seconds), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=budget.fuzz_seconds + 120,
        cwd=tmp_path,
    )
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    shown = [f"{c.name}: {c.read_bytes()[:400]!r}" for c in crashes]
    assert done.returncode == 0 and not crashes, "\n".join(
        [*shown, done.stdout[-2000:], done.stderr[-4000:]]
    )
    assert "Done " in done.stderr or "hypothesis:" in done.stderr, done.stderr[-2000:]
