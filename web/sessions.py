"""Sessions: independent live streams on one server, each with its own viewers, history and counters.

The server's own source (mic, file, demo) is one session; every browser microphone capturing on
``/ws/capture`` is another. Viewers pick one with ``/ws?session=ID``. A session that ends keeps its
history (and its viewers) until it expires, ``expiry_s`` after its end; at most ``max_sessions`` live
capture sessions and as many ended ones are kept (the oldest ended one goes first). All methods run on
the event loop.
"""
from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from web.protocol import build_hello, encode, end_message, sessions_message, stats_message

__all__ = ["Session", "SessionTable", "SessionLimits", "REFUSALS", "HISTORY_MAX_EVENTS_PER_S"]

HISTORY_MAX_EVENTS_PER_S = 50  # hard cap on history length whatever the event rate
_LATENCY_SAMPLES_MAX = 10_000

# What a capture can be refused or cut off for; each counted in stats.capture_refusals.
REFUSALS = ("token", "origin", "malformed", "too_many_sessions", "too_fast", "too_long", "idle", "bad_key")


@dataclass(frozen=True)
class SessionLimits:
    max_sessions: int = 32  # live capture sessions at once (the server's own source not counted)
    expiry_s: float = 600.0  # an ended session's history stays this long after its end

    def __post_init__(self) -> None:
        if not 1 <= self.max_sessions <= 10_000:
            raise ValueError(f"max_sessions must be 1..10000, got {self.max_sessions!r}")
        if not 0 <= self.expiry_s < float("inf"):
            raise ValueError(f"expiry_s must be a finite number >= 0, got {self.expiry_s!r}")


class Session:
    """One stream: its hello, bounded history, viewers and loss counters.

    ``send(clients, text)`` is the hub's broadcast (which also drops slow viewers).
    """

    def __init__(self, *, sid: str, kind: str, source: str, hello_text: str, history_seconds: float,
                 send: Callable[[set, str], None]):
        self.id, self.kind, self.source = sid, kind, source  # kind: "source" (the server's own) or "capture"
        self.hello_text = hello_text
        self.history_seconds = history_seconds
        self._send = send
        self.clients: set = set()
        self.history: deque[tuple[float, str]] = deque(
            maxlen=max(1, int(history_seconds * HISTORY_MAX_EVENTS_PER_S)))
        self.end_text: str | None = None
        self.started = time.time()
        self.ended: float | None = None
        self.end_reason: str | None = None
        self.sent = 0
        self.dropped_windows = 0
        self.overflows = 0
        # The stream's capture losses, as its latest event reports them (see streamer.events.PredictionEvent).
        self.losses = {"gaps": 0, "gap_seconds": 0.0, "overrun_seconds": 0.0}
        self._latencies_ms: deque[float] = deque(maxlen=_LATENCY_SAMPLES_MAX)
        # Capture sessions only: the key that lets the same page resume it, and who is capturing now.
        self.key = secrets.token_urlsafe(16) if kind == "capture" else None
        self.capturer = None
        self.resets = 0  # reconnects of its capturing page (each restarts the pipeline)
        self.audio_seconds = 0.0  # audio received, over every connection of the session
        self.resumable = True  # False once ended by a limit
        self.language: str | None = None  # a capture session's language (its pipeline's), kept on resume
        self.recorder = None
        self.last_t = 0.0

    @property
    def live(self) -> bool:
        return self.end_text is None

    def publish(self, event: dict) -> None:
        """Encode ``event`` once, remember it, and push it to this session's viewers."""
        if not isinstance(event, dict):
            raise ValueError(f"events must be dicts, got {type(event).__name__}")
        text = encode(event)
        if event.get("type") == "prediction":
            self._remember(event, text)
        self._send(self.clients, text)
        self.sent += 1

    def _remember(self, event: dict, text: str) -> None:
        t = event.get("t")
        if isinstance(t, (int, float)):
            self.last_t = float(t)
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
        for key in self.losses:
            value = event.get(key)
            if isinstance(value, (int, float)) and value >= 0:
                self.losses[key] = value

    def finish(self, *, reason: str) -> None:
        """End the stream: ``end`` to its viewers; the history stays until the session expires."""
        self.end_text = encode(end_message(reason=reason))
        self.ended, self.end_reason = time.time(), reason
        self._send(self.clients, self.end_text)

    def reopen(self) -> None:
        """A resumed capture session is live again (its viewers simply get the new events)."""
        self.end_text, self.ended, self.end_reason = None, None, None

    def join(self, ws, *, first: list[str] = (), last: list[str] = ()) -> int:
        """Send hello, ``first``, the history, ``end`` and ``last`` to ``ws``, then register it; returns bytes sent.

        No await in between, so a viewer sees hello, history, then live events: none missed, none twice."""
        texts = [self.hello_text, *first, *(text for _, text in self.history)]
        if self.end_text is not None:
            texts.append(self.end_text)
        texts += last
        for text in texts:
            self._send({ws}, text)
        self.clients.add(ws)
        return sum(len(t) for t in texts)

    def stats(self, **shared) -> dict:
        """This session's ``stats`` message; latency percentiles cover events since the previous call.

        ``shared``: server-wide fields (slow_disconnects, max_backlog_bytes, events_dropped, sessions,
        capture_refusals)."""
        lat = sorted(self._latencies_ms)
        self._latencies_ms.clear()
        msg = stats_message(
            viewers=len(self.clients), dropped_windows=self.dropped_windows, overflows=self.overflows,
            latency_p50_ms=_percentile(lat, 50), latency_p95_ms=_percentile(lat, 95), sent=self.sent,
            slow_disconnects=shared.pop("slow_disconnects", 0), max_backlog_bytes=shared.pop("max_backlog_bytes", 0))
        return msg | self.losses | {"session": self.id, "resets": self.resets} | shared

    def info(self) -> dict:
        """This session's entry in the ``sessions`` message."""
        return {"id": self.id, "kind": self.kind, "source": self.source, "live": self.live,
                "started": round(self.started, 3), "ended": None if self.ended is None else round(self.ended, 3),
                "end_reason": self.end_reason, "viewers": len(self.clients)}


