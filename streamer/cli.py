"""`emotion-monitor`: the command line. Each subcommand is a small function.

The user's mistakes and the machine's state (a bad file, no device, a busy port, a broken model file: the
project's error types) are one line and exit 1; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import sys
import warnings

from . import __version__
from .options import (add_model_options, add_pipeline_options, add_verbose_option, check_model_options,
                      device_status_printer, number, pipeline_from_args)

_EPILOG = "With no subcommand, `live` runs. Every subcommand has its own --help."
_YEAR_S = 365 * 24 * 3600.0


def _err(msg: str) -> None:
    print(f"emotion-monitor: error: {msg}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block), so every problem is one line on stderr; exit status 2.

    A subcommand's parser may carry ``fill_lazily(parser)``: it adds the arguments on first use, so that a
    command's package (the benchmarks) is imported only when that command runs.
    """

    fill_lazily = None

    def parse_known_args(self, args=None, namespace=None):
        if self.fill_lazily is not None:
            fill, self.fill_lazily = self.fill_lazily, None
            fill(self)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        command = self.prog.removeprefix("emotion-monitor").strip()
        self.exit(2, f"emotion-monitor: error: {command + ': ' if command else ''}{' '.join(message.split())} "
                     f"(see `{self.prog} --help`)\n")


@contextlib.contextmanager
def _native_stderr_silenced():
    """C libraries' writes to fd 2 (libmpg123 notes, PortAudio assertion lines) go to /dev/null; Python's own
    stderr keeps working, through a copy of the original descriptor when sys.stderr writes to fd 2."""
    try:
        sys.stderr.flush()
        swap = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced by a non-file object (e.g. pytest's capsys)
        swap = False
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (started with 2>&-): nothing to silence
        yield
        return
    old = sys.stderr
    if swap:
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=old.encoding, errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if swap:
            sys.stderr.close()
            sys.stderr = old


@contextlib.contextmanager
def _one_line_warnings():
    """Python warnings (e.g. a damaged file read in part) as one `emotion-monitor: warning:` line each."""
    from dsp.audio_file import AudioFileWarning

    def show(message, category, filename, lineno, file=None, line=None):
        prefix = "" if issubclass(category, AudioFileWarning) else f"{category.__name__}: "
        print(f"emotion-monitor: warning: {prefix}{' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", AudioFileWarning)  # one per damaged file, even when messages repeat
        warnings.showwarning = show
        yield


# -- live ---------------------------------------------------------------------------------------------------
def _add_live(sub) -> None:
    p = sub.add_parser("live", help="monitor the microphone (demo stream if there is none) with a live dashboard",
                       description="Monitor an input device live. Without any input device the bundled, clearly "
                                   "labelled demo stream plays instead (unless --no-demo).")
    p.add_argument("--device", default=None, help="input device index or name substring (see `devices`)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true", help="use the bundled demo stream even if a mic exists")
    src.add_argument("--no-demo", action="store_true", help="fail instead of falling back to the demo stream")
    p.add_argument("--no-ui", action="store_true", help="no dashboard (for machines); combine with --jsonl")
    p.add_argument("--jsonl", action="store_true", help="print one JSON event per hop on stdout")
    p.add_argument("--duration", type=number(lo=0, lo_open=True, hi=_YEAR_S, unit="s"), default=None,
                   metavar="SECONDS", help="stop cleanly after this long")
    p.add_argument("--record-session", default=None, metavar="FILE.wav", help="also write the monitored audio")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_live)


def cmd_live(args) -> int:
    from .runner import open_live_source, run
    from .sources import SessionRecorder

    messages = []
    show = device_status_printer(verbose=args.verbose)

    def on_message(text: str) -> None:
        messages.append(text)  # the dashboard shows the latest
        show(text)

    source, kind = open_live_source(device=args.device, demo=True if args.demo else (False if args.no_demo else None),
                                    on_message=on_message)
    with source, contextlib.ExitStack() as stack:
        pipeline = pipeline_from_args(args, source=kind, live=True)
        recorder = stack.enter_context(SessionRecorder(args.record_session)) if args.record_session else None
        if args.no_ui:
            summary = run(source, pipeline, duration=args.duration, recorder=recorder, on_block=_announce(kind),
                          on_event=(lambda e: print(e.to_json(), flush=True)) if args.jsonl else (lambda e: None))
        else:
            summary = _run_dashboard(source, pipeline, kind, args, recorder, messages)
    print(summary.describe(), file=sys.stderr)
    if args.record_session:
        print(f"session audio written to {args.record_session}", file=sys.stderr)
    if warning := summary.clipping_warning("input"):
        print(warning, file=sys.stderr)
    return 0


def _announce(kind: str):
    """on_block callback that says once, on stderr, that audio is flowing (tests wait for this line)."""
    said = []

    def on_block(block):
        if not said:
            said.append(True)
            print(f"listening: first {kind} audio block received", file=sys.stderr, flush=True)

    return on_block


