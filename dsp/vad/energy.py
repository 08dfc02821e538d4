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
from ._kernels import _N_FEATURES, _N_STATE, _speech_prob_frames
from .config import VadConfig, _check_frame_ms
from .decision import VadResult, _Decider


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
        """Frames by which final decisions trail the newest frame pushed: the decision lookahead."""
        return self.config.lookahead_frames

    def advance(self, *, samples: np.ndarray, frames: FeatureFrames) -> VadResult:
        """The common VAD step (see ``make_vad``): this VAD reads the extractor's frames."""
        return self.push(frames)

    def reset(self) -> None:
        """Forget the noise statistics and pending decisions; the next push must start at frame 0."""
        self._state = np.zeros(_N_STATE, dtype=np.float64)
        self._next_frame = 0
        self._decider.reset()

    def probabilities(self, frames: FeatureFrames, out_features: np.ndarray | None = None) -> np.ndarray:
        """Advance the noise floors over `frames`; (n,) float32 undelayed probabilities (no decisions).

        Used by push; out_features, if given, (n, 3) float64, receives the features of the logistic
        (energy SNR dB, energy z-score, flatness z-score), for tuning.
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
        prob = np.empty(n, dtype=np.float64)
        feat = np.empty((n, _N_FEATURES), dtype=np.float64) if out_features is None else out_features
        _speech_prob_frames(log_mel, power, voiced, self._lo, self._hi, self._kparams, self._state, prob, feat)
        self._next_frame += n
        return prob.astype(np.float32)

    def push(self, frames: FeatureFrames) -> VadResult:
        """Consume the extractor's next frames; return the frames whose decision became final."""
        return self._decider.push(self.probabilities(frames))

    def flush(self) -> VadResult:
        """End of stream: final decisions for the last lookahead frames, then reset()."""
        result = self._decider.flush()
        self.reset()
        return result

    def _check_frames(self, frames: FeatureFrames) -> None:
        if frames.start != self._next_frame:
            raise ValueError(f"frames start at {frames.start}, expected {self._next_frame} "
                             "(frames lost, or reset needed)")
        if frames.log_mel.shape != (self.feature_config.n_mels, frames.n):
            raise ValueError(f"log_mel must be (n_mels={self.feature_config.n_mels}, n), got {frames.log_mel.shape}")
