"""One-port live server: the page at ``/``, static files, the event streams at ``/ws``, the browsers'
microphones at ``/ws/capture`` (web.capture) and clips at ``/clip`` (web.clips).

Every stream is a session (web.sessions): the server's own ``events`` are the default one, each
capturing page another; ``/ws?session=ID`` picks one. Built on websockets' own HTTP handling
(``process_request``), no web framework.
Events are encoded once and pushed with :func:`websockets.asyncio.server.broadcast`,
which never waits on a slow client.

Buffers and their drop policies:

* history (per session): the last ``history_seconds`` of stream time (``t``) of prediction events,
  and never more than ``history_seconds * HISTORY_MAX_EVENTS_PER_S`` events; oldest dropped.
  A stream whose ``t`` goes backwards (a restarted file) clears it.
* stalled viewers: every ``lag_probe_interval_s`` each viewer gets a websocket ping, queued
  behind everything already sent to it; its pong comes back only once the viewer has read all
  of that. A viewer whose pong is more than ``max_client_lag_s`` late (plus time to take the
  history at ``JOIN_RATE_BYTES_PER_S`` on its first probe) is disconnected. Kernel socket
  buffers hide megabytes from the server's own send buffer, so only this end-to-end probe
  sees a stall within seconds; it also replaces websockets' keepalive.
* per-client send backlog: a viewer whose unsent bytes in the server exceed
  ``max_client_backlog_bytes`` is disconnected at the next broadcast (a memory bound).
  Both drops are counted in ``stats.slow_disconnects``; the viewer may reconnect and gets history.
* client-to-server messages: ignored; each is capped at 4 KiB (larger ones close the socket),
  except on ``/ws/capture`` and ``/clip``, which raise the cap for their own connection.

HTTP: GET and HEAD only (405 otherwise). A request without exactly one valid ``Host``, or
with more than one ``Origin`` or ``Authorization``, is a 400. The path is percent-decoded
and normalised once (dot segments, repeated and trailing slashes), and the token rule is
applied to that normalised path and to the file it names. Refused malformed requests and
dropped viewers are logged at most once per ``_LOG_INTERVAL_S`` each, with a count.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import mimetypes
import posixpath
import random
import re
import secrets
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from web.capture import CaptureOptions, run_capture
from web.clips import CLIP_PATH
from web.protocol import encode
from web.sessions import HISTORY_MAX_EVENTS_PER_S, Session, SessionLimits, SessionTable

__all__ = ["serve", "is_loopback_host", "resolve_static", "normalize_path", "parse_host", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = (Path(__file__).parent / "static").resolve()
WS_PATH = "/ws"
CAPTURE_PATH = "/ws/capture"  # a browser's microphone upstream (web.capture)
CLOSE_UNKNOWN_SESSION = 4404  # /ws?session=ID names no (longer) kept session
DEFAULT_MAX_CLIENT_BACKLOG_BYTES = 16 * 2**20  # > 10 min of history for a joiner on a slow link
_MAX_CLIENT_MESSAGE_BYTES = 4096
_CLOSE_TIMEOUT_S = 2.0  # shutdown must not hang on a stalled viewer's closing handshake
DEFAULT_MAX_CLIENT_LAG_S = 10.0  # a live view this far behind is useless; its backlog only costs memory
DEFAULT_LAG_PROBE_INTERVAL_S = 2.0  # one ping per viewer per interval: 500 pings/s at 1000 viewers
JOIN_RATE_BYTES_PER_S = 100_000  # a joiner's first probe also allows the history at this rate (0.8 Mbit/s)
_LOG_INTERVAL_S = 10.0  # at most one log line per kind per interval: clients cannot flood the log
_SINGLE_VALUE_HEADERS = ("Host", "Origin", "Authorization")
_PAGE_METHODS = ("GET", "HEAD")
# RFC 3986 host (IP literal or a plain DNS name) and an optional port; nothing else (no commas, no user@).
_HOST_RE = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>[0-9]{1,5}))?")

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
    "connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


async def serve(
    events: AsyncIterator[dict] | None,
    *,
    hello: dict,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    history_seconds: float = 600.0,
    stats_interval_s: float = 1.0,
    on_ready: Callable[[int, str], None] | None = None,
    max_client_backlog_bytes: int = DEFAULT_MAX_CLIENT_BACKLOG_BYTES,
    max_client_lag_s: float = DEFAULT_MAX_CLIENT_LAG_S,
    lag_probe_interval_s: float = DEFAULT_LAG_PROBE_INTERVAL_S,
    events_dropped: Callable[[], int] | None = None,
    capture: CaptureOptions | None = None,
    limits: SessionLimits = SessionLimits(),
    ssl_context: ssl.SSLContext | None = None,
    clip_handler: Callable[[ServerConnection], Awaitable[None]] | None = None,
    open_capture: bool = False,
) -> None:
    """Serve the page and broadcast ``events`` to every viewer until cancelled.

    Args:
        events: async iterator of event dicts (``prediction`` messages, see web/README.md); None: the server
            has no stream of its own (capture only), and viewers that name no session wait in a lobby.
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
        max_client_lag_s: seconds a viewer may be behind (unanswered probe) before it is
            disconnected.
        lag_probe_interval_s: period of each viewer's lag probe (a websocket ping).
        events_dropped: how many events the producer dropped before they reached ``events``
            (e.g. web.bridge.EventBridge's ``dropped``); read on the event loop at every
            ``stats`` message and shown there as ``events_dropped``.
        capture: accept browser microphones on ``/ws/capture`` (web.capture); None: that path is a 404.
            Sending audio (capture, clips) needs the token even on loopback (one is generated when none
            is given) unless ``open_capture``, which lets it follow the viewing rule.
        limits: live capture sessions at once and how long an ended session's history is kept.
        clip_handler: serves accepted ``/clip`` websockets (web.clips.ClipService.handler); gated as a
            capture (the capture token, Origin); None: that path is a 404.
        ssl_context: serve https/wss (a secure context, which browsers require for the microphone off
            localhost).

    When ``events`` is exhausted an ``end`` message is broadcast and the server keeps
    running (viewers keep the history) until the task is cancelled. An exception from
    ``events`` is announced with ``end`` and re-raised.
    """
    _validate_args(history_seconds=history_seconds, stats_interval_s=stats_interval_s, port=port,
                   max_client_backlog_bytes=max_client_backlog_bytes, max_client_lag_s=max_client_lag_s,
                   lag_probe_interval_s=lag_probe_interval_s)
    token = resolve_token(host=host, token=token)
    capture_token = _capture_token(sending=capture is not None or clip_handler is not None,
                                   open_capture=open_capture, token=token)
    hub = _Hub(hello=hello | {"capture": _capture_hello(capture, capture_token)}, history_seconds=history_seconds,
               stats_interval_s=stats_interval_s, limits=limits, max_client_backlog_bytes=max_client_backlog_bytes,
               max_client_lag_s=max_client_lag_s, lag_probe_interval_s=lag_probe_interval_s,
               events_dropped=events_dropped, capture=capture, clip_handler=clip_handler)
    if events is None:
        source = hub.table.add_lobby()
    else:
        source = hub.table.add_source(source=str((hello.get("config") or {}).get("source") or "server"))
    gate = _Gate(token=token, loopback=is_loopback_host(host), capture=capture is not None,
                 clips=clip_handler is not None,
                 capture_token=capture_token, refusals=hub.table.refusals)
    # ping_interval=None: the hub's lag probe is the keepalive (a dead peer never answers it either).
    # compression=None: per-message deflate compresses every event once per viewer (about 40 us each,
    # 3x the uncompressed fan-out, plus a zlib state per viewer) to save ~8 KB/s per viewer.
    try:
        async with ws_serve(hub.handler, host, port, process_request=gate.process_request,
                            max_size=_MAX_CLIENT_MESSAGE_BYTES, close_timeout=_CLOSE_TIMEOUT_S,
                            ping_interval=None, compression=None, ssl=ssl_context) as server:
            actual_port = server.sockets[0].getsockname()[1]
            url = page_url(host=host, port=actual_port, token=token or capture_token, tls=ssl_context is not None)
            if on_ready is not None:
                on_ready(actual_port, url)
            else:
                print(f"live page: {url}", file=sys.stderr, flush=True)
            stats_task = asyncio.create_task(hub.run_stats(stats_interval_s))
            try:
                if events is not None:
                    await _pump(events, source, hub)
                await asyncio.Future()  # keep serving history until cancelled
            finally:
                stats_task.cancel()
                await asyncio.gather(stats_task, return_exceptions=True)
    finally:
        # After every connection handler has finished: browser recordings end with a valid header.
        for session in hub.table.sessions.values():
            if session.recorder is not None:
                session.recorder.close()


async def _pump(events: AsyncIterator[dict], session: Session, hub: _Hub) -> None:
    try:
        async for event in events:
            session.publish(event)
    except Exception as exc:
        session.finish(reason=f"error: {type(exc).__name__}: {exc}")
        hub.sessions_changed()
        raise
    session.finish(reason="finished")
    hub.sessions_changed()


def _capture_token(*, sending: bool, open_capture: bool, token: str | None) -> str | None:
    """The token sending audio needs: the viewing one; with none in force, a generated one unless open_capture."""
    if not sending or token is not None or open_capture:
        return token
    return secrets.token_urlsafe(24)


def _capture_hello(capture: CaptureOptions | None, capture_token: str | None) -> dict:
    """What the page needs to offer (or explain) the microphone button."""
    return {"enabled": capture is not None, "token_required": capture_token is not None,
            "limits": capture.limits() if capture is not None else {},
            "languages": list(capture.languages) if capture is not None else []}


def _validate_args(*, history_seconds: float, stats_interval_s: float, port: int,
                   max_client_backlog_bytes: int, max_client_lag_s: float, lag_probe_interval_s: float) -> None:
    if not history_seconds >= 0:
        raise ValueError(f"history_seconds must be >= 0, got {history_seconds!r}")
    if not stats_interval_s > 0:
        raise ValueError(f"stats_interval_s must be > 0, got {stats_interval_s!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port!r}")
    if max_client_backlog_bytes <= 0:
        raise ValueError(f"max_client_backlog_bytes must be > 0, got {max_client_backlog_bytes!r}")
    for name, value in (("max_client_lag_s", max_client_lag_s), ("lag_probe_interval_s", lag_probe_interval_s)):
        if not 0 < value < float("inf"):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


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


def page_url(*, host: str, port: int, token: str | None, tls: bool = False) -> str:
    """URL of the page; a wildcard bind is shown with this machine's host name."""
    shown = socket.gethostname() if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    query = f"?token={quote(token, safe='')}" if token else ""
    return f"{'https' if tls else 'http'}://{shown}:{port}/{query}"


# ---------------------------------------------------------------- broadcast hub

class _Hub:
    """Viewers of every session, their lag probes and the stats; all methods run on the event loop."""

    def __init__(self, *, hello: dict, history_seconds: float, stats_interval_s: float, limits: SessionLimits,
                 max_client_backlog_bytes: int, max_client_lag_s: float, lag_probe_interval_s: float,
                 events_dropped: Callable[[], int] | None = None, capture: CaptureOptions | None = None,
                 clip_handler: Callable[[ServerConnection], Awaitable[None]] | None = None):
        self.table = SessionTable(hello=hello, history_seconds=history_seconds, stats_interval_s=stats_interval_s,
                                  limits=limits, send=self._broadcast)
        self.capture = capture
        self.clip_handler = clip_handler
        self.max_client_backlog_bytes = max_client_backlog_bytes
        self.max_client_lag_s = max_client_lag_s
        self.lag_probe_interval_s = lag_probe_interval_s
        self._drop_log = _RateLimitedLog(interval_s=_LOG_INTERVAL_S)
        self.viewing: dict[ServerConnection, Session] = {}  # every connected viewer (capturers too) -> its session
        self.slow_disconnects = 0
        self._events_dropped = events_dropped

    def _broadcast(self, clients: set, text: str) -> None:
        for ws in [ws for ws in clients if _backlog_bytes(ws) > self.max_client_backlog_bytes]:
            self._drop(ws, why=f"{_backlog_bytes(ws)} bytes unsent")
        broadcast(clients, text)

    def _drop(self, ws: ServerConnection, *, why: str) -> None:
        """Disconnect a slow viewer and count it (once, whichever rule fired first)."""
        session = self.viewing.pop(ws, None)
        if session is None:
            return
        session.clients.discard(ws)
        self.slow_disconnects += 1
        self._drop_log.warning(f"dropped a slow viewer {_peer(ws)}: {why}")
        # Abort rather than close: a close frame would queue behind the backlog.
        ws.transport.abort()

    async def _watch_lag(self, ws: ServerConnection, *, first_allowance_s: float) -> None:
        """Probe ``ws`` with pings until it closes; drop it when a pong is later than allowed.

        A ping is queued behind everything sent before it, so its pong measures how far behind
        the viewer is, whatever the kernel buffers hold. Probes start at a random phase so that
        many viewers' pings do not land in one burst between two events.
        """
        allowance_s = first_allowance_s
        await asyncio.sleep(random.uniform(0.0, self.lag_probe_interval_s))
        while True:
            try:
                await asyncio.wait_for(_ping_pong(ws), allowance_s)
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                self._drop(ws, why=f"no answer for {allowance_s:.1f} s")
                return
            except ConnectionClosed:
                return
            allowance_s = self.max_client_lag_s
            await asyncio.sleep(self.lag_probe_interval_s)

    def stats(self, session: Session) -> dict:
        """``session``'s ``stats`` message, with every server-wide loss and refusal counter."""
        return session.stats(
            slow_disconnects=self.slow_disconnects,
            max_backlog_bytes=max((_backlog_bytes(ws) for ws in session.clients), default=0),
            events_dropped=int(self._events_dropped()) if self._events_dropped and session is self.table.default else 0,
            sessions=sum(1 for s in self.table.sessions.values() if s.live),
            capture_refusals=dict(self.table.refusals))

    async def run_stats(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            gone = self.table.expire()
            for session in gone:
                for ws in list(session.clients):
                    self.viewing.pop(ws, None)
                    await ws.close(CLOSE_UNKNOWN_SESSION, "session expired")
            if gone:
                self.sessions_changed()
            for session in {*self.table.sessions.values(), self.table.default} - {None}:
                if session.clients:
                    self._broadcast(session.clients, encode(self.stats(session)))

    def sessions_changed(self) -> None:
        """Every viewer gets the new session list (a session started, ended or expired)."""
        lobby = self.table.default.clients if self.table.default is not None else set()
        self._broadcast(self.table.all_clients() | lobby, self.table.listing_text())

    def attach(self, ws: ServerConnection, session: Session, extra: list[str]) -> Callable[[], None]:
        """Register ``ws`` as a viewer of ``session`` (hello, ``extra``, history, ``end``, the session list);
        returns the function that unregisters it."""
        joined_bytes = session.join(ws, first=extra, last=[self.table.listing_text()])
        self.viewing[ws] = session
        watchdog = asyncio.create_task(self._watch_lag(
            ws, first_allowance_s=self.max_client_lag_s + joined_bytes / JOIN_RATE_BYTES_PER_S))

        def detach() -> None:
            session.clients.discard(ws)
            self.viewing.pop(ws, None)
            watchdog.cancel()

        return detach

    async def handler(self, ws: ServerConnection) -> None:
        path, _, query = ws.request.path.partition("#")[0].partition("?")
        path = normalize_path(path)
        if path == CLIP_PATH:
            await self.clip_handler(ws)
            return
        if path == CAPTURE_PATH:
            await run_capture(ws, table=self.table, options=self.capture, attach=self.attach,
                              on_sessions_changed=self.sessions_changed)
            return
        wanted = parse_qs(query).get("session", [None])[0]
        session = self.table.sessions.get(wanted) if wanted else self.table.default
        if session is None:
            await ws.close(CLOSE_UNKNOWN_SESSION, "unknown or expired session")
            return
        detach = self.attach(ws, session, [])
        try:
            async for _ in ws:
                pass  # viewers have nothing to say; ignore whatever arrives
        except ConnectionClosed:
            pass
        finally:
            detach()


class _RateLimitedLog:
    """A warning at most once per ``interval_s``; the ones in between are counted in the next line."""

    def __init__(self, *, interval_s: float):
        self.interval_s = interval_s
        self._next_at = float("-inf")
        self._suppressed = 0

    def warning(self, line: str) -> None:
        now = time.monotonic()
        if now < self._next_at:
            self._suppressed += 1
            return
        self._next_at = now + self.interval_s
        more = f" (and {self._suppressed} more in the last {self.interval_s:g} s)" if self._suppressed else ""
        self._suppressed = 0
        log.warning("%s%s", line, more)


async def _ping_pong(ws: ServerConnection) -> None:
    pong = await ws.ping()  # may itself wait while the send buffer is over its high-water mark
    await pong


def _peer(ws: ServerConnection) -> str:
    addr = ws.remote_address
    return str(addr[0]) if isinstance(addr, tuple) and addr else "?"


def _backlog_bytes(ws: ServerConnection) -> int:
    transport = ws.transport
    return 0 if transport is None or transport.is_closing() else transport.get_write_buffer_size()


# ---------------------------------------------------------------- HTTP: auth, origin, static

class _Gate:
    """``process_request``: everything that is not an accepted ``/ws`` upgrade ends here.

    Order: malformed (400), foreign Host on a token-less loopback server (403), method (405),
    then the normalised path decides what is served and whether it needs the token (401).
    ``/ws/capture`` needs ``capture_token`` (when not None) and a same-origin (or absent) Origin;
    its refusals are counted in ``refusals`` (stats.capture_refusals).
    """

    def __init__(self, *, token: str | None, loopback: bool, capture: bool = False, clips: bool = False,
                 capture_token: str | None = None, refusals: Counter | None = None):
        self.token = token
        self.loopback = loopback
        self.capture, self.clips, self.capture_token = capture, clips, capture_token
        self.refusals = Counter() if refusals is None else refusals
        self._bad_request_log = _RateLimitedLog(interval_s=_LOG_INTERVAL_S)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        problem = _malformed(headers)
        if problem is not None:
            self._bad_request_log.warning(f"refused a bad request from {_peer(connection)}: {problem}")
            return _text_response(HTTPStatus.BAD_REQUEST, f"Bad Request: {problem}\n")
        if self.token is None and self.loopback and not _host_is_loopback(headers["Host"]):
            # Guards a token-less loopback server against DNS rebinding.
            return _text_response(HTTPStatus.FORBIDDEN, "Forbidden: unexpected Host header\n")
        raw_path, _, query = request.path.partition("#")[0].partition("?")
        path = normalize_path(raw_path)
        if path == WS_PATH:
            return self._websocket(request, query)
        if (path == CAPTURE_PATH and self.capture) or (path == CLIP_PATH and self.clips):
            return self._capture(request, query)  # sending audio: the same rights for a clip
        if request.method not in _PAGE_METHODS:
            return _method_not_allowed(_PAGE_METHODS)
        target = None if path is None else _static_file("/index.html" if path == "/" else path)
        if target is None:
            return _text_response(HTTPStatus.NOT_FOUND, "Not Found\n")
        # The page needs the token; other static assets carry no data. Decided on the file that
        # would be served, so no spelling of its path can skip the check.
        if target.suffix == ".html" and not self._authorized(query, headers):
            return _unauthorized()
        return _file_response(target, head=request.method == "HEAD")

    def _websocket(self, request: Request, query: str) -> Response | None:
        if request.method != "GET":
            return _method_not_allowed(("GET",))
        headers = request.headers
        if not self._authorized(query, headers):
            return _unauthorized()
        if not _origin_allowed(headers.get("Origin"), headers.get("Host")):
            return _text_response(HTTPStatus.FORBIDDEN, "Forbidden: cross-origin websocket\n")
        return None  # proceed with the websocket handshake

    def _capture(self, request: Request, query: str) -> Response | None:
        """Sending audio is a stronger right than watching: the capture token, even on loopback."""
        if request.method != "GET":
            return _method_not_allowed(("GET",))
        headers = request.headers
        if not _offers_token(query, headers, self.capture_token):
            self.refusals["token"] += 1
            return _text_response(HTTPStatus.UNAUTHORIZED, "Unauthorized: token required to capture\n",
                                  extra=[("WWW-Authenticate", 'Bearer realm="emotion-monitor"')])
        if not _origin_allowed(headers.get("Origin"), headers.get("Host")):
            self.refusals["origin"] += 1
            return _text_response(HTTPStatus.FORBIDDEN, "Forbidden: cross-origin capture\n")
        return None

    def _authorized(self, query: str, headers: Headers) -> bool:
        return _offers_token(query, headers, self.token)


def _offers_token(query: str, headers: Headers, token: str | None) -> bool:
    """True when no token is required or the request offers it (``?token=`` or a Bearer header)."""
    if token is None:
        return True
    offered = parse_qs(query).get("token", [])
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        offered.append(auth[7:].strip())
    expected = token.encode()
    return any(secrets.compare_digest(t.encode(), expected) for t in offered)


def _malformed(headers: Headers) -> str | None:
    """Why the request is a 400 (RFC 9112 section 3.2: exactly one valid Host), or None."""
    for name in _SINGLE_VALUE_HEADERS:
        if len(headers.get_all(name)) > 1:
            return f"duplicate {name} header"
    hosts = headers.get_all("Host")
    if not hosts:
        return "missing Host header"
    if parse_host(hosts[0]) is None:
        return "invalid Host header"
    return None


def parse_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host header value, or None unless it is exactly ``name[:port]``.

    ``name`` is a DNS name, an IPv4 address or a bracketed IPv6 address (brackets kept, name
    lower-cased); ``port``, when present, is 1-65535. Commas, user info, spaces and an empty
    port are refused.
    """
    m = _HOST_RE.fullmatch(value)
    if m is None:
        return None
    port = m.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return None
    return m.group("name").lower(), None if port is None else int(port)


def _host_is_loopback(host_header: str) -> bool:
    """True for ``localhost``, a dotted-quad 127.0.0.0/8 address or ``[::1]``, with a valid port."""
    parsed = parse_host(host_header)
    if parsed is None:
        return False
    name = parsed[0]
    if name == "localhost":
        return True
    try:
        if name.startswith("["):
            return ipaddress.IPv6Address(name[1:-1]).is_loopback
        return ipaddress.IPv4Address(name).is_loopback
    except ValueError:
        return False


def normalize_path(raw_path: str) -> str | None:
    """The request path percent-decoded once and normalised, or None if it cannot name a file.

    ``.`` and ``..`` segments are resolved (never above ``/``), repeated and trailing slashes
    removed: ``/%69ndex.html``, ``/./index.html``, ``/x/../index.html`` and ``/index.html/``
    are all ``/index.html``. Invalid UTF-8 and NUL bytes give None.
    """
    try:
        decoded = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in decoded:
        return None
    # One leading slash: posixpath.normpath keeps a leading "//" as is.
    return posixpath.normpath("/" + decoded.lstrip("/"))


def _method_not_allowed(allowed: tuple[str, ...]) -> Response:
    return _text_response(HTTPStatus.METHOD_NOT_ALLOWED, "Method Not Allowed\n",
                          extra=[("Allow", ", ".join(allowed))])


def _unauthorized() -> Response:
    return _text_response(HTTPStatus.UNAUTHORIZED, "Unauthorized: token required\n",
                          extra=[("WWW-Authenticate", 'Bearer realm="emotion-monitor"')])


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
    return _static_file(unquote(url_path), root=root)


def _static_file(decoded_path: str, *, root: Path = STATIC_DIR) -> Path | None:
    """:func:`resolve_static` for a path that is already percent-decoded (decoding twice would
    turn ``%252e`` into ``.``)."""
    relative = decoded_path.lstrip("/")
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


def _file_response(path: Path, *, head: bool = False) -> Response:
    """The file as a 200; for HEAD the same headers (Content-Length included) and no body."""
    try:
        body = path.read_bytes()
    except OSError:
        return _text_response(HTTPStatus.NOT_FOUND, "Not Found\n")
    extra = [("Content-Security-Policy", _PAGE_CSP)] if path.suffix == ".html" else []
    response = _response(HTTPStatus.OK, body, _content_type(path), extra=extra)
    if head:
        response.body = b""
    return response


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
