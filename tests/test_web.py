"""End-to-end tests of the web package: real server on port 0, real websockets clients,
raw sockets for HTTP edge cases, and a real headless Chromium for the page."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import socket
import statistics
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from rich.console import Console
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from web.protocol import load_schema
from web.server import STATIC_DIR, resolve_static, serve
from web.view import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, ViewState, normalize_url, render, view

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
HELLO = {
    "labels": LABELS,
    "gender_labels": ["female", "male"],
    "config": {"sr": 16000, "hop_length": 160, "window_s": 2.0, "hop_s": 0.1},
    "model_card": {"name": "synthetic-test-model", "version": "0"},
}
VALIDATOR = jsonschema.Draft202012Validator(load_schema())

# ------------------------------------------------------------------ synthetic events

_PITCH_HZ = {"neutral": 140, "happy": 215, "sad": 125, "angry": 195, "fearful": 240, "disgust": 135, "surprised": 255}
_ENERGY_DB = {"neutral": -32, "happy": -22, "sad": -38, "angry": -16, "fearful": -27, "disgust": -30, "surprised": -20}
_CENTROID_HZ = {"neutral": 1300, "happy": 1900, "sad": 1050, "angry": 2300, "fearful": 1750, "disgust": 1400,
                "surprised": 2050}


async def synthetic_events(n, *, interval_s=0.02, t_step_s=0.1, seed=0, pad_bytes=0, published=None,
                           hold_after=None, release=None):
    """Valid prediction events: speech segments with a dominant emotion, separated by silence.

    ``published`` (list) receives each event after the server took it; ``hold_after`` events
    in, the generator waits for ``release`` (asyncio.Event). ``pad_bytes`` adds an
    incompressible field to make messages large.
    """
    rng = np.random.default_rng(seed)
    mfcc_base = {lab: rng.normal(0, 12, 20) / (1 + 0.15 * np.arange(20)) for lab in LABELS}
    smoothed = np.full(len(LABELS), 1 / len(LABELS))
    seg_left, speech, dominant, gender, seg_index = 0, False, 0, "female", 0
    for i in range(n):
        if seg_left <= 0:
            speech = not speech
            seg_index += 1
            seg_left = int(rng.integers(20, 60) if speech else rng.integers(4, 12))
            dominant = int(rng.integers(len(LABELS)))
            gender = "female" if rng.random() < 0.5 else "male"
        seg_left -= 1
        t = round(i * t_step_s, 3)
        level = float(rng.normal(-24, 3)) if speech else float(rng.normal(-55, 2))
        if speech:
            logits = rng.normal(0, 0.6, len(LABELS))
            logits[dominant] += 2.2
            raw = np.exp(logits) / np.exp(logits).sum()
            smoothed = 0.8 * smoothed + 0.2 * raw
            smoothed /= smoothed.sum()
            emo = LABELS[int(np.argmax(smoothed))]
            probs = {lab: float(p) for lab, p in zip(LABELS, smoothed)}
            raw_probs = {lab: float(p) for lab, p in zip(LABELS, raw)}
            pf = float(np.clip(rng.normal(0.85, 0.08), 0, 1))
            gprobs = {"female": pf, "male": 1 - pf} if gender == "female" else {"female": 1 - pf, "male": pf}
            label = LABELS[dominant]
            shift = 0.6 if gender == "male" else 1.0
            features = {
                "pitch_hz": float(_PITCH_HZ[label] * shift * rng.normal(1, 0.05)),
                "energy_db": float(_ENERGY_DB[label] + rng.normal(0, 2)),
                "centroid_hz": float(_CENTROID_HZ[label] * rng.normal(1, 0.05)),
                "mfcc": [round(float(v), 3) for v in
                         [-250 + 4 * _ENERGY_DB[label], *(mfcc_base[label][1:] + rng.normal(0, 1.5, 19))]],
            }
        else:
            emo, raw_probs, gender_out = None, {}, None
            # Both documented non-speech forms: empty probabilities or the last smoothed ones.
            probs = {} if seg_index % 4 == 0 else {lab: float(p) for lab, p in zip(LABELS, smoothed)}
            gprobs = {}
            features = {"pitch_hz": None, "energy_db": float(level - 3), "centroid_hz": 900.0,
                        "mfcc": [round(float(v), 3) for v in rng.normal(0, 3, 20)]}
        event = {
            "v": 1, "type": "prediction", "t": t, "wall": time.time(), "speech": speech,
            "emotion": emo, "emotion_probs": probs, "emotion_probs_raw": raw_probs,
            "gender": gender if speech else None, "gender_probs": gprobs, "level_dbfs": level,
            "overflows": 0, "dropped_windows": i // 100,
            "timings_ms": {"features": 0.4, "emotion": 1.1, "gender": 0.5}, "source": "demo",
            "features": features,
        }
        if pad_bytes:
            event["pad"] = base64.b64encode(os.urandom(pad_bytes * 3 // 4)).decode()
        yield event
        if published is not None:
            published.append(event)
        if hold_after is not None and i + 1 == hold_after:
            await release.wait()
        await asyncio.sleep(interval_s)


# ------------------------------------------------------------------ helpers

@contextlib.asynccontextmanager
async def running_server(events, **kwargs):
    """Yields (port, url) of a live ``serve`` task; cancels it afterwards."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    kwargs.setdefault("hello", HELLO)
    task = asyncio.create_task(serve(events, port=0, on_ready=lambda p, u: ready.set_result((p, u)), **kwargs))
    await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield ready.result()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def http_get(port, path, *, headers=(), host=None):
    """Raw HTTP/1.1 GET (no client-side path normalisation); returns (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}",
             *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
    writer.write("\r\n".join(lines).encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), hdrs, body


def _upgrade_headers():
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode()), ("Sec-WebSocket-Version", "13")]


async def collect(ws, *, until_end=True, want_stats=0, max_messages=100_000):
    msgs = []
    stats = 0
    async with asyncio.timeout(20):
        while len(msgs) < max_messages:
            msg = json.loads(await ws.recv())
            msgs.append(msg)
            stats += msg["type"] == "stats"
            if (not until_end or any(m["type"] == "end" for m in msgs)) and stats >= want_stats:
                break
    return msgs


def run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------------ protocol

def test_schema_is_valid_and_messages_validate_in_order():
    VALIDATOR.check_schema(load_schema())

    async def main():
        published = []
        async with running_server(synthetic_events(60, interval_s=0.01, published=published),
                                  stats_interval_s=0.1) as (port, _):
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                msgs = await collect(ws, want_stats=2)
                while msgs[-1]["type"] != "stats" or "end" not in [m["type"] for m in msgs]:
                    msgs.append(json.loads(await ws.recv()))  # a stats message after the end
                return msgs, published

    msgs, published = run(main())
    for msg in msgs:
        VALIDATOR.validate(msg)
    kinds = [m["type"] for m in msgs]
    assert kinds[0] == "hello" and {"prediction", "stats", "end"} <= set(kinds)
    assert msgs[0]["labels"] == LABELS and set(msgs[0]["colors"]) >= set(LABELS)
    preds = [m for m in msgs if m["type"] == "prediction"]
    assert [p["t"] for p in preds] == [e["t"] for e in published]  # all of them, in order
    assert all(b["t"] > a["t"] for a, b in zip(preds, preds[1:]))
    assert not any(m["speech"] for m in preds if m["emotion"] is None) and any(not m["speech"] for m in preds)
    assert kinds.index("end") > max(i for i, k in enumerate(kinds) if k == "prediction")
    last_stats = [m for m in msgs if m["type"] == "stats"][-1]
    assert last_stats["sent"] == len(published) and last_stats["viewers"] == 1


def test_schema_rejects_malformed_messages():
    bad = [
        {"v": 1, "type": "prediction", "t": 1.0},  # missing fields
        {"v": 2, "type": "end"},
        {"v": 1, "type": "stats", "viewers": -1, "dropped_windows": 0, "latency_ms": {"p50": 1, "p95": 2},
         "sent": 0},
        {"v": 1, "type": "bogus"},
    ]
    for msg in bad:
        assert not VALIDATOR.is_valid(msg), msg


def test_late_joiner_receives_bounded_history_then_live():
    async def main():
        release, published = asyncio.Event(), []
        events = synthetic_events(80, interval_s=0.002, published=published, hold_after=50, release=release)
        async with running_server(events, history_seconds=2.0) as (port, _):
            while len(published) < 50:
                await asyncio.sleep(0.01)
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                first = [json.loads(await ws.recv()) for _ in range(3)]
                release.set()
                msgs = first + await collect(ws)
        return msgs, published

    msgs, published = run(main())
    assert msgs[0]["type"] == "hello" and msgs[0]["history_seconds"] == 2.0
    ts = [m["t"] for m in msgs if m["type"] == "prediction"]
    t_join = published[49]["t"]  # 4.9 s: the last event before the client joined
    # History first: the oldest kept event is 2 s (stream time) before the join, then no gaps.
    assert t_join - 2.0 - 1e-9 <= ts[0] <= t_join - 2.0 + 0.1 + 1e-9
    assert ts == [e["t"] for e in published if e["t"] >= ts[0]]
    assert ts[-1] == published[-1]["t"] and len(published) == 80


def test_client_messages_are_ignored_and_do_not_break_the_stream():
    async def main():
        async with running_server(synthetic_events(40, interval_s=0.01)) as (port, _):
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send("not json {")
                await ws.send(b"\x00\xff binary")
                await ws.send(json.dumps({"type": "subscribe", "v": 99}))
                msgs = await collect(ws)
                async with connect(f"ws://127.0.0.1:{port}/ws") as ws2:  # server still healthy
                    again = await collect(ws2)
        return msgs, again

    msgs, again = run(main())
    assert sum(m["type"] == "prediction" for m in msgs) == 40
    assert again[0]["type"] == "hello" and again[-1]["type"] == "end"


# ------------------------------------------------------------------ slow clients

async def _stalled_socket(port):
    """A websocket client that completes the handshake and then never reads."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill kernel buffers quickly
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = [f"GET /ws HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in _upgrade_headers()), "", ""]
    await loop.sock_sendall(sock, "\r\n".join(request).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)  # byte by byte: leave everything after the header unread
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_stalled_client_does_not_delay_other_clients():
    n_events = 150
    # Enough bytes to overflow the kernel's socket buffers, so the backlog lands in the server.
    wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[-1])
    pad = max(30_000, int(1.2 * wmem_max / n_events))

    async def main():
        published = []
        events = synthetic_events(n_events, interval_s=0.02, pad_bytes=pad, published=published,
                                  hold_after=1, release=(go := asyncio.Event()))
        async with running_server(events, stats_interval_s=0.1) as (port, _):
            stalled = await _stalled_socket(port)
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                go.set()
                arrivals, stats = [], []
                async with asyncio.timeout(20):
                    while True:
                        msg = json.loads(await ws.recv())
                        if msg["type"] == "prediction":
                            arrivals.append((time.time() - msg["wall"], msg["t"]))
                        elif msg["type"] == "stats":
                            stats.append(msg)
                        elif msg["type"] == "end":
                            break
            stalled.close()
        return arrivals, stats, published

    arrivals, stats, published = run(main())
    delays_ms = sorted(1000 * d for d, _ in arrivals)
    backlog = max(s["max_backlog_bytes"] for s in stats)
    report = {
        "events": len(arrivals), "event_bytes_approx": pad + 1200, "interval_ms": 20,
        "normal_client_delay_ms": {
            "median": round(statistics.median(delays_ms), 2),
            "p95": round(delays_ms[int(0.95 * (len(delays_ms) - 1))], 2),
            "max": round(delays_ms[-1], 2)},
        "stalled_client_max_backlog_bytes": backlog,
        "viewers_during_run": max(s["viewers"] for s in stats),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "web_stalled_delay.json").write_text(json.dumps(report, indent=2) + "\n")
    # The normal client got every event, in order, while the stalled one held a growing
    # backlog the server never waited on (timings are recorded above, not asserted).
    assert [t for _, t in arrivals] == [e["t"] for e in published]
    assert max(s["viewers"] for s in stats) == 2
    assert backlog > 64 * 1024, report


