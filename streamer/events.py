"""The monitor's events: frozen dataclasses, serialised as the JSON schema web/ broadcasts (``"v": 1``).

The wire format (message version, encoder, NaN policy) is web.protocol's; the CSV follows the same policy:
a non-finite number is an empty cell, as it is null in JSON.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from web.protocol import PROTOCOL_VERSION, encode


@dataclass(frozen=True)
class PredictionEvent:
    """One hop of the monitor. Probabilities are dicts label -> p; empty when there was no prediction."""

    t: float
    wall: float
    speech: bool
    emotion: str | None
    emotion_probs: dict
    emotion_probs_raw: dict
    gender: str | None
    gender_probs: dict
    level_dbfs: float
    overflows: int
    dropped_windows: int
    timings_ms: dict
    source: str
    features: dict = field(default_factory=dict)
    # The label's smoothed probability is below the model's calibrated "uncertain" threshold: the monitor
    # shows the label as a guess, not a finding (emotion is still the leading label, for the timeline).
    uncertain: bool = False
    # Capture losses, so that every consumer (JSONL, the page, the dashboard) sees them: ``gap`` marks a hop
    # whose window ends inside a capture gap (the input device was lost; its audio is zeros standing in for
    # the outage, so ``t`` keeps real time); the run's totals so far: outages (``gaps``) and their length
    # (``gap_seconds``), and ``overrun_seconds`` of captured audio overwritten because processing fell behind
    # the capture ring. Optional in the schema (v1 readers that do not know them still read the event).
    gap: bool = False
    gaps: int = 0
    gap_seconds: float = 0.0
    overrun_seconds: float = 0.0

    def to_dict(self) -> dict:
        # Shallow on purpose: dataclasses.asdict deep-copies every nested dict (~50 µs per event); the dicts
        # here are built fresh for each event and never mutated afterwards.
        return {"v": PROTOCOL_VERSION, "type": "prediction",
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    def to_json(self) -> str:
        """One line of JSON; NaN and infinities become null (web.protocol.encode), never an exception."""
        return encode(self.to_dict())


def csv_header(emotions, genders) -> list[str]:
    return (["t", "wall", "speech", "emotion"] + [f"p_{e}" for e in emotions] + [f"raw_{e}" for e in emotions]
            + ["gender"] + [f"p_{g}" for g in genders]
            + ["level_dbfs", "overflows", "dropped_windows", "source", "uncertain"])


def _cell(x, digits: int) -> str:
    """A number as a CSV cell; empty when missing or not finite (null in the JSON)."""
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and math.isfinite(x) else ""


def csv_row(event: PredictionEvent, emotions, genders) -> list:
    def probs(d, labels):
        return [_cell(d.get(k), 4) for k in labels]

    return ([_cell(event.t, 3), _cell(event.wall, 3), int(event.speech), event.emotion or ""]
            + probs(event.emotion_probs, emotions) + probs(event.emotion_probs_raw, emotions)
            + [event.gender or ""] + probs(event.gender_probs, genders)
            + [_cell(event.level_dbfs, 1), event.overflows, event.dropped_windows, event.source, int(event.uncertain)])
