"""Impulsive noise must not pass the speech gate (issue: click trains were 'speech', 'disgust / male'),
and a DC offset must not switch speech off; end to end through the shipped models."""
from __future__ import annotations

import numpy as np
import pytest

from streamer.runner import build_pipeline
from tests._corpus import fixture_clip

SR = 16000
CLIP = "ravdess/Actor_01/03-01-05-02-01-01-01.flac"


def _speech_events(y: np.ndarray):
    pipe = build_pipeline(source="file", live=False)
    events = []
    for k in range(0, len(y), 320):   # 20 ms blocks, as FileSource pushes
        events += pipe.push(y[k:k + 320], wall_end=0.0)
    return [e for e in events if e.speech]


def _clicks(period_s: float, seconds: float = 6.0) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    y[::int(period_s * SR)] = 0.9
    return y


def _keys(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR), np.float32)
    t = 0.0
    while t < seconds - 0.02:   # 5 ms noise bursts at typing pace
        k = int(t * SR)
        y[k:k + 80] = 0.5 * rng.standard_normal(80) * np.exp(-np.arange(80) / 20)
        t += rng.uniform(0.08, 0.25)
    return y


def _slams(seconds: float = 6.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR), np.float32)
    n = int(0.3 * SR)
    env = np.exp(-np.arange(n) / (0.05 * SR))
    for start in (0.5, 2.0, 3.1, 4.6):   # a thud: low-passed noise with a fast decay
        burst = np.convolve(rng.standard_normal(n), np.ones(16) / 16, mode="same") * env
        k = int(start * SR)
        y[k:k + n] += (0.8 * burst / np.abs(burst).max()).astype(np.float32)
    return y


@pytest.mark.parametrize("name, y", [("clicks every 50 ms", _clicks(0.05)), ("clicks every 200 ms", _clicks(0.2)),
                                     ("clicks every 500 ms", _clicks(0.5)), ("key strokes", _keys()),
                                     ("door slams", _slams())])
def test_impulsive_noise_is_not_speech(name, y):
    noise = 1e-3 * np.random.default_rng(2).standard_normal(len(y)).astype(np.float32)
    assert _speech_events(y + noise) == [], name


@pytest.mark.parametrize("dc", [0.02, -0.05])
def test_dc_offset_keeps_the_speech_and_the_label(dc):
    y = fixture_clip(CLIP)
    clean = _speech_events(y)
    shifted = _speech_events(y + np.float32(dc))
    assert len(clean) > 10 and abs(len(shifted) - len(clean)) <= 1
    assert clean[-1].emotion == shifted[-1].emotion