def test_viewer_over_backlog_cap_is_disconnected():
    async def main():
        events = synthetic_events(120, interval_s=0.01, pad_bytes=40_000, hold_after=1, release=(go := asyncio.Event()))
        async with running_server(events, stats_interval_s=0.1, max_client_backlog_bytes=64 * 1024) as (port, _):
            stalled = await _stalled_socket(port)
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                go.set()
                msgs = await collect(ws, want_stats=1)
            stalled.close()
        return msgs

    msgs = run(main())
    assert sum(m["type"] == "prediction" for m in msgs) == 120
    final = [m for m in msgs if m["type"] == "stats"][-1]
    assert final["slow_disconnects"] == 1 and final["viewers"] == 1


# ------------------------------------------------------------------ auth, origin, static files

def test_remote_binding_requires_token_and_same_origin():
    token = "s3cret-token"

    async def main():
        out = {}
        async with running_server(synthetic_events(10_000, interval_s=0.05), host="0.0.0.0", token=token) as (port, url):
            out["url"] = url
            ws_url = f"ws://127.0.0.1:{port}/ws"
            for name, kwargs in {
                "no_token": {},
                "wrong_token": {"additional_headers": {"Authorization": "Bearer nope"}},
                "bad_origin": {"additional_headers": {"Authorization": f"Bearer {token}"},
                               "origin": "http://evil.example"},
            }.items():
                try:
                    async with connect(ws_url, **kwargs):
                        out[name] = "accepted"
                except InvalidStatus as exc:
                    out[name] = (exc.response.status_code, exc.response.body)
            out["raw_no_token"] = await http_get(port, "/ws", headers=_upgrade_headers())
            async with connect(f"{ws_url}?token={token}") as ws:
                out["query"] = json.loads(await ws.recv())["type"]
            async with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                out["bearer"] = json.loads(await ws.recv())["type"]
            async with connect(f"{ws_url}?token={token}", origin=f"http://127.0.0.1:{port}") as ws:
                out["same_origin"] = json.loads(await ws.recv())["type"]
            out["page_no_token"] = await http_get(port, "/")
            out["page_token"] = await http_get(port, f"/?token={token}")
            out["page_bearer"] = await http_get(port, "/index.html", headers=[("Authorization", f"Bearer {token}")])
        return out

    out = run(main())
    assert out["url"].endswith(f"/?token={token}")
    assert out["no_token"][0] == 401 and out["wrong_token"][0] == 401 and out["bad_origin"][0] == 403
    status, hdrs, body = out["raw_no_token"]
    assert status == 401 and "bearer" in hdrs["www-authenticate"].lower() and b"prediction" not in body
    assert out["query"] == out["bearer"] == out["same_origin"] == "hello"
    assert out["page_no_token"][0] == 401 and b"<html" not in out["page_no_token"][2]
    assert out["page_token"][0] == 200 and b'id="timeline"' in out["page_token"][2]
    assert out["page_bearer"][0] == 200


