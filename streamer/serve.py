"""`emotion-monitor serve` and `view`: the pipeline wired to the web server (web/ knows nothing of streamer/).

The server (web.server.serve) takes an async iterator of event dicts and the ``hello`` fields; this module
builds both from a source and a pipeline, running the pipeline in a thread behind a web.bridge.EventBridge.
"""
from __future__ import annotations

import asyncio
import sys
import threading

from .cards import model_card
from .errors import ConfigError, PortBusy
from .options import add_pipeline_options, number, offered_languages, pipeline_from_args, warm_up, with_language

__all__ = ["register", "hello_fields", "serve_pipeline", "capture_options", "tls_context"]


def register(sub) -> None:
    """Add the ``serve`` and ``view`` subcommands to an argparse subparsers object."""
    p = sub.add_parser("serve", help="run the monitor and serve the live timeline page and websocket",
                       description="Run the pipeline and serve, on one port, the page at / and the websocket at "
                                   "/ws. Bound to a non-loopback host, a token is required (generated and printed "
                                   "if --token is not given). Pages may also send their own microphone "
                                   "(/ws/capture; each a session, watched with /ws?session=ID) and clips (/clip); "
                                   "sending audio always needs the token (see --open-capture).")
    p.add_argument("--source", default="mic",
                   help="mic (default; demo if there is none), demo, an audio file, or none (only browser "
                        "microphones: viewers that name no session pick one)")
    p.add_argument("--device", default=None, help="input device index or name substring")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=number(lo=0, hi=65535, integer=True), default=8765,
                   help="TCP port, 0..65535 (0: any free port; default 8765)")
    p.add_argument("--token", default=None, help="access token for remote viewers")
    p.add_argument("--loop", action="store_true", help="with a file source: start again at the end")
    p.add_argument("--history-seconds", type=number(lo=0, hi=24 * 3600.0, unit="s"), default=600.0,
                   help="history sent to late joiners, 0..86400 (default 600)")
    # Below 0.5 s a healthy viewer on a busy link would be dropped.
    p.add_argument("--max-viewer-lag", type=number(lo=0.5, hi=3600.0, unit="s"), default=10.0, metavar="SECONDS",
                   help="disconnect (and count) a viewer this many seconds behind the live stream, e.g. one that "
                        "stopped reading (default 10; 0.5-3600)")
    c = p.add_argument_group("browser microphones (each capturing page is a session)")
    c.add_argument("--no-capture", action="store_true", help="do not accept browser microphones at all")
    c.add_argument("--open-capture", action="store_true",
                   help="capture and send clips without the token on a token-less loopback server (by default "
                        "sending audio always needs the token; one is generated and printed in the URL when "
                        "--token is not given)")
    c.add_argument("--max-sessions", type=number(lo=1, hi=10000, integer=True), default=32,
                   help="browser sessions capturing at once, 1..10000 (default 32); more are refused")
    c.add_argument("--max-session-seconds", type=number(lo=1, hi=7 * 24 * 3600.0, unit="s"), default=3600.0,
                   help="audio per browser session before it is ended (default 3600)")
    c.add_argument("--idle-timeout", type=number(lo=1, hi=3600.0, unit="s"), default=30.0, metavar="SECONDS",
                   help="end a capturing connection that sends no audio this long (default 30)")
    c.add_argument("--session-expiry", type=number(lo=0, hi=7 * 24 * 3600.0, unit="s"), default=600.0,
                   metavar="SECONDS", help="keep an ended session's history this long for viewers (default 600)")
    c.add_argument("--record-dir", default=None, metavar="DIR",
                   help="write each browser session's audio to DIR/<session>.wav (default: never written)")
    t = p.add_argument_group("TLS (browsers allow the microphone only on https or localhost)")
    t.add_argument("--certfile", default=None, help="PEM certificate chain: serve https and wss")
    t.add_argument("--keyfile", default=None, help="PEM private key of --certfile (default: inside --certfile)")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_serve)

    v = sub.add_parser("view", help="watch a remote monitor's stream in the terminal",
                       description="Terminal viewer for `emotion-monitor serve` running elsewhere.")
    v.add_argument("url", help="ws://HOST:PORT/ws (or http://HOST:PORT/ or HOST:PORT)")
    v.add_argument("--token", default=None)
    v.add_argument("--duration", type=number(lo=0, lo_open=True, hi=365 * 24 * 3600.0, unit="s"), default=None,
                   metavar="SECONDS")
    v.set_defaults(func=cmd_view)


def cmd_view(args) -> int:
    from web.view import view

    return asyncio.run(view(args.url, token=args.token, duration=args.duration))


def _open_source(args):
    """(source, kind) for --source: mic (falling back to the demo), demo, or a file paced in real time."""
    from .options import device_status_printer
    from .runner import open_live_source
    from .sources import FileSource

    if args.source == "mic":
        return open_live_source(device=args.device, on_message=device_status_printer(verbose=args.verbose))
    if args.source == "demo":
        return open_live_source(demo=True)
    return FileSource(args.source, realtime=True, loop=args.loop), "file"


def hello_fields(pipeline, kind: str) -> dict:
    """The ``hello`` fields of a pipeline: labels, its configuration and the emotion model's card."""
    c = pipeline.config
    return {"labels": list(pipeline.emotions), "gender_labels": list(pipeline.genders),
            "config": {"source": kind, "window_ms": c.window_ms, "hop_ms": c.hop_ms,
                       "time_constant_s": c.time_constant_s, "sr": pipeline.feature_config.sr},
            "model_card": model_card(pipeline.emotion_model.metadata, fallback_name="emotion")}


