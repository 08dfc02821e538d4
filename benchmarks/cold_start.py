"""Part 4 of `bench`: cold start, a fresh interpreter from spawn to the first prediction, and its peak RSS."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from ._util import ROOT
from .bench_options import BenchError

COLD_CLIP = ("ravdess", "Actor_19", "03-01-05-02-01-01-19.flac")  # held-out speaker, angry

_COLD_CHILD = r"""
import sys, time
t_start = time.time()
import json, resource
import numpy as np, soundfile as sf
from streamer.runner import build_pipeline
t_import = time.time()
pipe = build_pipeline(source="file", live=False, language=sys.argv[2])
t_load = time.time()
y, _ = sf.read(sys.argv[1], dtype="float32")
first = None
for i in range(0, y.size, 320):
    for e in pipe.push(y[i:i + 320]):
        if first is None and e.emotion is not None:
            first = time.time()
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child would report
# at least its parent's (the benchmark's) resident size.
try:
    hwm = int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM:")))
except (OSError, StopIteration):
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"t_start": t_start, "t_import": t_import, "t_load": t_load, "t_first": first, "maxrss_kb": hwm,
                  "emotion_model": pipe.emotion_model.path.stem}))
"""


def _cold_once(clip: Path, language: str) -> dict:
    t_spawn = time.time()
    done = subprocess.run([sys.executable, "-c", _COLD_CHILD, str(clip), language], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        tail = [ln for ln in done.stderr.splitlines() if ln.strip()][-1:] or ["no output"]
        raise BenchError(f"cold-start run failed: {tail[0]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    if r["t_first"] is None:
        raise BenchError(f"cold-start run: no prediction on {clip}")
    return {"cold_start_s": round(r["t_first"] - t_spawn, 3),
            "cold_start_breakdown_s": {"interpreter": round(r["t_start"] - t_spawn, 3),
                                       "imports": round(r["t_import"] - r["t_start"], 3),
                                       "load_models": round(r["t_load"] - r["t_import"], 3),
                                       "first_prediction": round(r["t_first"] - r["t_load"], 3)},
            "peak_rss_mb": round(r["maxrss_kb"] / 1024, 1), "cold_start_emotion_model": r["emotion_model"]}


def run_cold_start(data_dir: Path, on_progress, *, language: str = "any") -> dict:
    """Two fresh interpreters to the first prediction of the emotion model of `language`; the second is reported."""
    clip = Path(data_dir).joinpath(*COLD_CLIP)
    if not clip.is_file():
        raise FileNotFoundError(f"cold-start clip missing: {clip} (give the corpus root with --data)")
    on_progress(0, 2)
    first = _cold_once(clip, language)  # warms the numba cache (compiles on a clean clone)
    on_progress(1, 2)
    res = _cold_once(clip, language)
    on_progress(2, 2)
    res["cold_start_first_run_s"] = first["cold_start_s"]
    return res
