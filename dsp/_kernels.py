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

from .descriptive import _yin_cmndf, _yin_pick


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


# --------------------------------------------------------------------------- voice: f0 and formants per frame

VOICE_ROWS = 5          # f0_hz, aperiodicity, F1, F2, F3 (Hz); f0 and formants NaN where the frame is unvoiced
_LPC_ORDER = 10         # 0-4 kHz seen as an 8 kHz signal: 2 poles per kHz + 2 for the source and tilt
_PRE_EMPHASIS = 0.95    # flatten the glottal -12 dB/octave so LPC poles go to the formants
_ENV_POINTS = 256       # LPC envelope sampled every 15.6 Hz over 0-4 kHz; peaks refined parabolically
_MIN_FORMANT_HZ = 150.0 # envelope peaks below this are the source / F0, not F1
_FORMANT_BAND_HZ = 4000.0  # formants from the band every telephone line carries too


@njit(cache=True, nogil=True)
def _lpc_basis(n_bins, order, pre):
    """cos(pi k b / (n_bins - 1)) * |1 - pre e^{-jw}|^2 for lags k <= order over bins b: the band's
    power spectrum -> the autocorrelation of its (pre-emphasised) 0..Nyquist signal. (order + 1, n_bins)"""
    out = np.empty((order + 1, n_bins))
    for b in range(n_bins):
        w = np.pi * b / (n_bins - 1)
        emph = 1.0 + pre * pre - 2.0 * pre * np.cos(w)
        for k in range(order + 1):
            out[k, b] = np.cos(k * w) * emph
    return out


@njit(cache=True, nogil=True)
def _envelope_grid(n_points, order):
    """cos and sin of k w for the envelope's frequency grid. (2, n_points, order + 1)"""
    out = np.empty((2, n_points, order + 1))
    for j in range(n_points):
        w = np.pi * j / (n_points - 1)
        for k in range(order + 1):
            out[0, j, k] = np.cos(k * w)
            out[1, j, k] = np.sin(k * w)
    return out


@njit(cache=True, nogil=True)
def _levinson(r, a):
    """LPC coefficients a[0..p] (a[0] = 1) from autocorrelation r[0..p]; returns False if r is degenerate."""
    p = a.shape[0] - 1
    a[:] = 0.0
    a[0] = 1.0
    err = r[0]
    if err <= 0.0:
        return False
    tmp = np.empty(p + 1)
    for i in range(1, p + 1):
        acc = r[i]
        for j in range(1, i):
            acc += a[j] * r[i - j]
        k = -acc / err
        tmp[:] = a
        for j in range(1, i):
            a[j] = tmp[j] + k * tmp[i - j]
        a[i] = k
        err *= 1.0 - k * k
        if err <= 0.0:
            return False
    return True


@njit(cache=True, nogil=True)
def _formants(power, basis, grid, out):
    """F1-F3 (Hz) of one frame from the LPC envelope of its 0-4 kHz power spectrum into out[0:3] (NaN if absent).

    Only the band below 4 kHz is used, so 8 kHz telephone audio and wideband audio give the same numbers.
    power: (>= n_bins,) power spectrum bins; basis: _lpc_basis; grid: _envelope_grid.
    """
    order = basis.shape[0] - 1
    n_bins = basis.shape[1]
    r = np.zeros(order + 1)
    for k in range(order + 1):
        acc = 0.0
        for b in range(n_bins):
            acc += basis[k, b] * power[b]
        r[k] = acc
    r[0] *= 1.0 + 1e-9   # white-noise correction: keeps Levinson stable on near-singular frames
    out[:] = np.nan
    a = np.empty(order + 1)
    if not _levinson(r, a):
        return
    n_pts = grid.shape[1]
    env = np.empty(n_pts)   # |A(e^jw)|^2: formants are its minima
    for j in range(n_pts):
        re = 0.0
        im = 0.0
        for k in range(order + 1):
            re += a[k] * grid[0, j, k]
            im -= a[k] * grid[1, j, k]
        env[j] = re * re + im * im
    hz_per_pt = _FORMANT_BAND_HZ / (n_pts - 1)
    found = 0
    for j in range(1, n_pts - 1):
        if env[j] < env[j - 1] and env[j] <= env[j + 1]:
            den = env[j - 1] - 2.0 * env[j] + env[j + 1]
            shift = 0.5 * (env[j - 1] - env[j + 1]) / den if den > 0.0 else 0.0
            hz = (j + shift) * hz_per_pt
            if hz >= _MIN_FORMANT_HZ:
                out[found] = hz
                found += 1
                if found == 3:
                    return


@njit(cache=True, nogil=True)
def _voice_row(y, start, n, raw, power, sr, min_p, max_p, trough, aper_thr, basis, grid, cmndf, period, aper, out):
    """f0 (YIN over the frame's raw n samples, as dsp.descriptive.f0) and, when voiced, formants. out (VOICE_ROWS,)"""
    energy = 0.0
    for k in range(n):
        v = y[start + k]
        raw[k] = v
        energy += v * v
    spec = np.fft.rfft(raw)
    for k in range(spec.shape[0]):
        spec[k] = spec[k].real * spec[k].real + spec[k].imag * spec[k].imag
    acf = np.fft.irfft(spec, raw.shape[0])
    _yin_cmndf(raw[:n].reshape(1, n), acf.reshape(1, acf.shape[0]), min_p, max_p, cmndf)
    _yin_pick(cmndf, min_p, trough, period, aper)
    out[1] = aper[0]
    out[2:] = np.nan
    # digital silence is "perfectly periodic" to YIN: voiced needs energy as well
    if aper[0] < aper_thr and energy > 1e-10 * n:
        out[0] = sr / period[0]
        _formants(power, basis, grid, out[2:])
    else:
        out[0] = np.nan
