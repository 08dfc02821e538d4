"""Private numba kernels of the per-frame voice analysis: YIN f0 (shared with dsp.descriptive's whole-signal
``yin``/``f0``) and LPC formants F1-F3 from the 0-4 kHz band. The streaming extractor runs ``_voice_row`` on every
frame; nothing here imports the descriptive (seed-app) features.
"""
from __future__ import annotations

import math

import numpy as np
import rocket_fft  # noqa: F401  (registers np.fft for numba)
from numba import njit

_TINY = float(np.finfo(np.float64).tiny)  # librosa.util.tiny for float64: the "divide by ~0" guard


# --------------------------------------------------------------------------- YIN

@njit(cache=True)
def _yin_cmndf(frames, acf, min_period, max_period, out):  # pragma: no cover
    """Cumulative mean normalised difference (de Cheveigné & Kawahara 2002, eq. 8), librosa's form.

    frames: (t, frame_length); acf: (t, >= max_period + 1) autocorrelation of each frame;
    out: (t, max_period - min_period + 1), out[i, j] is lag min_period + j of frame i.
    librosa's difference is d(k) = 2 * (acf(0) - acf(k)) - sum(x[:k] ** 2), i.e. the textbook
    sum((x[m] - x[m+k]) ** 2) plus the energy of the frame's last k samples; we keep it for parity.
    """
    for i in range(frames.shape[0]):
        head_energy = 0.0
        running_sum = 0.0
        for k in range(1, max_period + 1):
            head_energy += frames[i, k - 1] * frames[i, k - 1]
            d = 2.0 * (acf[i, 0] - acf[i, k]) - head_energy
            running_sum += d
            if k >= min_period:
                # + tiny: a silent frame gives 0 / tiny = 0 instead of NaN, as librosa.
                out[i, k - min_period] = d / (running_sum / k + _TINY)


@njit(cache=True)
def _yin_pick(cmndf, min_period, trough_threshold, out_period, out_aperiodicity):  # pragma: no cover
    """Per frame: first local minimum of cmndf below threshold (else the global minimum),
    refined by parabolic interpolation.

    cmndf: (t, L) with L >= 2; out_period: (t,) period in samples; out_aperiodicity: (t,) cmndf value
    at the chosen (integer) lag.
    """
    n_lags = cmndf.shape[1]
    for i in range(cmndf.shape[0]):
        row = cmndf[i]
        chosen = -1
        for j in range(n_lags):
            if j == 0:
                trough = row[0] < row[1]
            elif j == n_lags - 1:
                trough = row[j] < row[j - 1]
            else:
                trough = row[j] < row[j - 1] and row[j] <= row[j + 1]
            if trough and row[j] < trough_threshold:
                chosen = j
                break
        if chosen < 0:
            chosen = np.argmin(row)
        shift = 0.0
        if 0 < chosen < n_lags - 1:
            a = row[chosen + 1] + row[chosen - 1] - 2.0 * row[chosen]
            b = 0.5 * (row[chosen + 1] - row[chosen - 1])
            if abs(b) < abs(a):
                shift = -b / a
        out_period[i] = min_period + chosen + shift
        out_aperiodicity[i] = row[chosen]


def _yin_periods(*, fmin: float, fmax: float, sr: float, frame_length: int) -> tuple[int, int]:
    """Lag search range (min_period, max_period) in samples; raises on infeasible fmin/fmax."""
    if not (math.isfinite(fmin) and math.isfinite(fmax) and fmin > 0):
        raise ValueError(f"fmin must be a positive finite number, got fmin={fmin!r}, fmax={fmax!r}")
    if fmin >= fmax:
        raise ValueError(f"fmin={fmin:g} must be less than fmax={fmax:g}")
    if fmax > sr / 2:
        raise ValueError(f"fmax={fmax:g} exceeds the Nyquist frequency {sr / 2:g}")
    if sr / fmin >= frame_length - 1:
        raise ValueError(f"fmin={fmin:g} Hz needs frame_length > {int(np.ceil(sr / fmin)) + 1} "
                         f"at sr={sr:g}, got {frame_length}")
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    if max_period - min_period < 1:
        raise ValueError(f"fmin={fmin:g} and fmax={fmax:g} leave fewer than 2 lags at sr={sr:g}")
    return min_period, max_period


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
