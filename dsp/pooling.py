"""One analysis window -> one fixed-length vector: the emotion and gender models' input.

Statistics are taken over the window's loud frames only (within ``_REL_GATE_DB`` of the window's
95th-percentile frame power), so the silence around an utterance does not dilute them. Absolute level
(log-mel mean level, MFCC c0, frame power) is left out on purpose: a microphone's gain says nothing about
the speaker, and leaving it out makes the models gain-invariant without augmentation.

Voice: the last _N_VOICE entries are statistics of the stream's per-frame YIN f0 (semitones) and LPC formants
F1-F3 (from the 0-4 kHz band only, so a telephone line and a studio microphone agree): the cues of vocal-fold
size and vocal-tract length that tell voices apart across channels, and the pitch contour that carries emotion.

Pitch proxy: below 1 kHz the Slaney mel bands are linear (about 46 Hz apart), so voiced frames show the
harmonic comb as a ripple across bands 1-21 with a period of F0 / 46 Hz bands. The autocorrelation of that
ripple at lags of 2-8 bands (F0 of roughly 90-370 Hz) says where the pitch is and how steady it is,
without the raw audio.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .config import FeatureConfig
from .stream import VOICE_ROWS
from .windows import Window

__all__ = ["POOLING_VERSION", "READS_POOLING", "FEATURE_NAMES", "FEATURE_DIM", "POOLED_N_MELS", "POOLED_N_MFCC",
           "check_pooling_config", "window_vector", "vector_dim", "OnlineNorm", "NORM_MIN_VAR", "shrunk_normalise"]

POOLING_VERSION = "4"   # 4: + mean and std of the speech encoder's per-frame states over the loud frames
READS_POOLING = ("3", "4")  # v3 vectors are v4's first FEATURE_DIM entries: models of either version work
_REL_GATE_DB = 30.0   # frames quieter than the window's loud frames by more than this are ignored
_MIN_FRAMES = 8       # below this many loud frames, fall back to every frame
_DELTA_LAG = 2        # frames each side of the delta (±20 ms): a cheap slope, no Savitzky-Golay
POOLED_N_MELS, POOLED_N_MFCC = 64, 20  # the layout of the pooled vector (FeatureConfig's defaults)
_RIPPLE_LO, _RIPPLE_HI = 1, 22   # mel bands of the pitch proxy (about 46-1000 Hz, the linear part)
_RIPPLE_LAGS = (2, 9)            # band lags [2, 9)
_N_VOICE = 12                    # pitch and formant statistics at the end of the vector
_MIN_VOICED = 3                  # voiced frames needed for pitch/formant statistics
_NEUTRAL_ST = 8.1                # 160 Hz in semitones re 100 Hz: between typical male and female voices
_NEUTRAL_FORMANTS_KHZ = (0.5, 1.5, 2.5)   # a neutral vocal tract's F1-F3


def _names(n_mels: int = POOLED_N_MELS, n_mfcc: int = POOLED_N_MFCC) -> tuple[str, ...]:
    names = [f"mel_shape_mean_{i}" for i in range(n_mels)]
    names += [f"mel_std_{i}" for i in range(n_mels)]
    names += [f"mfcc_mean_{i}" for i in range(1, n_mfcc)]
    names += [f"mfcc_std_{i}" for i in range(n_mfcc)]
    names += [f"dmfcc_std_{i}" for i in range(n_mfcc)]
    names += ["power_db_std", "power_db_p90_p50", "power_db_p50_p10", "dpower_db_std", "loud_fraction",
              "spectral_tilt_db", "low_band_ratio_db"]
    names += [f"ripple_acf_mean_lag{k}" for k in range(*_RIPPLE_LAGS)]
    names += [f"ripple_acf_std_lag{k}" for k in range(*_RIPPLE_LAGS)]
    names += ["voiced_fraction", "f0_st_median", "f0_st_p10", "f0_st_p90", "f0_st_std", "f0_st_slope",
              "aperiodicity_median", "f1_khz_median", "f2_khz_median", "f3_khz_median", "f1_khz_std", "f2_khz_std"]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _names()
FEATURE_DIM = len(FEATURE_NAMES)


@njit(cache=True, nogil=True)
def _mean_std_rows(x, sel, n_sel, out_mean, out_std):
    """Mean and population std of each row of x (rows, n) over the columns where sel is True."""
    for r in range(x.shape[0]):
        s = 0.0
        ss = 0.0
        for t in range(x.shape[1]):
            if sel[t]:
                v = float(x[r, t])
                s += v
                ss += v * v
        m = s / n_sel
        out_mean[r] = m
        out_std[r] = np.sqrt(max(ss / n_sel - m * m, 0.0))


@njit(cache=True, nogil=True)
def _pool(log_mel, mfcc, power, rel_gate_db, min_frames, lag, r_lo, r_hi, lag_lo, lag_hi, out, loud_out):
    """Spectral window statistics into out (FEATURE_DIM - _N_VOICE,) float64 and the loud-frame mask into
    loud_out (n,) bool. log_mel (n_mels, n), mfcc (n_mfcc, n), power (n,)."""
    n_mels, n = log_mel.shape
    n_mfcc = mfcc.shape[0]
    p_db = np.empty(n)
    for t in range(n):
        p_db[t] = 10.0 * np.log10(float(power[t]) + 1e-10)
    srt = np.sort(p_db)
    p10 = srt[int(0.10 * (n - 1) + 0.5)]
    p50 = srt[int(0.50 * (n - 1) + 0.5)]
    p90 = srt[int(0.90 * (n - 1) + 0.5)]
    p95 = srt[int(0.95 * (n - 1) + 0.5)]
    loud = p_db >= p95 - rel_gate_db
    n_loud = int(loud.sum())
    if n_loud < min_frames:
        loud[:] = True
        n_loud = n
    k = 0
    mel_mean = np.empty(n_mels)
    mel_std = np.empty(n_mels)
    _mean_std_rows(log_mel, loud, n_loud, mel_mean, mel_std)
    avg = mel_mean.mean()
    for b in range(n_mels):
        out[k + b] = mel_mean[b] - avg          # spectral shape; the overall level is dropped
        out[k + n_mels + b] = mel_std[b]
    k += 2 * n_mels
    mf_mean = np.empty(n_mfcc)
    mf_std = np.empty(n_mfcc)
    _mean_std_rows(mfcc, loud, n_loud, mf_mean, mf_std)
    for c in range(1, n_mfcc):
        out[k + c - 1] = mf_mean[c]
    k += n_mfcc - 1
    for c in range(n_mfcc):
        out[k + c] = mf_std[c]
    k += n_mfcc
    # delta-MFCC spread over loud centre frames (all centre frames if fewer than 2 are loud)
    n_d = n - 2 * lag
    sel = loud[lag : n - lag].copy()
    n_sel = int(sel.sum())
    if n_sel < 2:
        sel[:] = True
        n_sel = n_d
    for c in range(n_mfcc):
        s = 0.0
        ss = 0.0
        for t in range(n_d):
            if sel[t]:
                v = float(mfcc[c, t + 2 * lag]) - float(mfcc[c, t])
                s += v
                ss += v * v
        m = s / n_sel
        out[k + c] = np.sqrt(max(ss / n_sel - m * m, 0.0))
    k += n_mfcc
    s = 0.0
    ss = 0.0
    for t in range(n):
        if loud[t]:
            s += p_db[t]
            ss += p_db[t] * p_db[t]
    m = s / n_loud
    out[k] = np.sqrt(max(ss / n_loud - m * m, 0.0))
    out[k + 1] = p90 - p50
    out[k + 2] = p50 - p10
    s = 0.0
    ss = 0.0
    for t in range(n - 1):
        v = p_db[t + 1] - p_db[t]
        s += v
        ss += v * v
    m = s / (n - 1)
    out[k + 3] = np.sqrt(max(ss / (n - 1) - m * m, 0.0))
    out[k + 4] = n_loud / n
    half = n_mels // 2
    out[k + 5] = mel_mean[half:].mean() - mel_mean[:half].mean()
    out[k + 6] = mel_mean[:8].mean() - mel_mean[8:24].mean()   # energy near F0 vs the first formants
    k += 7
    # pitch proxy: autocorrelation of the low-band ripple, mean and std over loud frames
    n_lags = lag_hi - lag_lo
    m_b = r_hi - r_lo
    z = np.empty(m_b)
    acc = np.zeros(n_lags)
    acc2 = np.zeros(n_lags)
    for t in range(n):
        if not loud[t]:
            continue
        zm = 0.0
        for b in range(m_b):
            z[b] = log_mel[r_lo + b, t]
            zm += z[b]
        zm /= m_b
        den = 1e-9
        for b in range(m_b):
            z[b] -= zm
            den += z[b] * z[b]
        for j in range(n_lags):
            L = lag_lo + j
            r = 0.0
            for b in range(m_b - L):
                r += z[b] * z[b + L]
            r /= den
            acc[j] += r
            acc2[j] += r * r
    for j in range(n_lags):
        m = acc[j] / n_loud
        out[k + j] = m
        out[k + n_lags + j] = np.sqrt(max(acc2[j] / n_loud - m * m, 0.0))
    loud_out[:] = loud


@njit(cache=True, nogil=True)
def _pool_voice(voice, loud, out):
    """Pitch and formant statistics of the loud frames into out (_N_VOICE,). voice (VOICE_ROWS, n) as
    dsp.stream.FeatureFrames.voice. With fewer than _MIN_VOICED voiced frames the pitch/formant entries
    take neutral values (_NEUTRAL_*) and voiced_fraction says why."""
    n = voice.shape[1]
    st = np.empty(n)
    ap = np.empty(n)
    fm = np.empty((3, n))
    n_loud = 0
    n_ap = 0
    n_st = 0
    n_fm = 0
    slope = 0.0
    n_slope = 0
    prev = np.nan
    for t in range(n):
        if not loud[t]:
            prev = np.nan
            continue
        n_loud += 1
        if not np.isnan(voice[1, t]):   # NaN: frames that came without the voice analysis
            ap[n_ap] = voice[1, t]
            n_ap += 1
        f0 = voice[0, t]
        if np.isnan(f0):
            prev = np.nan
            continue
        s = 12.0 * np.log2(f0 / 100.0)   # semitones re 100 Hz: pitch perception is logarithmic
        st[n_st] = s
        n_st += 1
        if not np.isnan(prev):
            slope += abs(s - prev)
            n_slope += 1
        prev = s
        if not np.isnan(voice[4, t]):
            for j in range(3):
                fm[j, n_fm] = voice[2 + j, t] / 1000.0
            n_fm += 1
    out[0] = n_st / max(n_loud, 1)
    if n_st >= _MIN_VOICED:
        v = st[:n_st]
        out[1] = np.median(v)
        out[2] = np.percentile(v, 10.0)
        out[3] = np.percentile(v, 90.0)
        out[4] = v.std()
        out[5] = slope / n_slope if n_slope else 0.0
    else:
        out[1] = out[2] = out[3] = _NEUTRAL_ST
        out[4] = out[5] = 0.0
    out[6] = np.median(ap[:n_ap]) if n_ap else 1.0
    if n_fm >= _MIN_VOICED:
        for j in range(3):
            out[7 + j] = np.median(fm[j, :n_fm])
        out[10] = fm[0, :n_fm].std()
        out[11] = fm[1, :n_fm].std()
    else:
        out[7], out[8], out[9] = _NEUTRAL_FORMANTS_KHZ
        out[10] = out[11] = 0.0


def check_pooling_config(config: FeatureConfig) -> None:
    """Raise ValueError unless ``config`` has the mel and MFCC counts the pooled vector's layout is built for.

    FeatureConfig lets n_mels / n_mfcc vary (the batch features take any); the pooled statistics, their names
    and every shipped model are fixed to 64 mels and 20 MFCCs, so a pipeline refuses other values at once.
    """
    if (config.n_mels, config.n_mfcc) != (POOLED_N_MELS, POOLED_N_MFCC):
        raise ValueError(f"the pooled window vector is built for n_mels={POOLED_N_MELS} and n_mfcc={POOLED_N_MFCC}, "
                         f"got n_mels={config.n_mels} and n_mfcc={config.n_mfcc}")


def vector_dim(embed_dim: int = 0) -> int:
    """Length of window_vector's output for windows carrying embed_dim encoder states per frame."""
    return FEATURE_DIM + 2 * embed_dim


