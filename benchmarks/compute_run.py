"""Part 1 of `bench`, the parent side: benchmarks.compute run on one pinned core, and the statistics of its
per-hop measurements (stages, hop latency, real-time factor, the old app's baseline and the speed-up)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ._util import ROOT
from .bench_options import BenchError, BenchOptions
from .compute import PIPELINE_STAGES
from .stats import summary

STAGES = (*PIPELINE_STAGES, "encode_broadcast")


def _pinned_cpu() -> int | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def run_compute(wav: Path, opts: BenchOptions, workdir: Path, on_progress) -> dict:
    """Run benchmarks.compute on one core; its raw per-hop measurements."""
    cpu = _pinned_cpu()
    spec, out, err = workdir / "spec.json", workdir / "compute.json", workdir / "compute.err"
    spec.write_text(json.dumps({"wav": str(wav), "language": opts.language, "min_hops": opts.min_hops,
                                "baseline_hops": opts.baseline_hops,
                                "baseline_windows": opts.baseline_windows, "data_dir": str(opts.data_dir)}))
    # Pin before anything is imported, so every thread the child ever starts inherits the one core.
    boot = ("import os,sys,runpy;"
            + (f"os.sched_setaffinity(0,{{{cpu}}});" if cpu is not None else "")
            + f"sys.argv=['compute',{str(spec)!r},{str(out)!r}];"
            + "runpy.run_module('benchmarks.compute',run_name='__main__')")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    with open(err, "w") as errf:
        proc = subprocess.Popen([sys.executable, "-c", boot], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=errf, text=True)
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "PROGRESS":
                on_progress(parts[1], int(parts[2]), int(parts[3]))
        rc = proc.wait()
    if rc != 0:
        tail = [ln for ln in err.read_text().splitlines() if ln.strip()][-1:] or ["no output"]
        raise BenchError(f"the one-core compute run failed (exit {rc}): {tail[0]}")
    res = json.loads(out.read_text())
    res["pinned_cpu"] = cpu
    return res


def compute_results(raw: dict) -> tuple[dict, list]:
    """Statistics of the compute run: stages, hop latency, RTF, baseline and speedup."""
    ours, base = raw["ours"], raw["baseline"]
    push = np.asarray(ours["push_ms"])
    enc = np.asarray(ours["to_dict_ms"]) + np.asarray(ours["publish_ms"])
    total = push + enc
    speech = np.asarray(ours["speech"], dtype=bool)
    sel = speech if speech.any() else np.ones_like(speech)
    hop_ms = float(ours["hop_ms"])
    timed = ours["stages"]  # the pipeline's own per-stage timings of the same hops
    sel_st = np.asarray(timed["speech"], dtype=bool)
    sel_st = sel_st if sel_st.any() else np.ones_like(sel_st)
    stages = {s: np.asarray(timed[s])[sel_st] for s in PIPELINE_STAGES}
    stages["encode_broadcast"] = enc[sel]
    stages_ms = {s: {**summary(v), "share_of_hop_budget": round(float(v.mean()) / hop_ms, 6)}
                 for s, v in stages.items()}
    base_hop = np.asarray(base["features_ms"]) + np.asarray(base["forest_ms"])
    ours_per_hop = float(push[sel].mean())
    baseline_per_hop = float(base_hop.mean())
    res = {
        "window_ms": ours["window_ms"], "hop_ms": hop_ms, "updates_per_s": round(1000.0 / hop_ms, 3),
        "hops_timed": int(push.size), "speech_hops_timed": int(speech.sum()),
        "audio_seconds_timed": round(ours["audio_seconds"], 2),
        "rtf": round((ours["push_total_ms"] + float(enc.sum())) / (ours["audio_seconds"] * 1e3), 6),
        "rtf_push_only": round(ours["push_total_ms"] / (ours["audio_seconds"] * 1e3), 6),
        "hop_latency_ms": summary(total[sel]),
        "hop_latency_all_hops_ms": summary(total),
        "stages_ms": stages_ms,
        "ours_ms_per_hop": round(ours_per_hop, 4),
        "ours_ms_per_hop_median": round(float(np.median(push[sel])), 4),
        "baseline_ms_per_hop": round(baseline_per_hop, 4),
        "baseline_ms_per_hop_median": round(float(np.median(base_hop)), 4),
        "baseline_stages_ms": {"librosa_features": summary(base["features_ms"]),
                               "random_forest": summary(base["forest_ms"])},
        "baseline_hops_timed": int(base_hop.size),
        "baseline_train_windows": base["train_windows"],
        "speedup_vs_baseline": round(baseline_per_hop / ours_per_hop, 2),
        "speedup_vs_baseline_median": round(float(np.median(base_hop) / np.median(push[sel])), 2),
        "cpu_time": _cpu_results(ours, base, sel),
    }
    return res, total[sel].tolist()


def _cpu_results(ours: dict, base: dict, sel: np.ndarray) -> dict:
    """The same figures in thread CPU time: what the work costs, whatever else the machine is running."""
    push = np.asarray(ours["push_cpu_ms"])
    enc = np.asarray(ours["to_dict_cpu_ms"]) + np.asarray(ours["publish_cpu_ms"])
    ours_per_hop, base_per_hop = float(push[sel].mean()), float(np.mean(base["cpu_ms"]))
    return {"rtf": round((ours["push_total_cpu_ms"] + float(enc.sum())) / (ours["audio_seconds"] * 1e3), 6),
            "hop_ms": summary((push + enc)[sel]),
            "ours_ms_per_hop": round(ours_per_hop, 4), "baseline_ms_per_hop": round(base_per_hop, 4),
            "speedup_vs_baseline": round(base_per_hop / ours_per_hop, 2)}
