"""Hostile HTTP and websocket clients against a real server on port 0 (issue 13, items 10-14).

Requests are written byte by byte on raw sockets: HTTP clients merge duplicate headers and
normalise paths, which is exactly what these tests must not let happen.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from websockets.asyncio.client import connect

from tests.test_web import _stalled_socket, _upgrade_headers, collect, running_server, synthetic_events
from web.server import STATIC_DIR, normalize_path, parse_host

TOKEN = "tk-abuse"
PAGE = (STATIC_DIR / "index.html").read_bytes()


async def raw_request(port, method, path, headers):
    """One HTTP/1.1 request with exactly these header lines (Host included by the caller).

    Returns (status, {lower-case name: value}, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
    writer.write("\r\n".join(lines).encode("latin-1"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    status = int(status_line.split()[1])
    # After a 101 the socket stays open for websocket frames; anything else is closed after its body.
    body = b"" if status == 101 else await asyncio.wait_for(reader.read(), 5)
    writer.close()
    hdrs = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return status, hdrs, body


def _events():
    return synthetic_events(100_000, interval_s=0.05)


# ------------------------------------------------------------------ 10: duplicate headers

def test_duplicate_headers_are_400_logged_once_without_traceback(caplog):
    caplog.set_level(logging.INFO)

    async def main():
        async with running_server(_events(), token=TOKEN) as (port, _):
            host = ("Host", f"127.0.0.1:{port}")
            origin = ("Origin", f"http://127.0.0.1:{port}")
            auth = ("Authorization", f"Bearer {TOKEN}")
            cases = {
                "Host": [host, host],
                "Origin": [host, origin, origin],
                "Authorization": [host, auth, auth],
            }
            out = {}
            for name, headers in cases.items():
                for path, extra in (("/", []), (f"/ws?token={TOKEN}", _upgrade_headers())):
                    out[(name, path)] = await raw_request(port, "GET", path, [*headers, *extra])
            flood = [await raw_request(port, "GET", "/", cases["Host"]) for _ in range(40)]
            return out, flood

    out, flood = asyncio.run(main())
    for key, (status, _, body) in out.items():
        assert status == 400, key
        assert b"duplicate" in body and PAGE not in body, key
    assert {s for s, _, _ in flood} == {400}
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    ours = [r for r in caplog.records if r.name == "web.server" and "bad request" in r.getMessage()]
    # 46 bad requests, normally all inside one 10 s interval: one line (a few on a crawling machine).
    assert 1 <= len(ours) <= 3 and not any("\n" in r.getMessage() for r in ours)


# ------------------------------------------------------------------ 11: strict Host on loopback

@pytest.mark.parametrize("path", ["/", "/ws"])
def test_tokenless_loopback_refuses_malformed_or_foreign_host(path):
    async def main():
        async with running_server(_events()) as (port, _):
            extra = _upgrade_headers() if path == "/ws" else []
            bad = ["localhost:abc", f"127.0.0.1:{port}, evil.example", "evil.example", f"localhost:{port}:1",
                   "127.0.0.1:0", "127.0.0.1:99999", "user@localhost", "localhost:", "127.1", "", "[::ffff:7f00:1]"]
            good = [f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost", "LOCALHOST:8000"]
            refused = {h: await raw_request(port, "GET", path, [("Host", h), *extra]) for h in bad}
            missing = await raw_request(port, "GET", path, extra)
            accepted = {h: await raw_request(port, "GET", path, [("Host", h), *extra]) for h in good}
            return refused, missing, accepted

    refused, missing, accepted = asyncio.run(main())
    for host, (status, _, body) in refused.items():
        assert status in (400, 403), (host, status)
        assert PAGE not in body, host
    assert missing[0] == 400
    for host, (status, _, _) in accepted.items():
        assert status == (101 if path == "/ws" else 200), (host, status)


def test_parse_host_accepts_name_and_port_only():
    assert parse_host("localhost:8765") == ("localhost", 8765)
    assert parse_host("[::1]") == ("[::1]", None)
    assert parse_host("Example.COM:1") == ("example.com", 1)
    for bad in ["localhost:abc", "127.0.0.1:8765, evil.example", "a b", "localhost:0", "localhost:65536",
                "localhost:", "u@localhost", "", "[::1", "localhost:+80"]:
        assert parse_host(bad) is None, bad


# ------------------------------------------------------------------ 12: the page needs the token, however spelled

TRICKY_PAGE_PATHS = ["/", "/index.html", "/%69ndex.html", "/index.html/", "/./index.html", "/x/../index.html",
                     "/index%2ehtml", "//index.html", "/%2findex.html", "/vendor/../index.html", "/.//index.html/./",
                     "/%2e/index.html", "/x/%2e%2e/index.html"]
TRICKY_WS_PATHS = ["/ws/", "/%77s", "/./ws", "/x/../ws", "//ws"]


def test_token_protected_page_and_socket_under_every_spelling():
    async def main():
        async with running_server(_events(), token=TOKEN) as (port, _):
            host = [("Host", f"127.0.0.1:{port}")]
            without = {p: await raw_request(port, "GET", p, host) for p in TRICKY_PAGE_PATHS}
            ws_without = {p: await raw_request(port, "GET", p, [*host, *_upgrade_headers()]) for p in TRICKY_WS_PATHS}
            with_token = {p: await raw_request(port, "GET", f"{p}?token={TOKEN}", host) for p in TRICKY_PAGE_PATHS}
            ws_with = await raw_request(port, "GET", f"/ws/?token={TOKEN}", [*host, *_upgrade_headers()])
            asset = await raw_request(port, "GET", "/./vendor/%643.min.js", host)  # assets stay public
            return without, ws_without, with_token, ws_with, asset

    without, ws_without, with_token, ws_with, asset = asyncio.run(main())
    for path, (status, _, body) in {**without, **ws_without}.items():
        assert status == 401, (path, status)
        assert PAGE not in body, path
    for path, (status, _, body) in with_token.items():
        assert status == 200 and body == PAGE, path
    assert ws_with[0] == 101
    assert asset[0] == 200 and asset[2].startswith(b"// https://d3js.org")


def test_normalize_path_resolves_spellings_once():
    for path in ["/%69ndex.html", "/index.html/", "/./index.html", "/x/../index.html", "/index%2ehtml", "//index.html",
                 "/../../index.html"]:
        assert normalize_path(path) == "/index.html", path
    assert normalize_path("/%252e%252e/x") == "/%2e%2e/x"  # decoded once, not twice
    assert normalize_path("/%00") is None and normalize_path("/%ff") is None
    assert normalize_path("/") == "/" and normalize_path("/vendor/") == "/vendor"


# ------------------------------------------------------------------ 13: GET and HEAD only

def test_only_get_and_head_serve_the_page():
    methods = ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "FOO", "CONNECT"]

    async def main():
        async with running_server(_events()) as (port, _):
            host = [("Host", f"127.0.0.1:{port}")]
            others = {(m, p): await raw_request(port, m, p, host) for m in methods for p in ("/", "/app.js", "/ws")}
            head = await raw_request(port, "HEAD", "/", host)
            head_ws = await raw_request(port, "HEAD", "/ws", [*host, *_upgrade_headers()])
            get = await raw_request(port, "GET", "/", host)
            return others, head, head_ws, get

    others, head, head_ws, get = asyncio.run(main())
    for (method, path), (status, headers, body) in others.items():
        assert status == 405, (method, path, status)
        assert headers["allow"] == ("GET" if path == "/ws" else "GET, HEAD"), (method, path)
        assert PAGE not in body
    assert head[0] == 200 and head[2] == b"" and int(head[1]["content-length"]) == len(PAGE)
    assert head[1]["content-type"] == get[1]["content-type"] and get[2] == PAGE
    assert head_ws[0] == 405 and head_ws[1]["allow"] == "GET"


# ------------------------------------------------------------------ 14: a viewer that stops reading

def test_stalled_viewer_is_dropped_and_counted_while_others_receive():
    n_events = 60

    async def main():
        published, go = [], asyncio.Event()
        events = synthetic_events(n_events, interval_s=0.05, published=published, hold_after=1, release=go)
        # Small events and no history: the kernel buffers could hold this stall for minutes, so
        # only the lag probe can see it (the byte cap stays at its 16 MiB default).
        async with running_server(events, stats_interval_s=0.1, max_client_lag_s=0.5,
                                  lag_probe_interval_s=0.2) as (port, _):
            stalled = await _stalled_socket(port)
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                go.set()
                msgs = await collect(ws, want_stats=1)
            closed = await _closed_by_server(stalled)
            stalled.close()
        return msgs, published, closed

    msgs, published, closed = asyncio.run(main())
    preds = [m["t"] for m in msgs if m["type"] == "prediction"]
    assert preds == [e["t"] for e in published] and len(preds) == n_events
    stats = [m for m in msgs if m["type"] == "stats"]
    assert stats[-1]["slow_disconnects"] == 1 and stats[-1]["viewers"] == 1
    assert max(s["viewers"] for s in stats) == 2  # the stalled viewer was connected, then dropped
    assert closed


async def _closed_by_server(sock) -> bool:
    """Read what the stalled socket was sent; True once the server has closed or reset it."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(5):
            while await loop.sock_recv(sock, 65536):
                pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_reading_viewer_is_not_dropped_by_the_lag_probe():
    async def main():
        async with running_server(synthetic_events(40, interval_s=0.05), stats_interval_s=0.1, max_client_lag_s=0.5,
                                  lag_probe_interval_s=0.05) as (port, _):
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                return await collect(ws, want_stats=1)

    msgs = asyncio.run(main())
    assert sum(m["type"] == "prediction" for m in msgs) == 40
    final = [m for m in msgs if m["type"] == "stats"][-1]
    assert final["slow_disconnects"] == 0 and final["viewers"] == 1


@pytest.mark.parametrize("kwargs", [{"max_client_lag_s": 0}, {"max_client_lag_s": float("inf")},
                                    {"lag_probe_interval_s": -1}, {"lag_probe_interval_s": float("nan")}])
def test_lag_settings_are_checked(kwargs):
    async def main():
        async with running_server(_events(), **kwargs):
            pass

    with pytest.raises(ValueError, match="must be a finite number > 0"):
        asyncio.run(main())


def test_serve_option_max_viewer_lag_is_range_checked(capsys):
    from streamer.cli import build_parser

    assert build_parser().parse_args(["serve", "--max-viewer-lag", "2.5"]).max_viewer_lag == 2.5
    for bad in ["inf", "nan", "0", "-1", "1e9", "abc"]:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["serve", "--max-viewer-lag", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--max-viewer-lag" in err and "Traceback" not in err


def test_viewer_benchmark_harness_sees_the_drop_and_no_loss(tmp_path):
    """benchmarks.viewers on a tiny run: its viewers answer the lag probe (none dropped), the stalled one is."""
    import numpy as np
    import soundfile as sf

    from benchmarks.viewers import run_viewers

    wav = tmp_path / "tone.wav"
    t = np.arange(3 * 16000) / 16000
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 220 * t), 16000, subtype="PCM_16")
    res = run_viewers(wav, counts=[3], seconds=1.0, max_lag_s=0.5)
    run = res["runs"]["3"]
    assert run["connected"] == 3 and run["viewers_lost_before_the_end"] == 0
    assert run["slow_disconnects"] == 1 and run["viewers_at_end"] == 3
    assert run["stalled_dropped_after_s"] is not None and run["lost"] == 0
    assert all(run[phase]["latency_ms"]["n"] > 0 for phase in ("no_stall", "after_drop"))
