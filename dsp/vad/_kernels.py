"""Private numba kernels of the VAD: the per-frame speech probability and the decision state machine.

Their state lives in caller-owned arrays (float64 for the probability, int64 for the decisions), laid out
by the index constants below, so that a stream can be split into pushes anywhere.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# Decision state machine modes (ints so that the numba kernel can keep them in an int64 state array).
_SILENCE, _CANDIDATE, _SPEECH, _HANGING = 0, 1, 2, 3
# Layout of the decider's int64 state array.
_MODE, _CAND_START, _LOW_START, _N_ONSET = 0, 1, 2, 3
# Layout of the prob kernel's float64 state array.
_N_SEEN, _LEVEL, _FLOOR, _VAR_LEVEL, _FLAT, _MEAN_FLAT, _VAR_FLAT, _MIN_LEVEL, _PRIMED = range(9)
_N_STATE = 9
_N_FEATURES = 3  # energy SNR, its z-score, flatness z-score (the columns of the debug feature output)
_Z_MIN, _Z_MAX = -5.0, 30.0  # z-score clip: one freak frame must not saturate the logistic


@njit(cache=True, nogil=True)
def _speech_prob_frames(log_mel, power, voiced, lo, hi, params, state, out_prob, out_feat):
    """Per-frame speech probability from energy and spectral flatness against tracked noise statistics.

    log_mel: (n, n_mels) dB; power: (n,) mean bin power; voiced: (n,) bool, the frame is periodic (the
    extractor's f0); mel bands lo:hi are the speech bands.
    params: (21,) see StreamingVad._kernel_params. state: (9,) float64, layout _N_SEEN.._PRIMED,
    updated in place (causal: frame i uses frames <= i only). out_prob: (n,); out_feat: (n, 3).
    """
    a_s, a_down, a_up, a_far, near = params[0], params[1], params[2], params[3], params[4]
    a_var, var_min, cap, amin = params[5], params[6], params[7], params[8]
    bias, w_snr, w_ez, w_fz, zg2 = params[9], params[10], params[11], params[12], params[13] ** 2
    min_level, a_rel, over_min, min_rise, reset_db = params[14], params[15], params[16], params[17], params[18]
    warm_frames, voiced_wait = params[19], params[20]
    n_bands = hi - lo
    for i in range(power.shape[0]):
        n_seen = state[_N_SEEN]
        warm = 1.0 / (n_seen + 2.0)  # running-mean rate while the statistics are young
        e = 10.0 * np.log10(max(power[i], amin))
        quiet = e <= min_level
        # Below min_level the stream counts as silence at min_level (a digitally silent file has no noise
        # to measure an SNR against).
        e = max(e, min_level)
        # Spectral flatness (dB, <= 0) of the speech bands; peak-normalised so 10**x cannot overflow.
        mean_db = 0.0
        peak = -1e30
        for b in range(lo, hi):
            mean_db += log_mel[i, b]
            peak = max(peak, log_mel[i, b])
        lin = 0.0
        for b in range(lo, hi):
            lin += 10.0 ** ((log_mel[i, b] - peak) * 0.1)
        flat = mean_db / n_bands - peak - 10.0 * np.log10(lin / n_bands)
        if quiet and n_seen > 0.0:
            flat = state[_MEAN_FLAT]  # a silent frame's spectrum says nothing
        if n_seen == 0.0:
            state[_LEVEL] = e
            state[_FLAT] = flat
            state[_MIN_LEVEL] = e
        if state[_PRIMED] == 0.0:
            # The first frame is taken as noise (a stream starts before anyone speaks) unless it is voiced: a
            # stream that starts inside a vowel would learn the talker as its noise. Its floor then waits at
            # min_level until the first unvoiced frame, or voiced_wait frames (a hum is periodic too).
            noise_start = quiet or not voiced[i] or n_seen >= voiced_wait
            state[_FLOOR] = e if noise_start else min_level
            state[_VAR_LEVEL] = 1.0
            state[_MEAN_FLAT] = flat
            state[_VAR_FLAT] = 1.0
            state[_PRIMED] = 1.0 if noise_start else 0.0
        # Slow attack (a burst must last to count), fast release (a click leaves no long tail), and the
        # input clipped at cap above the floor so that a loud sound does not take long to come down.
        target = min(e, state[_FLOOR] + cap)
        state[_LEVEL] += (a_s if target > state[_LEVEL] else a_rel) * (target - state[_LEVEL])
        state[_FLAT] += (a_s if flat < state[_FLAT] else a_rel) * (flat - state[_FLAT])  # peakier = attack
        state[_MIN_LEVEL] = min(state[_LEVEL], state[_MIN_LEVEL] + min_rise)
        # Young stream: nothing says its first sound is noise, so the floor follows the dips at once. Later,
        # only a floor far above the dips (it learned a talker, not a fluctuating noise) is pulled down.
        young = n_seen < warm_frames
        if young or state[_FLOOR] > state[_MIN_LEVEL] + reset_db:
            state[_FLOOR] = min(state[_FLOOR], state[_MIN_LEVEL] + over_min)
        # Far above every recent dip: not noise (young stream: any sound clearly above the dips).
        above_min = state[_LEVEL] > state[_MIN_LEVEL] + (over_min if young else reset_db)
        d = state[_LEVEL] - state[_FLOOR]
        df = state[_MEAN_FLAT] - state[_FLAT]  # > 0: peakier than the noise
        snr = min(max(d, -10.0), cap)
        z_e = min(max(d / np.sqrt(state[_VAR_LEVEL] + var_min), _Z_MIN), _Z_MAX)
        z_f = min(max(df / np.sqrt(state[_VAR_FLAT] + var_min), _Z_MIN), _Z_MAX)
        x = bias + w_snr * snr + w_ez * z_e + w_fz * z_f
        out_prob[i] = 1.0 / (1.0 + np.exp(-x))
        out_feat[i, 0] = snr
        out_feat[i, 1] = z_e
        out_feat[i, 2] = z_f
        # Noise floor: fall fast to the noise between words, rise slowly when far above it (speech).
        if d < 0.0:
            rate = a_down
        elif d < near and not above_min:
            rate = max(a_up, warm)
        elif d < near:
            rate = a_up
        else:
            rate = a_far
        state[_FLOOR] += rate * d
        if state[_PRIMED] > 0.0 and not above_min and (d < near or d * d < zg2 * (state[_VAR_LEVEL] + var_min)):
            # Noise-like frame: update the noise's spreads and typical flatness.
            rate = max(a_var, warm)
            state[_VAR_LEVEL] += rate * (d * d - state[_VAR_LEVEL])
            state[_MEAN_FLAT] -= rate * df
            state[_VAR_FLAT] += rate * (df * df - state[_VAR_FLAT])
        state[_N_SEEN] = n_seen + 1.0


@njit(cache=True, nogil=True)
def _decide_frames(prob, dec, first, base, state, onset, offset, m, g, h, pad, lookahead):
    """Hysteresis + minimum-duration state machine over frames first..n-1 of a work window.

    prob: (n,) probabilities; dec: (n,) uint8 decisions, revised in place at most `lookahead` frames
    back (so that the result does not depend on how frames were split into pushes); base: absolute
    index of dec[0]; state: (4,) int64 [mode, candidate start, low-run start, candidate frames >= onset]
    (absolute indices). m, g, h, pad: min speech, min silence, hangover and pad in frames.
    """
    for j in range(first, prob.shape[0]):
        t = base + j
        p = prob[j]
        mode = state[_MODE]
        dec[j] = 1 if mode == _SPEECH or mode == _HANGING else 0
        if mode == _SILENCE:
            if p >= onset:
                state[_MODE] = _CANDIDATE
                state[_CAND_START] = t
                state[_N_ONSET] = 0
                mode = _CANDIDATE
            else:
                dec[j] = 0
                continue
        if mode == _CANDIDATE:
            if p >= onset:
                state[_N_ONSET] += 1
            if p < offset:
                state[_MODE] = _SILENCE
                dec[j] = 0
            elif state[_N_ONSET] >= m:
                # Confirmed: m frames above onset (a click's decaying tail between offset and onset
                # does not count). Frames already final (more than lookahead back) stay as they are.
                state[_MODE] = _SPEECH
                for k in range(max(state[_CAND_START] - pad, t - lookahead, base), t + 1):
                    dec[k - base] = 1
            else:
                dec[j] = 0
        elif mode == _SPEECH:
            if p < offset:
                state[_MODE] = _HANGING
                state[_LOW_START] = t
                dec[j] = 0
                if g == 1:  # a single low frame already ends speech
                    _end_speech(dec, base, state, t, h)
            else:
                dec[j] = 1
        else:  # _HANGING
            if p >= onset:
                state[_MODE] = _SPEECH
                for k in range(max(state[_LOW_START], base), t + 1):
                    dec[k - base] = 1
            else:
                dec[j] = 0
                if t - state[_LOW_START] + 1 >= g:
                    _end_speech(dec, base, state, t, h)


@njit(cache=True, nogil=True)
def _end_speech(dec, base, state, t, h):
    """Close a segment whose low run reached min_silence: keep its first h frames as speech."""
    low = state[_LOW_START]
    for k in range(max(low, base), min(low + h, t + 1)):
        dec[k - base] = 1
    for k in range(max(low + h, base), t + 1):
        dec[k - base] = 0
    state[_MODE] = _SILENCE

