"""`emotion-monitor bench`: latency and throughput of the whole monitor, against the old app's approach (issue 6).

    emotion-monitor bench [--source PATH|demo] [--json OUT] [--html OUT] [--seconds N] [--data DIR]
    python -m benchmarks  [the same arguments]

One run, on this machine, at the shipped models' window and hop (1.5 s / 100 ms = 10 updates per second):

1. compute, on one core (benchmarks.compute in a subprocess pinned with os.sched_setaffinity; BLAS and
   onnxruntime at one thread): the source audio streamed in 20 ms blocks, looped to ``--hops`` events;
   per-hop cost of every stage (VAD, features, windowing, pooling, emotion and gender inference, smoothing,
   descriptors, the rest of push, encode + broadcast to a websocket viewer), the total hop compute and the
   real-time factor. In the same process, the baseline: the old app's 180 librosa features recomputed on
   the whole window at every hop + a fitted 100-tree RandomForest, timed on the same speech windows.
   Wall clock throughout; the same figures in thread CPU time under "cpu_time" (unaffected by other
   processes on a shared machine; "machine" records the load averages).
2. end to end: the real server (``emotion-monitor serve --port 0``) in a subprocess, a real websockets
   client on loopback; latency = arrival at the client - capture time of the window's last sample
   (event["wall"]). The audio goes through the PulseAudio virtual microphone when PulseAudio is installed
   (benchmarks.vmic), else the server paces the file in real time ("e2e_source" says which).
3. reaction time and timeline accuracy on streams of held-out speakers (benchmarks.reaction).
4. cold start: a fresh interpreter from spawn to the first prediction (run once to warm the numba cache,
   then measured), and the monitor's peak RSS in that process.
5. with ``--viewers 200,1000`` (off by default: it adds about a minute per count): the other viewers'
   latency while one viewer stops reading, and when the server drops it (benchmarks.viewers).

Timings go to the JSON, the terminal and an HTML report; goals are checked but never asserted.
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp.config import SAMPLE_RATE as SR  # the monitor's rate

from streamer.errors import StreamerError

from ._util import DEFAULT_DATA, ROOT, write_json
from .compute import PIPELINE_STAGES

STAGES = (*PIPELINE_STAGES, "encode_broadcast")
GOALS = {  # name: (JSON path, "<=" or ">=", target)
    "speedup_vs_baseline": (("speedup_vs_baseline",), ">=", 100.0),
    "rtf": (("rtf",), "<=", 0.005),
    "hop_compute_p99_ms": (("hop_latency_ms", "p99"), "<=", 5.0),
    "reaction_median_s": (("reaction_s", "median"), "<=", 1.0),
    "cold_start_s": (("cold_start_s",), "<=", 2.0),
}
COLD_CLIP = ("ravdess", "Actor_19", "03-01-05-02-01-01-19.flac")  # held-out speaker, angry


class BenchError(StreamerError):
    """A part of the benchmark could not run; one line, so `emotion-monitor` prints it without a traceback."""


@dataclass(frozen=True)
class BenchOptions:
    """What `bench` runs. ``source`` None: held-out RAVDESS speech (actors 19 and 20, pauses included)."""

    source: str | None = None
    seconds: float = 30.0  # source audio: streamed once end to end in real time, looped for the compute part
    data_dir: Path = DEFAULT_DATA
    json_path: Path | None = ROOT / "artifacts" / "bench.json"
    html_path: Path | None = ROOT / "artifacts" / "bench.html"
    clips_per_actor: int = 60  # reaction streams (RAVDESS has 60 per actor)
    min_hops: int = 1000  # timed hops of the compute part
    baseline_windows: int = 200  # RandomForest training windows
    baseline_hops: int = 200  # timed baseline hops
    e2e: str = "auto"  # auto | vmic | file
    viewers: tuple[int, ...] = ()  # viewer counts of the stalled-viewer part; empty: skipped

    def __post_init__(self):
        if not self.seconds >= 1.0:
            raise ValueError(f"--seconds must be at least 1, got {self.seconds}")
        if self.e2e not in ("auto", "vmic", "file"):
            raise ValueError(f"--e2e must be auto, vmic or file, got {self.e2e!r}")
        if not all(1 <= n <= 5000 for n in self.viewers):
            raise ValueError(f"--viewers counts must be 1..5000, got {self.viewers}")
        for name in ("clips_per_actor", "min_hops", "baseline_windows", "baseline_hops"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2, got {getattr(self, name)}")


@dataclass(frozen=True)
class Artifacts:
    """Samples kept for the HTML report (not written to the JSON)."""

    hop_total_ms: list  # total hop compute of each speech hop
    e2e_ms: list  # end-to-end latency of each event
    timelines: list  # (ReactionStream, rows) per reaction stream


# ---------------------------------------------------------------------------------------------- statistics

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


# ---------------------------------------------------------------------------------------------- source audio

def _take(blocks, n: int) -> np.ndarray:
    out, got = [], 0
    for b in blocks:
        out.append(b.samples)
        got += b.samples.size
        if got >= n:
            break
    return np.concatenate(out)[:n] if out else np.zeros(0, np.float32)


def source_audio(source: str | None, *, seconds: float, data_dir: Path) -> tuple[np.ndarray, str]:
    """``seconds`` of 16 kHz mono audio and its description."""
    from streamer.sources import DemoSource, FileSource

    n = int(round(seconds * SR))
    if source == "demo":
        with DemoSource(realtime=False, seed=0) as demo:
            return _take(demo, n), f"demo ({demo.engine_used})"
    if source is not None:
        with FileSource(source, loop=True) as src:
            return _take(src, n), str(source)
    from .reaction import HELD_OUT_ACTORS, heldout_clips

    import soundfile as sf

    clips = [u for a in HELD_OUT_ACTORS for u in heldout_clips(data_dir, a)]
    order = np.random.default_rng(1).permutation(len(clips))
    parts, got = [], 0
    for i in order:
        y, _ = sf.read(clips[i].path, dtype="float32")
        parts.append(y)
        got += y.size
        if got >= n:
            break
    return np.concatenate(parts)[:n], "RAVDESS held-out actors 19-20, clips as recorded (with their pauses)"


# ---------------------------------------------------------------------------------------------- 1. compute

def _pinned_cpu() -> int | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def run_compute(wav: Path, opts: BenchOptions, workdir: Path, on_progress) -> dict:
    """Run benchmarks.compute on one core; its raw per-hop measurements."""
    cpu = _pinned_cpu()
    spec, out, err = workdir / "spec.json", workdir / "compute.json", workdir / "compute.err"
    spec.write_text(json.dumps({"wav": str(wav), "min_hops": opts.min_hops, "baseline_hops": opts.baseline_hops,
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


# ---------------------------------------------------------------------------------------------- 2. end to end

class _ServerProcess:
    """`emotion-monitor serve --port 0` in a subprocess; stderr is collected by a thread."""

    def __init__(self, source_args: list[str]):
        cmd = [sys.executable, "-m", "streamer", "serve", "--port", "0", "--history-seconds", "0", *source_args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True, name="bench-serve-stderr").start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            m = re.search(r"serving the live page at http://[^:/]+:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60.0) -> int:
        self._ready.wait(timeout)
        if self.port is None:
            raise BenchError(f"the server did not start: {self.tail()}")
        return self.port

    def tail(self) -> str:
        return " | ".join(self.lines[-3:]) or f"exit {self.proc.poll()}"

    def peak_rss_mb(self) -> float | None:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        m = re.search(r"VmHWM:\s+(\d+) kB", status)
        return round(int(m.group(1)) / 1024, 1) if m else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


async def _e2e_client(port: int, *, expect_source: str, play, seconds: float, on_progress) -> list[tuple]:
    """Collect (latency_ms, speech) of prediction events; ``play()`` starts the audio and returns its start time."""
    from websockets.asyncio.client import connect

    rows = []
    async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        async with asyncio.timeout(30):  # the device delivers, the models load: then events flow
            while json.loads(await ws.recv())["type"] != "prediction":
                pass
        t_play = play()
        deadline = time.monotonic() + seconds + 0.5
        while (left := deadline - time.monotonic()) > 0:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=left)
            except TimeoutError:
                break
            arrived = time.time()
            msg = json.loads(text)
            if msg["type"] == "end":
                break
            if msg["type"] != "prediction" or msg["wall"] < t_play:
                continue
            if msg["source"] != expect_source:
                raise BenchError(f"the server streams from {msg['source']!r}, expected {expect_source!r}")
            rows.append(((arrived - msg["wall"]) * 1e3, bool(msg["speech"])))
            on_progress(min(seconds, time.time() - t_play), seconds)
    return rows


def run_e2e(wav: Path, *, seconds: float, mode: str, on_progress) -> tuple[dict, list]:
    """End-to-end latency through the virtual microphone (or a paced file): statistics and the samples."""
    note = None
    if mode in ("auto", "vmic"):
        from .vmic import VirtualMicUnavailable, virtual_mic

        try:
            with virtual_mic() as mic:
                return _e2e(wav, seconds=seconds, mic=mic, on_progress=on_progress)
        except VirtualMicUnavailable as exc:
            if mode == "vmic":
                raise BenchError(f"virtual microphone unavailable: {exc}") from None
            note = f"virtual microphone unavailable ({exc}); paced file instead"
    res, samples = _e2e(wav, seconds=seconds, mic=None, on_progress=on_progress)
    if note:
        res["e2e_note"] = note
    return res, samples


def _e2e(wav: Path, *, seconds: float, mic, on_progress) -> tuple[dict, list]:
    server = _ServerProcess(["--source", "mic"] if mic is not None else ["--source", str(wav), "--loop"])
    try:
        port = server.wait_ready()

        def play() -> float:
            if mic is not None:
                mic.play(wav)  # paplay into the virtual sink, in real time
            return time.time()

        rows = asyncio.run(_e2e_client(port, expect_source="mic" if mic is not None else "file", play=play,
                                       seconds=seconds, on_progress=on_progress))
        rss = server.peak_rss_mb()
    except (OSError, TimeoutError) as exc:
        raise BenchError(f"end-to-end run failed: {type(exc).__name__}: {exc}; server: {server.tail()}") from None
    finally:
        server.stop()
    if not rows:
        raise BenchError(f"no events reached the websocket client; server: {server.tail()}")
    lat = [r[0] for r in rows]
    res = {"e2e_source": "virtual-mic" if mic is not None else "paced-file",
           "e2e_latency_ms": summary(lat, digits=2),
           "e2e_latency_speech_ms": summary([r[0] for r in rows if r[1]], digits=2),
           "server_peak_rss_mb": rss}
    return res, lat


# ---------------------------------------------------------------------------------------------- 3. reaction

def run_reaction(opts: BenchOptions, on_progress) -> tuple[dict, list]:
    from streamer.runner import build_pipeline

    from .reaction import HELD_OUT_ACTORS, build_stream, heldout_clips, order_clips, score, stream_events

    pipe = build_pipeline(source="file", live=False)  # the shipped models at their own window and hop
    variants, timelines = {}, []
    jobs = [(a, p) for p in (True, False) for a in HELD_OUT_ACTORS]
    orders = {a: order_clips(heldout_clips(opts.data_dir, a), rng=np.random.default_rng(a), n=opts.clips_per_actor)
              for a in HELD_OUT_ACTORS}
    for k, (actor, pauses) in enumerate(jobs):
        on_progress(k, len(jobs))
        stream = build_stream(orders[actor], actor=actor, pauses=pauses)
        rows = stream_events(pipe, stream.y)
        timelines.append((stream, rows))
        key = "with_pauses" if pauses else "without_pauses"
        for kind, raw in (("smoothed", False), ("raw", True)):
            variants.setdefault(key, {}).setdefault(kind, []).append(score(rows, stream.utterances, raw=raw))
    on_progress(len(jobs), len(jobs))
    out = {key: _reaction_stats(v["smoothed"], v["raw"]) for key, v in variants.items()}
    pooled = _reaction_stats([s for v in variants.values() for s in v["smoothed"]],
                             [s for v in variants.values() for s in v["raw"]])
    pooled.update(out)
    pooled["streams_seconds"] = round(sum(s.seconds for s, _ in timelines), 1)
    return {"reaction_s": pooled, "timeline_accuracy": pooled.pop("timeline_accuracy")}, timelines


def _reaction_stats(smoothed: list[dict], raw: list[dict]) -> dict:
    def pooled(scores):
        r = [x for s in scores for x in s["reactions_s"]]
        changes = sum(s["changes"] for s in scores)
        judged = sum(s["judged"] for s in scores)
        return {"median": round(float(np.median(r)), 3) if r else None,
                "p90": round(float(np.percentile(r, 90)), 3) if r else None,
                "miss_rate": round(sum(s["misses"] for s in scores) / changes, 4) if changes else None,
                "changes": changes,
                "timeline_accuracy": round(sum(s["correct"] for s in scores) / judged, 4) if judged else None}

    out = pooled(smoothed)
    raw_stats = pooled(raw)
    out["raw_label"] = {"median": raw_stats["median"], "p90": raw_stats["p90"], "miss_rate": raw_stats["miss_rate"],
                        "timeline_accuracy": raw_stats["timeline_accuracy"]}
    return out


# ---------------------------------------------------------------------------------------------- 4. cold start

_COLD_CHILD = r"""
import sys, time
t_start = time.time()
import json, resource
import numpy as np, soundfile as sf
from streamer.runner import build_pipeline
t_import = time.time()
pipe = build_pipeline(source="file", live=False)
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
print(json.dumps({"t_start": t_start, "t_import": t_import, "t_load": t_load, "t_first": first, "maxrss_kb": hwm}))
"""


def _cold_once(clip: Path) -> dict:
    t_spawn = time.time()
    done = subprocess.run([sys.executable, "-c", _COLD_CHILD, str(clip)], cwd=ROOT, capture_output=True,
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
            "peak_rss_mb": round(r["maxrss_kb"] / 1024, 1)}


def run_cold_start(data_dir: Path, on_progress) -> dict:
    clip = Path(data_dir).joinpath(*COLD_CLIP)
    if not clip.is_file():
        raise FileNotFoundError(f"cold-start clip missing: {clip} (give the corpus root with --data)")
    on_progress(0, 2)
    first = _cold_once(clip)  # warms the numba cache (compiles on a clean clone)
    on_progress(1, 2)
    res = _cold_once(clip)
    on_progress(2, 2)
    res["cold_start_first_run_s"] = first["cold_start_s"]
    return res


# ---------------------------------------------------------------------------------------------- machine, run

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
            "load_average_at_start": load_at_start, "load_average_at_end": _loadavg(),
            "versions": {p: version(p) for p in ("numpy", "numba", "onnxruntime", "librosa", "scikit-learn",
                                                  "websockets", "voice-emotion-monitor")}}


def _loadavg():
    """1, 5 and 15 min load averages: other work on the machine shows in the wall-clock timings."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def run_bench(opts: BenchOptions, *, console=None) -> dict:
    """Run every part; write the JSON and HTML; return the results dict."""
    import soundfile as sf
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    if not Path(opts.data_dir).is_dir():
        raise FileNotFoundError(f"corpus root not found: {opts.data_dir} (give it with --data)")
    t_run, load_at_start = time.monotonic(), _loadavg()
    res: dict = {"benchmark": "emotion-monitor bench", "version": 1,
                 "command": ("emotion-monitor bench " + _command_args(opts)).strip()}
    with tempfile.TemporaryDirectory(prefix="emotion-bench-") as tmp, \
            Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     console=console, transient=False) as progress:
        workdir = Path(tmp)
        y, desc = source_audio(opts.source, seconds=opts.seconds, data_dir=opts.data_dir)
        wav = workdir / "source.wav"
        sf.write(wav, np.clip(y, -1.0, 1.0), SR, subtype="PCM_16")  # the virtual sink's own format
        res["source"] = {"spec": opts.source or "heldout", "description": desc, "seconds": round(y.size / SR, 2)}

        tasks = {name: progress.add_task(text, total=None) for name, text in (
            ("ours", "compute (1 core): our pipeline"), ("broadcast", "compute (1 core): encode+broadcast"),
            ("baseline", "compute (1 core): old app baseline"), ("reaction", "reaction streams (held-out)"),
            ("cold", "cold start (warm numba cache)"), ("e2e", "end to end (real time)"))}
        if opts.viewers:
            tasks["viewers"] = progress.add_task("viewers, one stalled (connected)", total=None)

        def update(name):
            return lambda done, total: progress.update(tasks[name], completed=done, total=total)

        raw = run_compute(wav, opts, workdir, lambda task, d, t: update(task)(d, t) if task in tasks else None)
        comp, hop_samples = compute_results(raw)
        res.update(comp)
        reaction, timelines = run_reaction(opts, update("reaction"))
        res.update(reaction)
        res.update(run_cold_start(opts.data_dir, update("cold")))
        e2e, e2e_samples = run_e2e(wav, seconds=y.size / SR, mode=opts.e2e, on_progress=update("e2e"))
        res.update(e2e)
        if opts.viewers:
            from .viewers import run_viewers

            res["stalled_viewer"] = run_viewers(wav, counts=opts.viewers, on_progress=update("viewers"))
    res["bench_process_peak_rss_mb"] = _self_peak_rss_mb()
    res["machine"] = machine_info(raw.get("pinned_cpu"), load_at_start=load_at_start)
    res["models"] = _model_ids()
    res["goals"] = check_goals(res)
    if "stalled_viewer" in res:
        from .viewers import viewer_goals

        res["goals"].update(viewer_goals(res["stalled_viewer"]))
    res["run_seconds"] = round(time.monotonic() - t_run, 1)
    _write_outputs(res, Artifacts(hop_total_ms=hop_samples, e2e_ms=e2e_samples, timelines=timelines), opts)
    return res


