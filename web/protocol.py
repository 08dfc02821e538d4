"""Wire protocol of the live stream: message builders, defaults and the JSON Schema.

Every message is one JSON object (one websocket text frame) with ``"v": 1`` and a
``"type"`` of ``hello``, ``prediction``, ``stats`` or ``end``; see web/README.md and
web/schema.json. This module has no I/O besides reading the schema file.

It is the one owner of the wire format: the message version, the encoder and its NaN policy
(non-finite numbers are sent as null), and the labels' colours. streamer.events encodes its
events here, for stdout (JSONL) as for the websocket.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

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
