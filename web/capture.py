"""A browser microphone as a source: one capturing websocket (``/ws/capture``) -> one session.

Upstream format: web.protocol (a ``capture`` start message, then binary PCM frames). The audio is
resampled with soxr to the pipeline's rate and pushed through a per-connection pipeline that the caller
injects (``CaptureOptions.new_pipeline``; ``streamer.serve`` passes the live monitor's own
``Pipeline.push``), on the event loop: a push that completes no window only appends to a list, one that
does costs about half a millisecond. The events go to the session's viewers, the capturing page first.

Limits, each a close with a reason and a count in ``stats.capture_refusals``: too many live sessions
(1013), a malformed start or frame (1008 / 1007), audio faster than real time beyond ``max_ahead_s`` (1008),
a session longer than ``max_session_s`` of audio (1008), no audio for ``idle_timeout_s`` (1008), a resume
with the wrong key (1008).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from websockets.exceptions import ConnectionClosed

from web.protocol import ProtocolError, capture_message, decode_capture_frame, encode, parse_capture_start
from web.sessions import Session, SessionTable

__all__ = ["CaptureOptions", "PushFn", "run_capture", "CLOSE_REFUSED", "CLOSE_BAD_DATA", "CLOSE_TRY_LATER"]

log = logging.getLogger(__name__)

# push(samples at sample_rate, wall time of the last sample) -> prediction event dicts
PushFn = Callable[[np.ndarray, float], list]

CLOSE_REFUSED = 1008  # policy violation: too fast, too long, idle, malformed start, wrong key
CLOSE_BAD_DATA = 1007  # invalid payload: a malformed audio frame
CLOSE_TRY_LATER = 1013  # too many sessions
CLOSE_SERVER_ERROR = 1011
_CAPTURE_MAX_MESSAGE_BYTES = 2**20  # above the largest valid frame (1 s of f32 at 192 kHz = 768 kB)


@dataclass(frozen=True)
class CaptureOptions:
    """What ``serve`` needs to accept browser microphones (``streamer.serve`` builds it)."""

    # Called in a worker thread, once per capturing connection, with the session's language (None when the
    # server offers no choice of languages).
    new_pipeline: Callable[[str | None], PushFn]
    sample_rate: int  # the pipeline's rate (dsp.config.SAMPLE_RATE)
    languages: tuple[str, ...] = ()  # what a page may choose (the first is the default); () offers no choice
    session_hello: Callable[[str], dict] | None = None  # hello fields of a session in a language (its model card)
    max_session_s: float = 3600.0  # audio seconds per session, over all its reconnects
    idle_timeout_s: float = 30.0  # a capturing connection that sends no audio this long is closed
    max_ahead_s: float = 2.0  # audio may run this far ahead of the wall clock (network bunching)
    start_timeout_s: float = 10.0  # the start message must come within this
    record_dir: Path | None = None  # one WAV per session here (else browser audio never touches the disk)
    open_recording: Callable[[Path, int], Any] | None = None  # (path, sr) -> writer with write() and close()

    def __post_init__(self) -> None:
        for name in ("max_session_s", "idle_timeout_s", "max_ahead_s", "start_timeout_s"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.record_dir is not None and self.open_recording is None:
            raise ValueError("record_dir needs open_recording")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages must not repeat, got {self.languages!r}")

    def language_of(self, start) -> str | None:
        """The language a capture start asks for, checked against ``languages`` (_Refused if not offered)."""
        if start.language is None:
            return self.languages[0] if self.languages else None
        if start.language not in self.languages:
            offered = ", ".join(self.languages) or "no choice"
            raise _Refused("malformed", CLOSE_REFUSED, f"unknown language {start.language!r} (offered: {offered})")
        return start.language

    def limits(self) -> dict:
        return {"max_session_s": self.max_session_s, "idle_timeout_s": self.idle_timeout_s,
                "max_ahead_s": self.max_ahead_s}


class _Refused(Exception):
    def __init__(self, kind: str, code: int, reason: str):
        super().__init__(reason)
        self.kind, self.code, self.reason = kind, code, reason


async def run_capture(ws, *, table: SessionTable, options: CaptureOptions,
                      attach: Callable[[Any, Session, list[str]], Any],
                      on_sessions_changed: Callable[[], None]) -> None:
    """Serve one capturing connection until it closes or breaks a limit.

    ``attach(ws, session, extra)`` registers ``ws`` as a viewer of ``session`` (hello, ``extra``, history)
    and returns a callable that unregisters it.
    """
    ws.protocol.max_message_size = _CAPTURE_MAX_MESSAGE_BYTES  # viewers stay at the server's 4 KiB
    session, detach = None, None
    try:
        start = parse_capture_start(await _first_message(ws, options.start_timeout_s))
        language = options.language_of(start)
        hello = options.session_hello(language) if options.session_hello and language is not None else None
        session, resumed = _claim(table, start, language=language, hello=hello)
        _take_over(session, ws, resumed=resumed)
        push = await asyncio.to_thread(options.new_pipeline, session.language)
        key_msg = capture_message(session=session.id, key=session.key, rate=options.sample_rate,
                                  input_rate=start.rate, limits=options.limits())
        detach = attach(ws, session, [encode(key_msg)])
        on_sessions_changed()
        reason = await _stream(ws, session, start, push, options, resumed=resumed)
        _end(session, ws, reason)
        await ws.close(1000, reason[:120])
    except _Refused as exc:
        table.refusals[exc.kind] += 1
        log.info("capture refused (%s): %s", exc.kind, exc.reason)
        if session is not None:
            if exc.kind == "too_long":
                session.resumable = False
            _end(session, ws, exc.reason)
        await ws.close(exc.code, exc.reason[:120])
    except ProtocolError as exc:
        table.refusals["malformed"] += 1
        if session is not None:
            _end(session, ws, f"bad frame: {exc}")
        await ws.close(CLOSE_REFUSED if session is None else CLOSE_BAD_DATA, str(exc)[:120])
    except ConnectionClosed:
        if session is not None:
            _end(session, ws, "disconnected")
    except Exception as exc:  # noqa: BLE001 - a server fault ends this capture only, never the server
        log.exception("capture failed")
        if session is not None:
            _end(session, ws, "server error")
        await ws.close(CLOSE_SERVER_ERROR, f"server error: {type(exc).__name__}"[:120])
    finally:
        if detach is not None:
            detach()
        if session is not None:
            on_sessions_changed()


async def _first_message(ws, timeout_s: float):
    try:
        return await asyncio.wait_for(ws.recv(), timeout_s)
    except asyncio.TimeoutError:
        raise _Refused("malformed", CLOSE_REFUSED, f"no capture start message within {timeout_s:g} s") from None


def _claim(table: SessionTable, start, *, language: str | None, hello: dict | None) -> tuple[Session, bool]:
    """(session, resumed): the session this connection captures into, its own resumed one (which keeps the
    language it started with) or a new one in ``language``, whose hello carries ``hello``'s fields."""
    if start.session is not None:
        try:
            session = table.resumable(start.session, start.key)
        except PermissionError:
            raise _Refused("bad_key", CLOSE_REFUSED, "wrong key for this session") from None
        if session is not None:
            return session, True  # else expired or unknown: a new session, the page learns its id
    session = table.new_capture(language=language, hello=hello)
    if session is None:
        raise _Refused("too_many_sessions", CLOSE_TRY_LATER,
                       f"too many sessions ({table.live_captures} live); try again later")
    return session, False


