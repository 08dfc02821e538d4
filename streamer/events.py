"""The monitor's events: frozen dataclasses, serialised as the JSON schema web/ broadcasts (``"v": 1``)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

SCHEMA_VERSION = 1


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

    def to_dict(self) -> dict:
        # Shallow on purpose: dataclasses.asdict deep-copies every nested dict (~50 µs per event); the dicts
        # here are built fresh for each event and never mutated afterwards.
        return {"v": SCHEMA_VERSION, "type": "prediction",
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)


def csv_header(emotions, genders) -> list[str]:
    return (["t", "wall", "speech", "emotion"] + [f"p_{e}" for e in emotions] + [f"raw_{e}" for e in emotions]
            + ["gender"] + [f"p_{g}" for g in genders]
            + ["level_dbfs", "overflows", "dropped_windows", "source", "uncertain"])


def csv_row(event: PredictionEvent, emotions, genders) -> list:
    def probs(d, labels):
        return ["" if k not in d else f"{d[k]:.4f}" for k in labels]

    return ([f"{event.t:.3f}", f"{event.wall:.3f}", int(event.speech), event.emotion or ""]
            + probs(event.emotion_probs, emotions) + probs(event.emotion_probs_raw, emotions)
            + [event.gender or ""] + probs(event.gender_probs, genders)
            + [f"{event.level_dbfs:.1f}", event.overflows, event.dropped_windows, event.source, int(event.uncertain)])
