"""Streaming feature extractor: every STFT frame is computed exactly once, whatever the block size."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import _log_dct_frames, _mel_power_frames
from .config import FeatureConfig
from .features import _check_audio, _dct_matrix, _mel_basis, _window

# Largest number of frames handed to the kernel at once: bounds the scratch memory of a huge push.
_MAX_FRAMES_PER_CALL = 1024


@dataclass(frozen=True)
class FeatureFrames:
    """Frames produced by one push. Frame i covers samples [i*hop, i*hop + n_fft) of the stream.

    start: index of the first frame here; log_mel: (n_mels, n); mfcc: (n_mfcc, n);
    power: (n,) mean |X|^2 per FFT bin of each frame (used for levels and VAD).
    """

    start: int
    log_mel: np.ndarray
    mfcc: np.ndarray
    power: np.ndarray

    @property
    def n(self) -> int:
        return int(self.power.shape[0])


class StreamingFeatures:
    """Push-style log-mel + MFCC extractor equal to the batch functions with ``center=False, top_db=None``.

    >>> fx = StreamingFeatures(FeatureConfig())
    >>> frames = fx.push(block)   # any block size, returns only the frames completed by this block
    """

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        self.config = config
        c = config
        self._window = _window(c.n_fft, c.win_length)
        self._basis = _mel_basis(c.sr, c.n_fft, c.n_mels, float(c.fmin), float(c.fmax))
        self._dct = _dct_matrix(c.n_mfcc, c.n_mels)
        self.reset()

    def reset(self) -> None:
        """Forget buffered samples and restart frame numbering at 0."""
        self._pending = np.zeros(0)
        self._next_frame = 0

    @property
    def frames_done(self) -> int:
        return self._next_frame

    def push(self, block) -> FeatureFrames:
        """Append samples; return the frames they complete. block: (n,) float, mono, at config.sr."""
        block = _check_audio(block)
        c = self.config
        data = np.concatenate((self._pending, block)) if self._pending.size else block
        n_frames = 0 if data.shape[0] < c.n_fft else 1 + (data.shape[0] - c.n_fft) // c.hop_length
        log_mel = np.empty((n_frames, c.n_mels))
        mfcc = np.empty((n_frames, c.n_mfcc))
        power = np.empty(n_frames)
        mel = np.empty((min(n_frames, _MAX_FRAMES_PER_CALL), c.n_mels))
        for lo in range(0, n_frames, _MAX_FRAMES_PER_CALL):
            hi = min(n_frames, lo + _MAX_FRAMES_PER_CALL)
            seg = data[lo * c.hop_length : (hi - 1) * c.hop_length + c.n_fft]
            m = mel[: hi - lo]
            _mel_power_frames(seg, c.hop_length, self._window, self._basis, 2.0, m, power[lo:hi])
            _log_dct_frames(m, c.amin, self._dct, log_mel[lo:hi], mfcc[lo:hi])
        # Keep only what the next frame needs; copy so a caller's big block is not kept alive.
        self._pending = data[n_frames * c.hop_length :].copy()
        start = self._next_frame
        self._next_frame += n_frames
        return FeatureFrames(start=start, log_mel=log_mel.T.astype(np.float32), mfcc=mfcc.T.astype(np.float32),
                             power=power.astype(np.float32))