def cmd_serve(args) -> int:
    ssl_context = tls_context(certfile=args.certfile, keyfile=args.keyfile)
    record_dir = _record_dir(args.record_dir)
    if args.source == "none" and args.no_capture:
        raise ConfigError("--source none with --no-capture leaves nothing to serve")
    source, kind = (None, "none") if args.source == "none" else _open_source(args)
    # With no source of its own, the pipeline only describes the models and options in every hello.
    pipeline = pipeline_from_args(args, source=kind if source is not None else "browser", live=kind != "file")
    if kind == "file":  # (live ones are warmed already) numba compiles now, not while serving the first page
        warm_up(pipeline)
    capture = None if args.no_capture else capture_options(args, record_dir=record_dir)
    from web.clips import ClipService

    from .clip_api import clip_analyzer

    clips = ClipService(analyze=clip_analyzer(args))
    from web.sessions import SessionLimits

    limits = SessionLimits(max_sessions=args.max_sessions, expiry_s=args.session_expiry)
    return asyncio.run(serve_pipeline(source, pipeline, kind=kind, host=args.host, port=args.port,
                                      token=args.token, history_seconds=args.history_seconds,
                                      max_viewer_lag_s=args.max_viewer_lag, capture=capture, limits=limits,
                                      ssl_context=ssl_context, clip_handler=clips.handler,
                                      open_capture=args.open_capture))


def capture_options(args, *, record_dir=None):
    """web.capture.CaptureOptions for ``serve``: each capturing page gets its own live pipeline, built as the
    server's own (same models and options; its events say ``source: browser``) and pushed block by block. The
    page may pick the emotion model's language (models.labels.LANGUAGES, the server's --language first), unless
    --emotion-model names one model for all."""
    from dsp.config import SAMPLE_RATE
    from web.capture import CaptureOptions

    from .recording import SessionRecorder

    def new_pipeline(language):
        pipeline = pipeline_from_args(with_language(args, language), source="browser", live=True)
        return lambda samples, wall_end: [e.to_dict() for e in pipeline.push(samples, wall_end=wall_end)]

    languages = offered_languages(args)
    hellos = {language: language_hello(args, language) for language in languages}  # read once, not per capture
    return CaptureOptions(new_pipeline=new_pipeline, sample_rate=SAMPLE_RATE, languages=languages,
                          session_hello=hellos.__getitem__,
                          max_session_s=args.max_session_seconds, idle_timeout_s=args.idle_timeout,
                          record_dir=record_dir,
                          open_recording=lambda path, sr: SessionRecorder(path, sr=sr))


def language_hello(args, language: str) -> dict:
    """The hello fields of a session whose emotion model is the one for ``language``: its card and the code."""
    from .runner import load_models

    emotion, _ = load_models(args.emotion_model, args.gender_model, language=language)
    return {"language": language, "model_card": model_card(emotion.metadata, fallback_name="emotion")}


def _record_dir(path):
    """--record-dir as a Path, checked now (a one-line error) rather than at the first capture."""
    from pathlib import Path

    if path is None:
        return None
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"--record-dir {path}: not a directory")
    return p


def tls_context(*, certfile, keyfile):
    """An ssl.SSLContext serving ``certfile``/``keyfile`` (None without --certfile); bad files are one line."""
    import ssl

    if certfile is None:
        if keyfile is not None:
            raise ConfigError("--keyfile needs --certfile")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use --certfile {certfile}"
                          f"{f' --keyfile {keyfile}' if keyfile else ''}: {exc.strerror or exc}") from None
    return context


async def serve_pipeline(source, pipeline, *, kind: str, host: str, port: int, token: str | None,
                         history_seconds: float, max_viewer_lag_s: float, capture=None, limits=None,
                         ssl_context=None, clip_handler=None, open_capture: bool = False) -> int:
    """Run ``source`` through ``pipeline`` in a thread and serve its events until cancelled (or the server fails).

    ``source`` None: no stream of the server's own (only browser microphones); ``pipeline`` gives the hello."""
    from web.bridge import EventBridge
    from web.server import serve

    from .runner import run

    loop = asyncio.get_running_loop()
    bridge, stop, listening = EventBridge(), threading.Event(), []

    def produce():
        try:
            with source:
                run(source, pipeline, stop=stop,
                    on_event=lambda e: loop.call_soon_threadsafe(bridge.put, e.to_dict()))
            loop.call_soon_threadsafe(bridge.put, None)
        except Exception as exc:  # noqa: BLE001 - shown to the user by the server's end message and below
            loop.call_soon_threadsafe(bridge.put, exc)

    def ready(port, url):
        listening.append(port)
        print(f"serving the live page at {url}", file=sys.stderr, flush=True)

    if source is not None:
        threading.Thread(target=produce, name="pipeline", daemon=True).start()
    try:
        extra = {} if limits is None else {"limits": limits}
        await serve(bridge.events() if source is not None else None, hello=hello_fields(pipeline, kind), host=host, port=port, token=token,
                    history_seconds=history_seconds, on_ready=ready, max_client_lag_s=max_viewer_lag_s,
                    events_dropped=lambda: bridge.dropped,  # shown in stats, with the stream's own losses
                    capture=capture, ssl_context=ssl_context, clip_handler=clip_handler,
                    open_capture=open_capture, **extra)
    except OSError as exc:
        if listening:
            raise
        # Bind failed (port in use, address not of this machine): the user's choice, one line.
        raise PortBusy(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        stop.set()
    return 0
