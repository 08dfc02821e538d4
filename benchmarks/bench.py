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
6. with ``--sessions 10,50`` or ``--sessions find`` (off by default: about 30 s per count): N browser microphones
   capturing at once, latency per session and server CPU per session (benchmarks.sessions).

Timings go to the JSON, the terminal and an HTML report; goals are checked but never asserted.

This module runs the parts in order and writes the outputs; each part has a module of its own: bench_options
(BenchOptions, Artifacts, BenchError), source (the audio), compute_run (1), e2e and server_process (2),
reaction (3), cold_start (4), viewers (5), machine (the machine and the models measured), stats (summaries,
goals), bench_terminal and bench_report (the tables and the HTML page).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from dsp.config import SAMPLE_RATE as SR  # the monitor's rate

from ._util import write_json
from .bench_options import Artifacts, BenchError, BenchOptions
from .bench_terminal import print_results
from .cold_start import COLD_CLIP, run_cold_start
from .compute_run import STAGES, compute_results, run_compute
from .e2e import run_e2e
from .machine import loadavg, machine_info, model_ids, self_peak_rss_mb
from .reaction import run_reaction
from .source import source_audio
from .stats import GOALS, check_goals, summary

__all__ = ["BenchOptions", "Artifacts", "BenchError", "COLD_CLIP", "GOALS", "STAGES", "check_goals", "summary",
           "source_audio", "run_compute", "compute_results", "run_e2e", "run_reaction", "run_cold_start",
           "machine_info", "run_bench", "print_results"]


def run_bench(opts: BenchOptions, *, console=None) -> dict:
    """Run every part; write the JSON and HTML; return the results dict."""
    import soundfile as sf
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    if not Path(opts.data_dir).is_dir():
        raise BenchError(f"corpus root not found: {opts.data_dir} (give it with --data)")
    t_run, load_at_start = time.monotonic(), loadavg()
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
        if opts.sessions:
            tasks["sessions"] = progress.add_task("capturing sessions (connected)", total=None)

        def update(name):
            return lambda done, total: progress.update(tasks[name], completed=done, total=total)

        raw = run_compute(wav, opts, workdir, lambda task, d, t: update(task)(d, t) if task in tasks else None)
        comp, hop_samples = compute_results(raw)
        res.update(comp)
        reaction, timelines = run_reaction(opts, update("reaction"))
        res.update(reaction)
        res.update(run_cold_start(opts.data_dir, update("cold"), language=opts.language))
        e2e, e2e_samples = run_e2e(wav, seconds=y.size / SR, mode=opts.e2e, on_progress=update("e2e"),
                                   language=opts.language)
        res.update(e2e)
        if opts.viewers:
            from .viewers import run_viewers

            res["stalled_viewer"] = run_viewers(wav, counts=opts.viewers, on_progress=update("viewers"))
        if opts.sessions:
            from .sessions import run_sessions_part

            res["sessions"] = run_sessions_part(y, opts.sessions, on_progress=update("sessions"))
    res["bench_process_peak_rss_mb"] = self_peak_rss_mb()
    res["machine"] = machine_info(raw.get("pinned_cpu"), load_at_start=load_at_start)
    res["models"] = model_ids()
    res["language"] = opts.language  # which emotion model every part ran
    res["goals"] = check_goals(res)
    if "stalled_viewer" in res:
        from .viewers import viewer_goals

        res["goals"].update(viewer_goals(res["stalled_viewer"]))
    if "sessions" in res:
        from .sessions import sessions_goals

        res["goals"].update(sessions_goals(res["sessions"]))
    res["run_seconds"] = round(time.monotonic() - t_run, 1)
    _write_outputs(res, Artifacts(hop_total_ms=hop_samples, e2e_ms=e2e_samples, timelines=timelines), opts)
    return res


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
    if opts.sessions:
        parts += ["--sessions", "find" if opts.sessions == (0,) else ",".join(str(n) for n in opts.sessions)]
    return " ".join(parts)


def _write_outputs(res: dict, art: Artifacts, opts: BenchOptions) -> None:
    if opts.json_path is not None:
        write_json(opts.json_path, res)
    if opts.html_path is not None:
        from .bench_report import render_html

        Path(opts.html_path).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.html_path).write_text(render_html(res, art))
