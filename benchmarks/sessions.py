"""Many browser microphones at once: per-session delivery latency and server CPU per live session (issue 12).

    python -m benchmarks.sessions [--sessions 10 25 50] [--find] [--seconds 15] [--rate 48000] [--frame-ms 40]
                                  [--repeat 1] [--realtime] [--source PATH|demo]
                                  [--json OUT] [--html OUT]
    emotion-monitor bench --sessions 10,50        (the same, as the last part of bench)

For each session count N: the real server (``emotion-monitor serve --port 0 --source none --open-capture``,
``--source none``: a host of browser microphones only) in a subprocess pinned to one CPU (the last one this process may use;
the clients run on the others, when there are others), and N capturing clients in this process. Each client
speaks the upstream format of web.protocol as the page does: the capture start message, then 40 ms binary f32le
frames at ``--rate`` (48 kHz, what browsers capture at; the server resamples with soxr), real speech from its own
offset in the source, each frame sent when its last sample would have been captured (real-time pace, a random
phase per client). The server runs one live pipeline per session, which sends the predictions back to that client.

Measured, by phase (``idle``: the server alone; ``measure``: ``--seconds`` with all N streaming, after a warm-up):

* latency = arrival of a prediction at its client - capture time of its window's last sample: the time the
  frame holding that sample left the client, minus the rest of that frame after the sample (the event's ``t``
  places it; one clock, this process's monotonic one). Pooled over all sessions (p50, p95, p99, max) and each
  session's own p95 (the worst and the median of them). Taken from the real send time, so that a client
  starved by the machine does not count as server latency;
* the clients' own lateness: how late each frame left its client (``client_send_lag_ms``); a run whose p95 is
  over 20 ms is ``client_limited``: this machine could not generate the load, and ``--find`` stops there;
* losses: events whose ``dropped_windows`` is non-zero, hops missing from a session's ``t`` sequence, and
  sessions the server closed before the end (refused, too fast, ...): a run "passes" with p95 <= 100 ms and
  none of these;
* server CPU (``/proc``, user + system) per second in each phase; per session = (measure - idle) / N; the
  clients' own CPU share (they share the machine: their cost is in the figures, pessimistic);
* where the time goes: the same pipeline, resampler and event encoding timed in this process on the same
  frames (the baseline, one session on one core), against the server's CPU per session; the rest is the
  server's websocket, asyncio and fan-out work.

``--realtime`` runs the server at SCHED_FIFO priority (Linux, root), so that other work on a shared machine
cannot delay it on its core: the latency of a dedicated core (the clients then run at nice -10, so that they
keep real time as well). ``--find`` searches the largest passing N (doubling from the first count, then bisecting); ``--sessions`` runs
the given counts. Goal (issue 12): >= 50 concurrent sessions on one core at p95 <= 100 ms with no losses. Never
asserted: tests/test_sessions_bench.py runs it at N=2 only to check it works.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._util import ROOT, bars_svg, process_cpu_s, write_html, write_json

__all__ = ["SessionsOptions", "run_sessions", "run_sessions_part", "sessions_goals", "profile_one_session",
           "html_section", "print_table", "GOAL_SESSIONS", "GOAL_P95_MS"]

GOAL_SESSIONS = 50
GOAL_P95_MS = 100.0
CLIENT_LAG_LIMIT_MS = 20.0  # clients sending their frames later than this (p95) make a run client-limited
FRAME_MS = 40  # what the page sends per frame (web/static/mic.js CHUNK_MS)
_CONNECT_BATCH = 10  # concurrent capture handshakes (each builds a pipeline in the server)
_WARMUP_S = 3.0
_IDLE_S = 3.0
_MAX_N = 2000


@dataclass(frozen=True)
class SessionsOptions:
    counts: tuple[int, ...] = (10, 25, 50)
    find: bool = False  # search the largest passing N, starting from counts[0]
    seconds: float = 15.0  # the measured phase per N
    rate: int = 48000  # the clients' capture rate
    frame_ms: int = FRAME_MS  # audio per upstream frame (the page sends 40 ms; larger frames cost less per second)
    max_steps: int = 8  # counts tried by the --find search
    repeat: int = 1  # runs per count; the one with the median p95 is reported (a shared machine is noisy)
    realtime: bool = False  # the server at real-time priority (SCHED_FIFO): a dedicated core on a shared machine

    def __post_init__(self):
        if not self.counts or not all(1 <= n <= _MAX_N for n in self.counts):
            raise ValueError(f"session counts must be 1..{_MAX_N}, got {self.counts}")
        if not 2.0 <= self.seconds <= 600.0:
            raise ValueError(f"--seconds must be 2..600, got {self.seconds}")
        if not 8000 <= self.rate <= 192000:
            raise ValueError(f"--rate must be 8000..192000, got {self.rate}")
        if not 1 <= self.repeat <= 20:
            raise ValueError(f"--repeat must be 1..20, got {self.repeat}")
        if not 5 <= self.frame_ms <= 1000:
            raise ValueError(f"--frame-ms must be 5..1000, got {self.frame_ms}")


# ------------------------------------------------------------------ the clients

@dataclass
class _Record:
    """What every client saw, filled on the event loop."""

    phase: str = "connect"
    latencies_ms: dict = field(default_factory=dict)  # session index -> [ms] in the measure phase
    ts: dict = field(default_factory=dict)  # session index -> [t] in the measure phase
    dropped_events: int = 0  # measure-phase events with dropped_windows > 0
    closed_early: dict = field(default_factory=dict)  # session index -> close reason
    timings: list = field(default_factory=list)  # timings_ms of measure-phase events (a sample)
    send_lag_ms: list = field(default_factory=list)  # how late the clients sent their frames (measure phase)
    send_block_ms: list = field(default_factory=list)  # time in ws.send: waiting for the server to read (ditto)
    hop_s: float | None = None


async def _client(index: int, port: int, audio: np.ndarray, rate: int, rec: _Record, ready: list,
                  stop: asyncio.Event, *, frame_ms: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    frame = rate * frame_ms // 1000
    pos = (index * 1723 * frame) % audio.size  # every client from its own place in the speech
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws/capture", compression=None, ping_interval=None,
                           max_size=2**22, open_timeout=60) as ws:
            await ws.send(json.dumps({"type": "capture", "v": 1, "rate": rate, "format": "f32le"}))
            while json.loads(await ws.recv()).get("type") != "capture":
                pass  # hello first, then the capture message with the session id
            ready.append(index)
            await asyncio.sleep(random.uniform(0, frame_ms / 1000))  # browsers are not in phase
            t0 = time.monotonic()
            sends: list[float] = []  # when each frame actually left
            reader = asyncio.create_task(_read(ws, index, _Clock(t0=t0, rate=rate, frame=frame, sends=sends), rec))
            sent = 0
            while not stop.is_set() and not reader.done():
                due = t0 + (sent + 1) * frame / rate  # the frame's last sample is captured then
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                chunk = audio[pos:pos + frame]
                if chunk.size < frame:
                    pos = 0
                    chunk = audio[:frame]
                pos += frame
                if rec.phase == "measure":  # a late send is the load generator's delay, not the server's
                    rec.send_lag_ms.append((time.monotonic() - due) * 1e3)
                sends.append(time.monotonic())
                await ws.send(chunk.tobytes())  # waits when the server is not reading (TCP back-pressure)
                if rec.phase == "measure":
                    rec.send_block_ms.append((time.monotonic() - sends[-1]) * 1e3)
                sent += 1
            if not reader.done():
                await ws.send(json.dumps({"type": "stop"}))
                reader.cancel()
            elif rec.phase != "done":
                rec.closed_early[index] = f"{ws.close_code} {ws.close_reason}"
    except (ConnectionClosed, OSError) as exc:
        if rec.phase != "done":
            rec.closed_early[index] = str(exc)


@dataclass(frozen=True)
class _Clock:
    """A client's timeline: when its sample 0 was "captured", and when each frame really left."""

    t0: float
    rate: int
    frame: int
    sends: list

    def latency_s(self, t: float, arrived: float) -> float:
        """Capture of the sample at stream time ``t`` -> ``arrived``. Measured from when the frame holding that
        sample really left (plus the time from that sample to the frame's end, which a browser would spend
        capturing the rest of the frame): a client that sends late, starved by the machine, must not be
        counted as the server's latency (that lateness is reported apart, as client_send_lag_ms)."""
        j = max(0, int(round(t * self.rate)) - 1) // self.frame
        if j >= len(self.sends):
            return arrived - (self.t0 + t)
        return arrived - self.sends[j] + ((j + 1) * self.frame / self.rate - t)


