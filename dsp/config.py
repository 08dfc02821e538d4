"""Feature parameters shared by training, the live monitor and the model metadata."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SAMPLE_RATE = 16000  # the monitor's audio rate: sources resample to it, features, VAD and models run at it


@dataclass(frozen=True)
class FeatureConfig:
    """STFT / mel / MFCC parameters, named as in librosa.

    The defaults are the monitor's: 16 kHz audio, 25 ms Hann window in a 512-point FFT,
    10 ms hop, 64 Slaney mel bands from 0 to 8 kHz, 20 MFCCs (DCT-II ortho of the log-mel),
    f0 searched in 60-500 Hz over each frame's 512 raw samples, and 40 Slaney mel bands (power, 0-8 kHz)
    of the same spectrum for the speech encoder (resemblyzer's input: librosa's mel of a 25 ms Hann frame).
    """

    sr: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    n_mfcc: int = 20
    fmin: float = 0.0
    fmax: float = 8000.0
    amin: float = 1e-10
    f0_min: float = 60.0     # YIN search range of the voice analysis (Hz): deep male voices to shrieks
    f0_max: float = 500.0
    encoder_mels: int = 40   # power mel bands for the pretrained speech encoder (its training input); 0: none

    def __post_init__(self) -> None:
        if self.sr <= 0 or self.n_fft <= 0 or self.hop_length <= 0:
            raise ValueError("sr, n_fft and hop_length must be positive")
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        if not 0 <= self.fmin < self.fmax <= self.sr / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got fmin={self.fmin}, fmax={self.fmax}")
        if self.encoder_mels < 0:
            raise ValueError(f"encoder_mels must be >= 0, got {self.encoder_mels}")
        if not 0 < self.n_mfcc <= self.n_mels:
            raise ValueError(f"n_mfcc must be in (0, n_mels={self.n_mels}], got {self.n_mfcc}")

    def asdict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def fromdict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
