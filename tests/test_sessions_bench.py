"""benchmarks.sessions at a tiny N: it runs against a real serve process and writes the documented keys
(no timing is asserted; the figures are the benchmark's, not the test's)."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._clips import speech_clip

ROOT = Path(__file__).resolve().parents[1]


def test_sessions_bench_runs_two_capturing_clients(tmp_path):
    source, _, _ = speech_clip(tmp_path / "speech.wav", lead_s=0.3, tail_s=0.3)
    out, html = tmp_path / "sessions.json", tmp_path / "sessions.html"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.sessions", "--sessions", "2", "--seconds", "3",
                           "--source", str(source), "--json", str(out), "--html", str(html)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    run = res["runs"]["2"]
    assert run["connected"] == 2 and run["closed_early"] == 0 and run["sessions_without_events"] == 0
    assert run["events"] >= 2 * 20  # 3 s at 10 hops per second, each session
    assert run["latency_ms"]["n"] == run["events"] and run["latency_ms"]["p95"] > 0
    assert isinstance(run["server_cpu_per_session"], float) and isinstance(run["passed"], bool)
    assert isinstance(run["client_limited"], bool) and run["client_send_lag_ms"]["n"] > 0
    assert {"features", "vad", "windows"} <= set(run["server_stage_ms_per_hop"])
    base = res["one_session_in_process_ms_per_s"]
    assert base["total"] > 0 and base["pipeline"] > 0 and base["resample"] > 0
    assert res["where_the_time_goes"]["at_sessions"] == 2 and "sessions_at_p95_100ms" in res["goals"]
    assert "<table" in html.read_text() and "<svg" in html.read_text()


def test_bench_cli_takes_session_counts_or_find():
    from benchmarks.cli import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert p.parse_args(["--sessions", "10,50"]).sessions == (10, 50)
    assert p.parse_args(["--sessions", "find"]).sessions == (0,)
    assert p.parse_args([]).sessions == ()
    with pytest.raises(SystemExit):
        p.parse_args(["--sessions", "5000"])