async def _read(ws, index: int, clock: _Clock, rec: _Record) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for text in ws:
            arrived = time.monotonic()
            if rec.phase != "measure" or not text.startswith('{"v":1,"type":"prediction"'):
                continue
            event = json.loads(text)
            rec.latencies_ms.setdefault(index, []).append(clock.latency_s(event["t"], arrived) * 1e3)
            rec.ts.setdefault(index, []).append(event["t"])
            rec.dropped_events += bool(event.get("dropped_windows"))
            if len(rec.timings) < 20000:
                rec.timings.append(event.get("timings_ms") or {})
    except ConnectionClosed:
        pass


# ------------------------------------------------------------------ one run at N sessions

class _Marks:
    """Wall, server CPU and own CPU at phase boundaries."""

    def __init__(self, pid: int):
        self.pid, self.marks = pid, {}

    def mark(self, name: str) -> None:
        self.marks[name] = (time.monotonic(), process_cpu_s(self.pid), time.process_time())

    def share(self, a: str, b: str) -> tuple[float | None, float]:
        (w0, s0, c0), (w1, s1, c1) = self.marks[a], self.marks[b]
        server = None if s0 is None or s1 is None else (s1 - s0) / (w1 - w0)
        return server, (c1 - c0) / (w1 - w0)


