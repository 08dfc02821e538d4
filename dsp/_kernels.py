"""Private numba kernels. Non-allocating where it matters: they write into caller-provided arrays.

numpy.fft inside nopython code comes from the rocket-fft package, which registers itself with numba
on import (importing it here makes that explicit rather than relying on entry points).
"""
from __future__ import annotations

import numpy as np
import rocket_fft  # noqa: F401  (registers np.fft for numba)
from numba import njit


@njit(cache=True, nogil=True)
def _mel_power_frames(y, hop_length, window, mel_basis, power_exp, out_mel, out_power):
    """Mel power spectrogram of successive frames of y (no padding: frame i starts at i*hop).

    y: (n,) float64; window: (n_fft,) float64; mel_basis: (n_mels, n_fft//2+1) float64.
    power_exp: exponent of the magnitude (2.0 = power, 1.0 = magnitude), as librosa's `power`.
    out_mel: (n_frames, n_mels) float64, out_power: (n_frames,) mean power per bin of the frame.
    """
    n_fft = window.shape[0]
    n_frames = out_mel.shape[0]
    n_bins = mel_basis.shape[1]
    n_mels = mel_basis.shape[0]
    frame = np.empty(n_fft, dtype=np.float64)
    power = np.empty(n_bins, dtype=np.float64)
    for i in range(n_frames):
        start = i * hop_length
        for k in range(n_fft):
            frame[k] = y[start + k] * window[k]
        spec = np.fft.rfft(frame)
        total = 0.0
        for k in range(n_bins):
            p = spec[k].real * spec[k].real + spec[k].imag * spec[k].imag
            total += p
            if power_exp != 2.0:
                p = p ** (0.5 * power_exp)
            power[k] = p
        out_power[i] = total / n_bins
        for m in range(n_mels):
            acc = 0.0
            for k in range(n_bins):
                acc += mel_basis[m, k] * power[k]
            out_mel[i, m] = acc


@njit(cache=True, nogil=True)
def _log_dct_frames(mel, amin, dct, out_log, out_mfcc):
    """Per-frame 10*log10(max(mel, amin)) then DCT-II (ortho) rows.

    mel: (n_frames, n_mels); dct: (n_mfcc, n_mels); out_log: (n_frames, n_mels); out_mfcc: (n_frames, n_mfcc).
    """
    n_frames, n_mels = mel.shape
    n_mfcc = dct.shape[0]
    for i in range(n_frames):
        for m in range(n_mels):
            v = mel[i, m]
            if v < amin:
                v = amin
            out_log[i, m] = 10.0 * np.log10(v)
        for c in range(n_mfcc):
            acc = 0.0
            for m in range(n_mels):
                acc += dct[c, m] * out_log[i, m]
            out_mfcc[i, c] = acc
