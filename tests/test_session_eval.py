"""Session-mode evaluation and the uncertain state, through the real Pipeline on fixture speech."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsp.pooling import FEATURE_NAMES
from models.datasets import Utterance
from models.featurize import load_audio
from models.labels import EMOTIONS as EMOTION_LABELS
from streamer.adaptation import PriorCorrection
from streamer.pipeline import Pipeline, PipelineConfig
from streamer.session_eval import session_clip_probs
from tests._corpus import FIXTURES

F0 = FEATURE_NAMES.index("f0_st_median")
MALE = FIXTURES / "ravdess/Actor_01/03-01-01-01-01-01-01.flac"     # neutral: a low voice
FEMALE = FIXTURES / "ravdess/Actor_20/03-01-05-01-01-01-20.flac"


class PitchModel:
    """'low' below 160 Hz median f0 (8.1 semitones re 100 Hz), else 'high': a classifier whose answer is
    known from the audio, to check which clip each window is credited to."""

    labels = ("low", "high")

    def __init__(self, calibration=None):
        self.calibration = calibration or {}

    def predict_proba(self, x):
        high = float(np.atleast_2d(x)[0, F0] > 8.1)
        return np.array([[0.9 - 0.8 * high, 0.1 + 0.8 * high]], np.float32)

    def online_norm(self):
        return None


def test_session_credits_each_window_to_the_clip_it_ends_in():
    utts = [Utterance(MALE, "ravdess", "s1", "male", "angry"), Utterance(FEMALE, "ravdess", "s1", "female", "angry")]
    for seed in (0, 1, 2):   # different shuffles put either clip first
        ids, probs, n, variants = session_clip_probs(utts, [0, 1], PitchModel(), task="emotion",
                                                     other_labels=("f", "m"), window_ms=1500, hop_ms=100, seed=seed,
                                                     load_audio=load_audio)
        got = {int(i): p for i, p in zip(ids, probs)}
        assert set(got) == {0, 1} and all(k > 5 for k in n)
        assert got[0].argmax() == 0 and got[1].argmax() == 1, (seed, got)
        assert variants["prior-corrected"].shape == probs.shape


def test_prior_correction_discounts_the_class_a_session_keeps_predicting():
    corr = PriorCorrection(2, prior_count=5.0)
    first = corr.push([0.5, 0.5])
    assert np.allclose(first, [0.5, 0.5])
    for _ in range(50):
        out = corr.push([0.8, 0.2])
    # The session has said class 0 fifty times: the same raw output now leans less to it, and sums to one.
    assert out[0] < 0.8 and abs(out.sum() - 1) < 1e-12
    corr.reset()
    assert np.allclose(corr.push([0.8, 0.2]), PriorCorrection(2, prior_count=5.0).push([0.8, 0.2]))
    with pytest.raises(ValueError):
        PriorCorrection(1)


def _events(model):
    pipe = Pipeline(model, PitchModel(), config=PipelineConfig(window_ms=1500, hop_ms=100))
    return [e for e in pipe.push(load_audio(FEMALE, sr=16000), wall_end=0.0) if e.speech]


def test_uncertain_state_follows_the_calibrated_threshold():
    sure = _events(PitchModel({"uncertain_below": 0.0}))
    never = _events(PitchModel({"uncertain_below": 1.01}))
    assert sure and not any(e.uncertain for e in sure)
    assert never and all(e.uncertain and e.emotion is not None for e in never)
    # A temperature above 1 flattens the probabilities the monitor shows (the leading label stays).
    hot = _events(PitchModel({"temperature": 4.0}))
    assert [e.emotion for e in hot] == [e.emotion for e in sure]
    assert max(e.emotion_probs_raw["high"] for e in hot) < max(e.emotion_probs_raw["high"] for e in sure)
    row = hot[-1].to_dict()
    assert row["uncertain"] is False and "uncertain" in row


def test_one_long_push_gives_the_events_of_small_blocks():
    """A whole session in one push (as session mode does) equals 20 ms capture blocks: the speech ledger
    once lost the decisions of all but the newest ~2 s of a long push, and its windows came out as silence."""
    y = np.concatenate([load_audio(MALE, sr=16000), np.zeros(16000, np.float32), load_audio(FEMALE, sr=16000)])
    cfg = PipelineConfig(window_ms=1500, hop_ms=100)
    whole = Pipeline(PitchModel(), PitchModel(), config=cfg).push(y, wall_end=0.0)
    small = Pipeline(PitchModel(), PitchModel(), config=cfg)
    blocks = [e for k in range(0, len(y), 320) for e in small.push(y[k:k + 320], wall_end=0.0)]
    assert [(e.t, e.speech, e.emotion) for e in whole] == [(e.t, e.speech, e.emotion) for e in blocks]
    assert sum(e.speech for e in whole) > 20


class _Recorder:
    """Keeps every vector the pipeline classifies."""

    labels = ("a", "b")
    calibration: dict = {}

    def __init__(self):
        self.rows = []

    def predict_proba(self, x):
        self.rows.append(np.array(np.atleast_2d(x)[0]))
        return np.array([[0.5, 0.5]], np.float32)

    def online_norm(self):
        return None


def test_live_classifies_the_windows_training_featurised():
    """One gate and one encoder stream for training and live: every window the pipeline classifies is a training
    window, encoder states included (the encoder restarts after pauses in both), and the windows that end in the
    pause after the utterance (the ones that span all of it) are classified live too; live lacks only the first
    windows of the utterance, while the VAD's decisions settle."""
    from dsp.gate import SPEECH_GATE
    from dsp.pooling import window_vector
    from models.encoder import StreamingEncoder
    from models.featurize import speech_windows

    y = load_audio(MALE, sr=16000)
    rec = _Recorder()
    pipe = Pipeline(rec, PitchModel(), config=PipelineConfig(max_windows_per_push=0), source="file",
                    encoder=StreamingEncoder())
    pipe.push(y, wall_end=0.0)
    live = np.stack(rec.rows)
    train = np.stack([window_vector(w) for w in speech_windows(y, window_ms=1500, hop_ms=100)])
    train = train[SPEECH_GATE.voiced(train)]
    match = [int(np.flatnonzero(np.abs(train - row).max(axis=1) <= 1e-6)[0]) for row in live]
    assert match == list(range(len(train) - len(live), len(train)))   # the same windows, in order, to the last
    assert 0 < len(train) - len(live) <= 3 and len(live) > 10


def test_displayed_gender_is_the_segment_mean_so_far():
    """The 'displayed' variant scores what the monitor shows: for gender, the mean over the speech segment, so
    the clip heard second in a session (with less than 3 s between them) is pulled towards the first."""
    utts = [Utterance(MALE, "ravdess", "s1", "male", None), Utterance(FEMALE, "ravdess", "s1", "female", None)]
    for seed in (0, 1):
        second = int(np.random.default_rng(seed).permutation(2)[1])   # the order session_clip_probs draws
        ids, probs, _n, variants = session_clip_probs(utts, [0, 1], PitchModel(), task="gender",
                                                      other_labels=EMOTION_LABELS, window_ms=1500, hop_ms=100,
                                                      seed=seed, load_audio=load_audio)
        raw, shown = dict(zip(ids.tolist(), probs)), dict(zip(ids.tolist(), variants["displayed"]))
        first = 1 - second
        np.testing.assert_allclose(shown[first].sum(), 1.0)
        assert abs(shown[first] - raw[first]).max() < 0.05           # a fresh segment: its own windows only
        assert raw[second].max() - shown[second].max() > 0.1, (seed, raw, shown)
