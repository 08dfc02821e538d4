"""What the bench figures belong to: the machine, its load, this process's peak RSS and the models measured."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_info(pinned_cpu, *, load_at_start=None) -> dict:
    from importlib import metadata

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    cpu_model = None
    try:
        cpu_model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                          if ln.startswith("model name")), None)
    except OSError:
        pass
    return {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu_model": cpu_model, "cpu_count": os.cpu_count(),
            "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "pinned_cpu": pinned_cpu,
            "load_average_at_start": load_at_start, "load_average_at_end": loadavg(),
            "versions": {p: version(p) for p in ("numpy", "numba", "onnxruntime", "librosa", "scikit-learn",
                                                  "websockets", "voice-emotion-monitor")}}


def loadavg():
    """1, 5 and 15 min load averages: other work on the machine shows in the wall-clock timings."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def model_ids() -> dict:
    """sha256 (first 12 hex) of the shipped model files: which models these numbers belong to."""
    import hashlib

    from models.onnx_model import default_models

    return {name: hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] for name, path in default_models().items()}


def self_peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