class SessionTable:
    """Every session by id, the default one (the server's own source), the limits and refusal counters."""

    def __init__(self, *, hello: dict, history_seconds: float, stats_interval_s: float, limits: SessionLimits,
                 send: Callable[[set, str], None]):
        self._hello, self._limits, self._send = hello, limits, send
        self._history_seconds, self._stats_interval_s = history_seconds, stats_interval_s
        self.sessions: dict[str, Session] = {}
        self.default: Session | None = None
        self.refusals: Counter = Counter({r: 0 for r in REFUSALS})

    def _new(self, *, kind: str, source: str, hello: dict | None = None) -> Session:
        sid = secrets.token_hex(8)
        config = dict(self._hello.get("config") or {}) | {"source": source}
        hello = build_hello(self._hello | (hello or {}) | {"config": config, "session_kind": kind}, session=sid,
                            history_seconds=self._history_seconds, stats_interval_s=self._stats_interval_s)
        session = Session(sid=sid, kind=kind, source=source, hello_text=encode(hello),
                          history_seconds=self._history_seconds, send=self._send)
        self.sessions[sid] = session
        return session

    def add_source(self, *, source: str) -> Session:
        """The server's own stream: the default session of viewers that name none."""
        self.default = self._new(kind="source", source=source)
        return self.default

    def add_lobby(self) -> Session:
        """A server without a source of its own: viewers that name no session wait here (hello, the session
        list and stats, never an event) and pick one. Not listed, never live."""
        self.default = self._new(kind="lobby", source="none")
        del self.sessions[self.default.id]  # not a stream: unlisted and never expired
        self.default.end_text = None
        return self.default

    @property
    def live_captures(self) -> int:
        return sum(1 for s in self.sessions.values() if s.kind == "capture" and s.live)

    def new_capture(self, *, language: str | None = None, hello: dict | None = None) -> Session | None:
        """A new capture session in ``language`` (its pipeline's), its hello with ``hello``'s fields over the
        server's (e.g. that language's model card); None when ``max_sessions`` are live."""
        if self.live_captures >= self._limits.max_sessions:
            return None
        session = self._new(kind="capture", source="browser", hello=hello)
        session.language = language
        return session

    def resumable(self, sid: str, key: str) -> Session | None:
        """The capture session ``sid`` if ``key`` is its key and it may be resumed; None if unknown or expired.

        Raises PermissionError when the session exists but the key is not its key."""
        session = self.sessions.get(sid)
        if session is None or session.kind != "capture" or not session.resumable:
            return None
        if not secrets.compare_digest(key.encode(), session.key.encode()):
            raise PermissionError("wrong key for this session")
        return session

    def expire(self, now: float | None = None) -> list[Session]:
        """Drop ended sessions past their expiry, and the oldest ended ones beyond ``max_sessions``; returns them."""
        now = time.time() if now is None else now
        ended = sorted((s for s in self.sessions.values() if not s.live and s is not self.default),
                       key=lambda s: s.ended)
        excess = max(0, len(ended) - self._limits.max_sessions)
        gone = [s for i, s in enumerate(ended) if i < excess or now - s.ended >= self._limits.expiry_s]
        for s in gone:
            del self.sessions[s.id]
        return gone

    def listing_text(self) -> str:
        """The ``sessions`` message, newest first."""
        ordered = sorted(self.sessions.values(), key=lambda s: s.started, reverse=True)
        return encode(sessions_message([s.info() for s in ordered]))

    def all_clients(self) -> set:
        return set().union(*(s.clients for s in self.sessions.values())) if self.sessions else set()


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list, rounded to 0.1 ms; None when empty."""
    if not sorted_values:
        return None
    rank = min(len(sorted_values) - 1, max(0, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return round(sorted_values[rank], 1)
