"""Whole-signal helpers: the streaming path (StreamingFeatures + StreamingVad) pushed once, and its frame
decisions as time segments."""
from __future__ import annotations

import numpy as np

from ..config import SAMPLE_RATE, FeatureConfig
from ..stream import StreamingFeatures
from .config import VadConfig
from .energy import StreamingVad


def speech_mask(y, *, sr: int = SAMPLE_RATE, config: VadConfig = VadConfig(),
                feature_config: FeatureConfig | None = None) -> np.ndarray:
    """Per-frame speech decisions of a whole signal through StreamingFeatures + StreamingVad.

    y: (n,) float mono at sr -> (n_frames,) bool, n_frames = 1 + (n - n_fft) // hop_length (0 if shorter).
    """
    fc = FeatureConfig(sr=sr) if feature_config is None else feature_config
    if fc.sr != sr:
        raise ValueError(f"sr={sr} differs from feature_config.sr={fc.sr}")
    fx, vad = StreamingFeatures(fc), StreamingVad(config, feature_config=fc)
    head, tail = vad.push(fx.push(y)), vad.flush()
    return np.concatenate((head.speech, tail.speech))


def mask_to_segments(speech, *, sr: int = SAMPLE_RATE, hop_length: int = 160, n_fft: int = 512) -> list:
    """(n_frames,) bool -> [(start_s, end_s), ...]; frame i stands for its central hop (dsp.vad docstring)."""
    speech = np.asarray(speech, dtype=bool)
    if speech.ndim != 1:
        raise ValueError(f"speech must be 1-D, got shape {speech.shape}")
    edges = np.flatnonzero(np.diff(np.concatenate(([False], speech, [False])).astype(np.int8)))
    offset = (n_fft - hop_length) / 2.0
    return [((a * hop_length + offset) / sr, (b * hop_length + offset) / sr) for a, b in zip(edges[::2], edges[1::2])]


def vad_segments(y, *, sr: int = SAMPLE_RATE, config: VadConfig = VadConfig(),
                 feature_config: FeatureConfig | None = None) -> list:
    """Speech segments of a whole signal as [(start_s, end_s), ...] (same code path as the stream)."""
    fc = FeatureConfig(sr=sr) if feature_config is None else feature_config
    mask = speech_mask(y, sr=sr, config=config, feature_config=fc)
    return mask_to_segments(mask, sr=sr, hop_length=fc.hop_length, n_fft=fc.n_fft)
