"""Terminal viewer of a remote live stream (``emotion-monitor view ws://HOST:PORT/ws``).

Exit codes returned by :func:`view`:
    0  the stream ended, ``duration`` elapsed, or the server closed normally
    1  connection lost or the peer is not a compatible server
    2  refused by the server (HTTP 401 / 403: missing or wrong token, or origin)
    3  host unreachable, timed out, or the URL is invalid
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidHandshake, InvalidStatus, InvalidURI

from web.protocol import LABEL_COLORS

__all__ = ["view", "ViewState", "render", "normalize_url", "EXIT_OK", "EXIT_LOST", "EXIT_REFUSED", "EXIT_UNREACHABLE"]

EXIT_OK, EXIT_LOST, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3
_OPEN_TIMEOUT_S = 5.0
_BAR_WIDTH = 28
_LEVEL_FLOOR_DB = -60.0


@dataclass
class ViewState:
    """What the terminal shows; updated in place by each message."""

    url: str = ""
    labels: list[str] = field(default_factory=list)  # the model's, from hello
    colors: dict[str, str] = field(default_factory=lambda: dict(LABEL_COLORS))
    model: str = ""
    last: dict | None = None
    stats: dict | None = None
    predictions: int = 0
    ended: str | None = None

    def update(self, msg: dict) -> None:
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "hello":
            self.labels = [str(x) for x in msg.get("labels") or self.labels]
            self.colors = {**self.colors, **(msg.get("colors") or {})}
            card = msg.get("model_card") or {}
            self.model = str(card.get("name") or card.get("model") or "")
        elif kind == "prediction":
            self.last = msg
            self.predictions += 1
            self.ended = None
        elif kind == "stats":
            self.stats = msg
        elif kind == "end":
            self.ended = str(msg.get("reason") or "finished")


def render(state: ViewState) -> Table:
    """A rich renderable of the state (pure: no I/O)."""
    ev = state.last or {}
    speech = ev.get("speech") is True and ev.get("emotion") is not None
    probs = (ev.get("emotion_probs") or {}) if speech else {}
    head = Text()
    if speech:
        emotion = ev["emotion"]
        conf = probs.get(emotion)
        head.append(emotion.upper(), style=f"bold {state.colors.get(emotion, 'white')}")
        head.append(f"  {100 * conf:.0f} %" if isinstance(conf, (int, float)) else "")
    elif ev.get("gap") is True:  # zeros standing in for a lost input device's outage
        head.append("CAPTURE GAP (device lost)", style="bold black on grey62")
    else:
        head.append("no speech" if state.last else "waiting for events…", style="dim")
    gender = ev.get("gender")
    gp = (ev.get("gender_probs") or {}).get(gender) if gender else None
    head.append("   gender: ", style="dim")
    head.append(f"{gender} ({100 * gp:.0f} %)" if gender and isinstance(gp, (int, float)) else (gender or "—"))

    bars = Table.grid(padding=(0, 1))
    for label in state.labels:
        p = probs.get(label)
        p = float(p) if isinstance(p, (int, float)) else 0.0
        n = int(round(max(0.0, min(1.0, p)) * _BAR_WIDTH))
        bar = Text("█" * n, style=state.colors.get(label, "white"))
        bar.append("·" * (_BAR_WIDTH - n), style="grey30")
        bars.add_row(Text(label, style="bold" if speech and label == ev.get("emotion") else ""), bar,
                     Text(f"{100 * p:3.0f} %" if speech else "  – ", style="dim"))

    level = ev.get("level_dbfs")
    level_line = Text("level ", style="dim")
    if isinstance(level, (int, float)):
        frac = max(0.0, min(1.0, (level - _LEVEL_FLOOR_DB) / -_LEVEL_FLOOR_DB))
        n = int(round(frac * _BAR_WIDTH))
        level_line.append("▮" * n, style="green" if frac < 0.85 else "red")
        level_line.append("·" * (_BAR_WIDTH - n), style="grey30")
        level_line.append(f" {level:6.1f} dBFS")
    else:
        level_line.append("—")

    grid = Table(title=f"emotion-monitor view  {state.url}", title_justify="left", show_header=False,
                 box=None, expand=False)
    grid.add_column()
    grid.add_row(head)
    grid.add_row(bars)
    grid.add_row(level_line)
    grid.add_row(Text(_status_line(state), style="dim"))
    if state.ended:
        grid.add_row(Text(f"stream ended ({state.ended})", style="yellow"))
    return grid


def _status_line(state: ViewState) -> str:
    ev = state.last or {}
    parts = []
    if isinstance(ev.get("t"), (int, float)):
        parts.append(f"t {ev['t']:.1f} s ({ev.get('source', '?')})")
    parts.append(f"events {state.predictions}")
    st = state.stats
    if st:
        lat = st.get("latency_ms") or {}
        fmt = lambda v: f"{v:.0f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
        parts.append(f"viewers {st.get('viewers')}")
        parts.append(f"latency p50 {fmt(lat.get('p50'))} / p95 {fmt(lat.get('p95'))} ms")
        parts.append(f"dropped windows {st.get('dropped_windows')}")
        if st.get("overflows"):
            parts.append(f"overflows {st['overflows']}")
    parts += _losses(ev, st or {})
    if state.model:
        parts.append(f"model {state.model}")
    return " · ".join(parts)


def _losses(event: dict, stats: dict) -> list[str]:
    """Every loss counter, once non-zero, as the dashboard and the page show them. Events carry the capture
    totals (the freshest figures), stats carry them too (before any event), the events the server's
    producer dropped and the slow viewers the server disconnected."""
    def total(key):
        value = event.get(key) if isinstance(event.get(key), (int, float)) else stats.get(key)
        return value if isinstance(value, (int, float)) else 0

    parts = []
    if total("gaps"):
        parts.append(f"capture gaps {total('gaps')} ({total('gap_seconds'):.1f} s)")
    if total("overrun_seconds"):
        parts.append(f"capture overwritten {total('overrun_seconds'):.2f} s")
    for key, text in (("events_dropped", "events dropped"), ("slow_disconnects", "slow viewers dropped")):
        if isinstance(stats.get(key), (int, float)) and stats[key]:
            parts.append(f"{text} {stats[key]}")
    return parts


def normalize_url(url: str) -> str:
    """``ws(s)://host:port/ws`` from a ws, http(s) or bare ``host:port`` URL.

    Raises:
        ValueError: when no host can be found.
    """
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"not a ws://, wss://, http:// or host:port URL: {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


async def view(url: str, *, token: str | None = None, duration: float | None = None,
               console: Console | None = None) -> int:
    """Show a remote stream in the terminal until it ends; returns an exit code (module doc)."""
    out = console or Console()
    err = console or Console(stderr=True)
    try:
        ws_url = normalize_url(url)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        return EXIT_UNREACHABLE
    headers = {"Authorization": f"Bearer {token}"} if token else None
    state = ViewState(url=ws_url.split("?")[0])
    try:
        async with connect(ws_url, additional_headers=headers, open_timeout=_OPEN_TIMEOUT_S,
                           max_size=2**22) as ws:
            with Live(render(state), console=out, refresh_per_second=8) as live:
                return await _follow(ws, state, live, duration)
    except InvalidStatus as exc:
        code = exc.response.status_code
        why = {401: "missing or wrong token (use --token)", 403: "forbidden (origin or host not allowed)"}
        err.print(f"[red]error:[/] {state.url} refused the connection: HTTP {code} "
                  f"{why.get(code, exc.response.reason_phrase)}")
        return EXIT_REFUSED if code in (401, 403) else EXIT_LOST
    except InvalidURI as exc:
        err.print(f"[red]error:[/] {exc}")
        return EXIT_UNREACHABLE
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        err.print(f"[red]error:[/] cannot reach {state.url}: {reason}")
        return EXIT_UNREACHABLE
    except ConnectionClosedError as exc:
        err.print(f"[red]error:[/] connection to {state.url} lost: {exc}")
        return EXIT_LOST
    except InvalidHandshake as exc:
        err.print(f"[red]error:[/] {state.url} is not an emotion-monitor stream: {exc}")
        return EXIT_LOST


async def _follow(ws, state: ViewState, live: Live, duration: float | None) -> int:
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    while state.ended is None:
        timeout = None if deadline is None else deadline - loop.time()
        if timeout is not None and timeout <= 0:
            break
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            break
        except ConnectionClosedOK:
            break
        try:
            state.update(json.loads(raw))
        except (ValueError, TypeError):
            continue  # one malformed frame is not worth dropping the view
        live.update(render(state))
    live.update(render(state), refresh=True)
    return EXIT_OK