def _run_dashboard(source, pipeline, kind, args, recorder, messages):
    from rich.live import Live

    from .dashboard import Dashboard
    from .runner import run

    from .cards import model_card

    dash = Dashboard(pipeline.emotions, pipeline.genders, source=kind,
                     model=model_card(pipeline.emotion_model.metadata, fallback_name="emotion")["name"])

    def on_event(e):
        dash.update(e)
        dash.message = messages[-1] if messages else ""
        if args.jsonl:
            print(e.to_json(), file=sys.stderr)

    with Live(dash.render(), refresh_per_second=10, get_renderable=dash.render, transient=False):
        return run(source, pipeline, duration=args.duration, recorder=recorder, on_event=on_event)


# -- file ---------------------------------------------------------------------------------------------------
def _add_file(sub) -> None:
    p = sub.add_parser("file", help="run an audio file through the live pipeline and write its events",
                       description="Push a file through the same pipeline as `live` (VAD, windows, models, "
                                   "smoothing) and write one event per hop.")
    p.add_argument("path", help="audio file (anything soundfile reads: wav, flac, ogg, ...)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--jsonl", action="store_true", help="one JSON event per line (default)")
    fmt.add_argument("--csv", action="store_true", help="a flat CSV table instead")
    p.add_argument("--out", default="-", help="output file (default: stdout)")
    p.add_argument("--realtime", action="store_true", help="pace the file in real time, like a microphone")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_file)


def cmd_file(args) -> int:
    from .events import csv_header, csv_row
    from .runner import run
    from .sources import FileSource

    from .errors import StreamerError

    pipeline = pipeline_from_args(args, source="file", live=False)
    try:
        out = sys.stdout if args.out == "-" else open(args.out, "w", newline="")
    except OSError as exc:
        raise StreamerError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    try:
        with FileSource(args.path, realtime=args.realtime) as source:
            if args.csv:
                writer = csv.writer(out)
                writer.writerow(csv_header(pipeline.emotions, pipeline.genders))
                on_event = lambda e: writer.writerow(csv_row(e, pipeline.emotions, pipeline.genders))  # noqa: E731
            else:
                on_event = lambda e: out.write(e.to_json() + "\n")  # noqa: E731
            summary = run(source, pipeline, on_event=on_event)
    finally:
        if out is not sys.stdout:
            out.close()
    if summary.speech_events == 0:
        print(f"{args.path}: no speech detected; events carry emotion=null", file=sys.stderr)
    if warning := summary.clipping_warning(args.path):
        print(warning, file=sys.stderr)
    return 130 if summary.stopped_by == "interrupt" else 0


# -- predict ------------------------------------------------------------------------------------------------
def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="clip-level emotion and gender of audio files",
                       description="For each file: emotion and gender averaged over its speech windows, computed "
                                   "by the live pipeline. Unreadable files are reported and skipped; the exit "
                                   "status is then 1.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from dsp.audio_file import AudioFileError as UnreadableFile
    from dsp.audio_file import display_name

    from .errors import StreamerError
    from .runner import predict_file

    pipeline = pipeline_from_args(args, source="file", live=False)
    failed = 0
    for path in args.files:
        name = display_name(path)  # non-UTF-8 bytes of a file name print as \xNN, never as an encoding error
        try:
            if not path:  # predict_file's Path("") would read the current directory
                raise StreamerError("cannot read audio file: the file name is empty")
            result = dataclasses.replace(predict_file(path, pipeline), path=name)
            if not _finite(result):  # the loader refuses non-finite audio; this guards the output regardless
                raise StreamerError(f"{name}: the prediction is not a finite number; skipped")
        except (StreamerError, UnreadableFile) as exc:
            _err(str(exc))
            failed += 1
            continue
        text = json.dumps(result.to_dict(), allow_nan=False) if args.json else _predict_line(result)
        if result.emotion is None:
            print(f"{name}: no speech detected; no prediction", file=sys.stderr)
        if result.clipped_fraction > 1e-3:
            print(f"{name}: {100 * result.clipped_fraction:.1f} % of samples are clipped; the prediction is "
                  "less reliable", file=sys.stderr)
        print(text, flush=True)
    return 1 if failed else 0


def _finite(r) -> bool:
    return all(math.isfinite(v) for v in (*r.emotion_probs.values(), *r.gender_probs.values(), r.speech_seconds))


def _predict_line(r) -> str:
    if r.emotion is None:
        return f"{r.path}: no speech ({r.speech_seconds:.1f} s)"
    top = sorted(r.emotion_probs.items(), key=lambda kv: -kv[1])[:3]
    alts = ", ".join(f"{k} {100 * v:.0f}%" for k, v in top)
    return (f"{r.path}: {r.emotion} ({alts}); {r.gender} {100 * r.gender_probs[r.gender]:.0f}%; "
            f"speech {r.speech_seconds:.1f} s")


# -- devices, record, play ----------------------------------------------------------------------------------
def _add_devices(sub) -> None:
    p = sub.add_parser("devices", help="list audio input devices and their rates")
    add_verbose_option(p)
    p.set_defaults(func=cmd_devices)