async def _run_n(port: int, pid: int, *, n: int, audio: np.ndarray, opts: SessionsOptions, on_progress) -> dict:
    rec, ready, stop = _Record(), [], asyncio.Event()
    marks = _Marks(pid)
    marks.mark("idle")
    await asyncio.sleep(_IDLE_S)
    marks.mark("connect")
    tasks = []
    for start in range(0, n, _CONNECT_BATCH):
        batch = range(start, min(n, start + _CONNECT_BATCH))
        tasks += [asyncio.create_task(_client(i, port, audio, opts.rate, rec, ready, stop, frame_ms=opts.frame_ms))
                  for i in batch]
        await _until(lambda: len(ready) + len(rec.closed_early) >= batch.stop, timeout=120)
        on_progress(len(ready), n)
    await asyncio.sleep(_WARMUP_S)
    rec.phase = "measure"
    marks.mark("measure")
    await asyncio.sleep(opts.seconds)
    marks.mark("done")
    rec.phase = "done"
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    server_idle, _ = marks.share("idle", "connect")
    server, clients = marks.share("measure", "done")
    return _results(rec, n=n, connected=len(ready), server_cpu=server, server_idle_cpu=server_idle,
                    clients_cpu=clients)


async def _until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _results(rec: _Record, *, n: int, connected: int, server_cpu, server_idle_cpu, clients_cpu) -> dict:
    from .stats import summary

    pooled = [v for lat in rec.latencies_ms.values() for v in lat]
    own_p95 = [float(np.percentile(lat, 95)) for lat in rec.latencies_ms.values() if lat]
    missing = sum(_missing_hops(ts) for ts in rec.ts.values())
    silent = n - len(rec.latencies_ms)  # sessions that got no prediction at all in the measured phase
    per_session = (None if server_cpu is None or server_idle_cpu is None
                   else round((server_cpu - server_idle_cpu) / n, 5))
    out = {"sessions": n, "connected": connected, "latency_ms": summary(pooled, digits=2),
           "session_p95_ms": {"median": _r(np.median(own_p95)) if own_p95 else None,
                              "max": _r(max(own_p95)) if own_p95 else None},
           "events": len(pooled), "dropped_window_events": rec.dropped_events, "missing_hops": missing,
           "sessions_without_events": silent, "closed_early": len(rec.closed_early),
           "closed_early_reasons": sorted(set(rec.closed_early.values()))[:5],
           "client_send_lag_ms": summary(rec.send_lag_ms, digits=2),
           "client_send_blocked_ms": summary(rec.send_block_ms, digits=2),
           "server_cpu": _r(server_cpu, 3), "server_idle_cpu": _r(server_idle_cpu, 3),
           "server_cpu_per_session": per_session, "clients_cpu": _r(clients_cpu, 3),
           "server_stage_ms_per_hop": _stage_means(rec.timings)}
    p95 = out["latency_ms"]["p95"]
    lag = out["client_send_lag_ms"]["p95"]
    # The clients could not keep real time: the run measures this machine's load generator, not the server.
    out["client_limited"] = bool(lag is not None and lag > CLIENT_LAG_LIMIT_MS)
    out["passed"] = bool(p95 is not None and p95 <= GOAL_P95_MS and not rec.dropped_events and not missing
                         and not silent and not rec.closed_early)
    return out


