"""One wire format (issue 11): web.protocol owns the version, the encoder and the NaN policy; JSONL, CSV and the
websocket follow it, and every label has one colour."""
from __future__ import annotations

import csv
import io
import json
import math

from models.labels import EMOTIONS, GENDERS
from streamer.events import PredictionEvent, csv_header, csv_row
from web.protocol import LABEL_COLORS, PROTOCOL_VERSION, build_hello, encode


def _event(**changes) -> PredictionEvent:
    fields = dict(t=1.5, wall=1e9, speech=True, emotion="sad", emotion_probs={"sad": 0.7, "happy": 0.3},
                  emotion_probs_raw={"sad": 0.6, "happy": 0.4}, gender="female",
                  gender_probs={"female": 0.9, "male": 0.1}, level_dbfs=-23.5, overflows=0, dropped_windows=0,
                  timings_ms={"features": 0.1}, source="file", features={"pitch_hz": 210.0})
    fields.update(changes)
    return PredictionEvent(**fields)


def test_an_event_with_nan_is_null_in_json_and_empty_in_csv():
    nan = float("nan")
    e = _event(level_dbfs=nan, emotion_probs={"sad": nan, "happy": math.inf}, features={"pitch_hz": nan})
    line = e.to_json()  # used to raise ValueError (allow_nan=False) and end the JSONL output
    d = json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(f"{c} in JSON")))
    assert d["v"] == PROTOCOL_VERSION and d["type"] == "prediction"
    assert d["level_dbfs"] is None and d["emotion_probs"] == {"sad": None, "happy": None}
    assert d["features"]["pitch_hz"] is None
    assert line == encode(e.to_dict())  # stdout and the websocket send the same text

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(csv_header(EMOTIONS, GENDERS))
    writer.writerow(csv_row(e, EMOTIONS, GENDERS))
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["level_dbfs"] == "" and row["p_sad"] == "" and row["p_happy"] == ""
    assert row["raw_sad"] == "0.6000" and row["p_female"] == "0.9000" and "nan" not in out.getvalue().lower()


def test_every_model_label_has_one_colour_in_hello():
    hello = build_hello({"labels": list(EMOTIONS), "gender_labels": list(GENDERS)}, history_seconds=1.0,
                        stats_interval_s=1.0, session="s")
    assert hello["colors"] == {label: LABEL_COLORS[label] for label in (*EMOTIONS, *GENDERS)}
    assert len(set(hello["colors"].values())) == len(EMOTIONS) + len(GENDERS)
