"""The one-core part of `bench`: per-hop cost of the pipeline by stage, encode + broadcast, and the baseline.

    python -m benchmarks.compute SPEC.json OUT.json

benchmarks.compute_run runs this in a subprocess whose CPU affinity is a single core, set before exec so that
every thread of it (numba, onnxruntime, BLAS) is on that core, with BLAS/OpenMP thread counts at 1 and
onnxruntime intra-op threads at 1 (the models' default). Progress lines ``PROGRESS <task> <done> <total>``
go to stdout; everything measured goes to OUT.json as per-hop lists (milliseconds), the statistics are
the parent's job.

Per hop (one event): the live block size (20 ms) is pushed, and every push between two events is charged
to the hop that emits the next event. Stages are the pipeline's own per-stage timings (each event's
``timings_ms``: extractor, VAD, encoder, windowing per push, shared by the push's events; pooling, normalising,
both models, smoothing, descriptors per window); "other" is the rest of ``push`` (speech ledger, level, event
construction). Encode + broadcast is ``PredictionEvent.to_dict`` in the pipeline thread plus the web server's
publish (encode once, history, backlog check, broadcast) to one real websocket viewer on loopback. Every span
is also taken in thread CPU time (time.thread_time): on a busy machine the wall clock includes time slices lost
to other processes, the CPU time does not.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

from dsp.config import SAMPLE_RATE as SR  # the monitor's rate

PIPELINE_STAGES = ("vad", "features", "encoder", "windowing", "pooling", "normalise", "spectrogram", "emotion",
                   "gender", "smoothing", "descriptors", "other")
# Stage -> key of the pipeline's timings_ms; the first four are per push (shared by that push's events).
_EVENT_TIMINGS = {"features": "features", "vad": "vad", "encoder": "encoder", "windowing": "windows",
                  "pooling": "pool", "normalise": "normalise", "spectrogram": "spectrogram", "emotion": "emotion",
                  "gender": "gender", "smoothing": "smooth", "descriptors": "descriptors"}
_PER_PUSH = ("features", "vad", "encoder", "windowing")


def progress(task: str, done: int, total: int) -> None:
    print(f"PROGRESS {task} {done} {total}", flush=True)


def _warm(pipe, y: np.ndarray) -> None:
    """First calls load numba caches and create the ONNX sessions: do them before timing."""
    for model in (pipe.emotion_model, pipe.gender_model):
        model.predict_proba(np.zeros((1, model.feature_dim), np.float32))
    for i in range(0, min(y.size, 5 * SR), 320):
        pipe.push(y[i:i + 320], wall_end=0.0)
    pipe.reset()


def _blocks(pipe, y: np.ndarray, min_hops: int, block: int):
    """Live-sized blocks of y, looped far enough for ``min_hops`` events."""
    hop = int(round(SR * pipe.config.hop_ms / 1000))
    stream = np.tile(y, int(np.ceil((min_hops + 1) * hop / y.size)) + 1)
    for i in range(0, stream.size - block + 1, block):
        yield i + block, stream[i:i + block]


def measure_hops(pipe, y: np.ndarray, *, min_hops: int, block: int = 320) -> dict:
    """Stream ``y`` (looped) in live blocks until ``min_hops`` events: per-hop push cost (wall and CPU ms),
    ``to_dict`` cost, speech flag, the events as JSON (for the broadcast part) and, under "stages", each hop's
    per-stage cost from the pipeline's timings."""
    _warm(pipe, y)
    rec = {"push_ms": [], "push_cpu_ms": [], "to_dict_ms": [], "to_dict_cpu_ms": [], "speech": [], "end_sample": [],
           "events": [], "stages": {s: [] for s in (*PIPELINE_STAGES, "speech")}}
    pending, pending_cpu, pushed, total, total_cpu = 0.0, 0.0, 0, 0.0, 0.0
    for pushed, x in _blocks(pipe, y, min_hops, block):
        c0, t0 = time.thread_time(), time.perf_counter()
        events = pipe.push(x, wall_end=float(pushed))
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        pending, pending_cpu, total, total_cpu = pending + dt, pending_cpu + dc, total + dt, total_cpu + dc
        if not events:
            continue
        for e in events:  # a push that completes two windows shares its cost between them
            rec["push_ms"].append(pending / len(events) * 1e3)
            rec["push_cpu_ms"].append(pending_cpu / len(events) * 1e3)
            _record_event(rec, e)
            _record_stages(rec["stages"], e, push_ms=pending / len(events) * 1e3, n_events=len(events))
        pending, pending_cpu = 0.0, 0.0
        if len(rec["push_ms"]) % 100 == 0:
            progress("ours", len(rec["push_ms"]), min_hops)
        if len(rec["push_ms"]) >= min_hops:
            break
    progress("ours", min_hops, min_hops)
    rec.update(audio_seconds=pushed / SR, push_total_ms=total * 1e3, push_total_cpu_ms=total_cpu * 1e3,
               hop_ms=pipe.config.hop_ms, window_ms=pipe.config.window_ms)
    return rec


def _record_event(rec: dict, e) -> None:
    c0, t0 = time.thread_time(), time.perf_counter()
    d = e.to_dict()
    rec["to_dict_ms"].append((time.perf_counter() - t0) * 1e3)
    rec["to_dict_cpu_ms"].append((time.thread_time() - c0) * 1e3)
    # Kept as text: a thousand live nested dicts would make the garbage collector slower for every later push.
    rec["events"].append(json.dumps(d))
    rec["speech"].append(bool(e.speech))
    rec["end_sample"].append(int(round(e.t * SR)))


