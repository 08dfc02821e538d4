"""One analysis window -> one fixed-length vector: the emotion and gender models' input.

Statistics are taken over the window's loud frames only (within ``_REL_GATE_DB`` of the window's
95th-percentile frame power), so the silence around an utterance does not dilute them. Absolute level
(log-mel mean level, MFCC c0, frame power) is left out on purpose: a microphone's gain says nothing about
the speaker, and leaving it out makes the models gain-invariant without augmentation.
"""
from __future__ import annotations

import numpy as np

from .windows import Window

__all__ = ["POOLING_VERSION", "FEATURE_NAMES", "FEATURE_DIM", "window_vector", "OnlineNorm"]

POOLING_VERSION = "1"
_REL_GATE_DB = 30.0   # frames quieter than the window's loud frames by more than this are ignored
_MIN_FRAMES = 8       # below this many loud frames, fall back to every frame
_DELTA_LAG = 2        # frames each side of the delta (±20 ms): a cheap slope, no Savitzky-Golay
_N_MELS, _N_MFCC = 64, 20


def _names(n_mels: int = _N_MELS, n_mfcc: int = _N_MFCC) -> tuple[str, ...]:
    names = [f"mel_shape_mean_{i}" for i in range(n_mels)]
    names += [f"mel_std_{i}" for i in range(n_mels)]
    names += [f"mfcc_mean_{i}" for i in range(1, n_mfcc)]
    names += [f"mfcc_std_{i}" for i in range(n_mfcc)]
    names += [f"dmfcc_std_{i}" for i in range(n_mfcc)]
    names += ["power_db_std", "power_db_p90_p50", "power_db_p50_p10", "dpower_db_std", "loud_fraction",
              "spectral_tilt_db", "low_band_ratio_db"]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _names()
FEATURE_DIM = len(FEATURE_NAMES)


def window_vector(window: Window) -> np.ndarray:
    """Pooled statistics of one window. window.log_mel (64, n), mfcc (20, n), power (n,) -> (FEATURE_DIM,) float32.

    Pure and deterministic; needs n >= 3 frames.
    """
    log_mel, mfcc, power = window.log_mel, window.mfcc, window.power
    n = power.shape[0]
    if log_mel.shape[0] != _N_MELS or mfcc.shape[0] != _N_MFCC:
        raise ValueError(f"window_vector expects {_N_MELS} mels and {_N_MFCC} MFCCs, got "
                         f"{log_mel.shape[0]} and {mfcc.shape[0]}")
    if n < 2 * _DELTA_LAG + 1:
        raise ValueError(f"window needs at least {2 * _DELTA_LAG + 1} frames, got {n}")
    p_db = 10.0 * np.log10(power.astype(np.float64) + 1e-10)
    srt = np.sort(p_db)   # one sort for all four percentiles (np.percentile is ~4x slower here)
    p10, p50, p90, p95 = (srt[int(q * (n - 1) + 0.5)] for q in (0.10, 0.50, 0.90, 0.95))
    loud = p_db >= p95 - _REL_GATE_DB
    if loud.sum() < _MIN_FRAMES:
        loud[:] = True
    lm = log_mel[:, loud].astype(np.float64)
    mf = mfcc[:, loud].astype(np.float64)
    mel_mean = lm.mean(axis=1)
    mel_shape = mel_mean - mel_mean.mean()       # spectral shape; the overall level is dropped
    d = (mfcc[:, 2 * _DELTA_LAG:] - mfcc[:, : -2 * _DELTA_LAG]).astype(np.float64)
    d = d[:, loud[_DELTA_LAG:-_DELTA_LAG]] if loud[_DELTA_LAG:-_DELTA_LAG].sum() >= 2 else d
    lp = p_db[loud]
    dp = np.diff(p_db)
    tilt = mel_mean[_N_MELS // 2:].mean() - mel_mean[: _N_MELS // 2].mean()
    low = mel_mean[:8].mean() - mel_mean[8:24].mean()   # energy near F0 vs the first formants
    out = np.concatenate((mel_shape, lm.std(axis=1), mf[1:].mean(axis=1), mf.std(axis=1), d.std(axis=1),
                          (lp.std(), p90 - p50, p50 - p10, dp.std(), loud.mean(), tilt, low)))
    return out.astype(np.float32)


class OnlineNorm:
    """Per-speaker (per-session) mean normalisation with running statistics, push-style.

    transform(x) = x - m + prior_mean, where m = (sum of seen x + prior_count * prior_mean) / (n + prior_count):
    the session's running mean shrunk toward the training mean, so the first windows pass almost unchanged.
    update(x) adds speech windows to the statistics; reset() starts a new session.
    """

    def __init__(self, prior_mean, *, prior_count: float = 20.0):
        self.prior_mean = np.asarray(prior_mean, dtype=np.float64).copy()
        if self.prior_mean.ndim != 1:
            raise ValueError(f"prior_mean must be 1-D, got shape {self.prior_mean.shape}")
        if prior_count <= 0:
            raise ValueError(f"prior_count must be positive, got {prior_count}")
        self.prior_count = float(prior_count)
        self.reset()

    def reset(self) -> None:
        self._sum = np.zeros_like(self.prior_mean)
        self._n = 0

    @property
    def n_seen(self) -> int:
        return self._n

    def update(self, x) -> None:
        """Add speech vectors x: (D,) or (k, D)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.shape[1] != self.prior_mean.shape[0]:
            raise ValueError(f"expected vectors of dim {self.prior_mean.shape[0]}, got {x.shape[1]}")
        self._sum += x.sum(axis=0)
        self._n += x.shape[0]

    def transform(self, x) -> np.ndarray:
        """x: (D,) or (k, D) -> same shape float32, normalised with the statistics so far."""
        x = np.asarray(x, dtype=np.float64)
        m = (self._sum + self.prior_count * self.prior_mean) / (self._n + self.prior_count)
        return (x - m + self.prior_mean).astype(np.float32)
