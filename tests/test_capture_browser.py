"""The page as a capture source (issue 12), in a real headless Chromium whose fake microphone plays a speech
file (two RAVDESS clips of held-out actors, 7.6 s): a real server on port 0 with the product's capture
wiring and --record-dir; the real `emotion-monitor file` as the reference."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate
from websockets.asyncio.client import connect

from tests.test_capture import TOKEN, capture_options, probability_differences
from tests.test_web import BROWSER_ARGS, run, running_server, synthetic_events

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CLIPS = ["tests/data/ravdess/Actor_19/03-01-05-02-01-01-19.flac",  # angry, strong (m)
         "tests/data/ravdess/Actor_20/03-01-04-01-01-01-20.flac"]  # sad, normal (f)
SR = 16000


@pytest.fixture(scope="module", autouse=True)
def _compiled_kernels():
    """The server here has no pipeline of its own, which `serve` warms at start: compile numba's kernels before
    the fake microphone starts its one pass through the file (on a fresh clone that is about 30 s)."""
    capture_options().new_pipeline(None)


def fake_mic_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """The clips end to end as a 16-bit WAV (what Chromium's fake capture device reads)."""
    y = np.concatenate([sf.read(ROOT / c, dtype="float32")[0] for c in CLIPS])
    path = tmp_path / "speech.wav"
    sf.write(path, y, SR, subtype="PCM_16")
    return path, sf.read(path, dtype="float32")[0]


def browser_args(wav: Path) -> list[str]:
    # %noloop: after the file, silence (by default the fake device loops it).
    return [*BROWSER_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop"]


def aligned_reference(source: np.ndarray, recorded: np.ndarray, tmp_path: Path) -> tuple[Path, float]:
    """The file's audio from where the session's audio began, as long as the session, as a float WAV for
    `file`; returns it and the offset in samples. The page starts sending once the server has answered, so
    the capture starts somewhere inside the file, and not on the 16 kHz grid: the offset is found to a
    fiftieth of a sample (whole samples by cross-correlation, then the fraction that best matches 0-6 kHz)
    and applied as a band-limited delay."""
    padded = np.concatenate([source, np.zeros(recorded.size, np.float32)])
    probe = recorded[: source.size // 2]
    whole = int(np.argmax(correlate(padded, probe, mode="valid", method="fft")))
    segment = padded[whole: whole + recorded.size]
    spectrum, target = np.fft.rfft(segment), np.fft.rfft(recorded)
    f = np.fft.rfftfreq(recorded.size, 1 / SR)
    band = f < 6000

    def shifted(frac):  # segment advanced by frac samples
        return spectrum * np.exp(2j * np.pi * f * frac / SR)

    fracs = np.arange(-1.0, 1.0 + 1e-9, 0.02)
    frac = fracs[int(np.argmin([np.sum(np.abs(shifted(x)[band] - target[band]) ** 2) for x in fracs]))]
    path = tmp_path / "reference.wav"
    sf.write(path, np.fft.irfft(shifted(frac), n=recorded.size).astype(np.float32), SR, subtype="FLOAT")
    return path, whole + frac


def file_events(path: Path) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "streamer", "file", str(path), "--jsonl"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


async def session_stream(port: int, sid: str) -> list[dict]:
    """Everything the server keeps of a session, as a late viewer gets it: hello, history, end."""
    msgs = []
    async with connect(f"ws://127.0.0.1:{port}/ws?token={TOKEN}&session={sid}") as ws:
        async with asyncio.timeout(20):
            async for raw in ws:
                msgs.append(json.loads(raw))
                if msgs[-1]["type"] == "end":
                    break
    return msgs


async def _wait(page, expression: str, timeout_s: float = 60.0):
    """Poll ``expression`` (page.wait_for_function would evaluate a string, which the page's CSP forbids)."""
    async with asyncio.timeout(timeout_s):
        while not await page.evaluate(f"() => Boolean({expression})"):
            await asyncio.sleep(0.1)


def test_pages_capture_their_microphones_as_independent_sessions(tmp_path):
    from playwright.async_api import async_playwright, expect

    wav, source = fake_mic_file(tmp_path)
    record_dir = tmp_path / "rec"
    record_dir.mkdir()

    async def main():
        async with running_server(synthetic_events(10**6, interval_s=0.1), token=TOKEN, stats_interval_s=0.5,
                                  capture=capture_options(record_dir=record_dir)) as (port, _):
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                  args=browser_args(wav))
                try:
                    return await scenario(browser, port, expect)
                finally:
                    await browser.close()

    async def scenario(browser, port, expect):
        errors, pages = [], []
        for _ in range(3):
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            pages.append(page)
        first, second, watcher = pages
        for page in (first, second):
            await page.goto(f"http://127.0.0.1:{port}/?token={TOKEN}")
            await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
        await second.check("#mic-processing")  # the second page asks for the browser's voice processing
        languages = await second.locator("#language-select option").evaluate_all("os => os.map(o => o.value)")
        await second.select_option("#language-select", "en")  # and the English emotion model
        await asyncio.gather(first.click("#mic-btn"), second.click("#mic-btn"))
        for page in (first, second):
            await _wait(page, "window.__emo.capture.state === 'capturing' && window.__emo.predictions >= 20")
        language_locked = await second.locator("#language-select").is_disabled()
        sid1 = await first.evaluate("window.__emo.capture.session")
        sid2 = await second.evaluate("window.__emo.capture.session")
        await watcher.goto(f"http://127.0.0.1:{port}/?token={TOKEN}&session={sid1}")
        await _wait(watcher, f"window.__emo.session === '{sid1}' && window.__emo.predictions > 0")
        options = await watcher.locator("#session-select option").evaluate_all(
            "os => os.map(o => [o.value, o.dataset.kind, o.selected])")
        await second.click("#mic-btn")  # the second session ends early: the two streams differ in length
        await _wait(second, "window.__emo.capture.state === 'off'")
        # The screenshot during the second clip (the "Now" panel shows a label), in the 30 s window.
        await first.click('[data-window="30"]')
        # (Past the first clip, whatever the capture's start offset in the file, the next label is the second's.)
        await _wait(first, "window.__emo.lastT > 3.5 && document.getElementById('current-emotion').textContent !== '—'")
        await first.wait_for_timeout(800)  # well inside the second clip's 1.7 s of speech
        try:  # (a start offset that puts a pause here: wait a little for the label, only for the picture's sake)
            await _wait(first, "document.getElementById('current-emotion').textContent !== '—'", timeout_s=3)
        except TimeoutError:
            pass
        await first.screenshot(path=str(tmp_path / "capture.png"))
        await first.wait_for_timeout(4000)  # the rest of the file, then some silence
        drawn = int(await first.locator("#timeline").get_attribute("data-points"))
        await first.click("#mic-btn")
        await expect(first.locator("#mic-state")).to_have_text("off: stopped", timeout=10_000)
        await expect(watcher.locator("#stream-state")).to_have_text("stream ended", timeout=10_000)
        watched = await watcher.evaluate("window.__emo.predictions")
        stream1, stream2 = await session_stream(port, sid1), await session_stream(port, sid2)
        processing = [await page.evaluate("window.__emo.capture.processing") for page in (first, second)]
        return dict(languages=languages, language_locked=language_locked, processing=processing, sid1=sid1,
                    sid2=sid2, options=options, drawn=drawn, watched=watched, stream1=stream1,
                    stream2=stream2, errors=errors, first_state=await first.evaluate("window.__emo.capture"))

    r = run(main())
    assert r["errors"] == []
    sid1, sid2 = r["sid1"], r["sid2"]
    assert sid1 and sid2 and sid1 != sid2
    # The session list on the third page: the server's own and both microphones, newest first, its own selected.
    kinds = {value: kind for value, kind, _ in r["options"]}
    assert kinds[sid1] == kinds[sid2] == "capture" and "source" in kinds.values()
    assert [v for v, _, selected in r["options"] if selected] == [sid1]
    preds1 = [m for m in r["stream1"] if m["type"] == "prediction"]
    preds2 = [m for m in r["stream2"] if m["type"] == "prediction"]
    assert r["stream1"][0]["session"] == sid1 and r["stream2"][0]["session"] == sid2
    # The language the second page picked made its session's emotion model the English one (the hello every
    # viewer of the session gets names it); the choice is locked while capturing.
    assert r["languages"] == ["any", "en"] and r["language_locked"]
    assert (r["stream1"][0]["language"], r["stream2"][0]["language"]) == ("any", "en")
    assert r["stream2"][0]["model_card"]["name"].endswith(" emotion-en")
    assert len(preds2) < len(preds1)  # two independent streams
    assert r["watched"] == len(preds1)  # the watcher got that session's events, all of them, and only them
    assert r["drawn"] >= 0.9 * len(preds1) - 20 and r["drawn"] > 50  # the capturing page drew its own stream
    assert r["first_state"]["rate"] >= 16000 and r["first_state"]["sentSamples"] > 0
    # No audio lost on the way (the page drops frames when the server stops reading, e.g. a server stalled on
    # a first-run numba compile before Pipeline.warm_up existed; the recording then has gaps).
    assert r["first_state"]["backlogDrops"] == 0, r["first_state"]
    # The browser's echo cancellation, noise suppression and auto gain: off by default, on when toggled.
    off, on = r["processing"]
    assert off == {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False}
    assert on == {"echoCancellation": True, "noiseSuppression": True, "autoGainControl": True}
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "capture.png", ARTIFACTS / "web_capture.png")

    # The server's stream of the first session against `emotion-monitor file` on the same audio.
    recorded, sr = sf.read(record_dir / f"{sid1}.wav", dtype="float32")
    assert sr == SR and recorded.size > source.size // 2
    # The file the fake microphone played, from where the session began. The browser's chain (Chromium's
    # fake device resamples 16 kHz to the AudioContext's 44.1/48 kHz, soxr brings it back) keeps 0-6 kHz
    # (error below -25 dB in each 1 kHz band once the sub-sample offset is applied) but takes a few
    # dB off 7-8 kHz (two anti-alias transitions; measured 3.7 dB), the top mel bands, which the models read.
    # test_capture's soxr-only chain, 4 dB off 7.5-8 kHz alone, already moves raw probabilities by 0.025
    # (median) to 0.09 (max). Measured here over 5 runs: the same hops and speech decisions, labels 0.90-1.0,
    # raw |dp| median 0.004-0.010, 90th percentile 0.12-0.20, max 0.16-0.36 (the tail is the quiet second
    # clip, about -55 dBFS, whose top bands sit near the noise floor). Bounds: speech 0.95, labels 0.85,
    # median 0.03, 90th percentile 0.25.
    reference_wav, offset = aligned_reference(source, recorded, tmp_path)
    assert 0 <= offset < source.size // 2, offset
    reference = sf.read(reference_wav, dtype="float32")[0]
    # Measured: -28 to -30 dB in the first runs, -55 to -80 dB in five runs after the warm-up fix; two
    # clean-clone failures (-27.7 and -4.8 dB) came before it, most likely from frames the page dropped.
    assert max(band_error_db(recorded, reference, lo, lo + 1000) for lo in range(0, 6000, 1000)) < -25
    top_loss_db = -band_gain_db(recorded, reference, 7000, 8000)
    vs_file = compare(preds1, file_events(reference_wav))
    print(f"browser session vs the played file: {vs_file}; 7-8 kHz {top_loss_db:.1f} dB down")
    assert vs_file["hops"] >= len(preds1) - 1 and vs_file["speech"] >= 0.95 and vs_file["labels"] >= 0.85
    assert vs_file["raw_median"] < 0.03 and vs_file["raw_p90"] < 0.25


def compare(events: list[dict], reference: list[dict]) -> dict:
    """Hops with the same t; of them, the share with the same speech decision, of the reference's speech hops
    the share with the same label, and the raw probability differences (median, max) over common speech hops."""
    by_t = {e["t"]: e for e in reference}
    pairs = [(p, by_t[p["t"]]) for p in events if p["t"] in by_t]
    speech = [(p, e) for p, e in pairs if e["speech"]]
    assert len(speech) >= 20
    raw, _ = probability_differences([p for p, _ in pairs], [e for _, e in pairs])
    return {"hops": len(pairs), "speech": round(float(np.mean([p["speech"] == e["speech"] for p, e in pairs])), 3),
            "labels": round(float(np.mean([p["emotion"] == e["emotion"] for p, e in speech])), 3),
            "raw_median": round(float(np.median(raw)), 4), "raw_p90": round(float(np.percentile(raw, 90)), 4),
            "raw_max": round(float(max(raw)), 4)}


def _bands(x: np.ndarray, ref: np.ndarray, lo_hz: float, hi_hz: float):
    n = min(x.size, ref.size)
    m = (np.fft.rfftfreq(n, 1 / SR) >= lo_hz) & (np.fft.rfftfreq(n, 1 / SR) < hi_hz)
    return np.fft.rfft(x[:n])[m], np.fft.rfft(ref[:n])[m]


def band_error_db(x: np.ndarray, ref: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    """Energy of x - ref in [lo_hz, hi_hz) relative to ref's, in dB."""
    fx, fr = _bands(x, ref, lo_hz, hi_hz)
    return float(10 * np.log10(np.sum(np.abs(fx - fr) ** 2) / np.sum(np.abs(fr) ** 2)))


def band_gain_db(x: np.ndarray, ref: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    """Energy of x in [lo_hz, hi_hz) relative to ref's, in dB."""
    fx, fr = _bands(x, ref, lo_hz, hi_hz)
    return float(10 * np.log10(np.sum(np.abs(fx) ** 2) / np.sum(np.abs(fr) ** 2)))


def test_page_shows_capture_refusals_and_needs_the_token(tmp_path):
    """A page over the session limit is told why (the close reason); a page opened without the capture token on a
    loopback server can watch but its microphone button is disabled with an explanation."""
    from playwright.async_api import async_playwright, expect

    from web.sessions import SessionLimits

    wav, _ = fake_mic_file(tmp_path)

    async def main():
        async with running_server(synthetic_events(10**6, interval_s=0.1), capture=capture_options(),
                                  limits=SessionLimits(max_sessions=1)) as (port, url):
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                  args=browser_args(wav))
                try:
                    errors = []
                    pages = [await (await browser.new_context()).new_page() for _ in range(3)]
                    for page in pages:
                        page.on("pageerror", lambda e: errors.append(str(e)))
                    holder, refused, tokenless = pages
                    for page in (holder, refused):
                        await page.goto(url)  # the printed URL, with the generated capture token
                    await holder.click("#mic-btn")
                    await expect(holder.locator("#mic-state")).to_have_attribute("data-state", "capturing",
                                                                                  timeout=15_000)
                    await refused.click("#mic-btn")
                    await expect(refused.locator("#mic-state")).to_have_attribute("data-state", "refused",
                                                                                   timeout=15_000)
                    reason = await refused.locator("#mic-state").text_content()
                    still = await holder.evaluate("window.__emo.capture.state")
                    await tokenless.goto(f"http://127.0.0.1:{port}/")
                    await expect(tokenless.locator("#status")).to_have_text("connected", timeout=10_000)
                    button = tokenless.locator("#mic-btn")
                    await expect(button).to_be_disabled()
                    title = await button.get_attribute("title")
                    watching = await tokenless.evaluate("window.__emo.session")
                finally:
                    await browser.close()
        return reason, still, title, watching, errors

    reason, still, title, watching, errors = run(main())
    assert errors == []
    assert reason == "refused: too many sessions (1 live); try again later"
    assert still == "capturing"  # the other page's capture went on
    assert "token" in title and watching  # it watches the server's own session


class _CuttableProxy:
    """A TCP forwarder to the server whose live connections the test can cut (a network drop, no close frames)."""

    def __init__(self, target_port: int):
        self.target_port, self.links, self.server = target_port, [], None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _link(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links += [writer, up_writer]

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for w in self.links:
            w.transport.abort()
        self.links.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()
        await self.server.wait_closed()


def test_a_capturing_page_resumes_its_session_after_a_network_drop(tmp_path):
    from playwright.async_api import async_playwright, expect

    wav, source = fake_mic_file(tmp_path)

    async def main():
        async with running_server(synthetic_events(10**6, interval_s=0.1), capture=capture_options(), token=TOKEN,
                                  stats_interval_s=0.3) as (port, _):
            proxy = _CuttableProxy(port)
            via = await proxy.start()
            try:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                      args=browser_args(wav))
                    try:
                        page = await browser.new_page()
                        errors = []
                        page.on("pageerror", lambda e: errors.append(str(e)))
                        await page.goto(f"http://127.0.0.1:{via}/?token={TOKEN}")
                        await page.click("#mic-btn")
                        await _wait(page, "window.__emo.capture.state === 'capturing' "
                                          "&& window.__emo.predictions >= 15")
                        sid = await page.evaluate("window.__emo.capture.session")
                        t_before = await page.evaluate("window.__emo.lastT")
                        proxy.cut()
                        await _wait(page, "window.__emo.capture.resets === 1 "
                                          "&& window.__emo.capture.state === 'capturing'")
                        await page.wait_for_timeout(1500)
                        after = await page.evaluate("[window.__emo.capture.session, window.__emo.lastT]")
                        await page.click("#mic-btn")
                        await expect(page.locator("#mic-state")).to_have_text("off: stopped", timeout=10_000)
                    finally:
                        await browser.close()
            finally:
                await proxy.close()
            stream = await session_stream(port, sid)
            async with connect(f"ws://127.0.0.1:{port}/ws?token={TOKEN}&session={sid}") as viewer:
                while (stats := json.loads(await viewer.recv()))["type"] != "stats":
                    pass
        return sid, t_before, after, stream, stats, errors

    sid, t_before, (sid_after, t_after), stream, stats, errors = run(main())
    assert errors == []
    assert sid_after == sid and stats["resets"] == 1  # the same session, its pipeline restarted once
    assert t_after > t_before
    ts = [m["t"] for m in stream if m["type"] == "prediction"]
    assert ts == sorted(ts)  # one timeline: the resumed connection's events come after the first one's
    assert stream[-1] == {"v": 1, "type": "end", "reason": "stopped"}
