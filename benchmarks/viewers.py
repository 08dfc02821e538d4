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
all viewers' prediction events of the phase; ``lost`` counts events a viewer missed that the others got.
The viewers are minimal websocket clients (an asyncio.Protocol each: handshake, unmasked frames, pongs
to the server's lag probes; latency stamped in ``data_received``), so that 1000 of them in one process
cost less than the server they measure; their load is still in the figures (pessimistic), and
``server_cpu`` / ``viewers_cpu`` give each process's CPU share per phase. Goals (issue 13): p95 during the
stall < 50 ms at 200 viewers and < 100 ms at 1000.
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

from ._util import ROOT, process_cpu_s, write_json

GOALS_P95_MS = {200: 50.0, 1000: 100.0}  # others' p95 with one stalled viewer
_CONNECT_BATCH = 50  # concurrent handshakes: below the server's listen backlog (100)
_DROP_WAIT_S = 40.0  # the stall phase ends here even if the server never drops the stalled viewer
_WARMUP_S = 2.0
_T = re.compile(rb'"t":(-?[0-9.eE+-]+)')
_WALL = re.compile(rb'"wall":(-?[0-9.eE+-]+)')


@dataclass
class _Record:
    """Arrivals of every viewer, by phase; filled by the viewer tasks on the event loop."""

    phase: str = "warmup"
    latencies_ms: dict = field(default_factory=lambda: {"no_stall": [], "stall": [], "after_drop": []})
    seen: dict = field(default_factory=dict)  # viewer -> set of t, over all measured phases
    slow_disconnects: int = 0
    last_stats: dict | None = None
    dropped_at: float | None = None
    errors: int = 0
    cpu_marks: dict = field(default_factory=dict)  # phase -> (wall, server cpu s, own cpu s) at its start


class _Viewer(asyncio.Protocol):
    """One reading viewer: websocket handshake, then frames parsed just enough to stamp each arrival."""

    def __init__(self, *, port: int, index: int, rec: _Record, ready: list):
        self.port, self.index, self.rec, self.ready = port, index, rec, ready
        self.buf = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(_handshake(self.port))

    def connection_lost(self, exc) -> None:
        if self.open and self.rec.phase != "done":
            self.rec.errors += 1  # dropped by the server (or reset) before the end

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.rec.errors += 1
                self.transport.close()
                return
            del self.buf[:end + 4]
            self.open = True
            self.ready.append(self.index)
        self._frames(arrived)

    def _frames(self, arrived: float) -> None:
        buf, pos = self.buf, 0
        while len(buf) - pos >= 2:
            opcode, n, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if n == 126:
                n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if len(buf) - pos < head + n:
                break
            payload = bytes(buf[pos + head:pos + head + n])
            pos += head + n
            if opcode == 0x1:
                self._text(payload, arrived)
            elif opcode == 0x9:  # the server's lag probe: answer as any live viewer would
                self.transport.write(_client_frame(0xA, payload))
            elif opcode == 0x8:
                self.transport.close()
        del buf[:pos]

    def _text(self, payload: bytes, arrived: float) -> None:
        if payload.startswith(b'{"v":1,"type":"prediction"'):
            _note(self.rec, self.index, payload, arrived)
        elif self.index == 0 and b'"type":"stats"' in payload[:40]:
            _note_stats(self.rec, json.loads(payload), arrived)


def _handshake(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame (clients must mask; payloads here are < 126 bytes)."""
    mask = os.urandom(4)
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _note(rec: _Record, index: int, text: bytes, arrived: float) -> None:
    if rec.phase not in rec.latencies_ms:
        return
    wall, t = _WALL.search(text), _T.search(text)
    if wall is None or t is None:
        return
    rec.latencies_ms[rec.phase].append((arrived - float(wall.group(1))) * 1e3)
    rec.seen.setdefault(index, set()).add(float(t.group(1)))


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
    await loop.sock_sendall(sock, _handshake(port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)  # byte by byte: leave every frame unread
        if not chunk:
            raise OSError("the server closed the stalled viewer during its handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise OSError(f"stalled viewer refused: {head.splitlines()[0]!r}")
    return sock


async def _run_one(port: int, *, viewers: int, seconds: float, server_pid: int, on_progress) -> dict:
    loop = asyncio.get_running_loop()
    rec = _Record()
    ready: list[int] = []
    transports = []
    for start in range(0, viewers, _CONNECT_BATCH):
        batch = range(start, min(viewers, start + _CONNECT_BATCH))
        made = await asyncio.gather(*(loop.create_connection(
            lambda i=i: _Viewer(port=port, index=i, rec=rec, ready=ready), "127.0.0.1", port) for i in batch))
        transports += [t for t, _ in made]
        await _until(lambda: len(ready) + rec.errors >= batch.stop, timeout=60)
        if len(ready) < batch.stop:
            raise OSError(f"only {len(ready)} of {batch.stop} viewers connected")
        on_progress(len(ready), viewers)
    await asyncio.sleep(_WARMUP_S)
    _phase(rec, "no_stall", server_pid)
    await asyncio.sleep(seconds)
    t_stall = time.time()
    stalled = await _stalled_viewer(port)
    _phase(rec, "stall", server_pid)
    await _until(lambda: rec.dropped_at is not None, timeout=_DROP_WAIT_S)
    _phase(rec, "after_drop", server_pid)
    await asyncio.sleep(seconds)
    _phase(rec, "done", server_pid)
    stalled.close()
    for transport in transports:
        transport.abort()
    return _results(rec, viewers=viewers, connected=len(ready), t_stall=t_stall)


def _phase(rec: _Record, phase: str, server_pid: int) -> None:
    rec.phase = phase
    rec.cpu_marks[phase] = (time.monotonic(), process_cpu_s(server_pid), time.process_time())


async def _until(predicate, timeout: float | None = None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while not predicate() and (deadline is None or time.monotonic() < deadline):
        await asyncio.sleep(0.05)


def _results(rec: _Record, *, viewers: int, connected: int, t_stall: float) -> dict:
    from .stats import summary

    out = {"viewers": viewers, "connected": connected, "viewers_lost_before_the_end": rec.errors}
    phases = ("no_stall", "stall", "after_drop", "done")
    for phase, nxt in zip(phases, phases[1:]):
        (w0, s0, c0), (w1, s1, c1) = rec.cpu_marks[phase], rec.cpu_marks[nxt]
        out[phase] = {"latency_ms": summary(rec.latencies_ms[phase], digits=2), "seconds": round(w1 - w0, 2),
                      "server_cpu": None if s0 is None or s1 is None else round((s1 - s0) / (w1 - w0), 3),
                      "viewers_cpu": round((c1 - c0) / (w1 - w0), 3)}
    out["lost"] = _lost(rec, viewers)
    out["stalled_dropped_after_s"] = None if rec.dropped_at is None else round(rec.dropped_at - t_stall, 2)
    out["slow_disconnects"] = rec.slow_disconnects
    out["viewers_at_end"] = None if rec.last_stats is None else rec.last_stats["viewers"]
    return out


def _lost(rec: _Record, viewers: int) -> int:
    """Events one viewer missed that another got, within the span every viewer was measuring."""
    sets = [rec.seen.get(i, set()) for i in range(viewers)]
    if not all(sets):
        return sum(len(s) == 0 for s in sets)  # a viewer that got nothing at all
    lo, hi = max(min(s) for s in sets), min(max(s) for s in sets)
    union = {t for t in set().union(*sets) if lo <= t <= hi}
    return sum(len(union - s) for s in sets)


def _raise_fd_limit() -> None:
    """N viewers need N sockets here and N in the server (which inherits the limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_viewers(wav: Path, *, counts, seconds: float = 10.0, max_lag_s: float | None = None,
                on_progress=lambda done, total: None) -> dict:
    """The stalled-viewer measure at each viewer count; results keyed by the count (as a string).

    ``max_lag_s`` None: the server's shipped stall policy; else ``serve --max-viewer-lag``."""
    from .bench_options import BenchError
    from .machine import loadavg
    from .server_process import ServerProcess

    _raise_fd_limit()
    res = {"seconds_per_phase": seconds, "max_viewer_lag_s": max_lag_s, "load_average_at_start": loadavg(),
           "runs": {}}
    for n in counts:
        lag = [] if max_lag_s is None else ["--max-viewer-lag", f"{max_lag_s:g}"]
        server = ServerProcess(["--source", str(wav), "--loop", *lag])
        try:
            port = server.wait_ready()
            res["runs"][str(n)] = asyncio.run(_run_one(port, viewers=n, seconds=seconds, server_pid=server.proc.pid,
                                                       on_progress=on_progress))
            res["runs"][str(n)]["server_peak_rss_mb"] = server.peak_rss_mb()
        except OSError as exc:
            raise BenchError(f"viewer run at {n} viewers failed: {exc}; server: {server.tail()}") from None
        finally:
            server.stop()
    res["load_average_at_end"] = loadavg()
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
    from .bench_options import BenchError
    from .source import source_audio
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
