"""The VAD's parameters (VadConfig) and the check that they fit the feature extractor's framing."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import FeatureConfig


@dataclass(frozen=True)
class VadConfig:
    """Parameters of the VAD; times in milliseconds, probabilities in [0, 1], levels in dB.

    Decision: a segment starts when prob >= onset, never drops below offset, and has gathered
    min_speech_ms of frames >= onset (so a click's fading tail does not count); it ends after
    min_silence_ms below offset without a frame >= onset (shorter gaps are filled). The first
    hangover_ms of that silence and speech_pad_ms before the start are kept as speech.

    Features, per 10 ms frame:
    * level: frame energy in dB (the extractor's mean bin power; conversational speech is roughly
      -40..-10 dB, a full-scale sine about +21 dB), never below min_level_db (a digitally silent file
      then behaves like faint noise), clipped at snr_cap_db above the floor, smoothed with attack
      smooth_ms and release release_ms (a burst must last to count, a click leaves no long tail);
    * energy SNR: the level above a noise floor that falls with time constant noise_down_ms, rises
      with noise_up_ms while the level is within noise_near_db of it (noise fluctuating) and with the
      slow noise_up_far_ms above that (probably speech: slow but not frozen, so a step up in the noise
      is absorbed, in 10-25 s). Over the first frames the rise is a running mean, so a fresh stream's
      floor settles on its noise at once. A minimum level follows every dip at once and creeps up by
      min_rise_db_per_s; over the first young_ms of a stream the floor never sits more than
      floor_over_min_db above it, and later it is pulled down to it whenever it has risen more than
      floor_reset_db above it. A stream that starts mid-speech, or speech with no pause at all, still
      has the dips between its syllables, so its floor comes down to them instead of learning the talker
      as noise; a fluctuating noise (babble) keeps its floor, as its dips are shallower. A stream whose
      first frame is voiced (the extractor's f0: it starts inside a vowel) keeps its floor at min_level_db
      until its first unvoiced frame, at most voiced_start_ms (a hum is periodic too; 0 turns this off);
    * start of stream: the probabilities of the first start_hold_ms of a stream are held back and computed
      together once that much has arrived. If the held frames hold a voice (at least start_loud_voiced of their
      loudest 40 % voiced, and their smoothed level spread over start_spread_db from its minimum to its 90th
      percentile: syllables and the dips between them), the floor starts at their lowest smoothed level, and
      start_clear_below_db under it when the voice is clear (start_clear_voiced, start_clear_spread_db), since
      a talker's quiet ends of words lie under the dips between its syllables. A stream that opens inside a
      vowel then starts its floor at the deepest dip between syllables instead of learning the talker as
      noise; one whose voice starts after some noise, at that noise, much as before. Otherwise the held frames
      go through exactly as they would have one by one. Babble's loud frames are seldom voiced (its talkers'
      pitches blur), so it keeps its floor. Final decisions then trail by start_hold_ms at the start (never
      more than the lookahead after it), so the hold must not outlast the first window a pipeline gates (0
      turns this off);
    * energy z-score: the SNR over the noise's own spread, the rms of the SNR in noise-like frames
      (within noise_near_db of the floor or noise_z_gate spreads of it; EMA of noise_var_ms;
      noise_var_min_db2 keeps it above zero). A steady noise has a small spread, so weak speech stands
      out in it; babble has a large one, so its bursts do not;
    * flatness z-score: how much peakier (geometric over arithmetic mean, dB) the mel spectrum between
      speech_fmin and speech_fmax is than the noise's typical flatness, over its spread (same
      attack/release smoothing).
    Probability = logistic(bias + w_energy_snr * SNR + w_energy_z * z_energy + w_flatness_z * z_flat),
    SNR clipped to [-10, snr_cap_db] dB, z-scores to [-5, 30].

    Defaults were tuned on RAVDESS actors 01-10 in white noise and babble at 20/10/0 dB
    (``python -m benchmarks.bench_vad --tune``); the benchmark reports actors 11-20.
    """

    onset: float = 0.8
    offset: float = 0.05
    min_speech_ms: float = 100.0
    min_silence_ms: float = 200.0
    hangover_ms: float = 30.0
    speech_pad_ms: float = 60.0
    smooth_ms: float = 50.0
    release_ms: float = 20.0
    noise_down_ms: float = 800.0
    noise_up_ms: float = 2000.0
    noise_up_far_ms: float = 5000.0
    noise_near_db: float = 3.0
    noise_var_ms: float = 2000.0
    noise_var_min_db2: float = 0.1
    noise_z_gate: float = 3.0
    speech_fmin: float = 300.0
    speech_fmax: float = 3400.0
    snr_cap_db: float = 40.0
    min_level_db: float = -60.0
    floor_over_min_db: float = 6.0
    floor_reset_db: float = 12.0
    young_ms: float = 2000.0
    voiced_start_ms: float = 500.0
    start_hold_ms: float = 500.0
    start_loud_voiced: float = 0.6
    start_spread_db: float = 10.0
    start_clear_voiced: float = 0.8
    start_clear_spread_db: float = 14.0
    start_clear_below_db: float = 6.0
    min_rise_db_per_s: float = 2.0
    bias: float = -2.301
    w_energy_snr: float = 0.2687
    w_energy_z: float = 0.6019
    w_flatness_z: float = 0.1924
    frame_ms: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.offset <= self.onset <= 1.0:
            raise ValueError(f"need 0 <= offset <= onset <= 1, got offset={self.offset}, onset={self.onset}")
        for name in ("min_speech_ms", "min_silence_ms", "noise_down_ms", "noise_up_ms", "noise_up_far_ms",
                     "noise_var_ms", "noise_var_min_db2", "frame_ms", "snr_cap_db"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("hangover_ms", "speech_pad_ms", "voiced_start_ms", "start_hold_ms", "start_clear_below_db",
                     "smooth_ms", "release_ms", "noise_near_db", "noise_z_gate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.hangover_ms > self.min_silence_ms:
            raise ValueError(f"hangover_ms ({self.hangover_ms}) cannot exceed min_silence_ms ({self.min_silence_ms})")
        for name in ("start_loud_voiced", "start_clear_voiced"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.speech_fmin < self.speech_fmax:
            raise ValueError(f"need 0 <= speech_fmin < speech_fmax, got {self.speech_fmin}, {self.speech_fmax}")

    def _frames(self, ms: float) -> int:
        return int(round(ms / self.frame_ms))

    @property
    def min_speech_frames(self) -> int:
        return max(1, self._frames(self.min_speech_ms))

    @property
    def min_silence_frames(self) -> int:
        return max(1, self._frames(self.min_silence_ms))

    @property
    def hangover_frames(self) -> int:
        return self._frames(self.hangover_ms)

    @property
    def speech_pad_frames(self) -> int:
        return self._frames(self.speech_pad_ms)

    @property
    def start_hold_frames(self) -> int:
        return self._frames(self.start_hold_ms)

    @property
    def lookahead_frames(self) -> int:
        """Frames between a frame's arrival and its final decision (see the dsp.vad docstring)."""
        return max(self.min_speech_frames + self.speech_pad_frames - 1, self.min_silence_frames - 1)

    @property
    def lookahead_ms(self) -> float:
        return self.lookahead_frames * self.frame_ms

    def asdict(self) -> dict:
        return dataclasses.asdict(self)


def _check_frame_ms(config: VadConfig, feature_config: FeatureConfig) -> None:
    hop_ms = 1000.0 * feature_config.hop_length / feature_config.sr
    if abs(hop_ms - config.frame_ms) > 1e-6:
        raise ValueError(f"VadConfig.frame_ms={config.frame_ms} differs from the extractor's hop ({hop_ms} ms)")