def _missing_hops(ts: list, hop_s: float = 0.1) -> int:
    """Hops absent from an ascending ``t`` sequence (one event per hop is expected)."""
    if len(ts) < 2:
        return 0
    steps = np.round(np.diff(np.asarray(ts)) / hop_s).astype(int)
    return int(np.sum(np.maximum(steps - 1, 0)))


def _stage_means(timings: list) -> dict:
    keys = sorted({k for t in timings for k in t})
    return {k: round(float(np.mean([t[k] for t in timings if k in t])), 4) for k in keys}


def _r(x, digits: int = 2):
    return None if x is None else round(float(x), digits)


# ------------------------------------------------------------------ the in-process baseline

def profile_one_session(audio: np.ndarray, *, rate: int, frame_ms: int = FRAME_MS, seconds: float = 30.0,
                        passes: int = 3) -> dict:
    """One session's work in this process, on the same frames: soxr to 16 kHz, ``Pipeline.push`` (live),
    and the encoding of each event (``to_dict`` + web.protocol.encode). Milliseconds of CPU per second of audio
    (thread CPU time, so other processes on the machine do not count); the least disturbed of ``passes``."""
    from streamer.runner import build_pipeline

    pipeline = build_pipeline(source="browser", live=True)
    frame = rate * frame_ms // 1000
    n = min(audio.size, int(seconds * rate)) // frame * frame
    frames = audio[:n].reshape(-1, frame)
    runs = [_profile_pass(pipeline, frames, rate=rate) for _ in range(passes)]
    return min(runs, key=lambda r: r["total"]) | {"total_of_each_pass": [r["total"] for r in runs]}


def _profile_pass(pipeline, frames: np.ndarray, *, rate: int) -> dict:
    import soxr

    from dsp.config import SAMPLE_RATE
    from web.protocol import encode

    pipeline.reset()
    resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
    cost = {"resample": 0.0, "pipeline": 0.0, "encode": 0.0}
    window_stages: dict[str, float] = {}
    clock = time.thread_time
    for chunk in frames:
        t0 = clock()
        x = resampler.resample_chunk(chunk)
        t1 = clock()
        events = pipeline.push(x, wall_end=time.time())
        t2 = clock()
        for e in events:
            encode(e.to_dict())
            for k in ("pool", "normalise", "spectrogram", "emotion", "gender", "smooth", "descriptors"):
                window_stages[k] = window_stages.get(k, 0.0) + e.timings_ms.get(k, 0.0)
        t3 = clock()
        cost["resample"] += t1 - t0
        cost["pipeline"] += t2 - t1
        cost["encode"] += t3 - t2
    audio_s = frames.size / rate
    out = {k: round(v * 1e3 / audio_s, 3) for k, v in cost.items()}
    # The pipeline's per-window stages (its own wall-clock hook) beside the per-frame ones (the rest of push).
    out["pipeline_window_stages"] = {k: round(v / audio_s, 3) for k, v in window_stages.items()}
    out["pipeline_frame_stages"] = round(out["pipeline"] - sum(out["pipeline_window_stages"].values()), 3)
    out["total"] = round(out["resample"] + out["pipeline"] + out["encode"], 3)
    out["audio_seconds"] = round(audio_s, 2)
    return out


# ------------------------------------------------------------------ the whole measure

