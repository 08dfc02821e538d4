"""Wire protocol of the live stream: message builders, defaults and the JSON Schema.

Every message is one JSON object (one websocket text frame) with ``"v": 1`` and a
``"type"`` of ``hello``, ``prediction``, ``stats``, ``end``, ``sessions`` or ``capture``; see web/README.md
and web/schema.json. The one upstream format, a browser's audio on ``/ws/capture``, is defined here too.
This module has no I/O besides reading the schema file.

It is the one owner of the wire format: the message version, the encoder and its NaN policy
(non-finite numbers are sent as null), and the labels' colours. streamer.events encodes its
events here, for stdout (JSONL) as for the websocket.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOL_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schema.json")

# The colour of each label, wherever labels are drawn: the page (sent in ``hello``), the terminal dashboard and
# viewer, the benchmark report. The labels themselves come from the models (``hello`` carries them).
LABEL_COLORS = {
    "neutral": "#a3acb9",
    "happy": "#f2c94c",
    "sad": "#4a90e2",
    "angry": "#e5484d",
    "fearful": "#9b6ddf",
    "disgust": "#5fb55a",
    "surprised": "#f2994a",
    "female": "#e58fd8",
    "male": "#3fa7f0",
}
_SPARE_COLORS = ("#17becf", "#e377c2", "#bcbd22", "#8c564b", "#7f7f7f")


def server_version() -> str:
    """Installed package version, or "dev" when running from a source tree."""
    try:
        return metadata.version("voice-emotion-monitor")
    except metadata.PackageNotFoundError:
        return "dev"


def build_hello(hello: dict, *, history_seconds: float, stats_interval_s: float, session: str) -> dict:
    """Merge the caller's hello fields over the defaults.

    The caller wins for every field except ``v`` and ``type``; it must give the ``labels`` (the
    model's). Labels without a colour get a spare one so the page never has to invent colours.
    """
    if not isinstance(hello, dict):
        raise ValueError(f"hello must be a dict, got {type(hello).__name__}")
    msg: dict[str, Any] = {
        "labels": [],
        "gender_labels": [],
        "colors": {},
        "config": {},
        "model_card": {},
        "server_version": server_version(),
        "history_seconds": float(history_seconds),
        "stats_interval_s": float(stats_interval_s),
        "session": session,
    }
    msg.update(hello)
    msg["v"] = PROTOCOL_VERSION
    msg["type"] = "hello"
    labels = msg["labels"]
    if not isinstance(labels, (list, tuple)) or not labels or not all(isinstance(x, str) for x in labels):
        raise ValueError("hello['labels'] must be a non-empty list of strings")
    msg["labels"] = list(labels)
    genders = msg["gender_labels"]
    if not isinstance(genders, (list, tuple)) or not all(isinstance(x, str) for x in genders):
        raise ValueError("hello['gender_labels'] must be a list of strings")
    msg["gender_labels"] = list(genders)
    colors = dict(msg.get("colors") or {})
    spare = iter(_SPARE_COLORS * (1 + len(labels) // len(_SPARE_COLORS)))
    for label in [*labels, *genders]:
        colors.setdefault(label, LABEL_COLORS.get(label) or next(spare))
    msg["colors"] = colors
    return msg


def encode(message: dict) -> str:
    """Compact JSON text for one message (the websocket's and the JSONL output's).

    Non-finite floats (NaN, ±inf) are not valid JSON and would break ``JSON.parse`` in
    the page, so they are sent as null instead of failing the whole stream.
    """
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"), allow_nan=False)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The protocol's JSON Schema (draft 2020-12) as a dict."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def stats_message(*, viewers: int, dropped_windows: int, overflows: int, latency_p50_ms: float | None,
                  latency_p95_ms: float | None, sent: int, slow_disconnects: int,
                  max_backlog_bytes: int) -> dict:
    """A ``stats`` message; latencies are None when no event arrived in the interval."""
    return {
        "v": PROTOCOL_VERSION,
        "type": "stats",
        "viewers": viewers,
        "dropped_windows": dropped_windows,
        "overflows": overflows,
        "latency_ms": {"p50": latency_p50_ms, "p95": latency_p95_ms},
        "sent": sent,
        "slow_disconnects": slow_disconnects,
        "max_backlog_bytes": max_backlog_bytes,
    }


def end_message(*, reason: str = "finished") -> dict:
    """The ``end`` message sent once when the event source is exhausted (or failed)."""
    return {"v": PROTOCOL_VERSION, "type": "end", "reason": reason}


# ---------------------------------------------------------------- sessions and capture (issue 12)
#
# Upstream (client -> server, on /ws/capture only): first one text message
#     {"type": "capture", "v": 1, "rate": <int Hz>, "format": "f32le" | "s16le",
#      "session": <id>, "key": <key>,            (session and key only to resume one's own session)
#      "language": <code>}                        (optional: one of the hello's capture.languages)
# then binary frames, each a whole number of mono little-endian samples of that format at that rate
# (at most CAPTURE_MAX_FRAME_S of audio; f32 samples finite and within +-CAPTURE_MAX_ABS), and optionally
# the text message {"type": "stop"}. The server answers the start with ``hello``, then a ``capture``
# message (the session id and its resume key), then the session's ``sessions`` list, history and events.

CAPTURE_FORMATS = {"f32le": "<f4", "s16le": "<i2"}  # format name -> numpy dtype
CAPTURE_RATE_MIN, CAPTURE_RATE_MAX = 8000, 192000  # what browsers' AudioContexts run at, with margin
CAPTURE_MAX_FRAME_S = 1.0  # audio per binary frame: the page sends 40 ms; more is a broken client
CAPTURE_MAX_ABS = 1000.0  # the sample bound audio files have (dsp.audio_file): beyond it, not audio
CAPTURE_MAX_START_BYTES = 1024


class ProtocolError(ValueError):
    """An upstream message that breaks the capture format; ``str()`` is the close reason (short, ASCII)."""


@dataclass(frozen=True)
class CaptureStart:
    """The capture start message, validated."""

    rate: int
    format: str
    session: str | None = None
    key: str | None = None
    language: str | None = None  # None: the server's default; which codes exist is the server's to say

    @property
    def sample_bytes(self) -> int:
        return np.dtype(CAPTURE_FORMATS[self.format]).itemsize

    @property
    def max_frame_bytes(self) -> int:
        return int(self.rate * CAPTURE_MAX_FRAME_S) * self.sample_bytes


def parse_capture_start(message: str | bytes) -> CaptureStart:
    """The first upstream message; raises ProtocolError with the reason when it is not a valid start."""
    if not isinstance(message, str):
        raise ProtocolError("expected a capture start message (text) before audio")
    if len(message) > CAPTURE_MAX_START_BYTES:
        raise ProtocolError("capture start message too long")
    try:
        msg = json.loads(message)
    except ValueError:
        raise ProtocolError("capture start message is not JSON") from None
    if not isinstance(msg, dict) or msg.get("type") != "capture":
        raise ProtocolError('expected {"type": "capture", ...} first')
    if msg.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported capture version {msg.get('v')!r} (this server speaks {PROTOCOL_VERSION})")
    rate = msg.get("rate")
    if type(rate) is not int or not CAPTURE_RATE_MIN <= rate <= CAPTURE_RATE_MAX:
        raise ProtocolError(f"rate must be an integer {CAPTURE_RATE_MIN}-{CAPTURE_RATE_MAX} Hz")
    fmt = msg.get("format")
    if fmt not in CAPTURE_FORMATS:
        raise ProtocolError(f"format must be one of {', '.join(CAPTURE_FORMATS)}")
    session, key = msg.get("session"), msg.get("key")
    if (session is None) != (key is None) or not all(
            x is None or (isinstance(x, str) and 0 < len(x) <= 64 and x.isascii() and x.isprintable())
            for x in (session, key)):
        raise ProtocolError("session and key must be given together, as short strings")
    language = msg.get("language")
    if language is not None and not (isinstance(language, str) and 0 < len(language) <= 16 and language.isascii()
                                     and language.isprintable()):
        raise ProtocolError("language must be a short string")
    return CaptureStart(rate=rate, format=fmt, session=session, key=key, language=language)


def decode_capture_frame(data: bytes | str, start: CaptureStart) -> np.ndarray:
    """One binary audio frame as float32 samples in [-1, 1] scale; raises ProtocolError when malformed."""
    if isinstance(data, str):
        raise ProtocolError("expected binary audio frames after the start message")
    if not data:
        raise ProtocolError("empty audio frame")
    if len(data) > start.max_frame_bytes:
        raise ProtocolError(f"audio frame over {CAPTURE_MAX_FRAME_S:g} s ({len(data)} bytes)")
    if len(data) % start.sample_bytes:
        raise ProtocolError(f"audio frame of {len(data)} bytes is not whole {start.format} samples")
    raw = np.frombuffer(data, dtype=CAPTURE_FORMATS[start.format])
    if start.format == "s16le":
        return raw.astype(np.float32) / 32768.0
    if not float(np.max(np.abs(raw))) <= CAPTURE_MAX_ABS:  # one pass; NaN fails the comparison too
        raise ProtocolError(f"audio frame has non-finite samples or samples beyond +-{CAPTURE_MAX_ABS:g}")
    return raw.astype(np.float32)


def capture_message(*, session: str, key: str, rate: int, input_rate: int, limits: dict) -> dict:
    """Server -> capturing client, once after its ``hello``: its session, the key to resume it, the limits."""
    return {"v": PROTOCOL_VERSION, "type": "capture", "session": session, "key": key, "rate": rate,
            "input_rate": input_rate, "limits": limits}


def sessions_message(sessions: list[dict]) -> dict:
    """The live and recently ended sessions, newest first (each: id, kind, source, live, started, ended, ...)."""
    return {"v": PROTOCOL_VERSION, "type": "sessions", "sessions": sessions}