def cmd_devices(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .sources import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no audio input devices found (the monitor will offer its demo stream)")
        return 0
    table = Table("index", "name", "channels", "default rate (Hz)", "host API")
    for d in devices:
        table.add_row(str(d.index), d.name, str(d.max_input_channels), f"{d.default_samplerate:g}", d.hostapi)
    Console().print(table)
    return 0


def _add_record(sub) -> None:
    p = sub.add_parser("record", help="record a clip from the microphone with a level meter")
    p.add_argument("out", metavar="OUT.wav")
    p.add_argument("--seconds", type=number(lo=0, lo_open=True, hi=7 * 24 * 3600.0, unit="s"), required=True)
    p.add_argument("--device", default=None)
    add_verbose_option(p)
    p.set_defaults(func=cmd_record)


def cmd_record(args) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .sources import record

    import time

    with Progress(TextColumn("recording {task.fields[level]}"), BarColumn(), TimeElapsedColumn()) as progress:
        task = progress.add_task("rec", total=args.seconds, level="")
        t0 = time.monotonic()

        def on_level(dbfs):
            meter = "█" * max(0, int((dbfs + 60) / 3))
            progress.update(task, completed=min(args.seconds, time.monotonic() - t0),
                            level=f"{dbfs:6.1f} dBFS {meter:<20}")

        record(args.out, seconds=args.seconds, device=args.device, on_level=on_level)
    print(f"wrote {args.out}")
    return 0


def _add_play(sub) -> None:
    p = sub.add_parser("play", help="play a clip and show its predicted emotion and gender")
    p.add_argument("file")
    p.add_argument("--device", default=None, help="output device index or name substring")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_play)


def cmd_play(args) -> int:
    from .runner import predict_file
    from .sources import play

    pipeline = pipeline_from_args(args, source="file", live=False)
    result = predict_file(args.file, pipeline)
    print(_predict_line(result))
    play(args.file, device=args.device)
    return 0


# -- models -------------------------------------------------------------------------------------------------
def _add_models(sub) -> None:
    p = sub.add_parser("models", help="show the emotion and gender models' cards (name, version, corpora, licence)")
    add_model_options(p)
    p.set_defaults(func=cmd_models)


def cmd_models(args) -> int:
    from .cards import CARD_KEYS, model_card
    from .runner import load_models

    check_model_options(args)
    for task, model in zip(("emotion", "gender"), load_models(args.emotion_model, args.gender_model,
                                                             language=args.language)):
        card = model_card(model.metadata, fallback_name=task)
        print(f"{task}: {model.path}")
        for key in CARD_KEYS:
            print(f"  {key + ':':9} {card[key] or '-'}")
        print(f"  {'window:':9} {model.window_ms:g} ms, hop {model.hop_ms:g} ms; labels {', '.join(model.labels)}")
    return 0


# -- the other packages' commands ---------------------------------------------------------------------------
def _add_bench(sub) -> None:
    """`bench`, whose arguments (and the benchmarks package) are imported only when the command is chosen."""

    def fill(p) -> None:
        from benchmarks.cli import DESCRIPTION, add_arguments, cmd_bench

        p.description = DESCRIPTION
        add_arguments(p)
        p.set_defaults(func=cmd_bench)

    p = sub.add_parser("bench", help="latency and throughput benchmark (JSON + HTML report)",
                       description="Latency and throughput of the whole monitor on this machine (JSON + HTML).")
    p.fill_lazily = fill


def build_parser() -> argparse.ArgumentParser:
    from models.train import register as register_training

    from .serve import register as register_serve

    parser = _Parser(prog="emotion-monitor", description="Real-time voice emotion monitor.", epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_live, _add_file, _add_predict, _add_devices, _add_record, _add_play, register_serve,
                _add_models, register_training, _add_bench):
        add(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["live", *argv]
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        # Session mode runs the fold models through this package's Pipeline; models cannot import streamer.
        from .session_eval import session_clip_probs

        args.session_runner = session_clip_probs
    try:
        func = getattr(args, "func", None) or args.run  # models/ registers its commands with `run`
        with contextlib.ExitStack() as stack:
            stack.enter_context(_one_line_warnings())
            # Only the commands that offer --verbose (Python logging's last-resort handler follows sys.stderr).
            if getattr(args, "verbose", True) is False:
                stack.enter_context(_native_stderr_silenced())
            return int(func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's contract: one line, never a traceback
        if _is_user_error(exc):
            _err(str(exc))
            return 1
        raise


def _is_user_error(exc: Exception) -> bool:
    """The project's own user-facing errors (bad input, missing device, busy port, model files): one line.

    Anything else (a ValueError or OSError from inside the code included) is a bug and keeps its traceback.
    """
    from dsp.audio_file import AudioFileError as UnreadableFile
    from models.errors import ModelError

    from .errors import StreamerError

    return isinstance(exc, (StreamerError, ModelError, UnreadableFile))
