"""One-port live server: the page at ``/``, static files, and the event stream at ``/ws``.

Built on websockets' own HTTP handling (``process_request``), no web framework.
Events are encoded once and pushed with :func:`websockets.asyncio.server.broadcast`,
which never waits on a slow client.

Buffers and their drop policies:

* history: the last ``history_seconds`` of stream time (``t``) of prediction events,
  and never more than ``history_seconds * HISTORY_MAX_EVENTS_PER_S`` events; oldest dropped.
  A stream whose ``t`` goes backwards (a restarted file) clears it.
* per-client send backlog: a viewer whose unsent bytes exceed ``max_client_backlog_bytes``
  is disconnected (counted in ``stats.slow_disconnects``); it may reconnect and gets history.
* client-to-server messages: ignored; each is capped at 4 KiB (larger ones close the socket).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import mimetypes
import secrets
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from web.protocol import build_hello, encode, end_message, stats_message

__all__ = ["serve", "is_loopback_host", "resolve_static", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = (Path(__file__).parent / "static").resolve()
WS_PATH = "/ws"
DEFAULT_MAX_CLIENT_BACKLOG_BYTES = 16 * 2**20  # > 10 min of history for a joiner on a slow link
HISTORY_MAX_EVENTS_PER_S = 50  # hard cap on history length whatever the event rate
_MAX_CLIENT_MESSAGE_BYTES = 4096
_CLOSE_TIMEOUT_S = 2.0  # shutdown must not hang on a stalled viewer's closing handshake
_LATENCY_SAMPLES_MAX = 10_000

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",  # VERSION
}
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


async def serve(
    events: AsyncIterator[dict],
    *,
    hello: dict,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    history_seconds: float = 600.0,
    stats_interval_s: float = 1.0,
    on_ready: Callable[[int, str], None] | None = None,
    max_client_backlog_bytes: int = DEFAULT_MAX_CLIENT_BACKLOG_BYTES,
) -> None:
    """Serve the page and broadcast ``events`` to every viewer until cancelled.

    Args:
        events: async iterator of event dicts (``prediction`` messages, see web/README.md).
        hello: fields for the ``hello`` message (labels, gender_labels, colors, config,
            model_card, ...); missing ones get defaults.
        host, port: bind address; ``port=0`` picks a free port.
        token: access token. Required off loopback: when None and ``host`` is not a
            loopback address, one is generated (``secrets.token_urlsafe``) and handed
            to the caller inside the URL given to ``on_ready``.
        history_seconds: stream seconds of past predictions sent to a new viewer.
        stats_interval_s: period of ``stats`` messages.
        on_ready: ``on_ready(actual_port, url)`` once listening; ``url`` is the page URL
            including ``?token=`` when a token is in force. When None the URL is printed
            to stderr so a generated token is never lost.
        max_client_backlog_bytes: unsent bytes after which a viewer is disconnected.

    When ``events`` is exhausted an ``end`` message is broadcast and the server keeps
    running (viewers keep the history) until the task is cancelled. An exception from
    ``events`` is announced with ``end`` and re-raised.
    """
    _validate_args(history_seconds=history_seconds, stats_interval_s=stats_interval_s, port=port,
                   max_client_backlog_bytes=max_client_backlog_bytes)
    token = resolve_token(host=host, token=token)
    hello_msg = build_hello(hello, history_seconds=history_seconds, stats_interval_s=stats_interval_s,
                            session=secrets.token_hex(8))
    hub = _Hub(hello_text=encode(hello_msg), history_seconds=history_seconds,
               max_client_backlog_bytes=max_client_backlog_bytes)
    gate = _Gate(token=token, loopback=is_loopback_host(host))
    async with ws_serve(hub.handler, host, port, process_request=gate.process_request,
                        max_size=_MAX_CLIENT_MESSAGE_BYTES, close_timeout=_CLOSE_TIMEOUT_S) as server:
        actual_port = server.sockets[0].getsockname()[1]
        url = page_url(host=host, port=actual_port, token=token)
        if on_ready is not None:
            on_ready(actual_port, url)
        else:
            print(f"live page: {url}", file=sys.stderr, flush=True)
        stats_task = asyncio.create_task(hub.run_stats(stats_interval_s))
        try:
            await _pump(events, hub)
            await asyncio.Future()  # keep serving history until cancelled
        finally:
            stats_task.cancel()
            await asyncio.gather(stats_task, return_exceptions=True)


async def _pump(events: AsyncIterator[dict], hub: _Hub) -> None:
    try:
        async for event in events:
            hub.publish(event)
    except Exception as exc:
        hub.finish(reason=f"error: {type(exc).__name__}: {exc}")
        raise
    hub.finish(reason="finished")


def _validate_args(*, history_seconds: float, stats_interval_s: float, port: int,
                   max_client_backlog_bytes: int) -> None:
    if not history_seconds >= 0:
        raise ValueError(f"history_seconds must be >= 0, got {history_seconds!r}")
    if not stats_interval_s > 0:
        raise ValueError(f"stats_interval_s must be > 0, got {stats_interval_s!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port!r}")
    if max_client_backlog_bytes <= 0:
        raise ValueError(f"max_client_backlog_bytes must be > 0, got {max_client_backlog_bytes!r}")


# ---------------------------------------------------------------- address and token helpers

def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(*, host: str, token: str | None) -> str | None:
    """The token in force: the given one, a fresh one off loopback, else None."""
    if token is not None:
        if not token or not token.isprintable() or " " in token:
            raise ValueError("token must be a non-empty printable string without spaces")
        return token
    return None if is_loopback_host(host) else secrets.token_urlsafe(24)


def page_url(*, host: str, port: int, token: str | None) -> str:
    """URL of the page; a wildcard bind is shown with this machine's host name."""
    shown = socket.gethostname() if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    query = f"?token={quote(token, safe='')}" if token else ""
    return f"http://{shown}:{port}/{query}"