def _model_ids() -> dict:
    """sha256 (first 12 hex) of the shipped model files: which models these numbers belong to."""
    import hashlib

    from models.onnx_model import default_models

    return {name: hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] for name, path in default_models().items()}


def _self_peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _command_args(opts: BenchOptions) -> str:
    d = BenchOptions()
    parts = []
    if opts.source is not None:
        parts += ["--source", str(opts.source)]
    if opts.seconds != d.seconds:
        parts += ["--seconds", f"{opts.seconds:g}"]
    for name, flag in (("clips_per_actor", "--clips"), ("min_hops", "--hops"),
                       ("baseline_windows", "--baseline-windows"), ("baseline_hops", "--baseline-hops"),
                       ("e2e", "--e2e")):
        if getattr(opts, name) != getattr(d, name):
            parts += [flag, str(getattr(opts, name))]
    if opts.viewers:
        parts += ["--viewers", ",".join(str(n) for n in opts.viewers)]
    return " ".join(parts)


def _write_outputs(res: dict, art: Artifacts, opts: BenchOptions) -> None:
    if opts.json_path is not None:
        write_json(opts.json_path, res)
    if opts.html_path is not None:
        from .bench_report import render_html

        Path(opts.html_path).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.html_path).write_text(render_html(res, art))


