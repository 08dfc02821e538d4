"""The command-line options every pipeline command shares, and the pipeline they build.

Public so that each command (``live``, ``file``, ``predict``, ``play``, ``serve``, the benchmarks) reads and
checks its options the same way: ``add_pipeline_options(parser)`` then ``pipeline_from_args(args, ...)``.
"""
from __future__ import annotations

import argparse
import math
import sys
import threading

from .errors import ConfigError

__all__ = ["number", "add_verbose_option", "add_pipeline_options", "add_model_options", "check_model_options",
           "offered_languages", "with_language", "pipeline_from_args", "warm_up", "device_status_printer"]


def number(*, lo: float, hi: float, integer: bool = False, lo_open: bool = False, unit: str = ""):
    """An argparse ``type`` accepting a finite number in [lo, hi] (or (lo, hi] with lo_open), else a one-line error."""
    kind = "an integer" if integer else "a number"
    bounds = f"{'>' if lo_open else '>='} {lo:.10g} and <= {hi:.10g}" + (f" {unit}" if unit else "")

    def parse(text: str):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not (math.isfinite(value) and lo <= value <= hi) or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


def add_verbose_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true",
                   help="also show the audio libraries' own messages (libmpg123, PortAudio) on stderr")


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    """--window-ms, --hop-ms, --tau, --vad, --language, --emotion-model, --gender-model and --verbose."""
    g = p.add_argument_group("analysis")
    g.add_argument("--window-ms", type=number(lo=500, hi=30000, unit="ms"), default=None,
                   help="analysis window, 500..30000 (default: the model's, 1500)")
    g.add_argument("--hop-ms", type=number(lo=10, hi=10000, unit="ms"), default=None,
                   help="update interval, 10..10000 (default: the model's, 100)")
    g.add_argument("--tau", type=number(lo=0, hi=600, unit="s"), default=0.5, metavar="SECONDS",
                   help="time constant of emotion smoothing, 0..600 (default 0.5 s)")
    g.add_argument("--vad", choices=("ours", "silero"), default="ours",
                   help="voice activity detector: ours (default) or silero (needs `pip install --no-deps "
                        "silero-vad`; better in very loud noise, 14x the cost)")
    add_model_options(g)
    add_verbose_option(p)  # every command that runs the pipeline reads audio through chatty C libraries


def add_model_options(p) -> None:
    """--language, --emotion-model and --gender-model (on a parser or an argument group)."""
    from models.labels import LANGUAGES

    p.add_argument("--language", choices=LANGUAGES, default="any",
                   help="the speaker's language, which picks the shipped emotion model: any (default; trained on "
                        "English and Amharic) or en (English only: better on English speakers, not meant for "
                        "other languages). The gender model is the same for all")
    p.add_argument("--emotion-model", default=None, help="ONNX emotion model (default: the shipped one for --language)")
    p.add_argument("--gender-model", default=None, help="ONNX gender model (default: shipped)")


def check_model_options(args) -> None:
    """--emotion-model names the model itself: a --language beside it would be ignored, so refuse the pair."""
    if args.emotion_model is not None and args.language != "any":
        raise ConfigError("give --language or --emotion-model, not both (--language picks a shipped emotion model)")


def offered_languages(args) -> tuple[str, ...]:
    """The languages a page's capture or clip may ask for, the server's --language first (the default); none
    when --emotion-model names one model for all."""
    from models.labels import LANGUAGES

    return () if args.emotion_model else (args.language, *(x for x in LANGUAGES if x != args.language))


def with_language(args, language: str | None):
    """``args`` with ``--language`` set to ``language`` (a copy; unchanged for None)."""
    return args if language is None else argparse.Namespace(**{**vars(args), "language": language})


def pipeline_from_args(args, *, source: str, live: bool):
    """The Pipeline the options of ``add_pipeline_options`` describe (models loaded, window and hop checked).

    source: the events' ``source`` field ("mic", "demo", "file"); live: keep only the newest window of a push
    when processing falls behind (a file keeps every window).
    """
    from .runner import build_pipeline

    check_model_options(args)
    pipeline = build_pipeline(emotion_model=args.emotion_model, gender_model=args.gender_model, language=args.language,
                              window_ms=args.window_ms, hop_ms=args.hop_ms, time_constant_s=args.tau,
                              vad_backend=args.vad, source=source, live=live)
    config = pipeline.config
    if config.hop_ms > config.window_ms:  # windows would skip audio: parts of the input never analysed
        raise ConfigError(f"--hop-ms {config.hop_ms:g} exceeds the analysis window ({config.window_ms:g} ms)")
    if live:
        warm_up(pipeline)
    return pipeline


_warmed = threading.Lock()
_warm = False


def warm_up(pipeline) -> None:
    """Pipeline.warm_up, once per process (numba's compiled kernels are shared by every pipeline after that),
    saying what the wait is when numba compiles: the first run after install, about 30 s on two cores; later
    runs load its on-disk cache in milliseconds."""
    global _warm
    with _warmed:
        if _warm:
            return
        note = threading.Timer(1.0, lambda: print("compiling the DSP kernels (the first run after install only, "
                                                  "up to a minute)...", file=sys.stderr, flush=True))
        note.daemon = True
        note.start()
        try:
            pipeline.warm_up()
            _warm = True
        finally:
            note.cancel()


def device_status_printer(*, verbose: bool):
    """An ``on_message`` for MicSource that prints one stderr line per outage (the loss; the outcome follows as
    the error or as audio flowing again); each failed reopen attempt only when ``verbose``."""

    def show(text: str) -> None:
        if verbose or not text.startswith("reopening input device"):
            print(text, file=sys.stderr, flush=True)

    return show
