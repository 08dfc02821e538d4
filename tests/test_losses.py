"""Every loss counter reaches the user: capture gaps and overruns on the events, in the run summary, on the
terminal dashboard and in the web ``stats`` message, with the events the web bridge dropped (issue 11)."""
from __future__ import annotations

import asyncio
import io
import json
import time

import numpy as np
import pytest
from rich.console import Console
from websockets.asyncio.client import connect

from streamer.dashboard import Dashboard
from streamer.runner import run
from streamer.sources import PIPELINE_SR, Block
from tests.test_web import VALIDATOR, collect, running_server

BLOCK = 320  # 20 ms


class _ListSource:
    """Blocks of noise with a stretch flagged as a capture gap (zeros), and the counters MicSource keeps."""

    def __init__(self, *, seconds: float, gap: tuple[float, float]):
        self.gaps, self.gap_seconds, self.overrun_seconds = 0, 0.0, 0.0
        self._n, self._gap, self._wall0 = round(seconds * PIPELINE_SR / BLOCK), gap, time.time()
        self._rng = np.random.default_rng(0)

    def __iter__(self):
        for i in range(self._n):
            t = i * BLOCK / PIPELINE_SR
            in_gap = self._gap[0] <= t < self._gap[1]
            if in_gap and not self.gap_seconds:
                self.gaps = 1
                self.gap_seconds = self._gap[1] - self._gap[0]  # MicSource counts a gap when it queues it
            samples = np.zeros(BLOCK, np.float32) if in_gap else (0.01 * self._rng.standard_normal(BLOCK)).astype(
                np.float32)
            yield Block(samples=samples, t_start=t, wall=self._wall0 + t + BLOCK / PIPELINE_SR, source="mic",
                        gap=in_gap)
        self.overrun_seconds = 0.25  # as if the ring had overwritten audio at the very end


@pytest.fixture(scope="module")
def pipeline():
    from streamer.runner import build_pipeline

    return build_pipeline(source="mic", live=True)


def test_run_marks_the_gap_hops_and_counts_every_loss(pipeline):
    pipeline.reset()
    events = []
    summary = run(_ListSource(seconds=6.0, gap=(2.0, 3.5)), pipeline, on_event=events.append)
    flagged = [e.t for e in events if e.gap]
    assert flagged and min(flagged) > 2.0 and max(flagged) <= 3.5 + 1e-6
    assert len(flagged) == 15  # every 100 ms hop that ends inside the 1.5 s gap
    assert all(e.gaps == 1 and e.gap_seconds == 1.5 for e in events if e.t > 2.0)
    assert not any(e.gaps for e in events if e.t <= 2.0)
    assert (summary.gaps, summary.gap_seconds, summary.overrun_seconds) == (1, 1.5, 0.25)
    line = summary.describe()
    assert "1 capture gap (1.50 s)" in line and "0.25 s overwritten" in line
    assert summary.audio_seconds == pytest.approx(6.0)
    json.loads(events[-1].to_json())  # still one line of JSON


def test_dashboard_shows_the_loss_counters(pipeline):
    pipeline.reset()
    events = []
    run(_ListSource(seconds=4.0, gap=(1.0, 3.0)), pipeline, on_event=events.append)
    dash = Dashboard(pipeline.emotions, pipeline.genders, source="mic", model="voice-emotion-monitor emotion-en")
    for event in events:
        dash.update(event)
        if event.gap:
            break
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(dash.render())
    text = out.getvalue()
    assert "CAPTURE GAP" in text and "capture gaps 1 (2.0 s)" in text
    assert "model: voice-emotion-monitor emotion-en" in text   # which emotion model (--language) is running


def _events_with_losses(n: int):
    async def gen():
        for i in range(n):
            yield {"v": 1, "type": "prediction", "t": round(0.1 * i, 3), "wall": time.time(), "speech": False,
                   "emotion": None, "emotion_probs": {}, "emotion_probs_raw": {}, "gender": None, "gender_probs": {},
                   "level_dbfs": -60.0, "overflows": 0, "dropped_windows": 0, "timings_ms": {}, "source": "mic",
                   "features": {}, "gap": 10 <= i < 30, "gaps": int(i >= 10), "gap_seconds": 2.0 if i >= 10 else 0.0,
                   "overrun_seconds": 0.5 if i >= 30 else 0.0}
            await asyncio.sleep(0.005)
    return gen()