def run_sessions(audio16: np.ndarray, opts: SessionsOptions, *, on_progress=lambda d, t: None,
                 on_run=lambda n, r: None) -> dict:
    """Every count of ``opts`` (or the --find search); results keyed by N (as a string)."""
    import soxr

    from .machine import loadavg

    _raise_fd_limit()
    audio = soxr.resample(audio16, 16000, opts.rate).astype(np.float32)
    res = {"seconds_per_run": opts.seconds, "rate": opts.rate, "frame_ms": opts.frame_ms,
           "load_average_at_start": loadavg(), "runs": {}}
    with _server_core(realtime=opts.realtime):  # where and how the server runs, so the two compare
        res["one_session_in_process_ms_per_s"] = profile_one_session(audio, rate=opts.rate, frame_ms=opts.frame_ms)
    for n in _counts(opts, res["runs"]):
        res["runs"][str(n)] = run = _median_run(
            [_serve_and_measure(n=n, audio=audio, opts=opts, on_progress=on_progress)
             for _ in range(opts.repeat)])
        on_run(n, run)
    res["load_average_at_end"] = loadavg()
    res["largest_passing"] = max((int(k) for k, r in res["runs"].items() if r["passed"]), default=None)
    res["smallest_client_limited"] = min((int(k) for k, r in res["runs"].items() if r["client_limited"]),
                                         default=None)
    res["where_the_time_goes"] = _where(res)
    return res


def run_sessions_part(audio16: np.ndarray, counts: tuple[int, ...], *, on_progress) -> dict:
    """The part `emotion-monitor bench --sessions` runs: ``counts``, or (0,) for the search from 10."""
    opts = SessionsOptions(counts=(10,), find=True) if counts == (0,) else SessionsOptions(counts=tuple(counts))
    return run_sessions(audio16, opts, on_progress=on_progress)