def window_vector(window: Window) -> np.ndarray:
    """Pooled statistics of one window. window.log_mel (64, n), mfcc (20, n), power (n,) -> (FEATURE_DIM,) float32,
    followed, when the window carries encoder states embed (E, n), by their mean and std over the loud frames
    (-> (FEATURE_DIM + 2E,)).

    Pure and deterministic; needs n >= 5 frames. See FEATURE_NAMES for the layout.
    """
    log_mel, mfcc, power = window.log_mel, window.mfcc, window.power
    n = power.shape[0]
    if log_mel.shape[0] != POOLED_N_MELS or mfcc.shape[0] != POOLED_N_MFCC:
        raise ValueError(f"window_vector expects {POOLED_N_MELS} mels and {POOLED_N_MFCC} MFCCs, got "
                         f"{log_mel.shape[0]} and {mfcc.shape[0]}")
    if n < 2 * _DELTA_LAG + 1 or log_mel.shape[1] != n or mfcc.shape[1] != n:
        raise ValueError(f"window needs at least {2 * _DELTA_LAG + 1} frames with matching log_mel/mfcc/power, "
                         f"got {log_mel.shape}, {mfcc.shape}, {power.shape}")
    if window.voice.shape != (VOICE_ROWS, n):
        raise ValueError(f"window voice must be ({VOICE_ROWS}, {n}), got {window.voice.shape}")
    out = np.empty(FEATURE_DIM)
    loud = np.empty(n, dtype=np.bool_)
    _pool(log_mel, mfcc, power, _REL_GATE_DB, _MIN_FRAMES, _DELTA_LAG, _RIPPLE_LO, _RIPPLE_HI,
          _RIPPLE_LAGS[0], _RIPPLE_LAGS[1], out, loud)
    _pool_voice(window.voice, loud, out[FEATURE_DIM - _N_VOICE:])
    if window.embed is None:
        return out.astype(np.float32)
    e = window.embed.shape[0]
    if window.embed.shape != (e, n):
        raise ValueError(f"window embed must be (E, {n}), got {window.embed.shape}")
    stats = np.empty(2 * e)
    _mean_std_rows(window.embed, loud, max(int(loud.sum()), 1), stats[:e], stats[e:])
    return np.concatenate((out, stats)).astype(np.float32)


