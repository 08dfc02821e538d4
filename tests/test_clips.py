"""The /clip websocket of `emotion-monitor serve` (issue 12 items 4-5): a real server process on port 0, real
websockets clients, real audio files, the shipped models. The clip result must be exactly what
`emotion-monitor predict --json` prints for the same file; bad clips are refused with a reason and counted, and
the server keeps serving."""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests._clips import speech_clip
from web.clips import MAX_CLIP_BYTES

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "web" / "static" / "samples"


# ------------------------------------------------------------------ helpers

@contextmanager
def serving(*args: str, source: Path | None = None):
    """`emotion-monitor serve` on port 0; yields (http_url_with_token, token or None)."""
    cmd = [sys.executable, "-m", "streamer", "serve", "--port", "0", "--source", str(source or "demo"), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        url = _wait_for_url(proc)
        token = parse_qs(urlsplit(url).query).get("token", [None])[0]
        yield url, token
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "Traceback" not in err, err


def _wait_for_url(proc) -> str:
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"(https?://\S+)", line)
        if m:
            return m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.stderr.read()}")


def clip_ws_url(page_url: str, *, token: str | None, name: str | None = None, language: str | None = None) -> str:
    parts = urlsplit(page_url)
    query = urlencode([(k, v) for k, v in (("name", name), ("token", token), ("language", language)) if v is not None])
    return f"ws://{parts.netloc}/clip" + (f"?{query}" if query else "")


async def send_clip(url: str, payload, *, origin: str | None = None) -> tuple[dict | None, int | None, str]:
    """Send one message; returns (the JSON reply or None, close code, close reason)."""
    headers = {"Origin": origin} if origin else None
    async with connect(url, max_size=2**25, additional_headers=headers, open_timeout=10) as ws:
        try:
            await ws.send(payload)
        except ConnectionClosed:
            pass  # refused before it was sent (busy): the reply is already here
        reply = None
        try:
            async with asyncio.timeout(60):
                reply = json.loads(await ws.recv())
                await ws.recv()  # the close
        except ConnectionClosed:
            pass
        return reply, ws.close_code, ws.close_reason or ""


def predict_json(path: Path, *extra: str) -> dict:
    """What `emotion-monitor predict --json [extra]` prints for ``path``."""
    out = subprocess.run([sys.executable, "-m", "streamer", "predict", "--json", str(path), *extra], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out)


async def _fragments(data: bytes, size: int = 1 << 20):
    """``data`` as one fragmented message. (One 16 MB frame works as well on the server, but the client's
    transport, closed by the server mid-write, then fails in its own close under Python 3.11's asyncio.)"""
    for i in range(0, len(data), size):
        yield data[i:i + size]


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ------------------------------------------------------------------ tests

