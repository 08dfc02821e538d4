"""The ``/clip`` websocket: one audio file in, its clip-level analysis out (record, upload and samples on the page).

Exchange (one clip per connection):

* client -> server: one **binary** message, the bytes of an audio file (the page sends a WAV it recorded, an
  uploaded file as is, or a bundled sample), at most ``max_bytes``; optional ``?name=`` in the URL names it,
  optional ``?language=`` picks the emotion model (as a capture's start message does).
* server -> client: one text message ``{"v": 1, "type": "clip_result", ...}`` (fields: web/README.md, "Clips"),
  then a normal close (1000). A refused clip gets ``{"v": 1, "type": "clip_error", "reason": ...}`` and a close
  with that reason (code 1003 not audio / bad input, 1008 policy: nothing sent in time, 1013 busy); a message
  over ``max_bytes`` is closed by websockets itself with 1009 and its own reason ("... exceeds limit ...").

The analysis is injected (``analyze(data, *, name, language) -> dict``, language None when the URL names none;
streamer.clip_api builds it) and runs in a worker
thread, one clip at a time; at most ``max_waiting`` more wait, later ones are refused as busy, and so are
connections beyond ``max_connections`` (each may buffer up to ``max_bytes`` while it uploads). A ``ValueError``
from it is the client's fault (its message is the reason); anything else is logged and reported as an internal
error, and the server keeps serving either way. Who may send clips (token, Origin) is web.server's gate.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from web.protocol import LABEL_COLORS, PROTOCOL_VERSION, encode

__all__ = ["ClipService", "ClipServiceLimits", "CLIP_PATH", "MAX_CLIP_BYTES", "clip_name", "clip_language"]

log = logging.getLogger(__name__)

CLIP_PATH = "/clip"
MAX_CLIP_BYTES = 16 * 2**20  # 60 s of 48 kHz stereo 16-bit WAV is 11 MB; compressed files are far smaller
_MAX_REASON_BYTES = 123  # RFC 6455: a close reason fits in a 125-byte control frame with the code
_MAX_NAME_CHARS = 80
CLOSE_BAD_DATA, CLOSE_POLICY, CLOSE_BUSY, CLOSE_INTERNAL = 1003, 1008, 1013, 1011


@dataclass(frozen=True)
class ClipServiceLimits:
    max_bytes: int = MAX_CLIP_BYTES
    receive_timeout_s: float = 60.0  # a 16 MB upload on a slow link (2 Mbit/s) takes about a minute
    max_waiting: int = 2  # clips queued behind the one being analysed; more are refused (busy)
    max_connections: int = 8  # /clip connections at once (each may buffer max_bytes); more are refused (busy)


def clip_name(path: str) -> str:
    """The ``?name=`` of a ``/clip`` request path as one short printable line (default "clip")."""
    raw = parse_qs(urlsplit(path).query).get("name", [""])[0]
    text = "".join(c for c in raw if c.isprintable()).strip()[:_MAX_NAME_CHARS]
    return text or "clip"


def clip_language(path: str) -> str | None:
    """The ``?language=`` of a ``/clip`` request path (None when absent); the analysis says whether it exists."""
    raw = parse_qs(urlsplit(path).query).get("language", [""])[0]
    return "".join(c for c in raw if c.isprintable())[:16] or None


class ClipService:
    """``handler(ws)`` for accepted ``/clip`` connections; ``counts`` says what happened to each clip."""

    def __init__(self, *, analyze: Callable[..., dict], limits: ClipServiceLimits = ClipServiceLimits()):
        self._analyze = analyze
        self.limits = limits
        self._queue: asyncio.Semaphore | None = None
        self._waiting = 0
        self._open = 0
        # "analysed", or the refusal: "empty", "text", "too_big", "timeout", "busy", "bad_audio", "internal",
        # "disconnected" (the client left before sending or before the answer).
        self.counts: Counter[str] = Counter()

    async def handler(self, ws: ServerConnection) -> None:
        if self._open >= self.limits.max_connections:  # a memory bound: each one may buffer max_bytes
            await self._refuse(ws, "busy", CLOSE_BUSY, f"busy: {self._open} clip uploads open; try again")
            return
        self._open += 1
        try:
            await self._serve(ws)
        finally:
            self._open -= 1

    async def _serve(self, ws: ServerConnection) -> None:
        # The server-wide message limit is small (viewers send nothing); this connection carries a file.
        ws.protocol.max_message_size = self.limits.max_bytes
        data = await self._receive(ws)
        if data is None:
            return
        if self._waiting >= 1 + self.limits.max_waiting:
            await self._refuse(ws, "busy", CLOSE_BUSY, f"busy: {self._waiting} clips are being analysed; try again")
            return
        path = ws.request.path if ws.request is not None else ""
        name, language = clip_name(path), clip_language(path)
        self._waiting += 1
        try:
            reply = await self._run(ws, data, name, language)
        finally:
            self._waiting -= 1
        if reply is not None:
            await self._send_and_close(ws, reply)

    async def _receive(self, ws: ServerConnection) -> bytes | None:
        """The clip's bytes, or None once the connection was refused or lost (and counted)."""
        try:
            data = await asyncio.wait_for(ws.recv(), self.limits.receive_timeout_s)
        except asyncio.TimeoutError:
            await self._refuse(ws, "timeout", CLOSE_POLICY,
                               f"no clip received within {self.limits.receive_timeout_s:g} s")
            return None
        except ConnectionClosed as exc:
            # 1009: over max_bytes (websockets closed it and told the client why); else the client went away.
            self.counts["too_big" if exc.sent is not None and exc.sent.code == 1009 else "disconnected"] += 1
            return None
        if isinstance(data, str):
            await self._refuse(ws, "text", CLOSE_BAD_DATA, "send the audio file as one binary message, not text")
            return None
        if not data:
            await self._refuse(ws, "empty", CLOSE_BAD_DATA, "the clip is empty (0 bytes)")
            return None
        return data

    async def _run(self, ws: ServerConnection, data: bytes, name: str, language: str | None) -> dict | None:
        if self._queue is None:
            self._queue = asyncio.Semaphore(1)  # created on the serving loop
        async with self._queue:
            try:
                result = await asyncio.to_thread(self._analyze, data, name=name, language=language)
            except ValueError as exc:
                await self._refuse(ws, "bad_audio", CLOSE_BAD_DATA, str(exc))
                return None
            except Exception:  # noqa: BLE001 - a bug must not take the server down; the client hears about it
                log.exception("clip analysis failed")
                await self._refuse(ws, "internal", CLOSE_INTERNAL, "internal error while analysing the clip")
                return None
        colors = {k: LABEL_COLORS[k] for k in (*result.get("labels", ()), *result.get("gender_labels", ()))
                  if k in LABEL_COLORS}
        return {"v": PROTOCOL_VERSION, "type": "clip_result", "colors": colors, **result}

    async def _send_and_close(self, ws: ServerConnection, reply: dict) -> None:
        try:
            await ws.send(encode(reply))
            await ws.close(1000, "done")
        except ConnectionClosed:
            self.counts["disconnected"] += 1
            return
        self.counts["analysed"] += 1

    async def _refuse(self, ws: ServerConnection, kind: str, code: int, reason: str) -> None:
        self.counts[kind] += 1
        try:
            await ws.send(encode({"v": PROTOCOL_VERSION, "type": "clip_error", "reason": reason}))
            await ws.close(code, _short(reason))
        except ConnectionClosed:
            pass


def _short(reason: str) -> str:
    """``reason`` cut to what a close frame can carry (123 bytes of UTF-8), with an ellipsis when cut."""
    if len(reason.encode()) <= _MAX_REASON_BYTES:
        return reason
    cut = reason.encode()[:_MAX_REASON_BYTES - 3].decode(errors="ignore")
    return cut + "..."
