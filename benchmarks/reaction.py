"""Reaction time of the displayed (smoothed) emotion to a change of the speaker's emotion.

Streams are built from the held-out speakers only (RAVDESS actors 19 and 20, which no shipped model saw;
see models/emotion.md and the models' ``training_data.held_out_speakers`` metadata): one stream per actor,
a session of its own, its clips in a random order in which consecutive clips differ in emotion (RAVDESS
calm counts as neutral, as in the models). Two variants of the same order:

* with pauses: each clip's speech span (dsp.vad.vad_segments) with 0.5 s of its own near-silence on each
  side, so about 1 s lies between utterances;
* without pauses: the speech spans back to back (RAVDESS's ~1 s of silence at both ends trimmed off).

A change happens at the speech onset of the next clip. Reaction = stream time from the change to the first
event whose smoothed label is the new clip's emotion, looked for until the following change; none there
is a miss. Timeline accuracy = share of speech events (those with a label) whose label is the true emotion
at the event's time. The raw (unsmoothed arg-max) label is scored the same way for comparison.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dsp.config import SAMPLE_RATE as SR  # the monitor's rate

if TYPE_CHECKING:
    from .bench_options import BenchOptions

__all__ = ["HELD_OUT_ACTORS", "StreamedClip", "ReactionStream", "heldout_clips", "order_clips", "build_stream",
           "stream_events", "score", "run_reaction"]

HELD_OUT_ACTORS = (19, 20)
_PAUSE_SIDE_S = 0.5  # kept on each side of a clip's speech: ~1 s between utterances
_TRIM_PAD_S = 0.03   # kept around the speech span when trimming (VAD edges are frame-quantised)
_BLOCK = 320         # 20 ms, the live sources' block


@dataclass(frozen=True)
class StreamedClip:
    """A corpus clip placed in a reaction stream (not models.datasets.Utterance, the clip on disk)."""

    emotion: str
    onset_s: float  # stream time of the speech onset (the change to this emotion)
    end_s: float    # stream time where this clip's audio ends
    path: str


@dataclass(frozen=True)
class ReactionStream:
    actor: int
    pauses: bool
    y: np.ndarray  # (n,) float32 at 16 kHz
    utterances: tuple[StreamedClip, ...]

    @property
    def seconds(self) -> float:
        return self.y.size / SR


def heldout_clips(data_dir: Path, actor: int) -> list:
    """The actor's RAVDESS utterances (models.datasets.StreamedClip), sorted by file name."""
    from models.datasets import iter_ravdess

    if actor not in HELD_OUT_ACTORS:
        raise ValueError(f"actor {actor} is not held out of the shipped models (held out: {HELD_OUT_ACTORS})")
    root = Path(data_dir) / "ravdess"
    utts = [u for u in iter_ravdess(root) if u.speaker == f"ravdess_{actor:02d}"]
    if not utts:
        raise FileNotFoundError(f"no RAVDESS clips of actor {actor} under {root} (give the corpus root with --data)")
    return utts


def order_clips(utts: list, *, rng: np.random.Generator, n: int | None = None) -> list:
    """n of utts (all by default) in a random order where consecutive emotions differ.

    Greedy: at each step the allowed emotion with the most clips left, ties in random order; this never
    dead-ends while no emotion holds more than half the clips. Any clips that still cannot alternate are
    left out.
    """
    pick = [utts[i] for i in rng.permutation(len(utts))[: len(utts) if n is None else n]]
    out: list = []
    while pick:
        left = {}
        for u in pick:
            left[u.emotion] = left.get(u.emotion, 0) + 1
        allowed = [u for u in pick if not out or u.emotion != out[-1].emotion]
        if not allowed:
            break
        best = max(allowed, key=lambda u: left[u.emotion])  # first of the ties: the order is random
        out.append(best)
        pick.remove(best)
    return out


def _speech_span(y: np.ndarray) -> tuple[int, int]:
    """First speech start and last speech end in samples (the whole clip when the VAD finds nothing)."""
    from dsp.vad import vad_segments

    segs = vad_segments(y, sr=SR)
    if not segs:
        return 0, y.size
    return max(0, int(segs[0][0] * SR)), min(y.size, int(math.ceil(segs[-1][1] * SR)))


def build_stream(utts: list, *, actor: int, pauses: bool) -> ReactionStream:
    """Concatenate the clips of ``utts`` in order (see module docstring for the two variants)."""
    import soundfile as sf

    parts, out, pos = [], [], 0
    for u in utts:
        y, sr = sf.read(u.path, dtype="float32")
        if sr != SR or y.ndim != 1:
            raise ValueError(f"{u.path}: expected 16 kHz mono, got {sr} Hz with shape {y.shape}")
        s, e = _speech_span(y)
        side = int((_PAUSE_SIDE_S if pauses else _TRIM_PAD_S) * SR)
        lo, hi = max(0, s - side), min(y.size, e + side)
        parts.append(y[lo:hi])
        # Back to back, the change is the junction itself; with pauses, the new clip's speech onset.
        onset = pos + (s - lo if pauses else 0)
        out.append(StreamedClip(emotion=u.emotion, onset_s=onset / SR, end_s=(pos + hi - lo) / SR, path=str(u.path)))
        pos += hi - lo
    return ReactionStream(actor=actor, pauses=pauses, y=np.concatenate(parts), utterances=tuple(out))


