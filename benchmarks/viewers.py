"""Many viewers and one that stops reading: the other viewers' latency, and when the stalled one is dropped.

    python -m benchmarks.viewers [--viewers 200 1000] [--seconds 10] [--source PATH] [--json OUT]
    emotion-monitor bench --viewers 200,1000        (the same, as the last part of bench)

For each viewer count N: the real server (``emotion-monitor serve --port 0``, the source file paced in real
time and looped, the shipped stall policy) in a subprocess, and N websockets viewers on loopback in this
process. Three phases, by arrival time at the viewers:

1. ``no_stall``: ``--seconds`` of N viewers reading;
2. ``stall``: one more viewer completes the handshake and never reads again (a raw socket with a small
   receive buffer), until the server reports it dropped (``stats.slow_disconnects``);
3. ``after_drop``: ``--seconds`` more.

Latency = arrival at a viewer - capture time of the window's last sample (``event["wall"]``), pooled over
all viewers' prediction events of the phase; ``lost`` counts events a viewer missed that another viewer
got in the same phase. The viewers share this process's event loop, so its own load is in the figures
(pessimistic). Goals (issue 13): p95 during the stall < 50 ms at 200 viewers and < 100 ms at 1000.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._util import ROOT, write_json

GOALS_P95_MS = {200: 50.0, 1000: 100.0}  # others' p95 with one stalled viewer
_CONNECT_BATCH = 50  # concurrent handshakes: below the server's listen backlog (100)
_DROP_WAIT_S = 40.0  # the stall phase ends here even if the server never drops the stalled viewer
_WARMUP_S = 2.0
_T = re.compile(r'"t":(-?[0-9.eE+-]+)')
_WALL = re.compile(r'"wall":(-?[0-9.eE+-]+)')


@dataclass
class _Record:
    """Arrivals of every viewer, by phase; filled by the viewer tasks on the event loop."""

    phase: str = "warmup"
    latencies_ms: dict = field(default_factory=lambda: {"no_stall": [], "stall": [], "after_drop": []})
    seen: dict = field(default_factory=dict)  # (phase, viewer) -> set of t
    slow_disconnects: int = 0
    last_stats: dict | None = None
    dropped_at: float | None = None
    errors: int = 0


async def _viewer(url: str, index: int, rec: _Record, ready: list) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    try:
        async with connect(url, max_size=None, open_timeout=60) as ws:
            ready.append(index)
            async for text in ws:
                arrived = time.time()
                if text.startswith('{"v":1,"type":"prediction"'):
                    _note(rec, index, text, arrived)
                elif index == 0 and '"type":"stats"' in text:
                    _note_stats(rec, json.loads(text), arrived)
    except (OSError, ConnectionClosed, TimeoutError):
        rec.errors += 1


def _note(rec: _Record, index: int, text: str, arrived: float) -> None:
    if rec.phase not in rec.latencies_ms:
        return
    wall, t = _WALL.search(text), _T.search(text)
    if wall is None or t is None:
        return
    rec.latencies_ms[rec.phase].append((arrived - float(wall.group(1))) * 1e3)
    rec.seen.setdefault((rec.phase, index), set()).add(float(t.group(1)))


def _note_stats(rec: _Record, msg: dict, arrived: float) -> None:
    rec.last_stats = msg
    if msg["slow_disconnects"] > rec.slow_disconnects and rec.phase == "stall" and rec.dropped_at is None:
        rec.dropped_at = arrived
    rec.slow_disconnects = msg["slow_disconnects"]


async def _stalled_viewer(port: int) -> socket.socket:
    """A viewer that completes the websocket handshake and never reads again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)  # byte by byte: leave every frame unread
        if not chunk:
            raise OSError("the server closed the stalled viewer during its handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise OSError(f"stalled viewer refused: {head.splitlines()[0]!r}")
    return sock


async def _run_one(port: int, *, viewers: int, seconds: float, on_progress) -> dict:
    rec = _Record()
    url = f"ws://127.0.0.1:{port}/ws"
    ready: list[int] = []
    tasks = []
    for start in range(0, viewers, _CONNECT_BATCH):
        batch = range(start, min(viewers, start + _CONNECT_BATCH))
        tasks += [asyncio.create_task(_viewer(url, i, rec, ready)) for i in batch]
        await _until(lambda: len(ready) + rec.errors >= batch.stop, timeout=60)
        if len(ready) < batch.stop:
            raise OSError(f"only {len(ready)} of {batch.stop} viewers connected")
        on_progress(len(ready), viewers)
    await asyncio.sleep(_WARMUP_S)
    rec.phase = "no_stall"
    await asyncio.sleep(seconds)
    t_stall = time.time()
    stalled = await _stalled_viewer(port)
    rec.phase = "stall"
    await _until(lambda: rec.dropped_at is not None, timeout=_DROP_WAIT_S)
    rec.phase = "after_drop"
    await asyncio.sleep(seconds)
    rec.phase = "done"
    stalled.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return _results(rec, viewers=viewers, connected=len(ready), t_stall=t_stall)


async def _until(predicate, timeout: float | None = None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while not predicate() and (deadline is None or time.monotonic() < deadline):
        await asyncio.sleep(0.05)


def _results(rec: _Record, *, viewers: int, connected: int, t_stall: float) -> dict:
    from .bench import summary

    out = {"viewers": viewers, "connected": connected, "viewer_errors": rec.errors}
    for phase, lat in rec.latencies_ms.items():
        sets = [rec.seen.get((phase, i), set()) for i in range(viewers)]
        union = set().union(*sets)
        out[phase] = {"latency_ms": summary(lat, digits=2), "events": len(union),
                      "lost": sum(len(union - s) for s in sets)}
    out["stalled_dropped_after_s"] = None if rec.dropped_at is None else round(rec.dropped_at - t_stall, 2)
    out["slow_disconnects"] = rec.slow_disconnects
    out["viewers_at_end"] = None if rec.last_stats is None else rec.last_stats["viewers"]
    return out


def _raise_fd_limit() -> None:
    """N viewers need N sockets here and N in the server (which inherits the limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_viewers(wav: Path, *, counts, seconds: float = 10.0, on_progress=lambda done, total: None) -> dict:
    """The stalled-viewer measure at each viewer count; results keyed by the count (as a string)."""
    from .bench import BenchError, _loadavg, _ServerProcess

    _raise_fd_limit()
    res = {"seconds_per_phase": seconds, "load_average_at_start": _loadavg(), "runs": {}}
    for n in counts:
        server = _ServerProcess(["--source", str(wav), "--loop"])
        try:
            port = server.wait_ready()
            res["runs"][str(n)] = asyncio.run(_run_one(port, viewers=n, seconds=seconds, on_progress=on_progress))
            res["runs"][str(n)]["server_peak_rss_mb"] = server.peak_rss_mb()
        except OSError as exc:
            raise BenchError(f"viewer run at {n} viewers failed: {exc}; server: {server.tail()}") from None
        finally:
            server.stop()
    res["load_average_at_end"] = _loadavg()
    return res


def viewer_goals(res: dict) -> dict:
    """bench goals for the runs whose viewer count has one."""
    out = {}
    for key, run in res["runs"].items():
        target = GOALS_P95_MS.get(int(key))
        if target is not None:
            value = run["stall"]["latency_ms"]["p95"]
            out[f"stalled_viewer_others_p95_ms_at_{key}"] = {
                "value": value, "target": f"<= {target:g}", "met": None if value is None else value <= target}
    return out


def main(argv=None) -> int:
    from .bench import BenchError, source_audio
    from ._util import DEFAULT_DATA

    p = argparse.ArgumentParser(prog="python -m benchmarks.viewers", description=__doc__.split("\n\n")[0])
    p.add_argument("--viewers", type=int, nargs="+", default=[200, 1000], metavar="N")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the no-stall and after-drop phases")
    p.add_argument("--source", default=None, metavar="PATH|demo", help="audio (default: held-out RAVDESS speech)")
    p.add_argument("--data", default=str(DEFAULT_DATA), metavar="DIR")
    p.add_argument("--json", default=str(ROOT / "artifacts" / "bench_viewers.json"), metavar="OUT")
    args = p.parse_args(argv)
    if not all(1 <= n <= 5000 for n in args.viewers) or not 1.0 <= args.seconds <= 600.0:
        p.error("--viewers must be 1..5000 and --seconds 1..600")
    import tempfile

    import numpy as np
    import soundfile as sf

    try:
        with tempfile.TemporaryDirectory(prefix="emotion-viewers-") as tmp:
            y, desc = source_audio(args.source, seconds=30.0, data_dir=Path(args.data))
            wav = Path(tmp) / "source.wav"
            sf.write(wav, np.clip(y, -1.0, 1.0), 16000, subtype="PCM_16")
            res = run_viewers(wav, counts=args.viewers, seconds=args.seconds,
                              on_progress=lambda d, t: print(f"\rconnected {d}/{t}", end="", file=sys.stderr))
            print(file=sys.stderr)
    except (BenchError, OSError, ValueError) as exc:
        print(f"python -m benchmarks.viewers: error: {exc}", file=sys.stderr)
        return 1
    res["source"] = desc
    res["goals"] = viewer_goals(res)
    if args.json:
        write_json(args.json, res)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