NORM_MIN_VAR = 1e-12  # OnlineNorm's variance floor: a feature constant in a session stays finite


def shrunk_normalise(x, *, total, total_sq, n, prior_mean, prior_count: float, prior_std=None) -> np.ndarray:
    """OnlineNorm's formula (see there), float64: x normalised with the sum (and sum of squares) of the n vectors
    seen, shrunk toward the prior. Broadcasts, so training can replay a whole session at once with cumulative
    sums and an (N, 1) column of counts; total_sq is read only with prior_std."""
    m = (total + prior_count * prior_mean) / (n + prior_count)
    if prior_std is None:
        return x - m + prior_mean
    q = (total_sq + prior_count * (prior_mean * prior_mean + prior_std * prior_std)) / (n + prior_count)
    return (x - m) * (prior_std / np.sqrt(np.maximum(q - m * m, NORM_MIN_VAR))) + prior_mean


class OnlineNorm:
    """Per-speaker (per-session) mean (and optionally variance) normalisation with running statistics, push-style.

    transform(x) = x - m + prior_mean, where m = (sum of seen x + prior_count * prior_mean) / (n + prior_count):
    the session's running mean shrunk toward the training mean, so the first windows pass almost unchanged.
    With prior_std, also the spread: transform(x) = (x - m) * prior_std / s + prior_mean, where s**2 is the
    session's running variance shrunk the same way toward prior_std**2 (its second moment toward
    prior_mean**2 + prior_std**2), so a speaker with a livelier voice is scaled down to the training spread.
    update(x) adds speech windows to the statistics; reset() starts a new session.
    """

    def __init__(self, prior_mean, *, prior_count: float = 20.0, prior_std=None):
        self.prior_mean = np.asarray(prior_mean, dtype=np.float64).copy()
        if self.prior_mean.ndim != 1:
            raise ValueError(f"prior_mean must be 1-D, got shape {self.prior_mean.shape}")
        if prior_count <= 0:
            raise ValueError(f"prior_count must be positive, got {prior_count}")
        self.prior_count = float(prior_count)
        self.prior_std = None
        if prior_std is not None:
            self.prior_std = np.asarray(prior_std, dtype=np.float64).copy()
            if self.prior_std.shape != self.prior_mean.shape or not np.all(self.prior_std > 0):
                raise ValueError("prior_std must be positive, with prior_mean's shape")
        self.reset()

    def reset(self) -> None:
        self._sum = np.zeros_like(self.prior_mean)
        self._sumsq = np.zeros_like(self.prior_mean)
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
        self._sumsq += (x * x).sum(axis=0)
        self._n += x.shape[0]

    def transform(self, x) -> np.ndarray:
        """x: (D,) or (k, D) -> same shape float32, normalised with the statistics so far."""
        return shrunk_normalise(np.asarray(x, dtype=np.float64), total=self._sum, total_sq=self._sumsq, n=self._n,
                                prior_mean=self.prior_mean, prior_count=self.prior_count,
                                prior_std=self.prior_std).astype(np.float32)
