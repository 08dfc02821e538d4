"""Descriptive features of the seed app, batch: chroma, spectral shape, ZCR, RMS and YIN f0.

Every function re-implements the librosa 0.11 function of the same name (same keyword names,
same defaults, same numbers within the tolerances stated in tests/test_descriptive.py); the only
librosa code used is the chroma filterbank (``librosa.filters.chroma``).

Conventions shared by all functions:
- ``y`` is a 1-D floating-point signal, computed on in float64.
- Spectral features take either ``y`` or ``S`` (a magnitude spectrogram, ``(1 + n_fft // 2, t)``;
  for ``chroma_stft`` a *power* spectrogram, as in librosa), never both.
- Frames are centred (``center=True``: ``frame_length // 2`` samples of padding on both sides) and
  ``t = 1 + (len(padded y) - frame_length) // hop_length``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator

import numpy as np
import scipy.fft

from ._voice import _yin_cmndf, _yin_periods, _yin_pick
from .features import _check_audio, hann_window

__all__ = [
    "F0Track",
    "chroma_stft",
    "f0",
    "rms",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_rolloff",
    "summary",
    "yin",
    "zero_crossing_rate",
]

_TINY = float(np.finfo(np.float64).tiny)  # librosa.util.tiny for float64: the "divide by ~0" guard
_ZC_THRESHOLD = 1e-10  # librosa.zero_crossings default: |y| <= this counts as 0 (positive)
_CONTRAST_AMIN = 1e-10  # librosa.power_to_db defaults, applied to spectral-contrast peaks/valleys
_CONTRAST_TOP_DB = 80.0
_PROB_WIDTH = 0.1  # aperiodicity scale of the voiced_prob logistic (see f0)
_YIN_BLOCK_FRAMES = 512  # frames per FFT batch: ~16 MB of spectra at frame_length=2048
_RMS_DB_FLOOR = 1e-5  # amplitude floor (-100 dBFS) for summary's rms dB, as librosa.amplitude_to_db


# ----------------------------------------------------------------------------- validation


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_sr(sr: object) -> float:
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)):
        raise ValueError(f"sr must be a positive number, got {sr!r}")
    if not (math.isfinite(sr) and sr > 0):
        raise ValueError(f"sr must be a positive number, got {sr!r}")
    return float(sr)


def _check_open_unit(name: str, value: float) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return float(value)


def _check_spectrogram(S: object) -> np.ndarray:
    arr = np.asarray(S)
    if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"S must be a real, non-negative spectrogram, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"S must have shape (1 + n_fft // 2, t) with t >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("S contains NaN or inf")
    if np.any(arr < 0):
        raise ValueError("S must be non-negative (a magnitude or power spectrogram)")
    return np.asarray(arr, dtype=np.float64)


def _frame_count(n_samples: int, *, frame_length: int, hop_length: int, center: bool) -> int:
    """Number of frames; raises if a non-centred signal is shorter than one frame."""
    padded = n_samples + 2 * (frame_length // 2) if center else n_samples
    if padded < frame_length:
        raise ValueError(
            f"y has {n_samples} samples, fewer than frame_length={frame_length} (use center=True)"
        )
    return 1 + (padded - frame_length) // hop_length


def _frames(y: np.ndarray, *, frame_length: int, hop_length: int, center: bool,
            pad_mode: str) -> np.ndarray:
    """Strided view of frames, shape (t, frame_length); padded like librosa when center."""
    _frame_count(y.shape[0], frame_length=frame_length, hop_length=hop_length, center=center)
    if center:
        y = np.pad(y, frame_length // 2, mode=pad_mode)
    return np.lib.stride_tricks.sliding_window_view(y, frame_length)[::hop_length]


# ----------------------------------------------------------------------------- spectrogram


def _stft_magnitude(y: np.ndarray, *, n_fft: int, hop_length: int, win_length: int | None,
                    center: bool) -> np.ndarray:
    """|STFT| of y, shape (1 + n_fft // 2, t); periodic Hann, 'constant' centre padding."""
    n_fft = _check_positive_int("n_fft", n_fft)
    hop_length = _check_positive_int("hop_length", hop_length)
    win_length = n_fft if win_length is None else _check_positive_int("win_length", win_length)
    if win_length > n_fft:
        raise ValueError(f"win_length={win_length} must not exceed n_fft={n_fft}")
    frames = _frames(y, frame_length=n_fft, hop_length=hop_length, center=center,
                     pad_mode="constant")
    return np.abs(np.fft.rfft(frames * hann_window(n_fft, win_length), axis=-1)).T


def _spectrogram(y: object, S: object, *, n_fft: int, hop_length: int, win_length: int | None,
                 center: bool, power: float = 1.0) -> tuple[np.ndarray, int]:
    """(S, n_fft) from exactly one of y or S; S is used as given (librosa's contract)."""
    if (y is None) == (S is None):
        raise ValueError("give exactly one of y (audio) or S (spectrogram)")
    if S is not None:
        S = _check_spectrogram(S)
        return S, 2 * (S.shape[0] - 1)
    mag = _stft_magnitude(_check_audio(y, allow_empty=False), n_fft=n_fft, hop_length=hop_length,
                          win_length=win_length, center=center)
    return (mag if power == 1.0 else mag**power), int(n_fft)


def _normalize_columns(X: np.ndarray, norm: float | None) -> np.ndarray:
    """Scale each column to unit `norm` (inf or p > 0); near-zero columns are left as they are."""
    if norm is None:
        return X
    if norm == np.inf:
        length = np.max(np.abs(X), axis=0, keepdims=True)
    elif isinstance(norm, (int, float, np.number)) and not isinstance(norm, bool) and 0 < norm < np.inf:
        length = np.sum(np.abs(X) ** norm, axis=0, keepdims=True) ** (1.0 / norm)
    else:
        raise ValueError(f"norm must be None, np.inf or a positive number, got {norm!r}")
    # Silent frames stay all-zero instead of becoming 0/0 (librosa.util.normalize, fill=None).
    length = np.where(length < _TINY, 1.0, length)
    return X / length


# ----------------------------------------------------------------------------- spectral shape


def spectral_centroid(*, y: np.ndarray | None = None, sr: float = 22050, S: np.ndarray | None = None,
                      n_fft: int = 2048, hop_length: int = 512, win_length: int | None = None,
                      center: bool = True) -> np.ndarray:
    """Magnitude-weighted mean frequency per frame.

    y: (n,) audio, or S: (1 + n_fft // 2, t) magnitude spectrogram.
    Returns (1, t) in Hz; an all-zero frame gives 0.
    """
    sr = _check_sr(sr)
    S, n_fft = _spectrogram(y, S, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                            center=center)
    return _centroid(S, sr=sr, n_fft=n_fft)


def _centroid(S: np.ndarray, *, sr: float, n_fft: int) -> np.ndarray:
    freq = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    return freq[np.newaxis, :] @ _normalize_columns(S, 1)


def spectral_bandwidth(*, y: np.ndarray | None = None, sr: float = 22050, S: np.ndarray | None = None,
                       n_fft: int = 2048, hop_length: int = 512, win_length: int | None = None,
                       center: bool = True, p: float = 2) -> np.ndarray:
    """p-th order spread of frequency around the spectral centroid, per frame.

    bandwidth[t] = (sum_k S_norm[k, t] * |freq[k] - centroid[t]| ** p) ** (1 / p), with S_norm
    each column of S divided by its sum.
    y: (n,) audio, or S: (1 + n_fft // 2, t) magnitude spectrogram. Returns (1, t) in Hz.
    """
    sr = _check_sr(sr)
    if isinstance(p, bool) or not (isinstance(p, (int, float, np.number)) and 0 < p < np.inf):
        raise ValueError(f"p must be a positive number, got {p!r}")
    S, n_fft = _spectrogram(y, S, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                            center=center)
    freq = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    deviation = np.abs(freq[:, np.newaxis] - _centroid(S, sr=sr, n_fft=n_fft))
    return np.sum(_normalize_columns(S, 1) * deviation**p, axis=0, keepdims=True) ** (1.0 / p)


def spectral_rolloff(*, y: np.ndarray | None = None, sr: float = 22050, S: np.ndarray | None = None,
                     n_fft: int = 2048, hop_length: int = 512, win_length: int | None = None,
                     center: bool = True, roll_percent: float = 0.85) -> np.ndarray:
    """Lowest bin centre frequency below which `roll_percent` of the frame's magnitude lies.

    y: (n,) audio, or S: (1 + n_fft // 2, t) magnitude spectrogram.
    Returns (1, t) in Hz; an all-zero frame gives 0.
    """
    sr = _check_sr(sr)
    roll_percent = _check_open_unit("roll_percent", roll_percent)
    S, n_fft = _spectrogram(y, S, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                            center=center)
    cumulative = np.cumsum(S, axis=0)
    # The last row always reaches the threshold, so argmax finds a bin in every frame.
    first = np.argmax(cumulative >= roll_percent * cumulative[-1], axis=0)
    return np.fft.rfftfreq(n_fft, d=1.0 / sr)[first][np.newaxis, :]


def spectral_contrast(*, y: np.ndarray | None = None, sr: float = 22050, S: np.ndarray | None = None,
                      n_fft: int = 2048, hop_length: int = 512, win_length: int | None = None,
                      center: bool = True, n_bands: int = 6, fmin: float = 200.0,
                      quantile: float = 0.02, linear: bool = False) -> np.ndarray:
    """Peak-minus-valley per octave band (Jiang et al. 2002), as librosa computes it.

    Band 0 is [0, fmin], band k is [fmin * 2**(k-1), fmin * 2**k], the last band runs to Nyquist.
    Peak / valley are the means of the top / bottom `quantile` of the band's magnitudes.
    y: (n,) audio, or S: (1 + n_fft // 2, t) magnitude spectrogram.
    Returns (n_bands + 1, t): dB differences, or magnitude differences if `linear`.
    """
    sr = _check_sr(sr)
    n_bands = _check_positive_int("n_bands", n_bands)
    quantile = _check_open_unit("quantile", quantile)
    if not fmin > 0:
        raise ValueError(f"fmin must be positive, got {fmin!r}")
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
    if np.any(edges[:-1] >= 0.5 * sr):
        raise ValueError(f"band edge {edges[-2]:g} Hz reaches Nyquist {sr / 2:g} Hz; "
                         "reduce fmin or n_bands")
    S, n_fft = _spectrogram(y, S, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                            center=center)
    freq = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    bands = [_contrast_band(freq, low=edges[k], high=edges[k + 1], k=k, n_bands=n_bands)
             for k in range(n_bands + 1)]
    valley = np.empty((n_bands + 1, S.shape[1]))
    peak = np.empty_like(valley)
    for k, band in enumerate(bands):
        sub_band = np.sort(S[band][:-1] if k < n_bands else S[band], axis=0)
        n_side = max(int(np.rint(quantile * np.count_nonzero(band))), 1)
        valley[k] = np.mean(sub_band[:n_side], axis=0)
        peak[k] = np.mean(sub_band[-n_side:], axis=0)
    if linear:
        return peak - valley
    return _power_to_db(peak) - _power_to_db(valley)


def _contrast_band(freq: np.ndarray, *, low: float, high: float, k: int, n_bands: int) -> np.ndarray:
    """Boolean bin mask of contrast band k, with librosa's edge rules (one bin below, top to Nyquist)."""
    band = (freq >= low) & (freq <= high)
    idx = np.flatnonzero(band)
    # Below the top band, the highest bin is dropped later (it belongs to the next band).
    if idx.size < (2 if k == 0 else 1):
        raise ValueError(f"contrast band {k} ({low:g}-{high:g} Hz) has no FFT bins; increase n_fft")
    if k > 0:
        band[idx[0] - 1] = True
    if k == n_bands:
        band[idx[-1] + 1:] = True
    return band


def _power_to_db(x: np.ndarray) -> np.ndarray:
    # librosa feeds *magnitudes* to power_to_db with its default top_db=80 over the whole array;
    # we keep that quirk so the numbers match the seed app's.
    db = 10.0 * np.log10(np.maximum(_CONTRAST_AMIN, x))
    return np.maximum(db, db.max() - _CONTRAST_TOP_DB)


# ----------------------------------------------------------------------------- chroma


@functools.lru_cache(maxsize=16)
def _chroma_filterbank(sr: float, n_fft: int, tuning: float, n_chroma: int) -> np.ndarray:
    """(n_chroma, 1 + n_fft // 2) librosa chroma filterbank, cached (it costs ~ms per call)."""
    import librosa.filters  # lazy: only chroma needs librosa, and importing it is slow

    fb = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)
    fb.flags.writeable = False  # shared by the cache
    return fb