# ---------------------------------------------------------------- broadcast hub

class _Hub:
    """Viewers, bounded history and counters; all methods run on the event loop."""

    def __init__(self, *, hello_text: str, history_seconds: float, max_client_backlog_bytes: int):
        self.hello_text = hello_text
        self.history_seconds = history_seconds
        self.max_client_backlog_bytes = max_client_backlog_bytes
        self.clients: set[ServerConnection] = set()
        self.history: deque[tuple[float, str]] = deque(
            maxlen=max(1, int(history_seconds * HISTORY_MAX_EVENTS_PER_S)))
        self.end_text: str | None = None
        self.sent = 0
        self.slow_disconnects = 0
        self.dropped_windows = 0
        self.overflows = 0
        self._latencies_ms: deque[float] = deque(maxlen=_LATENCY_SAMPLES_MAX)

    def publish(self, event: dict) -> None:
        """Encode ``event`` once, remember it, and push it to every viewer."""
        if not isinstance(event, dict):
            raise ValueError(f"events must be dicts, got {type(event).__name__}")
        text = encode(event)
        if event.get("type") == "prediction":
            self._remember(event, text)
        self._broadcast(text)
        self.sent += 1

    def _remember(self, event: dict, text: str) -> None:
        t = event.get("t")
        if isinstance(t, (int, float)):
            # A smaller t means the source restarted: older entries belong to another run.
            while self.history and (self.history[0][0] > t or t - self.history[0][0] > self.history_seconds):
                self.history.popleft()
            if self.history_seconds > 0:
                self.history.append((float(t), text))
        wall = event.get("wall")
        if isinstance(wall, (int, float)):
            self._latencies_ms.append((time.time() - wall) * 1000.0)
        self.dropped_windows = int(event.get("dropped_windows") or 0)
        self.overflows = int(event.get("overflows") or 0)

    def finish(self, *, reason: str) -> None:
        self.end_text = encode(end_message(reason=reason))
        self._broadcast(self.end_text)

    def _broadcast(self, text: str) -> None:
        for ws in [ws for ws in self.clients if _backlog_bytes(ws) > self.max_client_backlog_bytes]:
            # Abort rather than close: a close frame would queue behind the backlog.
            log.warning("dropping slow viewer %s (%d bytes unsent)", ws.remote_address, _backlog_bytes(ws))
            self.clients.discard(ws)
            self.slow_disconnects += 1
            ws.transport.abort()
        broadcast(self.clients, text)

    def stats(self) -> dict:
        """A ``stats`` message; latency percentiles cover events since the previous call."""
        lat = sorted(self._latencies_ms)
        self._latencies_ms.clear()
        return stats_message(
            viewers=len(self.clients), dropped_windows=self.dropped_windows, overflows=self.overflows,
            latency_p50_ms=_percentile(lat, 50), latency_p95_ms=_percentile(lat, 95), sent=self.sent,
            slow_disconnects=self.slow_disconnects,
            max_backlog_bytes=max((_backlog_bytes(ws) for ws in self.clients), default=0))

    async def run_stats(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self._broadcast(encode(self.stats()))

    async def handler(self, ws: ServerConnection) -> None:
        # No await between the history snapshot and registration, so a viewer sees hello,
        # history, then live events: none missed, none twice, in order.
        broadcast([ws], self.hello_text)
        for _, text in self.history:
            broadcast([ws], text)
        if self.end_text is not None:
            broadcast([ws], self.end_text)
        self.clients.add(ws)
        try:
            async for _ in ws:
                pass  # viewers have nothing to say; ignore whatever arrives
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)