def _take_over(session: Session, ws, *, resumed: bool) -> None:
    """Make ``ws`` the session's capturer; a resumed session restarts its pipeline (counted in ``resets``)."""
    old = session.capturer
    session.resets += resumed
    session.capturer = ws
    if old is not None:  # the same page reconnected before its old connection was seen to drop
        old.transport.abort()
    session.reopen()


def _end(session: Session, ws, reason: str) -> None:
    if session.capturer is ws:  # not when a reconnect of the same page has taken over
        session.capturer = None
        session.finish(reason=reason)
        _close_recording(session)


def _close_recording(session: Session) -> None:
    if session.recorder is not None:
        session.recorder.close()
        session.recorder = None


async def _stream(ws, session: Session, start, push: PushFn, options: CaptureOptions, *, resumed: bool) -> str:
    """Receive frames and feed them to the session until the page stops; returns the end reason."""
    upstream = _Upstream(session, start, push, options, resumed=resumed)
    loop = asyncio.get_running_loop()
    moved, slack_s = loop.time(), 1.0
    try:
        # One timer, moved at most once a second (wait_for would wrap every receive, 25 a second, in a task):
        # a connection is closed after idle_timeout_s to idle_timeout_s + 1 s without audio.
        async with asyncio.timeout(options.idle_timeout_s + slack_s) as idle:
            while True:
                message = await ws.recv()
                if isinstance(message, str):
                    if _is_stop(message):
                        return "stopped"
                    continue  # other text is ignored (and does not count as activity)
                if loop.time() - moved >= slack_s:
                    moved = loop.time()
                    idle.reschedule(moved + options.idle_timeout_s + slack_s)
                upstream.push_frame(message)
    except TimeoutError:
        raise _Refused("idle", CLOSE_REFUSED, f"idle: no audio for {options.idle_timeout_s:g} s") from None


