"""`emotion-monitor serve` with a real pipeline behind it: a file source paced in real time, port 0."""
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import websockets

from tests._clips import speech_clip
from web.protocol import load_schema

ROOT = Path(__file__).resolve().parents[1]


def _start(*args):
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "serve", "--port", "0", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"(http://\S+)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.stderr.read()}")


async def _collect(ws_url, until_end=True, timeout=60):
    msgs = []
    async with websockets.connect(ws_url) as ws:
        async with asyncio.timeout(timeout):
            async for raw in ws:
                msg = json.loads(raw)
                msgs.append(msg)
                if msg["type"] == "end" or (not until_end and len(msgs) > 5):
                    break
    return msgs


def test_serve_streams_a_file_through_the_pipeline(tmp_path):
    path, s0, s1 = speech_clip(tmp_path / "speech.wav", lead_s=1.0, tail_s=0.5)
    proc, url = _start("--source", str(path))
    try:
        ws_url = url.replace("http://", "ws://").split("?")[0].rstrip("/") + "/ws"
        msgs = asyncio.run(_collect(ws_url))
        schema = load_schema()
        for m in msgs:
            jsonschema.validate(m, schema)
        assert msgs[0]["type"] == "hello" and msgs[-1]["type"] == "end"
        assert msgs[0]["labels"][0] == "neutral" and msgs[0]["config"]["source"] == "file"
        preds = [m for m in msgs if m["type"] == "prediction"]
        ts = [p["t"] for p in preds]
        assert ts == sorted(ts) and len(preds) >= 10 * (s1 - 0.5) - 2  # one per 100 ms hop, in order
        assert any(p["speech"] for p in preds) and not preds[0]["speech"]
        # A late joiner after the end still receives the session's history first.
        late = asyncio.run(_collect(ws_url, until_end=False, timeout=10))
        assert late[0]["type"] == "hello" and late[1]["type"] == "prediction" and late[1]["t"] == ts[0]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err