def test_generated_token_when_remote_and_given_token_on_loopback():
    async def main():
        async with running_server(synthetic_events(10_000, interval_s=0.05), host="0.0.0.0") as (port, url):
            token = url.split("?token=", 1)[1]
            refused = (await http_get(port, "/ws", headers=_upgrade_headers()))[0]
            async with connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
                return token, refused, json.loads(await ws.recv())["type"]

    async def loopback_with_token():
        async with running_server(synthetic_events(10_000, interval_s=0.05), token="tk") as (port, url):
            return url, (await http_get(port, "/"))[0], (await http_get(port, "/?token=tk"))[0]

    token, refused, kind = run(main())
    assert len(token) >= 24 and refused == 401 and kind == "hello"
    url, without, with_token = run(loopback_with_token())  # a given token is enforced on loopback too
    assert url.endswith("/?token=tk") and without == 401 and with_token == 200


def test_static_files_content_types_and_path_traversal():
    async def main():
        async with running_server(synthetic_events(10_000, interval_s=0.05)) as (port, _):
            paths = ["/", "/app.js", "/style.css", "/vendor/d3.min.js", "/vendor/d3.LICENSE", "/missing.js",
                     "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/vendor/../../server.py",
                     "/%2e%2e/%2e%2e/pyproject.toml", "/vendor/%2e%2e/%2e%2e/schema.json", "/..%2fserver.py",
                     "/%00", "/vendor/"]
            res = {p: await http_get(port, p) for p in paths}
            res["rebinding"] = await http_get(port, "/", host=f"evil.example:{port}")
            res["cross_origin_ws"] = await http_get(port, "/ws", headers=[*_upgrade_headers(),
                                                                          ("Origin", "http://evil.example")])
        return res

    res = run(main())
    assert res["/"][0] == 200 and res["/"][1]["content-type"].startswith("text/html")
    assert "default-src 'self'" in res["/"][1]["content-security-policy"]
    assert res["/app.js"][1]["content-type"].startswith("text/javascript")
    assert res["/style.css"][1]["content-type"].startswith("text/css")
    assert res["/vendor/d3.min.js"][0] == 200 and res["/vendor/d3.min.js"][2].startswith(b"// https://d3js.org v7")
    assert res["/vendor/d3.LICENSE"][1]["content-type"].startswith("text/plain")
    for path in ["/missing.js", "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/vendor/../../server.py",
                 "/%2e%2e/%2e%2e/pyproject.toml", "/vendor/%2e%2e/%2e%2e/schema.json", "/..%2fserver.py",
                 "/%00", "/vendor/"]:
        status, _, body = res[path]
        assert status in (403, 404), path
        assert b"[project]" not in body and b"import" not in body and b"$schema" not in body
    assert res["rebinding"][0] == 403  # token-less loopback server refuses foreign Host headers
    assert res["cross_origin_ws"][0] == 403