def test_clip_result_equals_predict_and_bad_clips_are_refused(tmp_path):
    clip, _, _ = speech_clip(tmp_path / "speech one.wav", lead_s=0.5, tail_s=0.5)
    flac = tmp_path / "speech.flac"
    y, sr = sf.read(clip, dtype="float32")
    sf.write(flac, y, sr, format="FLAC")
    want = {p.name: predict_json(p) for p in (clip, flac)}
    want_english = predict_json(clip, "--language", "en")
    long_silence = wav_bytes(np.zeros(61 * 8000, np.float32), 8000)  # 61 s: over the 60 s limit, 1 MB

    async def main(url, token):
        got = {}
        for path in (clip, flac):
            got[path.name] = await send_clip(clip_ws_url(url, token=token, name=path.name), path.read_bytes())
        english = await send_clip(clip_ws_url(url, token=token, name=clip.name, language="en"), clip.read_bytes())
        bad = {
            "empty": await send_clip(clip_ws_url(url, token=token), b""),
            "not audio": await send_clip(clip_ws_url(url, token=token, name="notes.txt"), b"just some text\n" * 50),
            "text frame": await send_clip(clip_ws_url(url, token=token), "hello"),
            "too long": await send_clip(clip_ws_url(url, token=token, name="long.wav"), long_silence),
            "too big": await send_clip(clip_ws_url(url, token=token), _fragments(b"\0" * (MAX_CLIP_BYTES + 1))),
            "language": await send_clip(clip_ws_url(url, token=token, language="xx"), clip.read_bytes()),
        }
        refused = {}
        for what, kwargs in (("no token", {"token": None}), ("wrong token", {"token": "nope"})):
            with pytest.raises(InvalidStatus) as exc:
                await send_clip(clip_ws_url(url, **kwargs), clip.read_bytes())
            refused[what] = exc.value.response.status_code
        with pytest.raises(InvalidStatus) as exc:
            await send_clip(clip_ws_url(url, token=token), clip.read_bytes(), origin="http://evil.example")
        refused["foreign origin"] = exc.value.response.status_code
        again = await send_clip(clip_ws_url(url, token=token, name=clip.name), clip.read_bytes())
        return got, english, bad, refused, again

    with serving() as (url, token):
        assert token, "capturing (and sending clips) needs a token even on loopback"
        got, english, bad, refused, again = asyncio.run(main(url, token))

    # ?language=en: the English emotion model, exactly `predict --language en`'s numbers.
    assert english[0]["result"] == want_english | {"path": clip.name} and english[0]["language"] == "en"
    assert english[0]["result"]["emotion_probs"] != want[clip.name]["emotion_probs"]
    assert got[clip.name][0]["language"] == "any"

    for name, (reply, code, _) in got.items():
        assert code == 1000 and reply["type"] == "clip_result"
        assert reply["result"] == want[name] | {"path": name}  # exactly predict's numbers
        assert reply["name"] == name and reply["events"] and reply["duration_s"] == pytest.approx(y.size / sr, abs=1e-3)
        assert sum(e["speech"] for e in reply["events"]) > 0 and reply["labels"] == list(want[name]["emotion_probs"])
    assert got["speech.flac"][0]["format"] == "FLAC"
    reasons = {what: (code, reason, reply and reply.get("reason")) for what, (reply, code, reason) in bad.items()}
    assert reasons["empty"][:2] == (1003, "the clip is empty (0 bytes)")
    assert reasons["not audio"][0] == 1003 and reasons["not audio"][1].startswith("cannot read audio file notes.txt")
    assert reasons["text frame"][:2] == (1003, "send the audio file as one binary message, not text")
    assert reasons["too long"][:2] == (1003, "long.wav: the clip is longer than 60 s; send a shorter one")
    assert reasons["too big"][0] == 1009 and "exceeds limit" in reasons["too big"][1]
    assert reasons["language"][:2] == (1003, "unknown language 'xx' (offered: any, en)")
    assert all(reply["type"] == "clip_error" and reply["reason"] == reason
               for what, (reply, _, reason) in bad.items() if what != "too big")
    assert refused == {"no token": 401, "wrong token": 401, "foreign origin": 403}
    assert again[0]["result"] == want[clip.name] | {"path": clip.name}  # still serving, same answer


def test_clips_beyond_the_queue_are_refused_as_busy(tmp_path):
    clip, _, _ = speech_clip(tmp_path / "speech.wav", lead_s=0.5, tail_s=0.5)
    data = clip.read_bytes()

    async def main(url, token):
        # One clip is analysed, two wait (web.clips.ClipServiceLimits.max_waiting), the rest are refused at once.
        return await asyncio.gather(*(send_clip(clip_ws_url(url, token=token), data) for _ in range(6)))

    with serving() as (url, token):
        replies = asyncio.run(main(url, token))
    kinds = sorted(reply["type"] for reply, _, _ in replies)
    assert kinds.count("clip_result") >= 3
    busy = [(code, reason) for reply, code, reason in replies if reply["type"] == "clip_error"]
    assert busy and all(code == 1013 and reason.startswith("busy:") for code, reason in busy)
    results = [reply["result"] for reply, _, _ in replies if reply["type"] == "clip_result"]
    assert all(r == results[0] for r in results)  # a shared pipeline, reset for every clip


def test_open_capture_lets_clips_through_without_a_token(tmp_path):
    clip, _, _ = speech_clip(tmp_path / "speech.wav", lead_s=0.5, tail_s=0.5)
    with serving("--open-capture") as (url, token):
        assert token is None
        reply, code, _ = asyncio.run(send_clip(clip_ws_url(url, token=None), clip.read_bytes()))
    assert code == 1000 and reply["type"] == "clip_result"