def _record_stages(rec: dict, e, *, push_ms: float, n_events: int) -> None:
    t = e.timings_ms
    stages = {s: float(t.get(k, 0.0)) / (n_events if s in _PER_PUSH else 1) for s, k in _EVENT_TIMINGS.items()}
    stages["other"] = max(push_ms - sum(stages.values()), 0.0)
    for s in PIPELINE_STAGES:
        rec[s].append(stages[s])
    rec["speech"].append(bool(e.speech))


async def publish_costs(texts: list[str], hello: dict) -> tuple[list[float], list[float]]:
    """Wall and CPU ms of the web server's publish of each event to one websocket viewer (web.server.serve, port 0).

    The events iterator times the span from handing an event over to being asked for the next one:
    exactly the server's publish (encode, history, backlog check, broadcast). It yields to the loop
    between events, outside the span, so the viewer keeps reading.
    """
    from websockets.asyncio.client import connect

    from web.server import serve

    loop = asyncio.get_running_loop()
    ready, joined, costs, cpu = loop.create_future(), asyncio.Event(), [], []

    async def events():
        await joined.wait()
        for i, text in enumerate(texts):
            d = json.loads(text)  # the dict the pipeline thread hands over (decoded outside the timed span)
            c0, t0 = time.thread_time(), time.perf_counter()
            yield d
            costs.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
            await asyncio.sleep(0)
            if i % 100 == 0:
                progress("broadcast", i, len(texts))

    task = asyncio.create_task(serve(events(), hello=hello, port=0, stats_interval_s=3600.0,
                                     on_ready=lambda port, url: ready.set_result(port)))
    await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # the server failed to start: raise its error
    try:
        async with connect(f"ws://127.0.0.1:{ready.result()}/ws", max_size=None) as ws:
            await ws.recv()  # hello: the server has registered this viewer before sending it
            joined.set()
            got = 0
            while got < len(texts):
                got += json.loads(await ws.recv())["type"] == "prediction"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    progress("broadcast", len(texts), len(texts))
    return costs, cpu


def measure_baseline(stream: np.ndarray, ends: list[int], *, window_samples: int, data_dir: Path,
                     n_train: int) -> dict:
    """Fit the old app's forest, then time its features + predict_proba on the windows ending at ``ends``."""
    from .baseline import old_features, train_baseline, training_windows

    progress("baseline", 0, len(ends))
    model = train_baseline(training_windows(data_dir, n=n_train, window_samples=window_samples), sr=SR)
    feats_ms, forest_ms, cpu_ms = [], [], []
    windows = [stream[e - window_samples:e] for e in ends if e >= window_samples]
    model.forest.predict_proba(old_features(windows[0], sr=SR)[None])  # librosa's first call fills caches
    for k, seg in enumerate(windows):
        c0, t0 = time.thread_time(), time.perf_counter()
        x = old_features(seg, sr=SR)
        t1 = time.perf_counter()
        model.forest.predict_proba(x[None])
        t2, c2 = time.perf_counter(), time.thread_time()
        feats_ms.append((t1 - t0) * 1e3)
        forest_ms.append((t2 - t1) * 1e3)
        cpu_ms.append((c2 - c0) * 1e3)
        if k % 20 == 0:
            progress("baseline", k, len(windows))
    progress("baseline", len(windows), len(windows))
    return {"features_ms": feats_ms, "forest_ms": forest_ms, "cpu_ms": cpu_ms, "train_windows": model.n_train,
            "train_seconds": model.train_seconds, "window_samples": window_samples}


def _spread(values: list[int], n: int) -> list[int]:
    """Up to n items evenly spread over values."""
    if len(values) <= n:
        return list(values)
    return [values[int(i)] for i in np.linspace(0, len(values) - 1, n)]


def run(spec: dict) -> dict:
    import os

    import soundfile as sf

    from streamer.runner import build_pipeline

    y, sr = sf.read(spec["wav"], dtype="float32")
    if sr != SR or y.ndim != 1:
        raise ValueError(f"{spec['wav']}: expected 16 kHz mono, got {sr} Hz shape {y.shape}")
    # the shipped models (the emotion model of the bench's --language) at their own window and hop
    pipe = build_pipeline(source="file", live=True, language=spec.get("language", "any"))
    rec = measure_hops(pipe, y, min_hops=int(spec["min_hops"]))
    hello = {"labels": list(pipe.emotions), "gender_labels": list(pipe.genders)}
    rec["publish_ms"], rec["publish_cpu_ms"] = asyncio.run(publish_costs(rec.pop("events"), hello))
    hop = int(round(SR * pipe.config.hop_ms / 1000))
    stream = np.tile(y, int(np.ceil((len(rec["push_ms"]) + 2) * hop / y.size)) + 1)
    speech_ends = [e for e, s in zip(rec["end_sample"], rec["speech"]) if s]
    window_samples = int(round(SR * pipe.config.window_ms / 1000))
    base = measure_baseline(stream, _spread(speech_ends or rec["end_sample"], int(spec["baseline_hops"])),
                            window_samples=window_samples, data_dir=Path(spec["data_dir"]),
                            n_train=int(spec["baseline_windows"]))
    return {"cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "ours": rec, "baseline": base}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m benchmarks.compute SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
