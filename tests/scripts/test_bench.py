"""scripts/bench.py keeps working: a tiny --quick run (a smoke test, not a timed one)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
QUICK_CELLS = frozenset({"chat-8k/c1", "chat-8k/c16", "stream-50/c16"})


def test_quick_run_measures_every_cell_and_records_every_answer(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--duration", "1", "--rounds", "1",
         "--targets", "direct,aibridge", "--json", str(out), "--markdown", str(md)],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())

    cells = {(c["target"], f"{c['workload']}/c{c['concurrency']}"): c for c in doc["cells"]}
    assert set(cells) == {(t, k) for t in ("direct", "aibridge") for k in QUICK_CELLS}
    for cell in cells.values():
        assert cell["ok"] > 0 and cell["rps"] > 0 and cell["p50_ms"] > 0, cell
        assert cell["error_rate"] <= 0.01, cell
    for target in ("direct", "aibridge"):
        stream = cells[(target, "stream-50/c16")]
        assert stream["ttfb_p50_ms"] > 0 and stream["events_per_s"] > 0, stream

    recording = doc["recording"]["aibridge"]
    assert recording["answered"] > 0
    assert recording["recorded"] == recording["answered"], recording

    assert doc["targets"]["aibridge"]["status"] == "ok"
    assert doc["errors"] == []
    assert {c["name"] for c in doc["checks"]} >= {"aibridge: recorded == answered"}
    for key in ("cores", "python", "mitmproxy", "date"):
        assert doc["machine"][key]
    assert "--quick" in doc["command"]
    text = md.read_text()
    assert "| workload | c | target | req/s |" in text and "aibridge" in text
