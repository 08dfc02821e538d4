"""The benchmarks run on tiny inputs and write the documented JSON keys (timings are not asserted)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_dsp_json_keys(tmp_path):
    out = tmp_path / "dsp.json"
    subprocess.run([sys.executable, "-m", "benchmarks.bench_dsp", "--seconds", "1", "--json", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    for key in ("ratio_librosa", "ratio_numpy", "rtf", "cold_start_s", "ours_us_per_hop", "librosa_us_per_hop",
                "numpy_us_per_hop"):
        assert isinstance(res[key], (int, float)) and res[key] > 0, key