def test_resolve_static_stays_inside_root(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "ok.js").write_text("1")
    (tmp_path / "secret.txt").write_text("x")
    (tmp_path / "root" / "link.txt").symlink_to(tmp_path / "secret.txt")
    root = (tmp_path / "root").resolve()
    assert resolve_static("/ok.js", root=root) == root / "ok.js"
    for bad in ["/../secret.txt", "/%2e%2e/secret.txt", "/link.txt", "/", "/%00", "//etc/passwd"]:
        assert resolve_static(bad, root=root) is None, bad
    assert (STATIC_DIR / "vendor" / "d3.min.js").is_file() and (STATIC_DIR / "vendor" / "VERSION").is_file()


# ------------------------------------------------------------------ real browser

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_browser_draws_timeline_of_sent_events():
    from playwright.async_api import async_playwright, expect

    n = 900  # 90 s of stream at 0.1 s per hop

    async def main():
        published = []
        async with running_server(synthetic_events(n, interval_s=0.003, published=published,
                                                   hold_after=1, release=(go := asyncio.Event())),
                                  stats_interval_s=0.25) as (port, _):
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                  args=BROWSER_ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1400, "height": 940})
                    errors = []
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    await page.goto(f"http://127.0.0.1:{port}/")
                    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
                    go.set()
                    await expect(page.locator("#stream-state")).to_have_text("stream ended", timeout=20_000)
                    svg = page.locator("#timeline")
                    await expect(svg).to_have_attribute("data-points", str(n), timeout=5_000)
                    got = {
                        "last_t": await svg.get_attribute("data-last-t"),
                        "vertices": int(await svg.get_attribute("data-vertices")),
                        "emo": await page.evaluate("() => ({...window.__emo})"),
                        "bands": await page.locator(".nonspeech-band").get_attribute("d"),
                    }
                    await page.wait_for_timeout(1100)  # let the 1 Hz comparison view and stats catch up
                    ARTIFACTS.mkdir(exist_ok=True)
                    await page.screenshot(path=str(ARTIFACTS / "web_timeline.png"), full_page=True)
                    await page.click("button[data-window='30']")
                    t_end = published[-1]["t"]
                    in_30 = sum(e["t"] >= t_end - 30 for e in published)
                    await expect(svg).to_have_attribute("data-points", str(in_30), timeout=5_000)
                    await page.click("#pause")
                    await expect(page.locator("#pause")).to_have_text("Resume")
                    await expect(page.locator(".paused-tag")).to_be_visible()
                    got["pitch_bars"] = await page.locator("#cmp-pitch rect").count()
                    got["current"] = await page.locator("#current-emotion").text_content()
                finally:
                    await browser.close()
        return got, published, errors

    got, published, errors = run(main())
    assert errors == []
    assert len(published) == n and got["emo"]["predictions"] == n and got["emo"]["drawnPoints"] == n
    assert float(got["last_t"]) == published[-1]["t"]
    assert 2 <= got["vertices"] <= n
    assert got["bands"] and got["bands"].count("M") >= 2  # the synthetic stream has several silences
    assert got["pitch_bars"] == len(LABELS)
    last = published[-1]
    assert got["current"] == (last["emotion"] if last["speech"] else "—")


