"""Private numba kernels. Non-allocating where it matters: they write into caller-provided arrays.

numpy.fft inside nopython code comes from the rocket-fft package, which registers itself with numba
on import (importing it here makes that explicit rather than relying on entry points).

The mel filterbank is applied through per-band bin ranges ``[band_lo[m], band_hi[m])``: Slaney
triangles are zero outside a few bins, so this is ~30x fewer multiply-adds than the dense product.
"""
from __future__ import annotations

import numpy as np
import rocket_fft  # noqa: F401  (registers np.fft for numba)
from numba import njit

from ._voice import _voice_row


@njit(cache=True, nogil=True, inline="always")
def _mel_row(y, start, window, mel_basis, band_lo, band_hi, power_exp, frame, power, out_row):
    """Mel energies of the frame starting at y[start] into out_row; returns the frame's mean |X|^2."""
    n_fft = window.shape[0]
    for k in range(n_fft):
        frame[k] = y[start + k] * window[k]
    spec = np.fft.rfft(frame)
    total = 0.0
    for k in range(power.shape[0]):
        p = spec[k].real * spec[k].real + spec[k].imag * spec[k].imag
        total += p
        if power_exp != 2.0:
            p = p ** (0.5 * power_exp)
        power[k] = p
    for m in range(mel_basis.shape[0]):
        acc = 0.0
        for k in range(band_lo[m], band_hi[m]):
            acc += mel_basis[m, k] * power[k]
        out_row[m] = acc
    return total / power.shape[0]


@njit(cache=True, nogil=True)
def _mel_power_frames(y, hop_length, window, mel_basis, band_lo, band_hi, power_exp, out_mel, out_power):
    """Mel spectrogram of successive frames of y (no padding: frame i starts at i*hop).

    y: (n,) float64; window: (n_fft,); mel_basis: (n_mels, n_fft//2+1); power_exp as librosa's `power`.
    out_mel: (n_frames, n_mels) float64; out_power: (n_frames,) mean |X|^2 per bin.
    """
    frame = np.empty(window.shape[0])
    power = np.empty(mel_basis.shape[1])
    for i in range(out_mel.shape[0]):
        out_power[i] = _mel_row(y, i * hop_length, window, mel_basis, band_lo, band_hi, power_exp, frame, power,
                                out_mel[i])


@njit(cache=True, nogil=True, inline="always")
def _log_dct_row(mel_row, amin, dct, log_row, mfcc_row):
    n_mels = mel_row.shape[0]
    for m in range(n_mels):
        v = mel_row[m]
        if v < amin:
            v = amin
        log_row[m] = 10.0 * np.log10(v)
    for c in range(dct.shape[0]):
        acc = 0.0
        for m in range(n_mels):
            acc += dct[c, m] * log_row[m]
        mfcc_row[c] = acc


@njit(cache=True, nogil=True)
def _log_dct_frames(mel, amin, dct, out_log, out_mfcc):
    """Per-frame 10*log10(max(mel, amin)) then orthonormal DCT-II rows (float64 in and out)."""
    for i in range(mel.shape[0]):
        _log_dct_row(mel[i], amin, dct, out_log[i], out_mfcc[i])


@njit(cache=True, nogil=True)
def _stream_frames(y, hop_length, window, mel_basis, band_lo, band_hi, amin, dct, voice_params, lpc_basis, env_grid,
                   enc_basis, enc_lo, enc_hi, out_log, out_mfcc, out_power, out_voice, out_enc):
    """The streaming path, fused: frame -> power -> mel -> log -> DCT, written as float32 rows.

    Computed in float64 and rounded once at the end, so it equals the batch path bit for bit.
    out_log: (n_frames, n_mels) float32; out_mfcc: (n_frames, n_mfcc) float32; out_power: (n_frames,) float32.
    out_voice: (n_frames, VOICE_ROWS) float32 (see _voice_row), or (0, VOICE_ROWS) to skip the voice analysis.
    voice_params: (sr, min_period, max_period, trough_threshold, aperiodicity_threshold) as float64;
    lpc_basis: _lpc_basis(bins up to 4 kHz, ...); env_grid: _envelope_grid(...) (precomputed once per extractor).
    enc_basis/enc_lo/enc_hi: a second mel filterbank (the speech encoder's 40 bands) applied to the same power
    spectrum into out_enc (n_frames, n_enc) float32 as power, or (0, n_enc) to skip it.
    """
    n_fft = window.shape[0]
    frame = np.empty(n_fft)
    power = np.empty(mel_basis.shape[1])
    mel = np.empty(mel_basis.shape[0])
    log = np.empty(mel_basis.shape[0])
    mf = np.empty(dct.shape[0])
    do_voice = out_voice.shape[0] == out_log.shape[0]
    do_enc = out_enc.shape[0] == out_log.shape[0]
    raw = np.zeros(2 * n_fft)     # zero-padded raw frame: its |FFT|^2 is the linear autocorrelation
    min_p, max_p = int(voice_params[1]), int(voice_params[2])
    cmndf = np.empty((1, max_p - min_p + 1))
    period = np.empty(1)
    aper = np.empty(1)
    for i in range(out_log.shape[0]):
        out_power[i] = _mel_row(y, i * hop_length, window, mel_basis, band_lo, band_hi, 2.0, frame, power, mel)
        _log_dct_row(mel, amin, dct, log, mf)
        for m in range(log.shape[0]):
            out_log[i, m] = log[m]
        for c in range(mf.shape[0]):
            out_mfcc[i, c] = mf[c]
        if do_enc:
            for m in range(enc_basis.shape[0]):
                acc = 0.0
                for k in range(enc_lo[m], enc_hi[m]):
                    acc += enc_basis[m, k] * power[k]
                out_enc[i, m] = acc
        if do_voice:
            _voice_row(y, i * hop_length, n_fft, raw, power, voice_params[0], min_p, max_p, voice_params[3],
                       voice_params[4], lpc_basis, env_grid, cmndf, period, aper, out_voice[i])