def test_loss_counters_reach_stats():
    async def main():
        async with running_server(_events_with_losses(40), stats_interval_s=0.1,
                                  events_dropped=lambda: 7) as (port, _):
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                msgs = await collect(ws, want_stats=1)
                while msgs[-1]["type"] != "stats" or "end" not in [m["type"] for m in msgs]:
                    msgs.append(json.loads(await ws.recv()))  # a stats message after the end
                return msgs

    msgs = asyncio.run(main())
    for msg in msgs:
        VALIDATOR.validate(msg)
    assert sum(bool(m.get("gap")) for m in msgs if m["type"] == "prediction") == 20
    last = [m for m in msgs if m["type"] == "stats"][-1]
    assert (last["gaps"], last["gap_seconds"], last["overrun_seconds"], last["events_dropped"]) == (1, 2.0, 0.5, 7)


def test_events_the_bridge_dropped_reach_stats():
    from web.bridge import EventBridge

    async def main():
        bridge = EventBridge(max_items=10)
        async for event in _events_with_losses(15):
            bridge.put(event)  # nothing consumes the bridge yet: beyond 10 waiting, the oldest are dropped
        bridge.put(None)  # the end marker is an item too: 16 in all, 6 dropped
        async with running_server(bridge.events(), stats_interval_s=0.1,
                                  events_dropped=lambda: bridge.dropped) as (port, _):
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                msgs = await collect(ws, want_stats=1)
        return bridge, msgs

    bridge, msgs = asyncio.run(main())
    assert bridge.dropped == 6
    preds = [m for m in msgs if m["type"] == "prediction"]
    stats = [m for m in msgs if m["type"] == "stats"]
    assert len(preds) == 9 and stats[-1]["events_dropped"] == 6


def test_page_draws_the_capture_gap_and_lists_the_losses():
    from playwright.async_api import async_playwright, expect

    from tests.test_web import BROWSER_ARGS

    async def main():
        async with running_server(_events_with_losses(60), stats_interval_s=0.2,
                                  events_dropped=lambda: 3) as (port, _):
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                  args=BROWSER_ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1200, "height": 900})
                    errors = []
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    await page.goto(f"http://127.0.0.1:{port}/")
                    await expect(page.locator("#stream-state")).to_have_text("stream ended", timeout=20_000)
                    svg = page.locator("#timeline")
                    await expect(svg).to_have_attribute("data-points", "60", timeout=5_000)
                    await expect(page.locator("#stats")).to_contain_text("events dropped 3", timeout=5_000)
                    return {"gaps": await svg.get_attribute("data-gaps"),
                            "band": await page.locator(".gap-band").get_attribute("d"),
                            "stats": await page.locator("#stats").text_content(), "errors": errors}
                finally:
                    await browser.close()

    got = asyncio.run(main())
    assert got["errors"] == []
    assert got["gaps"] == "1" and got["band"].count("M") == 1  # one band over the 20 flagged hops
    assert "capture gaps 1 (2.0 s)" in got["stats"] and "capture overwritten 0.50 s" in got["stats"]


def test_terminal_viewer_shows_the_loss_counters():
    from web.view import EXIT_OK, ViewState, render, view

    async def stream():
        async for event in _events_with_losses(40):
            yield event
        await asyncio.Event().wait()  # the stream goes on without events: the viewer's duration ends it

    async def main():
        con = Console(file=io.StringIO(), width=200, color_system=None)
        async with running_server(stream(), stats_interval_s=0.1, events_dropped=lambda: 7) as (port, _):
            code = await view(f"ws://127.0.0.1:{port}/ws", duration=1.5, console=con)
        return code, con.file.getvalue()

    code, text = asyncio.run(main())
    assert code == EXIT_OK
    last = text.strip().splitlines()[-1]  # the final frame's status line
    for needle in ("capture gaps 1 (2.0 s)", "capture overwritten 0.50 s", "events dropped 7"):
        assert needle in last, (needle, last)
    state = ViewState()
    state.update({"type": "prediction", "t": 1.0, "speech": False, "gap": True, "gaps": 1, "gap_seconds": 0.4})
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(state))
    assert "CAPTURE GAP" in out.getvalue() and "capture gaps 1 (0.4 s)" in out.getvalue()
    assert "events dropped" not in out.getvalue() and "overwritten" not in out.getvalue()
    state.update({"type": "stats", "viewers": 1, "dropped_windows": 0, "latency_ms": {}, "slow_disconnects": 2})
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(state))
    assert "slow viewers dropped 2" in out.getvalue()
