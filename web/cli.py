"""`emotion-monitor serve` and `emotion-monitor view`: the pipeline behind the web page, and a terminal viewer."""
from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque

_QUEUE_MAX = 1000  # events waiting for the event loop; if it stalls this long, the oldest are dropped (counted)


def register(sub) -> None:
    from streamer.cli import _pipeline_options, number

    p = sub.add_parser("serve", help="run the monitor and serve the live timeline page and websocket",
                       description="Run the pipeline and serve, on one port, the page at / and the websocket at "
                                   "/ws. Bound to a non-loopback host, a token is required (generated and printed "
                                   "if --token is not given).")
    p.add_argument("--source", default="mic", help="mic (default; demo if there is none), demo, or an audio file")
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
    _pipeline_options(p)
    p.set_defaults(func=cmd_serve)

    v = sub.add_parser("view", help="watch a remote monitor's stream in the terminal",
                       description="Terminal viewer for `emotion-monitor serve` running elsewhere.")
    v.add_argument("url", help="ws://HOST:PORT/ws (or http://HOST:PORT/ or HOST:PORT)")
    v.add_argument("--token", default=None)
    v.add_argument("--duration", type=number(lo=0, lo_open=True, hi=365 * 24 * 3600.0, unit="s"), default=None,
                   metavar="SECONDS")
    v.set_defaults(func=cmd_view)


def cmd_view(args) -> int:
    from .view import view

    return asyncio.run(view(args.url, token=args.token, duration=args.duration))


def _open_source(args):
    """(source, kind) for --source: mic (falling back to the demo), demo, or a file paced in real time."""
    from streamer.cli import device_status_printer
    from streamer.runner import open_live_source
    from streamer.sources import FileSource

    if args.source == "mic":
        return open_live_source(device=args.device, on_message=device_status_printer(verbose=args.verbose))
    if args.source == "demo":
        return open_live_source(demo=True)
    return FileSource(args.source, realtime=True, loop=args.loop), "file"


def _hello(pipeline, kind: str) -> dict:
    c = pipeline.config
    meta = pipeline.emotion_model.metadata
    return {"labels": list(pipeline.emotions), "gender_labels": list(pipeline.genders),
            "config": {"source": kind, "window_ms": c.window_ms, "hop_ms": c.hop_ms,
                       "time_constant_s": c.time_constant_s, "sr": pipeline.feature_config.sr},
            "model_card": {"name": meta.get("name", "emotion"), "summary": meta.get("summary", ""),
                           "licence": meta.get("licence", "")}}


class _Bridge:
    """Carries events from the pipeline thread into asyncio: bounded, never blocks the producer."""

    def __init__(self):
        self.items, self.dropped = deque(), 0
        self.ready = asyncio.Event()

    def put(self, item) -> None:  # runs in the event loop (via call_soon_threadsafe)
        if len(self.items) >= _QUEUE_MAX:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)
        self.ready.set()

    async def events(self):
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.items:
                item = self.items.popleft()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item


def cmd_serve(args) -> int:
    from streamer.cli import _build_pipeline

    source, kind = _open_source(args)
    pipeline = _build_pipeline(args, source=kind, live=kind != "file")
    return asyncio.run(_serve(args, source, pipeline, kind))


async def _serve(args, source, pipeline, kind) -> int:
    from streamer.runner import run

    from .server import serve

    loop = asyncio.get_running_loop()
    bridge, stop = _Bridge(), threading.Event()

    def produce():
        try:
            with source:
                run(source, pipeline, stop=stop,
                    on_event=lambda e: loop.call_soon_threadsafe(bridge.put, e.to_dict()))
            loop.call_soon_threadsafe(bridge.put, None)
        except Exception as exc:  # noqa: BLE001 - shown to the user by the server's end message and below
            loop.call_soon_threadsafe(bridge.put, exc)

    def ready(port, url):
        print(f"serving the live page at {url}", file=sys.stderr, flush=True)

    worker = threading.Thread(target=produce, name="pipeline", daemon=True)
    worker.start()
    try:
        await serve(bridge.events(), hello=_hello(pipeline, kind), host=args.host, port=args.port,
                    token=args.token, history_seconds=args.history_seconds, on_ready=ready,
                    max_client_lag_s=args.max_viewer_lag)
    finally:
        stop.set()
    return 0
