"""`emotion-monitor bench` (and `python -m benchmarks`): the arguments; the work is in benchmarks.bench.

streamer.cli imports this module only when `bench` is the command (the core never depends on the benchmarks).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = ("Latency and throughput of the whole monitor on this machine: per-stage cost per hop, total hop "
                "compute and real-time factor on one core, end-to-end latency to a websocket client (through the "
                "PulseAudio virtual microphone when available), reaction time to emotion changes on held-out "
                "speakers, cold start, peak RSS, and the speed-up over the old app's approach (librosa features "
                "on the whole window every hop + a RandomForest). Writes JSON and an HTML report.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from models.labels import LANGUAGES

    from ._util import DEFAULT_DATA, ROOT

    p.add_argument("--source", default=None, metavar="PATH|demo",
                   help="audio for the latency runs (default: held-out RAVDESS speech, actors 19-20)")
    p.add_argument("--seconds", type=float, default=30.0, metavar="N",
                   help="seconds of source audio: streamed once end to end in real time (default 30)")
    p.add_argument("--json", default=str(ROOT / "artifacts" / "bench.json"), metavar="OUT",
                   help="results JSON (default artifacts/bench.json; '' for none)")
    p.add_argument("--html", default=str(ROOT / "artifacts" / "bench.html"), metavar="OUT",
                   help="HTML report (default artifacts/bench.html; '' for none)")
    p.add_argument("--data", default=str(DEFAULT_DATA), metavar="DIR", help="corpus root (RAVDESS under it)")
    p.add_argument("--language", choices=LANGUAGES, default="any",
                   help="the emotion model every part runs (as `live --language`; default any)")
    g = p.add_argument_group("size of the run (defaults: the full benchmark, under 2 minutes)")
    g.add_argument("--clips", type=int, default=60, metavar="N",
                   help="clips per held-out actor in the reaction streams")
    g.add_argument("--hops", type=int, default=1000, metavar="N", help="hops timed on one core")
    g.add_argument("--baseline-windows", type=int, default=200, metavar="N", help="training windows of the forest")
    g.add_argument("--baseline-hops", type=int, default=200, metavar="N", help="baseline hops timed")
    g.add_argument("--e2e", choices=("auto", "vmic", "file"), default="auto",
                   help="end-to-end audio path: virtual mic if PulseAudio is installed (auto), or forced")
    g.add_argument("--viewers", type=_counts, default=(), metavar="N[,N...]",
                   help="also measure the other viewers' latency with one stalled viewer at these viewer counts "
                        "(e.g. 200,1000; about a minute each; default: skipped)")
    g.add_argument("--sessions", type=_session_counts, default=(), metavar="N[,N...]|find",
                   help="also measure N browser microphones capturing at once (benchmarks.sessions): latency per "
                        "session and server CPU per session at these counts, or 'find' to search the largest N "
                        "with p95 <= 100 ms and no losses (about 30 s per count; default: skipped)")


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated viewer counts, got {text!r}") from None
    if not all(1 <= n <= 5000 for n in counts):
        raise argparse.ArgumentTypeError(f"viewer counts must be 1..5000, got {text}")
    return counts


def _session_counts(text: str) -> tuple[int, ...]:
    """--sessions: counts, or "find" (encoded as the empty-looking tuple (0,): search from 10)."""
    if text.strip() == "find":
        return (0,)
    counts = _counts(text)
    if not all(n <= 2000 for n in counts):
        raise argparse.ArgumentTypeError(f"session counts must be 1..2000, got {text}")
    return counts


def options(args):
    from .bench import BenchOptions

    return BenchOptions(source=args.source, seconds=args.seconds, data_dir=Path(args.data),
                        json_path=Path(args.json) if args.json else None,
                        html_path=Path(args.html) if args.html else None,
                        clips_per_actor=args.clips, min_hops=args.hops, baseline_windows=args.baseline_windows,
                        baseline_hops=args.baseline_hops, e2e=args.e2e, viewers=args.viewers,
                        sessions=args.sessions, language=args.language)


def cmd_bench(args) -> int:
    from .bench import print_results, run_bench

    opts = options(args)
    res = run_bench(opts)
    print_results(res)
    written = [str(p) for p in (opts.json_path, opts.html_path) if p is not None]
    if written:
        print("wrote " + ", ".join(written), file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """`python -m benchmarks`: the same arguments as `emotion-monitor bench`, errors as one line."""
    from streamer.errors import StreamerError

    from .bench import BenchError

    p = argparse.ArgumentParser(prog="python -m benchmarks", description=DESCRIPTION)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return cmd_bench(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (BenchError, StreamerError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"python -m benchmarks: error: {exc}", file=sys.stderr)
        return 1