class _Upstream:
    """One connection's audio path: checks, soxr to the pipeline's rate, the recording, the pipeline."""

    def __init__(self, session: Session, start, push: PushFn, options: CaptureOptions, *, resumed: bool):
        self.session, self.start, self.push, self.options = session, start, push, options
        sr = options.sample_rate
        self.resampler = None if start.rate == sr else soxr.ResampleStream(start.rate, sr, 1, dtype="float32")
        # A resumed session continues on its timeline: t never goes back, and the reconnect gap stays visible.
        self.t_offset = max(time.time() - session.started, session.last_t) if resumed else 0.0
        self.recorder = _recorder(session, options)
        self.t0, self.received = time.monotonic(), 0

    def push_frame(self, message: bytes) -> None:
        start, options, session = self.start, self.options, self.session
        samples = decode_capture_frame(message, start)
        self.received += samples.shape[0]
        ahead = self.received / start.rate - (time.monotonic() - self.t0)
        if ahead > options.max_ahead_s:
            raise _Refused("too_fast", CLOSE_REFUSED, f"audio faster than real time ({ahead:.1f} s ahead)")
        session.audio_seconds += samples.shape[0] / start.rate
        if session.audio_seconds > options.max_session_s:
            raise _Refused("too_long", CLOSE_REFUSED, f"session length limit ({options.max_session_s:g} s)")
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples)
        if self.recorder is not None:
            self.recorder.write(samples)
        for event in self.push(samples, time.time()):
            if self.t_offset:
                event = event | {"t": round(event["t"] + self.t_offset, 4)}
            session.publish(event)


def _is_stop(text: str) -> bool:
    try:
        msg = json.loads(text)
    except ValueError:
        return False
    return isinstance(msg, dict) and msg.get("type") == "stop"


def _recorder(session: Session, options: CaptureOptions):
    """The session's WAV writer (opened at its first connection, kept across its reconnects), or None."""
    if options.record_dir is None:
        return None
    if session.recorder is None:
        path = Path(options.record_dir) / f"{session.id}.wav"
        if session.resets:  # the previous connection's file is closed: a new part, never overwritten
            path = path.with_name(f"{session.id}.{session.resets}.wav")
        session.recorder = options.open_recording(path, options.sample_rate)
    return session.recorder
