"""The benchmarks run on tiny inputs and write the documented JSON keys (timings are not asserted)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_dsp_json_keys(tmp_path):
    out = tmp_path / "dsp.json"
    subprocess.run([sys.executable, "-m", "benchmarks.bench_dsp", "--seconds", "1", "--json", str(out),
                    "--html", str(tmp_path / "dsp.html")],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    for key in ("ratio_librosa", "ratio_numpy", "rtf", "cold_start_s", "ours_us_per_hop", "ours_with_voice_us_per_hop",
                "librosa_us_per_hop", "numpy_us_per_hop"):
        assert isinstance(res[key], (int, float)) and res[key] > 0, key


@pytest.mark.corpus   # mixes clips of ten actors with babble from others
def test_bench_vad_json_and_chart(tmp_path, corpus_root):
    out, html = tmp_path / "vad.json", tmp_path / "vad.html"
    subprocess.run([sys.executable, "-m", "benchmarks.bench_vad", "--data", str(corpus_root), "--clips", "4",
                    "--json", str(out), "--html", str(html)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    conds = {(s["backend"], s["noise"], s["snr_db"]) for s in res["scores"]}
    assert {("ours", n, snr) for n in ("white", "babble") for snr in (20, 10, 0)} <= conds
    assert all(0.0 <= s["f1"] <= 1.0 for s in res["scores"])
    assert set(res["goal"]["ours"]) == {"f1_20db", "f1_10db"}
    assert html.read_text().count("<svg") == 3