# ---------------------------------------------------------------------------------------------- terminal

def print_results(res: dict, *, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    g = res["goals"]

    def mark(name):
        met = g[name]["met"]
        return "[green]met[/]" if met else ("[red]missed[/]" if met is False else "-")

    head = Table("metric", "value", "goal", "", title=f"emotion-monitor bench ({res['e2e_source']}, "
                                                         f"window {res['window_ms']:g} ms, hop {res['hop_ms']:g} ms)")
    head.add_row("speedup vs old app (per speech hop)", f"{res['speedup_vs_baseline']:.0f}x "
                 f"({res['baseline_ms_per_hop']:.2f} / {res['ours_ms_per_hop']:.3f} ms)",
                 g["speedup_vs_baseline"]["target"], mark("speedup_vs_baseline"))
    head.add_row("real-time factor (1 core)", f"{res['rtf']:.5f} (push only {res['rtf_push_only']:.5f})",
                 g["rtf"]["target"], mark("rtf"))
    h = res["hop_latency_ms"]
    head.add_row("hop compute p50 / p95 / p99 ms", f"{h['p50']:.3f} / {h['p95']:.3f} / {h['p99']:.3f}",
                 "p99 " + g["hop_compute_p99_ms"]["target"], mark("hop_compute_p99_ms"))
    c = res["cpu_time"]
    head.add_row("  in CPU time: hop p99 ms, RTF, speedup", f"{c['hop_ms']['p99']:.3f}, {c['rtf']:.5f}, "
                 f"{c['speedup_vs_baseline']:.0f}x", "", "")
    e = res["e2e_latency_ms"]
    head.add_row("end to end p50 / p95 / p99 ms", f"{e['p50']:.1f} / {e['p95']:.1f} / {e['p99']:.1f}", "", "")
    r = res["reaction_s"]
    head.add_row("reaction median / p90 s (miss rate)",
                 f"{_fmt(r['median'])} / {_fmt(r['p90'])} ({100 * (r['miss_rate'] or 0):.0f}% of {r['changes']})",
                 "median " + g["reaction_median_s"]["target"], mark("reaction_median_s"))
    for key in ("with_pauses", "without_pauses"):
        v = r.get(key, {})
        head.add_row(f"  {key.replace('_', ' ')}", f"{_fmt(v.get('median'))} / {_fmt(v.get('p90'))} "
                     f"({100 * (v.get('miss_rate') or 0):.0f}%), accuracy {_fmt(v.get('timeline_accuracy'))}", "", "")
    head.add_row("timeline accuracy on speech", _fmt(res["timeline_accuracy"]), "", "")
    head.add_row("cold start to first prediction s", f"{res['cold_start_s']:.2f}", g["cold_start_s"]["target"],
                 mark("cold_start_s"))
    head.add_row("peak RSS MB (monitor / server)", f"{res['peak_rss_mb']:.0f} / {_fmt(res.get('server_peak_rss_mb'))}",
                 "", "")
    for key, run in res.get("stalled_viewer", {}).get("runs", {}).items():
        goal = g.get(f"stalled_viewer_others_p95_ms_at_{key}", {})
        met = goal.get("met")
        stall, base = run["stall"]["latency_ms"], run["no_stall"]["latency_ms"]
        head.add_row(f"{key} viewers, one stalled: others p50 / p95 ms",
                     f"{_fmt(stall['p50'])} / {_fmt(stall['p95'])} (none stalled {_fmt(base['p95'])}); "
                     f"dropped after {_fmt(run['stalled_dropped_after_s'])} s, lost {run['lost']}",
                     "p95 " + goal.get("target", "-"),
                     "[green]met[/]" if met else ("[red]missed[/]" if met is False else "-"))
    console.print(head)
    st = Table("stage (speech hops)", "median ms", "p95", "p99", "max", "% of hop budget",
               title="per-stage cost per hop")
    for s in STAGES:
        v = res["stages_ms"][s]
        st.add_row(s, f"{v['median']:.4f}", f"{v['p95']:.4f}", f"{v['p99']:.4f}", f"{v['max']:.3f}",
                   f"{100 * v['share_of_hop_budget']:.3f}")
    t = res["hop_latency_ms"]
    st.add_row("[b]total hop compute[/]", f"{t['median']:.4f}", f"{t['p95']:.4f}", f"{t['p99']:.4f}", f"{t['max']:.3f}",
               f"{100 * t['mean'] / res['hop_ms']:.3f}")
    console.print(st)


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
