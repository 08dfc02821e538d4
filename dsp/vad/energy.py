"""The energy + flatness VAD (StreamingVad) over the feature extractor's frames (no FFT of its own).

Per frame: the energy against an adaptive noise floor (SNR and z-score over the noise's spread) and the
spectral flatness of the speech bands against the noise's, combined by a logistic into a probability
(dsp.vad._kernels), then decided by the shared state machine (dsp.vad.decision).
"""
from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ..features import mel_frequencies
from ..stream import FeatureFrames
from ._kernels import (_FLAT, _FLOOR, _LEVEL, _MEAN_FLAT, _N_FEATURES, _N_STATE, _PRIMED, _VAR_FLAT, _VAR_LEVEL,
                       _speech_prob_frames)
from .config import VadConfig, _check_frame_ms
from .decision import VadResult, _Decider, _joined

_START_LOUD_PERCENT = 40.0   # the start hold's "loud" frames: the vowels of a talker, the peaks of babble


class StreamingVad:
    """Push-style VAD over ``StreamingFeatures`` frames.

    >>> fx, vad = StreamingFeatures(), StreamingVad()
    >>> res = vad.push(fx.push(block))   # decisions for frames up to lookahead_frames behind the input
    >>> tail = vad.flush()               # at the end of the stream
    """

    def __init__(self, config: VadConfig = VadConfig(), *, feature_config: FeatureConfig = FeatureConfig()):
        _check_frame_ms(config, feature_config)
        self.config = config
        self.feature_config = feature_config
        # Band edges of the same Slaney mel scale as the extractor.
        centres = mel_frequencies(feature_config.n_mels + 2, fmin=feature_config.fmin, fmax=feature_config.fmax)[1:-1]
        in_band = np.flatnonzero((centres >= config.speech_fmin) & (centres <= config.speech_fmax))
        if in_band.size < 2:
            raise ValueError(f"fewer than 2 mel bands between speech_fmin={config.speech_fmin} and "
                             f"speech_fmax={config.speech_fmax} Hz")
        self._lo, self._hi = int(in_band[0]), int(in_band[-1]) + 1
        self._kparams = self._kernel_params(config, feature_config)
        self._decider = _Decider(config)
        self.reset()

    @staticmethod
    def _kernel_params(c: VadConfig, fc: FeatureConfig) -> np.ndarray:
        def rate(ms):  # EMA coefficient per frame for a time constant in ms (0 ms: no smoothing)
            return 1.0 - math.exp(-c.frame_ms / ms) if ms > 0 else 1.0

        return np.array([rate(c.smooth_ms), rate(c.noise_down_ms), rate(c.noise_up_ms), rate(c.noise_up_far_ms),
                         c.noise_near_db, rate(c.noise_var_ms), c.noise_var_min_db2, c.snr_cap_db, fc.amin,
                         c.bias, c.w_energy_snr, c.w_energy_z, c.w_flatness_z, c.noise_z_gate,
                         c.min_level_db, rate(c.release_ms), c.floor_over_min_db,
                         c.min_rise_db_per_s * c.frame_ms / 1000.0, c.floor_reset_db,
                         c.young_ms / c.frame_ms, c.voiced_start_ms / c.frame_ms], dtype=np.float64)

    @property
    def lookahead_frames(self) -> int:
        return self.config.lookahead_frames

    @property
    def delay_frames(self) -> int:
        """Frames by which final decisions trail the newest frame pushed: the decision lookahead (after the first
        start_hold_frames of a stream; until then no decision is final)."""
        return self.config.lookahead_frames

    @property
    def start_hold_frames(self) -> int:
        """Frames at the start of a stream whose probabilities wait until all of them have arrived."""
        return self.config.start_hold_frames

    def advance(self, *, samples: np.ndarray, frames: FeatureFrames) -> VadResult:
        """The common VAD step (see ``make_vad``): this VAD reads the extractor's frames."""
        return self.push(frames)

    def reset(self) -> None:
        """Forget the noise statistics and pending decisions; the next push must start at frame 0."""
        self._state = np.zeros(_N_STATE, dtype=np.float64)
        self._next_frame = 0
        self._held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []   # the start hold's (log_mel, power, voiced)
        self._decider.reset()

    def probabilities(self, frames: FeatureFrames, out_features: np.ndarray | None = None) -> np.ndarray:
        """Advance the noise floors over `frames`; float32 undelayed probabilities of the frames released: all of
        `frames` once the stream is past its start hold, none while it is in it, and the whole hold at once when
        its last frame arrives (no decisions).

        Used by push; out_features, if given, (n, 3) float64, receives the features of the logistic
        (energy SNR dB, energy z-score, flatness z-score), for tuning: a push that releases exactly its own
        frames (the whole stream at once, or any push after the hold).
        """
        self._check_frames(frames)
        n = frames.n
        if out_features is not None and (out_features.shape != (n, _N_FEATURES) or out_features.dtype != np.float64):
            raise ValueError(f"out_features must be float64 of shape ({n}, {_N_FEATURES}), "
                             f"got {out_features.dtype} {out_features.shape}")
        log_mel = np.ascontiguousarray(frames.log_mel.T)
        power = np.ascontiguousarray(frames.power)
        # Without the extractor's voice analysis (voice=False) no frame counts as voiced.
        voiced = np.zeros(n, dtype=np.bool_) if frames.voice is None else np.isfinite(frames.voice[0])
        first, hold = self._next_frame, self.config.start_hold_frames
        self._next_frame += n
        k = min(n, max(0, hold - first))   # frames of this push inside the start hold
        if k:
            self._held.append((log_mel[:k], power[:k].copy(), voiced[:k]))  # power may be the caller's
            if first + k < hold:   # the hold is not complete yet: nothing is released
                if out_features is not None:
                    raise ValueError("out_features needs a push that releases its own frames (this one is held)")
                return np.zeros(0, dtype=np.float32)
            if out_features is not None and len(self._held) > 1:
                raise ValueError("out_features needs a push that releases its own frames (an earlier push was held)")
        feat = np.empty((n, _N_FEATURES), dtype=np.float64) if out_features is None else out_features
        # The tuning features of held frames land in out_features only when this push held them all.
        probs = [self._release_start(feat[:k] if len(self._held) == 1 else None)] if k else []
        probs.append(self._run(log_mel[k:], power[k:], voiced[k:], feat[k:]))
        return np.concatenate(probs).astype(np.float32)

    def _run(self, log_mel, power, voiced, feat) -> np.ndarray:
        prob = np.empty(power.shape[0], dtype=np.float64)
        _speech_prob_frames(log_mel, power, voiced, self._lo, self._hi, self._kparams, self._state, prob, feat)
        return prob

    def _release_start(self, feat: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of the held first frames: from the deepest dip between syllables if the stream opened
        inside a voice, else exactly as if they had been pushed one by one."""
        log_mel, power, voiced = (np.concatenate(a) for a in zip(*self._held))
        self._held = []
        level, flat = self._smoothed(log_mel, power)
        below = self._start_floor_below(level, voiced)
        if below is not None:
            j = int(np.argmin(level))
            self._state[[_FLOOR, _VAR_LEVEL, _MEAN_FLAT, _VAR_FLAT, _PRIMED]] = level[j] - below, 1.0, flat[j], 1.0, 1.0
        if feat is None:
            feat = np.empty((power.shape[0], _N_FEATURES), dtype=np.float64)
        return self._run(log_mel, power, voiced, feat)

    def _start_floor_below(self, level: np.ndarray, voiced: np.ndarray) -> float | None:
        """dB under the held frames' deepest dip at which the floor starts if the stream opened inside a voice
        (mostly voiced where loud, with deep dips: a talker from the first frame, not babble or a steady noise),
        else None."""
        c = self.config
        voiced_loud = voiced[level >= np.percentile(level, 100.0 - _START_LOUD_PERCENT)].mean()
        spread = np.percentile(level, 90.0) - level.min()
        if voiced_loud >= c.start_clear_voiced and spread >= c.start_clear_spread_db:
            return c.start_clear_below_db
        if voiced_loud >= c.start_loud_voiced and spread >= c.start_spread_db:
            return 0.0
        return None

    def _smoothed(self, log_mel, power) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's smoothed level and flatness after each frame, from a fresh state (a scratch pass)."""
        state, n = np.zeros(_N_STATE, dtype=np.float64), power.shape[0]
        level, flat = np.empty(n), np.empty(n)
        prob, feat, unvoiced = np.empty(1), np.empty((1, _N_FEATURES)), np.zeros(1, dtype=np.bool_)
        for i in range(n):
            _speech_prob_frames(log_mel[i:i + 1], power[i:i + 1], unvoiced, self._lo, self._hi, self._kparams,
                                state, prob, feat)
            level[i], flat[i] = state[_LEVEL], state[_FLAT]
        return level, flat

    def push(self, frames: FeatureFrames) -> VadResult:
        """Consume the extractor's next frames; return the frames whose decision became final."""
        return self._decider.push(self.probabilities(frames))

    def flush(self) -> VadResult:
        """End of stream: final decisions for the last lookahead frames (and a start hold never completed: a
        stream shorter than start_hold_ms), then reset()."""
        head = self._decider.push(self._release_start().astype(np.float32)) if self._held else None
        result = self._decider.flush()
        self.reset()
        return result if head is None else _joined(head, result)

    def _check_frames(self, frames: FeatureFrames) -> None:
        if frames.start != self._next_frame:
            raise ValueError(f"frames start at {frames.start}, expected {self._next_frame} "
                             "(frames lost, or reset needed)")
        if frames.log_mel.shape != (self.feature_config.n_mels, frames.n):
            raise ValueError(f"log_mel must be (n_mels={self.feature_config.n_mels}, n), got {frames.log_mel.shape}")
