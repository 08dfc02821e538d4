"""The speech gate: which analysis windows the emotion and gender models see. One implementation, used by
training (models.featurize) and by the live pipeline (streamer.pipeline), so both gate alike.

A window is a speech window when
1. the VAD marks at least ``min_fraction`` of its frames as speech (live, counting the frames the VAD has
   settled, and at least ``min_speech_ms`` of them: a stream's first, shorter windows), and
2. at least ``min_voiced_fraction`` of its loud frames are voiced (the stream's YIN f0): clicks, key strokes,
   door slams and other impulsive noise can pass an energy VAD, but they have no pitch. Whispered speech has
   none either and is not classified.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pooling import FEATURE_NAMES

__all__ = ["SpeechGate", "SPEECH_GATE"]

_VOICED = FEATURE_NAMES.index("voiced_fraction")


@dataclass(frozen=True)
class SpeechGate:
    min_fraction: float = 0.3          # share of the window's frames the VAD calls speech
    min_voiced_fraction: float = 0.1   # share of its loud frames with a pitch (5 % of corpus speech windows
                                       # are below 0.25, 2 % below 0.02; click trains and key strokes are at 0)

    def enough_speech(self, speech_frames, n_frames):
        """Rule 1 for one window (ints) or many (arrays)."""
        return np.asarray(speech_frames) >= self.min_fraction * np.asarray(n_frames)

    def voiced(self, vectors: np.ndarray):
        """Rule 2 from dsp.pooling.window_vector output: (D,) -> bool, (n, D) -> (n,) bool."""
        return np.asarray(vectors)[..., _VOICED] >= self.min_voiced_fraction


SPEECH_GATE = SpeechGate()