def test_bundled_samples_are_small_readable_speech():
    index = json.loads((SAMPLES / "index.json").read_text())["samples"]
    files = [SAMPLES / s["file"] for s in index]
    assert len(files) >= 6 and {s["voice"] for s in index} == {"female", "male"}
    assert sum(f.stat().st_size for f in files) < 1_000_000
    assert sorted(p.name for p in SAMPLES.glob("*.flac")) == sorted(f.name for f in files)  # none unlisted
    for s, f in zip(index, files):
        info = sf.info(f)
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
        assert info.duration == pytest.approx(s["seconds"], abs=0.01) and 2.0 < info.duration < 12.0
    for f in files[:: len(files) // 2]:  # one of each voice: the monitor finds speech in them
        r = predict_json(f)
        assert r["emotion"] is not None and r["speech_seconds"] > 1.5


def test_sample_generator_reproduces_the_bundled_set(tmp_path):
    from web.make_samples import generate

    made = {e["file"]: e for e in generate(tmp_path)}
    bundled = {e["file"]: e for e in json.loads((SAMPLES / "index.json").read_text())["samples"]}
    assert made.keys() == bundled.keys()
    for name, entry in made.items():
        assert entry["text"] == bundled[name]["text"] and entry["espeak"] == bundled[name]["espeak"]
        assert entry["seconds"] == pytest.approx(bundled[name]["seconds"], abs=0.05)
        assert sf.info(tmp_path / name).duration == pytest.approx(sf.info(SAMPLES / name).duration, abs=0.05)
    assert (tmp_path / "README.md").read_text().startswith("# Sample clips")


def test_open_uploads_beyond_the_limit_are_refused_and_the_rest_still_served(tmp_path):
    from web.clips import ClipServiceLimits

    clip, _, _ = speech_clip(tmp_path / "speech.wav", lead_s=0.5, tail_s=0.5)
    limit = ClipServiceLimits().max_connections

    async def main(url, token):
        held = [await connect(clip_ws_url(url, token=token)) for _ in range(limit)]  # open, sending nothing
        try:
            refused = await send_clip(clip_ws_url(url, token=token), clip.read_bytes())
        finally:
            for ws in held:
                await ws.close()
        await asyncio.sleep(0.5)
        return refused, await send_clip(clip_ws_url(url, token=token), clip.read_bytes())

    with serving() as (url, token):
        (reply, code, reason), (after, after_code, _) = asyncio.run(main(url, token))
    assert (code, reason) == (1013, f"busy: {limit} clip uploads open; try again") and reply["type"] == "clip_error"
    assert after_code == 1000 and after["type"] == "clip_result"


def test_silent_uploads_time_out_and_analysis_faults_are_reported(tmp_path):
    """web.clips.ClipService on a real websockets server: a client that sends nothing is closed with a reason; an
    analysis that fails (a fault injected: a real one cannot be caused on purpose) is an internal error for that
    client only, and the next clip is served."""
    from websockets.asyncio.server import serve as ws_serve

    from web.clips import ClipService, ClipServiceLimits

    calls = []

    def analyze(data, *, name, language):
        calls.append(name)
        if name == "boom":
            raise RuntimeError("injected fault")
        return {"name": name, "labels": ["neutral"], "gender_labels": [], "result": {"bytes": len(data)}}

    service = ClipService(analyze=analyze, limits=ClipServiceLimits(receive_timeout_s=0.3))

    async def main():
        async with ws_serve(service.handler, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/clip"
            async with connect(url) as ws:
                silent = json.loads(await ws.recv())
                await asyncio.sleep(0.1)
                silent_close = (ws.close_code, ws.close_reason)
            boom = await send_clip(url + "?name=boom", b"RIFF")
            fine = await send_clip(url + "?name=fine", b"RIFF1234")
        return silent, silent_close, boom, fine

    silent, silent_close, boom, fine = asyncio.run(main())
    assert silent == {"v": 1, "type": "clip_error", "reason": "no clip received within 0.3 s"}
    assert silent_close == (1008, "no clip received within 0.3 s")
    assert boom[1:] == (1011, "internal error while analysing the clip")
    assert fine[0]["type"] == "clip_result" and fine[0]["result"] == {"bytes": 8} and fine[0]["colors"]["neutral"]
    assert calls == ["boom", "fine"]
    assert service.counts == {"timeout": 1, "internal": 1, "analysed": 1}