def _backlog_bytes(ws: ServerConnection) -> int:
    transport = ws.transport
    return 0 if transport is None or transport.is_closing() else transport.get_write_buffer_size()


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list, rounded to 0.1 ms; None when empty."""
    if not sorted_values:
        return None
    rank = min(len(sorted_values) - 1, max(0, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return round(sorted_values[rank], 1)


# ---------------------------------------------------------------- HTTP: auth, origin, static

class _Gate:
    """``process_request``: everything that is not an accepted ``/ws`` upgrade ends here."""

    def __init__(self, *, token: str | None, loopback: bool):
        self.token = token
        self.loopback = loopback

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = parts.path
        headers = request.headers
        if self.token is None and self.loopback and not _host_is_loopback(headers.get("Host")):
            # Guards a token-less loopback server against DNS rebinding.
            return _text_response(HTTPStatus.FORBIDDEN, "Forbidden: unexpected Host header\n")
        if path in (WS_PATH, "/", "/index.html") and not self._authorized(parts.query, headers):
            return _text_response(HTTPStatus.UNAUTHORIZED, "Unauthorized: token required\n",
                                  extra=[("WWW-Authenticate", 'Bearer realm="emotion-monitor"')])
        if path == WS_PATH:
            if not _origin_allowed(headers.get("Origin"), headers.get("Host")):
                return _text_response(HTTPStatus.FORBIDDEN, "Forbidden: cross-origin websocket\n")
            return None  # proceed with the websocket handshake
        if path == "/":
            path = "/index.html"
        # Static assets other than the page carry no data, so they need no token.
        target = resolve_static(path)
        if target is None:
            return _text_response(HTTPStatus.NOT_FOUND, "Not Found\n")
        return _file_response(target)

    def _authorized(self, query: str, headers: Headers) -> bool:
        if self.token is None:
            return True
        offered = parse_qs(query).get("token", [])
        auth = headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            offered.append(auth[7:].strip())
        expected = self.token.encode()
        return any(secrets.compare_digest(t.encode(), expected) for t in offered)


def _host_is_loopback(host_header: str | None) -> bool:
    if host_header is None:
        return True  # only non-browser clients omit Host, and they cannot be rebound
    hostname = urlsplit("//" + host_header).hostname
    return hostname is not None and is_loopback_host(hostname)


def _origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """Browsers always send Origin: it must be this server (same host:port)."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return (parts.scheme in ("http", "https") and host_header is not None
            and parts.netloc.lower() == host_header.lower())


def resolve_static(url_path: str, *, root: Path = STATIC_DIR) -> Path | None:
    """The file under ``root`` that ``url_path`` names, or None (missing or outside root).

    ``url_path`` is percent-decoded once, so ``%2e%2e`` is ``..``; the resolved path
    (symlinks followed) must stay inside ``root``.
    """
    relative = unquote(url_path).lstrip("/")
    if not relative or "\x00" in relative:
        return None
    try:
        target = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def _content_type(path: Path) -> str:
    suffix = path.suffix if path.suffix else ""
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _file_response(path: Path) -> Response:
    try:
        body = path.read_bytes()
    except OSError:
        return _text_response(HTTPStatus.NOT_FOUND, "Not Found\n")
    extra = [("Content-Security-Policy", _PAGE_CSP)] if path.suffix == ".html" else []
    return _response(HTTPStatus.OK, body, _content_type(path), extra=extra)


def _text_response(status: HTTPStatus, text: str, *, extra: list[tuple[str, str]] = ()) -> Response:
    return _response(status, text.encode(), "text/plain; charset=utf-8", extra=extra)


def _response(status: HTTPStatus, body: bytes, content_type: str, *,
              extra: list[tuple[str, str]] = ()) -> Response:
    headers = Headers([
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),  # the page URL may carry ?token=
        ("Connection", "close"),
        *extra,
    ])
    return Response(status.value, status.phrase, headers, body)