# ------------------------------------------------------------------ terminal viewer

def test_view_follows_stream_and_reports_refusal_and_unreachable():
    async def main():
        out = {}
        con = Console(file=io.StringIO(), width=110, force_terminal=False)
        async with running_server(synthetic_events(30, interval_s=0.01)) as (port, _):
            out["ok"] = await view(f"ws://127.0.0.1:{port}/ws", duration=10, console=con)
        out["ok_text"] = con.file.getvalue()
        async with running_server(synthetic_events(10_000, interval_s=0.05), host="0.0.0.0", token="t0k") as (port, _):
            con = Console(file=io.StringIO(), width=200)
            out["refused"] = await view(f"ws://127.0.0.1:{port}/ws", token="wrong", console=con)
            out["refused_text"] = con.file.getvalue()
            out["bearer"] = await view(f"http://127.0.0.1:{port}/", token="t0k", duration=0.3,
                                       console=Console(file=io.StringIO()))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        con = Console(file=io.StringIO(), width=200)
        out["unreachable"] = await view(f"ws://127.0.0.1:{closed_port}/ws", console=con)
        out["unreachable_text"] = con.file.getvalue()
        return out

    out = run(main())
    assert out["ok"] == EXIT_OK and "stream ended" in out["ok_text"]
    assert out["refused"] == EXIT_REFUSED and "HTTP 401" in out["refused_text"]
    assert out["refused_text"].strip().count("\n") == 0  # one line
    assert out["bearer"] == EXIT_OK
    assert out["unreachable"] == EXIT_UNREACHABLE and "cannot reach" in out["unreachable_text"]


def test_view_render_and_url_normalisation():
    state = ViewState()
    state.update({"type": "hello", "labels": LABELS, "colors": {}, "model_card": {"name": "m1"}})
    state.update({"type": "prediction", "t": 3.0, "speech": True, "emotion": "angry",
                  "emotion_probs": {"angry": 0.61, "sad": 0.39}, "gender": "male",
                  "gender_probs": {"male": 0.9, "female": 0.1}, "level_dbfs": -20.0, "source": "mic"})
    state.update({"type": "stats", "viewers": 3, "dropped_windows": 2, "latency_ms": {"p50": 40, "p95": 90}})
    con = Console(file=io.StringIO(), width=120)
    con.print(render(state))
    text = con.file.getvalue()
    for needle in ["ANGRY", "61 %", "male (90 %)", "-20.0 dBFS", "viewers 3", "p95 90", "model m1"]:
        assert needle in text, needle
    assert normalize_url("http://h:1/") == "ws://h:1/ws"
    assert normalize_url("h:8765") == "ws://h:8765/ws"
    assert normalize_url("wss://h/ws?token=a") == "wss://h/ws?token=a"
    with pytest.raises(ValueError):
        normalize_url("ftp://h/")
