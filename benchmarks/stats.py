"""Statistics of the bench samples and the goals the results are checked against (never asserted)."""
from __future__ import annotations

import numpy as np

GOALS = {  # name: (JSON path, "<=" or ">=", target)
    "speedup_vs_baseline": (("speedup_vs_baseline",), ">=", 100.0),
    "rtf": (("rtf",), "<=", 0.005),
    "hop_compute_p99_ms": (("hop_latency_ms", "p99"), "<=", 5.0),
    "reaction_median_s": (("reaction_s", "median"), "<=", 1.0),
    "cold_start_s": (("cold_start_s",), "<=", 2.0),
}


def summary(values, *, digits: int = 4) -> dict:
    """median / p95 / p99 / max / mean / n of a sample (numpy's linear-interpolation percentiles)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"median": None, "p50": None, "p95": None, "p99": None, "max": None, "mean": None, "n": 0}
    q = np.percentile(v, [50, 95, 99])
    r = {"median": q[0], "p50": q[0], "p95": q[1], "p99": q[2], "max": v.max(), "mean": v.mean()}
    return {**{k: round(float(x), digits) for k, x in r.items()}, "n": int(v.size)}


def _get(d: dict, path: tuple):
    for k in path:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def check_goals(res: dict) -> dict:
    out = {}
    for name, (path, op, target) in GOALS.items():
        value = _get(res, path)
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        out[name] = {"value": value, "target": f"{op} {target:g}", "met": met}
    return out