def stream_events(pipe, y: np.ndarray) -> list[tuple[float, bool, str | None, str | None]]:
    """Push y in live-sized blocks through a fresh session of ``pipe``: [(t, speech, label, raw_label)]."""
    pipe.reset()
    rows = []
    for i in range(0, y.size, _BLOCK):
        for e in pipe.push(y[i:i + _BLOCK], wall_end=0.0):
            raw = max(e.emotion_probs_raw, key=e.emotion_probs_raw.get) if e.emotion_probs_raw else None
            rows.append((float(e.t), bool(e.speech), e.emotion, raw))
    return rows


def score(rows: list, utts: tuple[StreamedClip, ...], *, raw: bool = False) -> dict:
    """Reaction times (s), misses and timeline accuracy of one stream's events against its utterances."""
    col = 3 if raw else 2
    ts = [r[0] for r in rows]
    onsets = [u.onset_s for u in utts]
    reactions, misses = [], 0
    for k in range(1, len(utts)):
        stop = onsets[k + 1] if k + 1 < len(utts) else math.inf
        lo, hi = bisect.bisect_left(ts, onsets[k]), bisect.bisect_left(ts, stop)
        hit = next((rows[i][0] for i in range(lo, hi) if rows[i][col] == utts[k].emotion), None)
        if hit is None:
            misses += 1
        else:
            reactions.append(hit - onsets[k])
    judged = [(r[col], utts[bisect.bisect_right(onsets, r[0]) - 1].emotion)
              for r in rows if r[1] and r[col] is not None and r[0] >= onsets[0]]
    return {"reactions_s": reactions, "misses": misses, "changes": max(len(utts) - 1, 0),
            "correct": sum(a == b for a, b in judged), "judged": len(judged)}


# ---------------------------------------------------------------------------------------------- the bench part

def run_reaction(opts: BenchOptions, on_progress) -> tuple[dict, list]:
    """Part 3 of `bench`: reaction and timeline accuracy on each held-out actor's stream, with and without pauses."""
    from streamer.runner import build_pipeline

    # the shipped models (the emotion model of the bench's --language) at their own window and hop
    pipe = build_pipeline(source="file", live=False, language=opts.language)
    variants, timelines = {}, []
    jobs = [(a, p) for p in (True, False) for a in HELD_OUT_ACTORS]
    orders = {a: order_clips(heldout_clips(opts.data_dir, a), rng=np.random.default_rng(a), n=opts.clips_per_actor)
              for a in HELD_OUT_ACTORS}
    for k, (actor, pauses) in enumerate(jobs):
        on_progress(k, len(jobs))
        stream = build_stream(orders[actor], actor=actor, pauses=pauses)
        rows = stream_events(pipe, stream.y)
        timelines.append((stream, rows))
        key = "with_pauses" if pauses else "without_pauses"
        for kind, raw in (("smoothed", False), ("raw", True)):
            variants.setdefault(key, {}).setdefault(kind, []).append(score(rows, stream.utterances, raw=raw))
    on_progress(len(jobs), len(jobs))
    out = {key: _reaction_stats(v["smoothed"], v["raw"]) for key, v in variants.items()}
    pooled = _reaction_stats([s for v in variants.values() for s in v["smoothed"]],
                             [s for v in variants.values() for s in v["raw"]])
    pooled.update(out)
    pooled["streams_seconds"] = round(sum(s.seconds for s, _ in timelines), 1)
    return {"reaction_s": pooled, "timeline_accuracy": pooled.pop("timeline_accuracy")}, timelines


def _reaction_stats(smoothed: list[dict], raw: list[dict]) -> dict:
    def pooled(scores):
        r = [x for s in scores for x in s["reactions_s"]]
        changes = sum(s["changes"] for s in scores)
        judged = sum(s["judged"] for s in scores)
        return {"median": round(float(np.median(r)), 3) if r else None,
                "p90": round(float(np.percentile(r, 90)), 3) if r else None,
                "miss_rate": round(sum(s["misses"] for s in scores) / changes, 4) if changes else None,
                "changes": changes,
                "timeline_accuracy": round(sum(s["correct"] for s in scores) / judged, 4) if judged else None}

    out = pooled(smoothed)
    raw_stats = pooled(raw)
    out["raw_label"] = {"median": raw_stats["median"], "p90": raw_stats["p90"], "miss_rate": raw_stats["miss_rate"],
                        "timeline_accuracy": raw_stats["timeline_accuracy"]}
    return out
