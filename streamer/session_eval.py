"""Session-mode evaluation: score a model the way the monitor runs, through the real Pipeline.

Each test speaker's clips, shuffled, are joined with 1 s of silence into one stream and pushed through a
Pipeline (high-pass, features, VAD, speech encoder with its state carried across the whole stream, the
gate, online speaker normalisation, calibration). A clip's decision is the mean raw probabilities of the
speech windows whose end falls inside the clip. models.train's `evaluate` receives this as its session
runner (models never import streamer).
"""
from __future__ import annotations

import numpy as np

from .adaptation import PriorCorrection
from .pipeline import Pipeline, PipelineConfig

__all__ = ["session_clip_probs", "GAP_S"]

GAP_S = 1.0


class _Recorder:
    """Passes a classifier through and keeps every output row, in call order."""

    def __init__(self, model):
        self.model, self.labels, self.rows = model, model.labels, []
        self.calibration = getattr(model, "calibration", {})

    def predict_proba(self, x, spec=None):
        p = self.model.predict_proba(x) if spec is None else self.model.predict_proba(x, spec=spec)
        self.rows.append(np.asarray(p[0], np.float64))
        return p

    def online_norm(self):
        return self.model.online_norm()

    def spec_norm(self):
        return getattr(self.model, "spec_norm", lambda: None)()


class _Uniform:
    """Stands in for the model of the other task: cheap and constant."""

    calibration: dict = {}

    def __init__(self, labels):
        self.labels = tuple(labels)
        self._p = np.full((1, len(labels)), 1.0 / len(labels), np.float32)

    def predict_proba(self, x):
        return self._p

    def online_norm(self):
        return None


def session_clip_probs(utts, clip_ids, model, *, task: str, other_labels, window_ms: float, hop_ms: float,
                       seed: int, load_audio, encoder=None, sr: int = 16000):
    """Per-clip mean raw probabilities over each test speaker's session stream.

    utts: all Utterances; clip_ids: indices of the test clips; model: the task's classifier; other_labels:
    the other task's label names. load_audio(path, sr=) -> (ids (k,), probs (k, C), n_windows (k,),
    variants) where variants maps an adaptation's name to its (k, C) clip probabilities: "prior-corrected"
    (streamer.adaptation.PriorCorrection over the session's windows in stream order) and "displayed" (what the
    monitor shows for the task at each of those windows: emotion calibrated and smoothed, gender the mean over
    the speech segment so far); clips that got no speech window are left out.
    """
    rec = _Recorder(model)
    other = _Uniform(other_labels)
    emo, gen = (rec, other) if task == "emotion" else (other, rec)
    cfg = PipelineConfig(window_ms=window_ms, hop_ms=hop_ms, max_windows_per_push=0)
    pipe = Pipeline(emo, gen, config=cfg, source="file", encoder=encoder)
    rng = np.random.default_rng(seed)
    by_spk: dict[str, list[int]] = {}
    for i in clip_ids:
        by_spk.setdefault(utts[i].speaker, []).append(int(i))
    ids, probs, counts, adapted, shown = [], [], [], [], []
    correction = PriorCorrection(len(model.labels))
    gap = np.zeros(int(GAP_S * sr), np.float32)
    for spk in sorted(by_spk):
        order = [by_spk[spk][k] for k in rng.permutation(len(by_spk[spk]))]
        parts, spans, t = [], [], 0.0
        for i in order:
            y = load_audio(utts[i].path, sr=sr)
            spans.append((t, t + y.shape[0] / sr))
            parts += [y, gap]
            t += (y.shape[0] + gap.shape[0]) / sr
        pipe.reset()
        rec.rows.clear()
        events = [e for e in pipe.push(np.concatenate(parts), wall_end=0.0) if e.speech]
        if len(events) != len(rec.rows):
            raise RuntimeError(f"{len(events)} speech events but {len(rec.rows)} classifier calls")
        ends = np.array([e.t for e in events])
        correction.reset()
        corrected = [correction.push(r) for r in rec.rows]
        displayed = [_displayed(e, task, model.labels) for e in events]
        for i, (a, b) in zip(order, spans):
            m = (ends > a) & (ends <= b)
            if m.any():
                ids.append(i)
                probs.append(np.mean([rec.rows[k] for k in np.flatnonzero(m)], axis=0))
                adapted.append(np.mean([corrected[k] for k in np.flatnonzero(m)], axis=0))
                shown.append(np.mean([displayed[k] for k in np.flatnonzero(m)], axis=0))
                counts.append(int(m.sum()))
    if not ids:
        empty = np.zeros((0, len(model.labels)))
        return np.zeros(0, np.int64), empty, np.zeros(0, np.int64), {"prior-corrected": empty, "displayed": empty}
    return (np.array(ids), np.stack(probs), np.array(counts),
            {"prior-corrected": np.stack(adapted), "displayed": np.stack(shown)})


def _displayed(event, task: str, labels) -> np.ndarray:
    """The task's probabilities as the event shows them, in the model's label order."""
    shown = event.emotion_probs if task == "emotion" else event.gender_probs
    return np.array([shown[k] for k in labels], np.float64)
