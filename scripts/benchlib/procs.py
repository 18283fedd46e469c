"""Child processes of a bench run: started (optionally pinned) in their own process group,
always stopped, and measured through /proc together with their descendants."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
PR_SET_PDEATHSIG = 1
STOP_SECONDS = 20.0


@dataclass(frozen=True)
class Pinning:
    """Which cores the target, a two-worker target and the helpers (fake, load generator) use."""

    enabled: bool
    target: str = ""
    wide: str = ""
    helpers: str = ""

    @classmethod
    def choose(cls, requested: bool | None) -> Pinning:
        cores = os.cpu_count() or 1
        possible = shutil.which("taskset") is not None and cores >= 2
        if not possible or requested is False:
            return cls(enabled=False)
        helpers = "1" if cores < 4 else f"2-{cores - 1}"
        return cls(enabled=True, target="0", wide="0,1", helpers=helpers)

    def prefix(self, cpus: str) -> list[str]:
        return ["taskset", "-c", cpus] if self.enabled and cpus else []

    def pin_self(self) -> None:
        if self.enabled:
            os.sched_setaffinity(0, parse_cpus(self.helpers))

    def describe(self) -> str:
        if not self.enabled:
            return "off (load generator, fake provider and target share all cores)"
        return (f"taskset: target on core {self.target} (two-worker target on {self.wide}), "
                f"fake provider + load generator on core {self.helpers}")


def parse_cpus(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _child_setup() -> None:
    """In the child before exec: own process group, and die with the bench (even on SIGKILL)."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (by scanning /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds of the given live processes."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat), to see foreign load."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    cpus: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.alive() else []

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Owns every child process; `close()` (run on exit, exceptions and Ctrl-C) stops them."""

    def __init__(self, pinning: Pinning) -> None:
        self.pinning = pinning
        self.children: list[Child] = []

    def start(self, name: str, cmd: list[str], *, log_path: Path, cpus: str = "",
              env: dict[str, str] | None = None, cwd: Path | None = None) -> Child:
        full = [*self.pinning.prefix(cpus), *cmd]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(full, env=env, cwd=cwd, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
        child = Child(name, proc, log_path, cpus if self.pinning.enabled else "")
        self.children.append(child)
        return child

    def stop(self, child: Child, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM the child's process group, wait, then SIGKILL whatever is left of it."""
        if child.alive():
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.proc.wait()
        _signal_group(child.pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def close(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_for_file(path: Path, child: Child, timeout: float) -> str:
    """The content of `path` once a child wrote it (the fake provider's --port-file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text().strip()):
            return text
        if not child.alive():
            raise RuntimeError(f"{child.name} exited {child.proc.returncode}:\n{child.log_tail()}")
        time.sleep(0.05)
    raise TimeoutError(f"{child.name} did not write {path} in {timeout:.0f}s")