def chroma_stft(*, y: np.ndarray | None = None, sr: float = 22050, S: np.ndarray | None = None,
                n_fft: int = 2048, hop_length: int = 512, win_length: int | None = None,
                center: bool = True, norm: float | None = np.inf, tuning: float | None = None,
                n_chroma: int = 12) -> np.ndarray:
    """Chromagram from a power spectrogram.

    y: (n,) audio, or S: (1 + n_fft // 2, t) *power* spectrogram (as librosa).
    tuning: deviation from A440 in fractions of a chroma bin; None estimates it from S
    (librosa.estimate_tuning: parabolic peak picking between 150 and 4000 Hz).
    norm: per-frame normalisation (np.inf: max = 1; None: raw energies).
    Returns (n_chroma, t), row 0 = C.
    """
    sr = _check_sr(sr)
    n_chroma = _check_positive_int("n_chroma", n_chroma)
    S, n_fft = _spectrogram(y, S, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                            center=center, power=2.0)
    if tuning is None:
        tuning = _estimate_tuning(S, sr=sr, n_fft=n_fft, bins_per_octave=n_chroma)
    elif not (isinstance(tuning, (int, float, np.number)) and math.isfinite(tuning)):
        raise ValueError(f"tuning must be a finite number or None, got {tuning!r}")
    raw = _chroma_filterbank(sr, n_fft, float(tuning), n_chroma) @ S
    return _normalize_columns(raw, norm)


