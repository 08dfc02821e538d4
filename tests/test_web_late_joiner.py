"""A viewer who opens the page after the speech happened sees the per-emotion profile of the history it was sent
(issue 11), in a real headless Chromium against a real server on port 0."""
from __future__ import annotations

import asyncio
from collections import defaultdict

from tests.test_web import BROWSER_ARGS, LABELS, run, running_server, synthetic_events


def _expected_pitch(published) -> dict[str, str]:
    """Per emotion label, the page's pitch bar text: mean pitch_hz of that label's speech events, as d3 '.0f'."""
    sums = defaultdict(list)
    for e in published:
        if e["speech"] and e["emotion"] is not None and isinstance(e["features"].get("pitch_hz"), float):
            sums[e["emotion"]].append(e["features"]["pitch_hz"])
    return {k: f"{sum(v) / len(v):.0f}" for k, v in sums.items()}


def test_late_joiner_profile_is_filled_from_history():
    from playwright.async_api import async_playwright, expect

    n = 300  # 30 s of stream, all of it sent before the page connects

    async def main():
        published = []
        async with running_server(synthetic_events(n, interval_s=0.0, published=published),
                                  stats_interval_s=0.25) as (port, _):
            while len(published) < n:
                await asyncio.sleep(0.05)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                  args=BROWSER_ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1400, "height": 940})
                    errors = []
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    await page.goto(f"http://127.0.0.1:{port}/")
                    await expect(page.locator("#stream-state")).to_have_text("stream ended", timeout=20_000)
                    await expect(page.locator("#timeline")).to_have_attribute("data-points", str(n), timeout=5_000)
                    await page.wait_for_timeout(1500)  # the comparison view redraws once a second
                    values = await page.locator("#cmp-pitch text.value").all_text_contents()
                    heights = [float(h or 0) for h in await page.locator("#cmp-pitch rect").evaluate_all(
                        "rs => rs.map(r => r.getAttribute('height'))")]
                finally:
                    await browser.close()
        return published, values, heights, errors

    published, values, heights, errors = run(main())
    assert errors == []
    want = _expected_pitch(published)
    assert len(want) >= 2  # the synthetic history holds speech of several emotions
    got = dict(zip(LABELS, values))
    assert {k: got[k] for k in want} == want
    assert all(heights[LABELS.index(k)] > 0 for k in want)
    assert all(got[k] == "" for k in LABELS if k not in want)
