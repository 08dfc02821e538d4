"""Streaming feature extractor: every STFT frame is computed exactly once, whatever the block size."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import _stream_frames
from ._voice import (_ENV_POINTS, _FORMANT_BAND_HZ, _LPC_ORDER, _PRE_EMPHASIS, VOICE_ROWS, _envelope_grid, _lpc_basis,
                     _yin_periods)
from .config import FeatureConfig
from .features import _check_audio, _mel_bands, dct_matrix, hann_window, mel_basis

__all__ = ["FeatureFrames", "StreamingFeatures", "VOICE_ROWS"]

_TROUGH_THRESHOLD = 0.1        # YIN's absolute threshold, as dsp.descriptive.f0
_APERIODICITY_THRESHOLD = 0.35  # voiced below this (descriptive.f0 uses 0.4 on 4x longer frames, which smooth more)


@dataclass(frozen=True)
class FeatureFrames:
    """Frames produced by one push. Frame i covers samples [i*hop, i*hop + n_fft) of the stream.

    start: index of the first frame here; log_mel: (n_mels, n) float32; mfcc: (n_mfcc, n) float32;
    power: (n,) float32, mean |X|^2 per FFT bin of each frame (for levels and the VAD);
    voice: (VOICE_ROWS, n) float32 rows f0 Hz, YIN aperiodicity, F1, F2, F3 Hz (f0 and formants NaN where the
    frame is unvoiced), or None when the extractor was made with voice=False;
    enc_mel: (config.encoder_mels, n) float32 power mel bands for the speech encoder, or None when it is 0.
    """

    start: int
    log_mel: np.ndarray
    mfcc: np.ndarray
    power: np.ndarray
    voice: np.ndarray | None = None
    enc_mel: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.power.shape[0])


class StreamingFeatures:
    """Push-style log-mel + MFCC extractor equal to the batch functions with ``center=False, top_db=None``.

    >>> fx = StreamingFeatures(FeatureConfig())
    >>> frames = fx.push(block)   # any block size; returns only the frames this block completes

    Samples wait in a preallocated buffer that grows only when a single push is larger than it
    (amortised; the live path pushes ~20 ms blocks, so it never grows there).
    """

    def __init__(self, config: FeatureConfig = FeatureConfig(), *, voice: bool = True):
        self.config = config
        self.voice = voice
        c = config
        key = (c.sr, c.n_fft, c.n_mels, float(c.fmin), float(c.fmax))
        self._window = hann_window(c.n_fft, c.win_length)
        self._basis = mel_basis(*key)
        self._lo, self._hi = _mel_bands(*key)
        self._dct = dct_matrix(c.n_mfcc, c.n_mels)
        enc_key = (c.sr, c.n_fft, max(c.encoder_mels, 1), float(c.fmin), float(c.fmax))
        self._enc_basis, (self._enc_lo, self._enc_hi) = mel_basis(*enc_key), _mel_bands(*enc_key)
        self._voice_params, self._lpc_basis, self._env_grid = _voice_setup(c)
        self._buf = np.zeros(4 * c.n_fft + c.sr)  # pending samples live in _buf[:_len]
        self.reset()

    def reset(self) -> None:
        """Forget buffered samples and restart frame numbering at 0."""
        self._len = 0
        self._next_frame = 0

    @property
    def frames_done(self) -> int:
        return self._next_frame

    def push(self, block) -> FeatureFrames:
        """Append samples; return the frames they complete. block: (n,) float, mono, at config.sr."""
        block = _check_audio(block)
        c = self.config
        need = self._len + block.shape[0]
        if need > self._buf.shape[0]:
            grown = np.zeros(max(need, 2 * self._buf.shape[0]))
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown
        self._buf[self._len : need] = block
        n = 0 if need < c.n_fft else 1 + (need - c.n_fft) // c.hop_length
        log_mel = np.empty((n, c.n_mels), dtype=np.float32)
        mfcc = np.empty((n, c.n_mfcc), dtype=np.float32)
        power = np.empty(n, dtype=np.float32)
        voice = np.empty((n if self.voice else 0, VOICE_ROWS), dtype=np.float32)
        enc = np.empty((n if c.encoder_mels else 0, self._enc_basis.shape[0]), dtype=np.float32)
        if n:
            _stream_frames(self._buf[:need], c.hop_length, self._window, self._basis, self._lo, self._hi,
                           c.amin, self._dct, self._voice_params, self._lpc_basis, self._env_grid,
                           self._enc_basis, self._enc_lo, self._enc_hi, log_mel, mfcc, power, voice, enc)
        consumed = n * c.hop_length
        rest = need - consumed
        self._buf[:rest] = self._buf[consumed:need]  # keep only what the next frame needs
        self._len = rest
        start = self._next_frame
        self._next_frame += n
        return FeatureFrames(start=start, log_mel=log_mel.T, mfcc=mfcc.T, power=power,
                             voice=voice.T if self.voice else None, enc_mel=enc.T if c.encoder_mels else None)


def _voice_setup(c: FeatureConfig):
    """The voice kernel's constants: YIN lag range over one n_fft frame, LPC basis of the 0-4 kHz bins."""
    if c.sr < 2 * _FORMANT_BAND_HZ:
        raise ValueError(f"the voice analysis needs sr >= {2 * _FORMANT_BAND_HZ:g} Hz, got {c.sr}")
    min_p, max_p = _yin_periods(fmin=c.f0_min, fmax=c.f0_max, sr=c.sr, frame_length=c.n_fft)
    params = np.array([c.sr, min_p, max_p, _TROUGH_THRESHOLD, _APERIODICITY_THRESHOLD], dtype=np.float64)
    n_bins = int(round(_FORMANT_BAND_HZ * c.n_fft / c.sr)) + 1
    return (params, _lpc_basis(n_bins, _LPC_ORDER, _PRE_EMPHASIS),
            _envelope_grid(_ENV_POINTS, _LPC_ORDER))