def _estimate_tuning(S: np.ndarray, *, sr: float, n_fft: int, bins_per_octave: int) -> float:
    """Tuning in fractions of a bin: histogram peak of the strong spectral peaks' offsets."""
    pitch, mag = _piptrack(S, sr=sr, n_fft=n_fft, fmin=150.0, fmax=4000.0, threshold=0.1)
    found = pitch > 0
    floor = np.median(mag[found]) if found.any() else 0.0
    freqs = pitch[found & (mag >= floor)]
    if freqs.size == 0:
        return 0.0
    # Offset of each peak from the equal-tempered grid (A440), in bins, wrapped to [-0.5, 0.5).
    residual = np.mod(bins_per_octave * np.log2(freqs / (440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    counts, edges = np.histogram(residual, np.linspace(-0.5, 0.5, 101))
    return float(edges[np.argmax(counts)])


def _piptrack(S: np.ndarray, *, sr: float, n_fft: int, fmin: float, fmax: float,
              threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated frequency and height of each per-frame spectral peak above threshold * max.

    Returns (pitch, mag), both shaped like S (n_bins, t) and 0 where there is no peak.
    """
    freq = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    shift = _parabolic_shift(S)
    dskew = 0.5 * np.gradient(S, axis=0) * shift
    gated = S * (S > threshold * S.max(axis=0, keepdims=True))
    is_peak = np.zeros(S.shape, dtype=bool)
    is_peak[1:-1] = (gated[1:-1] > gated[:-2]) & (gated[1:-1] >= gated[2:])
    is_peak[-1] = gated[-1] > gated[-2]
    is_peak &= ((fmin <= freq) & (freq < min(fmax, sr / 2)))[:, np.newaxis]
    rows, cols = np.nonzero(is_peak)
    pitch = np.zeros_like(S)
    mag = np.zeros_like(S)
    pitch[rows, cols] = (rows + shift[rows, cols]) * sr / n_fft
    mag[rows, cols] = S[rows, cols] + dskew[rows, cols]
    return pitch, mag


def _parabolic_shift(x: np.ndarray) -> np.ndarray:
    """Vertex offset of the parabola through rows (k-1, k, k+1), shape of x.

    0 on the edge rows and where the vertex lies a bin or more away (librosa's rule).
    """
    shift = np.zeros_like(x)
    a = x[2:] + x[:-2] - 2 * x[1:-1]
    b = 0.5 * (x[2:] - x[:-2])
    inside = np.abs(b) < np.abs(a)
    shift[1:-1][inside] = -b[inside] / a[inside]
    return shift


# ----------------------------------------------------------------------------- time domain


def zero_crossing_rate(*, y: np.ndarray, frame_length: int = 2048, hop_length: int = 512,
                       center: bool = True) -> np.ndarray:
    """Fraction of sample pairs in each frame whose signs differ.

    |y| <= 1e-10 counts as 0, and 0 as positive; the first sample of a frame never counts;
    centre padding repeats the edge samples (librosa). y: (n,). Returns (1, t) in [0, 1).
    """
    y = _check_audio(y, allow_empty=False)
    frame_length = _check_positive_int("frame_length", frame_length)
    hop_length = _check_positive_int("hop_length", hop_length)
    frames = _frames(y, frame_length=frame_length, hop_length=hop_length, center=center,
                     pad_mode="edge")
    negative = np.signbit(np.where(np.abs(frames) <= _ZC_THRESHOLD, 0.0, frames))
    crossings = np.count_nonzero(negative[:, 1:] != negative[:, :-1], axis=1)
    return (crossings / frame_length)[np.newaxis, :]


def rms(*, y: np.ndarray, frame_length: int = 2048, hop_length: int = 512,
        center: bool = True) -> np.ndarray:
    """Root-mean-square amplitude per frame (zero centre padding). y: (n,). Returns (1, t)."""
    y = _check_audio(y, allow_empty=False)
    frame_length = _check_positive_int("frame_length", frame_length)
    hop_length = _check_positive_int("hop_length", hop_length)
    frames = _frames(y, frame_length=frame_length, hop_length=hop_length, center=center,
                     pad_mode="constant")
    # einsum avoids materialising frames**2 (t * frame_length floats).
    return np.sqrt(np.einsum("tn,tn->t", frames, frames) / frame_length)[np.newaxis, :]


# ----------------------------------------------------------------------------- YIN


def _yin_core(y: object, *, fmin: float, fmax: float, sr: float, frame_length: int,
              hop_length: int | None, trough_threshold: float, center: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated YIN: (f0 (t,) Hz, aperiodicity (t,), frames (t, frame_length) view)."""
    y = _check_audio(y, allow_empty=False)
    sr = _check_sr(sr)
    frame_length = _check_positive_int("frame_length", frame_length)
    hop_length = frame_length // 4 if hop_length is None else hop_length
    hop_length = _check_positive_int("hop_length", hop_length)
    if not trough_threshold > 0:
        raise ValueError(f"trough_threshold must be positive, got {trough_threshold!r}")
    min_period, max_period = _yin_periods(fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length)
    n_frames = _frame_count(y.shape[0], frame_length=frame_length, hop_length=hop_length,
                            center=center)
    y_padded = np.pad(y, frame_length // 2, mode="constant") if center else y
    frames = np.lib.stride_tricks.sliding_window_view(y_padded, frame_length)[::hop_length]
    cmndf = np.empty((n_frames, max_period - min_period + 1))
    # Autocorrelation by FFT (as librosa.autocorrelate), in blocks to bound memory on long files.
    n_pad = scipy.fft.next_fast_len(2 * frame_length - 1, real=True)
    for start in range(0, n_frames, _YIN_BLOCK_FRAMES):
        block = frames[start:start + _YIN_BLOCK_FRAMES]
        spectrum = np.fft.rfft(block, n=n_pad, axis=1)
        acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_pad, axis=1)
        _yin_cmndf(block, acf, min_period, max_period, cmndf[start:start + _YIN_BLOCK_FRAMES])
    period = np.empty(n_frames)
    aperiodicity = np.empty(n_frames)
    _yin_pick(cmndf, min_period, float(trough_threshold), period, aperiodicity)
    return sr / period, aperiodicity, frames


def yin(y: np.ndarray, *, fmin: float, fmax: float, sr: float = 22050, frame_length: int = 2048,
        hop_length: int | None = None, trough_threshold: float = 0.1,
        center: bool = True) -> np.ndarray:
    """Fundamental frequency by YIN (de Cheveigné & Kawahara 2002), as librosa.yin.

    Every frame gets an estimate (no voicing decision; see f0 for that).
    y: (n,). hop_length defaults to frame_length // 4. Returns f0: (t,) in Hz.
    """
    f0_hz, _, _ = _yin_core(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length,
                            hop_length=hop_length, trough_threshold=trough_threshold, center=center)
    return f0_hz


@dataclasses.dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous
class F0Track:
    """f0 result; unpacks like librosa.pyin: ``f0_hz, voiced_flag, voiced_prob = f0(...)``.

    f0: (t,) Hz, NaN where unvoiced; voiced_flag: (t,) bool; voiced_prob: (t,) in [0, 1].
    """

    f0: np.ndarray
    voiced_flag: np.ndarray
    voiced_prob: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.f0, self.voiced_flag, self.voiced_prob))


def f0(y: np.ndarray, *, fmin: float, fmax: float, sr: float = 22050, frame_length: int = 2048,
       hop_length: int | None = None, trough_threshold: float = 0.1,
       aperiodicity_threshold: float = 0.4, silence_top_db: float = 60.0,
       center: bool = True) -> F0Track:
    """YIN f0 with a voicing decision (a fast stand-in for librosa.pyin).

    A frame is voiced when its aperiodicity (the YIN cumulative mean normalised difference at the
    chosen lag: ~0 for a periodic frame, ~0.9 for noise) is below `aperiodicity_threshold` and its
    RMS is within `silence_top_db` of the loudest frame (digital silence looks perfectly periodic).
    The 0.4 default separates RAVDESS speech at librosa's default frames (2048 samples): loud
    frames pyin calls voiced have median aperiodicity ~0.22, those it calls unvoiced ~0.63.
    voiced_prob heuristic: 1 / (1 + exp((aperiodicity - aperiodicity_threshold) / 0.1)), and 0 for
    silent frames; so voiced_flag == (voiced_prob > 0.5).
    y: (n,). Returns F0Track of (t,) arrays on yin's frames; f0 is NaN where unvoiced.
    """
    if not aperiodicity_threshold > 0:
        raise ValueError(f"aperiodicity_threshold must be positive, got {aperiodicity_threshold!r}")
    if not silence_top_db > 0:
        raise ValueError(f"silence_top_db must be positive, got {silence_top_db!r}")
    f0_hz, aperiodicity, frames = _yin_core(
        y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length, hop_length=hop_length,
        trough_threshold=trough_threshold, center=center)
    energy = np.einsum("tn,tn->t", frames, frames)
    loud = energy > max(energy.max(), _TINY) * 10.0 ** (-silence_top_db / 10.0)
    voiced_prob = np.where(loud, _logistic((aperiodicity_threshold - aperiodicity) / _PROB_WIDTH), 0.0)
    voiced_flag = loud & (aperiodicity < aperiodicity_threshold)
    return F0Track(f0=np.where(voiced_flag, f0_hz, np.nan), voiced_flag=voiced_flag,
                   voiced_prob=voiced_prob)


def _logistic(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)) without overflow warnings


# ----------------------------------------------------------------------------- per-clip summary


def summary(y: np.ndarray, *, sr: float, fmin: float = 65.0,
            fmax: float = 1000.0) -> dict[str, float | list]:
    """Per-clip descriptive numbers for the per-emotion comparison chart (librosa default frames).

    Means are over all frames (silence included); f0 statistics over voiced frames only (NaN if
    none). rms dB uses a 1e-5 amplitude floor (-100 dBFS). Needs sr > 12800 Hz (contrast bands).
    Returns {"f0_median_hz", "f0_std_hz", "voiced_fraction", "rms_db_mean", "centroid_mean_hz",
    "bandwidth_mean_hz", "rolloff_mean_hz", "zcr_mean": float,
    "contrast_mean_db": list of 7 floats, "chroma_mean": list of 12 floats (C first)}.
    """
    y = _check_audio(y, allow_empty=False)
    sr = _check_sr(sr)
    track = f0(y, fmin=fmin, fmax=fmax, sr=sr)
    voiced = track.f0[track.voiced_flag]
    S = _stft_magnitude(y, n_fft=2048, hop_length=512, win_length=None, center=True)
    rms_db = 20.0 * np.log10(np.maximum(rms(y=y), _RMS_DB_FLOOR))
    return {
        "f0_median_hz": float(np.median(voiced)) if voiced.size else math.nan,
        "f0_std_hz": float(np.std(voiced)) if voiced.size else math.nan,
        "voiced_fraction": float(np.mean(track.voiced_flag)),
        "rms_db_mean": float(np.mean(rms_db)),
        "centroid_mean_hz": float(np.mean(spectral_centroid(S=S, sr=sr))),
        "bandwidth_mean_hz": float(np.mean(spectral_bandwidth(S=S, sr=sr))),
        "rolloff_mean_hz": float(np.mean(spectral_rolloff(S=S, sr=sr))),
        "zcr_mean": float(np.mean(zero_crossing_rate(y=y))),
        "contrast_mean_db": np.mean(spectral_contrast(S=S, sr=sr), axis=1).tolist(),
        "chroma_mean": np.mean(chroma_stft(S=S**2, sr=sr), axis=1).tolist(),
    }