def _counts(opts: SessionsOptions, runs: dict):
    """The counts to run: the given ones, or a search (double while passing, then bisect to 10 %)."""
    if not opts.find:
        yield from opts.counts
        return
    lo, hi, n = 0, None, opts.counts[0]
    for _ in range(opts.max_steps):
        yield n
        if runs[str(n)]["client_limited"]:
            return  # beyond what this machine can generate: nothing above n can be measured here
        if runs[str(n)]["passed"]:
            lo = n
        else:
            hi = n
        if hi is None:
            n = min(2 * n, _MAX_N)
        elif hi - lo <= max(1, lo // 10):
            return
        else:
            n = (lo + hi) // 2
        if str(n) in runs or n < 1:
            return


@contextlib.contextmanager
def _server_core(*, realtime: bool):
    """This process on the server's CPU (the last usable one), at SCHED_FIFO with ``realtime``; undone after."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[-1]})
    if realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    try:
        yield
    finally:
        if realtime:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        if len(cpus) >= 2:
            os.sched_setaffinity(0, set(cpus))


def _median_run(runs: list[dict]) -> dict:
    """The run with the median p95 (the upper one of an even count), with every run's p95 beside it."""
    key = [float("inf") if r["latency_ms"]["p95"] is None else r["latency_ms"]["p95"] for r in runs]
    order = sorted(range(len(runs)), key=key.__getitem__)
    return runs[order[len(runs) // 2]] | {"p95_of_each_repeat_ms": [r["latency_ms"]["p95"] for r in runs]}


def _serve_and_measure(*, n: int, audio: np.ndarray, opts: SessionsOptions, on_progress) -> dict:
    from .bench_options import BenchError
    from .server_process import ServerProcess

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = len(cpus) >= 2
    if pinned:  # "on one core", literally: the server (and every thread it starts) on one CPU, the clients off it
        os.sched_setaffinity(0, {cpus[-1]})  # inherited by the server process
    if opts.realtime:  # inherited too; other processes on that CPU then wait for the server, not it for them
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    try:
        server = ServerProcess(["--source", "none", "--open-capture", "--max-sessions", str(max(n, 1))])
    finally:
        if opts.realtime:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        if pinned:
            os.sched_setaffinity(0, set(cpus[:-1]))
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        if opts.realtime:  # the load generator must keep real time too, or its lateness is what gets measured
            os.setpriority(os.PRIO_PROCESS, 0, -10)
        port = server.wait_ready()
        run = asyncio.run(_run_n(port, server.proc.pid, n=n, audio=audio, opts=opts, on_progress=on_progress))
        run["server_peak_rss_mb"] = server.peak_rss_mb()
        run["server_cpu_pinned"] = cpus[-1] if pinned else None
        run["server_realtime"] = opts.realtime
        return run
    except OSError as exc:
        raise BenchError(f"sessions run at N={n} failed: {exc}; server: {server.tail()}") from None
    finally:
        server.stop()
        if opts.realtime:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
        if pinned:
            os.sched_setaffinity(0, set(cpus))


def _where(res: dict) -> dict:
    """Server CPU per session against the in-process cost of the same work, at the largest passing N."""
    base = res["one_session_in_process_ms_per_s"]
    key = str(res["largest_passing"]) if res["largest_passing"] else max(res["runs"], key=int, default=None)
    run = res["runs"].get(key) if key else None
    if run is None or run["server_cpu_per_session"] is None:
        return {"in_process_ms_per_s": base}
    server_ms = run["server_cpu_per_session"] * 1e3
    rest = server_ms - base["total"]
    return {"at_sessions": int(key), "server_ms_per_session_s": round(server_ms, 3),
            "pipeline_frames": base["pipeline_frame_stages"], "pipeline_windows": base["pipeline_window_stages"],
            "resample": base["resample"], "encode": base["encode"],
            "websocket_asyncio_fanout_rest": round(rest, 3),
            "ratio_server_to_in_process": round(server_ms / base["total"], 2) if base["total"] else None,
            "sessions_per_core_by_cpu": round(1000.0 / server_ms, 1) if server_ms > 0 else None}


def sessions_goals(res: dict) -> dict:
    """The bench goal: >= 50 sessions passing (p95 <= 100 ms, no losses)."""
    value = res.get("largest_passing")
    return {"sessions_at_p95_100ms": {"value": value, "target": f">= {GOAL_SESSIONS}",
                                      "met": None if value is None and not res["runs"] else
                                      (value or 0) >= GOAL_SESSIONS}}


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ------------------------------------------------------------------ report

def html_section(res: dict) -> str:
    """The sessions part of an HTML report: a table per N and the CPU breakdown as bars."""
    rows = "".join(
        f"<tr><td>{k}</td><td>{r['latency_ms']['p50']}</td><td>{r['latency_ms']['p95']}</td>"
        f"<td>{r['session_p95_ms']['max']}</td><td>{r['dropped_window_events']} / {r['missing_hops']} / "
        f"{r['closed_early']}</td><td>{r['server_cpu']}</td><td>{r['server_cpu_per_session']}</td>"
        f"<td>{'yes' if r['passed'] else ('client-limited' if r['client_limited'] else 'no')}</td></tr>"
        for k, r in sorted(res["runs"].items(), key=lambda kv: int(kv[0])))
    table = ("<table border=1 cellpadding=4 style='border-collapse:collapse'><tr><th>sessions</th><th>p50 ms</th>"
             "<th>p95 ms</th><th>worst session p95 ms</th><th>dropped / missing / closed</th><th>server CPU</th>"
             f"<th>CPU per session</th><th>passed</th></tr>{rows}</table>")
    where = res.get("where_the_time_goes", {})
    bars = ""
    if "server_ms_per_session_s" in where:
        parts = [("pipeline, per frame", where["pipeline_frames"], "in process"),
                 *((f"pipeline: {k}", v, "in process") for k, v in where["pipeline_windows"].items()),
                 ("soxr 48 -> 16 kHz", where["resample"], "in process"),
                 ("event encoding", where["encode"], "in process"),
                 ("websocket, asyncio, fan-out (rest)", max(where["websocket_asyncio_fanout_rest"], 0.0), "server"),
                 ("server total per session", where["server_ms_per_session_s"], "server")]
        bars = bars_svg(parts, title=f"CPU ms per second of audio, one session (at N={where['at_sessions']})",
                        unit="ms/s")
    return (f"<h2>Sessions (browser microphones at once)</h2><p>largest N with p95 &le; {GOAL_P95_MS:g} ms and "
            f"no losses: <b>{res.get('largest_passing')}</b> (goal {GOAL_SESSIONS})</p>{table}{bars}")


def print_table(res: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    t = Table("sessions", "p50 ms", "p95 ms", "worst session p95", "dropped/missing/closed", "server CPU",
              "CPU/session", "passed", title=f"live sessions (browser microphones), {res['rate']} Hz f32 upstream in "
                    f"{res['frame_ms']} ms frames")
    for k, r in sorted(res["runs"].items(), key=lambda kv: int(kv[0])):
        t.add_row(k, _s(r["latency_ms"]["p50"]), _s(r["latency_ms"]["p95"]), _s(r["session_p95_ms"]["max"]),
                  f"{r['dropped_window_events']}/{r['missing_hops']}/{r['closed_early']}", _s(r["server_cpu"]),
                  _s(r["server_cpu_per_session"]), "[green]yes[/]" if r["passed"] else
                  ("[yellow]client-limited[/]" if r["client_limited"] else "[red]no[/]"))
    console.print(t)
    w = res.get("where_the_time_goes", {})
    if "server_ms_per_session_s" in w:
        console.print(f"where the time goes (ms of CPU per second of one session's audio, at N={w['at_sessions']}): "
                      f"server {w['server_ms_per_session_s']} = pipeline per frame {w['pipeline_frames']} + "
                      f"windows {sum(w['pipeline_windows'].values()):.3f} + resample {w['resample']} + encode "
                      f"{w['encode']} + websocket/asyncio/fan-out {w['websocket_asyncio_fanout_rest']}")


def _s(v) -> str:
    return "-" if v is None else str(v)


def main(argv=None) -> int:
    from .bench_options import BenchError
    from ._util import DEFAULT_DATA
    from .source import source_audio

    p = argparse.ArgumentParser(prog="python -m benchmarks.sessions", description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[10, 25, 50], metavar="N")
    p.add_argument("--find", action="store_true", help="search the largest passing N, from the first --sessions")
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per N (default 15)")
    p.add_argument("--rate", type=int, default=48000, help="the clients' capture rate (default 48000)")
    p.add_argument("--repeat", type=int, default=1, help="runs per count; the median-p95 run is reported")
    p.add_argument("--realtime", action="store_true",
                   help="run the server at real-time priority (SCHED_FIFO; Linux, needs root): its core as if "
                        "dedicated, when other work shares the machine")
    p.add_argument("--frame-ms", type=int, default=FRAME_MS,
                   help=f"audio per upstream frame (default {FRAME_MS}, the page's)")
    p.add_argument("--source", default=None, metavar="PATH|demo", help="speech (default: held-out RAVDESS)")
    p.add_argument("--data", default=str(DEFAULT_DATA), metavar="DIR")
    p.add_argument("--json", default=str(ROOT / "artifacts" / "bench_sessions.json"), metavar="OUT")
    p.add_argument("--html", default=str(ROOT / "artifacts" / "bench_sessions.html"), metavar="OUT")
    args = p.parse_args(argv)
    try:
        opts = SessionsOptions(counts=tuple(args.sessions), find=args.find, seconds=args.seconds, rate=args.rate,
                               frame_ms=args.frame_ms, repeat=args.repeat, realtime=args.realtime)
    except ValueError as exc:
        p.error(str(exc))
    from rich.console import Console

    console = Console(stderr=True)
    try:
        y, desc = source_audio(args.source, seconds=30.0, data_dir=Path(args.data))
        res = run_sessions(y, opts, on_progress=lambda d, t: console.print(f"connected {d}/{t}", end="\r"),
                           on_run=lambda n, r: console.print(
                               f"N={n}: p95 {r['latency_ms']['p95']} ms, server CPU {r['server_cpu']}, "
                               f"{'passed' if r['passed'] else 'failed'}"))
    except (BenchError, OSError, ValueError) as exc:
        print(f"python -m benchmarks.sessions: error: {exc}", file=sys.stderr)
        return 1
    res["source"] = desc
    res["goals"] = sessions_goals(res)
    print_table(res, console)
    if args.json:
        write_json(args.json, res)
    if args.html:
        write_html(args.html, title="emotion-monitor: live sessions", body=html_section(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
