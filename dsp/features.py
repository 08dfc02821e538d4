"""Batch features with librosa 0.11's conventions, computed by the same numba kernels as the stream.

Shapes follow librosa: features along the first axis, frames along the last.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from ._kernels import _log_dct_frames, _mel_power_frames


__all__ = ["melspectrogram", "power_to_db", "log_mel", "mfcc", "delta", "mel_basis", "mel_frequencies", "hann_window",
           "dct_matrix"]


def _check_audio(y, *, allow_empty: bool = True) -> np.ndarray:
    """Validate a mono float signal and return it as contiguous float64 (the one check of dsp's inputs)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"audio must be floating-point, got dtype {y.dtype}")
    if not allow_empty and y.size == 0:
        raise ValueError("audio is empty")
    if not np.all(np.isfinite(y)):
        raise ValueError("audio contains NaN or infinite samples")
    return np.ascontiguousarray(y, dtype=np.float64)


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def mel_frequencies(n_mels: int, *, fmin: float, fmax: float) -> np.ndarray:
    """n_mels frequencies (Hz) evenly spaced on the Slaney mel scale: librosa.mel_frequencies(htk=False), to
    the bit (its operations in its order). Here so that the stream never imports librosa, whose import (with
    scipy.signal behind it) was half of the monitor's cold start."""
    def hz_to_mel(f: float) -> float:
        return _MIN_LOG_MEL + np.log(f / _MIN_LOG_HZ) / _LOGSTEP if f >= _MIN_LOG_HZ else f / _F_SP

    mels = np.linspace(hz_to_mel(float(fmin)), hz_to_mel(float(fmax)), int(n_mels))
    hz = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    hz[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return hz


@lru_cache(maxsize=16)
def mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney mel filterbank (n_mels, 1 + n_fft // 2), float64, read-only and cached: librosa.filters.mel with
    its defaults (Slaney scale and area norm), to the bit (tests compare them)."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    basis = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        basis[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    basis *= (2.0 / (mel_f[2: n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    basis.setflags(write=False)
    return basis


@lru_cache(maxsize=16)
def _mel_bands(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """Per mel band, the [lo, hi) range of FFT bins where its triangle is non-zero."""
    nz = mel_basis(sr, n_fft, n_mels, fmin, fmax) != 0
    lo = np.where(nz.any(axis=1), nz.argmax(axis=1), 0).astype(np.int64)
    hi = np.where(nz.any(axis=1), nz.shape[1] - nz[:, ::-1].argmax(axis=1), 0).astype(np.int64)
    return lo, hi


@lru_cache(maxsize=16)
def hann_window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann of win_length, zero-padded to n_fft around the centre (librosa.util.pad_center)."""
    # scipy.signal.get_window("hann", win_length, fftbins=True), to the bit, without importing scipy.signal
    # (slow): general_cosine's sum over a symmetric grid one point longer, the last point dropped.
    fac = np.linspace(-np.pi, np.pi, win_length + 1)
    win = (0.5 * np.cos(0 * fac) + 0.5 * np.cos(1 * fac))[:-1]
    lpad = (n_fft - win_length) // 2
    out = np.zeros(n_fft)
    out[lpad : lpad + win_length] = win
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Rows of the orthonormal DCT-II, so dct @ x == scipy.fft.dct(x, type=2, norm='ortho')[:n_mfcc]."""
    mat = scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc]
    mat = np.ascontiguousarray(mat)
    mat.setflags(write=False)
    return mat


def _resolve(sr, n_fft, hop_length, win_length, fmax):
    hop_length = n_fft // 4 if hop_length is None else int(hop_length)
    win_length = n_fft if win_length is None else int(win_length)
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}")
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length must be in (0, n_fft={n_fft}], got {win_length}")
    return hop_length, win_length, fmax


def _mel_and_power(y, *, sr, n_fft, hop_length, win_length, n_mels, fmin, fmax, power, center, pad_mode):
    """(mel (n_frames, n_mels) float64, frame power (n_frames,)) through the shared kernel."""
    y64 = _check_audio(y)
    hop_length, win_length, fmax = _resolve(sr, n_fft, hop_length, win_length, fmax)
    if center:
        y64 = np.pad(y64, n_fft // 2, mode=pad_mode)
    if y64.shape[0] < n_fft:
        raise ValueError(f"signal of {y64.shape[0]} samples is shorter than n_fft={n_fft} (use center=True)")
    n_frames = 1 + (y64.shape[0] - n_fft) // hop_length
    out_mel = np.empty((n_frames, n_mels))
    out_pow = np.empty(n_frames)
    key = (sr, n_fft, n_mels, float(fmin), fmax)
    _mel_power_frames(y64, hop_length, hann_window(n_fft, win_length), mel_basis(*key), *_mel_bands(*key),
                      float(power), out_mel, out_pow)
    return out_mel, out_pow


def _out_dtype(y) -> np.dtype:
    return np.float32 if np.asarray(y).dtype == np.float32 else np.float64


def melspectrogram(y, *, sr=22050, n_fft=2048, hop_length=None, win_length=None, center=True,
                   pad_mode="constant", power=2.0, n_mels=128, fmin=0.0, fmax=None) -> np.ndarray:
    """Mel spectrogram, librosa.feature.melspectrogram's defaults (Slaney mel, periodic Hann).

    y: (n,) float -> (n_mels, n_frames), float32 for float32 input.
    """
    mel, _ = _mel_and_power(y, sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_mels=n_mels,
                            fmin=fmin, fmax=fmax, power=power, center=center, pad_mode=pad_mode)
    return mel.T.astype(_out_dtype(y))


def power_to_db(S, *, ref=1.0, amin=1e-10, top_db=80.0) -> np.ndarray:
    """10*log10(S / ref) with librosa's floor `amin` and optional `top_db` clamp below the peak."""
    if amin <= 0:
        raise ValueError("amin must be strictly positive")
    S = np.asarray(S)
    ref_value = ref(S) if callable(ref) else np.abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(amin, S)) - 10.0 * np.log10(np.maximum(amin, ref_value))
    if top_db is not None:
        if top_db < 0:
            raise ValueError("top_db must be non-negative")
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def _log_mel64(y, *, sr, n_fft, hop_length, win_length, center, pad_mode, power, n_mels, fmin, fmax, ref, amin,
               top_db):
    """float64 log-mel (n_frames, n_mels): kept in float64 until the end so the stream matches bit for bit."""
    mel, _ = _mel_and_power(y, sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_mels=n_mels,
                            fmin=fmin, fmax=fmax, power=power, center=center, pad_mode=pad_mode)
    if top_db is None and not callable(ref) and ref == 1.0:
        # The stream's exact per-frame path (no global clamp, reference 1.0).
        return log_dct(mel, amin=amin, n_mfcc=1)[0]
    return power_to_db(mel, ref=ref, amin=amin, top_db=top_db)


def log_mel(y, *, sr=22050, n_fft=2048, hop_length=None, win_length=None, center=True, pad_mode="constant",
            power=2.0, n_mels=128, fmin=0.0, fmax=None, ref=1.0, amin=1e-10, top_db=80.0) -> np.ndarray:
    """power_to_db(melspectrogram(...)). y: (n,) -> (n_mels, n_frames)."""
    S = _log_mel64(y, sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center,
                   pad_mode=pad_mode, power=power, n_mels=n_mels, fmin=fmin, fmax=fmax, ref=ref, amin=amin,
                   top_db=top_db)
    return S.T.astype(_out_dtype(y))


def mfcc(y=None, *, sr=22050, S=None, n_mfcc=20, n_fft=2048, hop_length=None, win_length=None, center=True,
         pad_mode="constant", power=2.0, n_mels=128, fmin=0.0, fmax=None, amin=1e-10, top_db=80.0) -> np.ndarray:
    """MFCC as librosa.feature.mfcc: DCT-II (ortho) of power_to_db(mel), first n_mfcc rows.

    y: (n,) or S: log-power mel (n_mels, n_frames) -> (n_mfcc, n_frames).
    """
    if S is None:
        if y is None:
            raise ValueError("give either y or S")
        if not 0 < n_mfcc <= n_mels:
            raise ValueError(f"n_mfcc must be in (0, n_mels={n_mels}], got {n_mfcc}")
        S64 = _log_mel64(y, sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center,
                         pad_mode=pad_mode, power=power, n_mels=n_mels, fmin=fmin, fmax=fmax, ref=1.0, amin=amin,
                         top_db=top_db)
        return (S64 @ dct_matrix(n_mfcc, n_mels).T).T.astype(_out_dtype(y))
    S = np.asarray(S)
    if S.ndim != 2:
        raise ValueError(f"S must be (n_mels, n_frames), got shape {S.shape}")
    if not 0 < n_mfcc <= S.shape[0]:
        raise ValueError(f"n_mfcc must be in (0, {S.shape[0]}], got {n_mfcc}")
    return (dct_matrix(n_mfcc, S.shape[0]) @ S).astype(S.dtype)


def delta(data, *, width=9, order=1, axis=-1, mode="interp") -> np.ndarray:
    """Savitzky-Golay derivative along `axis`, as librosa.feature.delta."""
    data = np.asarray(data)
    if mode == "interp" and width > data.shape[axis]:
        raise ValueError(f"when mode='interp', width={width} cannot exceed data.shape[axis]={data.shape[axis]}")
    if width < 3 or width % 2 != 1:
        raise ValueError("width must be an odd integer >= 3")
    if order <= 0 or int(order) != order:
        raise ValueError("order must be a positive integer")
    from scipy.signal import savgol_filter  # deferred: slow to import, and the stream never calls delta

    return savgol_filter(data, width, deriv=order, axis=axis, polyorder=order, mode=mode)


def log_dct(mel: np.ndarray, *, amin: float, n_mfcc: int):
    """Per-frame log-mel and MFCC without a global clamp (what the stream computes).

    mel: (n_frames, n_mels) float64 -> (log_mel (n_frames, n_mels), mfcc (n_frames, n_mfcc)).
    """
    n_frames, n_mels = mel.shape
    out_log = np.empty((n_frames, n_mels))
    out_mfcc = np.empty((n_frames, n_mfcc))
    _log_dct_frames(np.ascontiguousarray(mel), float(amin), dct_matrix(n_mfcc, n_mels), out_log, out_mfcc)
    return out_log, out_mfcc
