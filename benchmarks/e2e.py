"""Part 2 of `bench`: end-to-end latency from capture to a websocket client of the real server, through the
PulseAudio virtual microphone (benchmarks.vmic) or a file the server paces in real time."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from .bench_options import BenchError
from .server_process import ServerProcess
from .stats import summary


async def _e2e_client(port: int, *, expect_source: str, play, seconds: float, on_progress) -> list[tuple]:
    """Collect (latency_ms, speech) of prediction events; ``play()`` starts the audio and returns its start time."""
    from websockets.asyncio.client import connect

    rows = []
    async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        async with asyncio.timeout(30):  # the device delivers, the models load: then events flow
            while json.loads(await ws.recv())["type"] != "prediction":
                pass
        t_play = play()
        deadline = time.monotonic() + seconds + 0.5
        while (left := deadline - time.monotonic()) > 0:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=left)
            except TimeoutError:
                break
            arrived = time.time()
            msg = json.loads(text)
            if msg["type"] == "end":
                break
            if msg["type"] != "prediction" or msg["wall"] < t_play:
                continue
            if msg["source"] != expect_source:
                raise BenchError(f"the server streams from {msg['source']!r}, expected {expect_source!r}")
            rows.append(((arrived - msg["wall"]) * 1e3, bool(msg["speech"])))
            on_progress(min(seconds, time.time() - t_play), seconds)
    return rows


def run_e2e(wav: Path, *, seconds: float, mode: str, on_progress, language: str = "any") -> tuple[dict, list]:
    """End-to-end latency through the virtual microphone (or a paced file): statistics and the samples."""
    note = None
    if mode in ("auto", "vmic"):
        from .vmic import VirtualMicUnavailable, virtual_mic

        try:
            with virtual_mic() as mic:
                return _e2e(wav, seconds=seconds, mic=mic, on_progress=on_progress, language=language)
        except VirtualMicUnavailable as exc:
            if mode == "vmic":
                raise BenchError(f"virtual microphone unavailable: {exc}") from None
            note = f"virtual microphone unavailable ({exc}); paced file instead"
    res, samples = _e2e(wav, seconds=seconds, mic=None, on_progress=on_progress, language=language)
    if note:
        res["e2e_note"] = note
    return res, samples


def _e2e(wav: Path, *, seconds: float, mic, on_progress, language: str) -> tuple[dict, list]:
    source = ["--source", "mic"] if mic is not None else ["--source", str(wav), "--loop"]
    server = ServerProcess([*source, "--language", language])
    try:
        port = server.wait_ready()

        def play() -> float:
            if mic is not None:
                mic.play(wav)  # paplay into the virtual sink, in real time
            return time.time()

        rows = asyncio.run(_e2e_client(port, expect_source="mic" if mic is not None else "file", play=play,
                                       seconds=seconds, on_progress=on_progress))
        rss = server.peak_rss_mb()
    except (OSError, TimeoutError) as exc:
        raise BenchError(f"end-to-end run failed: {type(exc).__name__}: {exc}; server: {server.tail()}") from None
    finally:
        server.stop()
    if not rows:
        raise BenchError(f"no events reached the websocket client; server: {server.tail()}")
    lat = [r[0] for r in rows]
    res = {"e2e_source": "virtual-mic" if mic is not None else "paced-file",
           "e2e_latency_ms": summary(lat, digits=2),
           "e2e_latency_speech_ms": summary([r[0] for r in rows if r[1]], digits=2),
           "server_peak_rss_mb": rss}
    return res, lat
