"""The pretrained speech encoder as a push-style stream stage: frames in, LSTM states out.

Input per 10 ms frame: the extractor's 40 encoder mel bands (dsp FeatureFrames.enc_mel), brought to the
level resemblyzer was trained at (utterances normalised to -30 dBFS) by a level follower: the frame
energy's running peak (instant attack, ENCODER_RELEASE_DB_PER_S release, never below
ENCODER_FLOOR_DB) is mapped to ENCODER_PEAK_DB, the peak frame energy of -30 dBFS speech as measured
on RAVDESS and TESS. The LSTM state is carried from push to push: every frame is run once, whatever
the block size, and the output equals one run over the whole stream.

Output per frame: the hidden states of the encoder's ENCODER_LAYERS layers (the first two of resemblyzer's
three; models.convert says why), (512,) float32. Their mean and spread over a
window's loud frames (dsp.pooling.window_vector, from Window.embed) are what the emotion and gender
classifiers read beside the spectral statistics.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ModelError

__all__ = ["StreamingEncoder", "DEFAULT_ENCODER", "ENCODER_HIDDEN", "ENCODER_LAYERS", "ENCODER_DIM", "ENCODER_STREAM"]

DEFAULT_ENCODER = Path(__file__).with_name("encoder.onnx")
ENCODER_HIDDEN = 256           # resemblyzer's LSTM width
ENCODER_LAYERS = 2
ENCODER_DIM = ENCODER_HIDDEN * ENCODER_LAYERS
ENCODER_PEAK_DB = 0.8          # peak frame energy (sum of the 40 bands, dB) of speech at -30 dBFS
ENCODER_FLOOR_DB = -45.0       # never amplify a frame by more than this much: noise stays noise
ENCODER_RELEASE_DB_PER_S = 3.0
_BIN_SCALE = 400.0 / 512.0     # our 512-point FFT has 512/400 more bins per band than resemblyzer's 400
# A pause: frames this far below the level follower's peak, for this long. The stream restarts the LSTM state
# after each pause, because the classifiers are trained on corpus clips, each one short recording: carried for
# minutes, the state drifts to where no training window ever was (measured on held-out RAVDESS actors 19-20
# as one session: clip UA 0.50 with the state carried, 0.66 restarted per clip). Training clips are encoded
# with the same restarts (models.featurize), so a pause inside a clip restarts there too.
PAUSE_QUIET_DB = 20.0
PAUSE_MS = 300.0
# Names how a stream's states are computed (level follower, restart rule): featurised vectors are cached under it.
ENCODER_STREAM = (f"follower-{ENCODER_RELEASE_DB_PER_S:g}dBps+restart-{PAUSE_MS:g}ms-{PAUSE_QUIET_DB:g}dB"
                  f"+layers-{ENCODER_LAYERS}")


class StreamingEncoder:
    """``push(enc_mel (40, n)) -> states (ENCODER_DIM, n) float32``; ``reset()`` starts a new stream."""

    def __init__(self, path: str | Path = DEFAULT_ENCODER, *, threads: int = 1, frame_ms: float = 10.0,
                 restart_after_pause: bool = True):
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"speech encoder not found: {path} (build it with `emotion-monitor convert-encoder`)")
        from .onnx_model import cpu_session

        self._sess = cpu_session(path, threads=threads, what="speech encoder")
        names = [i.name for i in self._sess.get_inputs()]
        if names != ["mel", "h0", "c0"]:
            raise ModelError(f"{path}: unexpected encoder inputs {names}")
        h = self._sess.get_inputs()[1].shape
        self._state_shape = (int(h[0]), int(h[1]))
        if self._state_shape != (ENCODER_LAYERS, ENCODER_HIDDEN):
            raise ModelError(f"{path}: encoder states {self._state_shape[0]} x {self._state_shape[1]}, expected "
                             f"{ENCODER_LAYERS} x {ENCODER_HIDDEN} (rebuild it with "
                             "`emotion-monitor convert-encoder`)")
        self.n_mels = int(self._sess.get_inputs()[0].shape[1])
        self.path = path
        self._release = ENCODER_RELEASE_DB_PER_S * frame_ms / 1000.0
        # None: one state for the whole stream (a corpus clip, featurised alone, is one utterance).
        self._pause_frames = int(round(PAUSE_MS / frame_ms)) if restart_after_pause else None
        self.reset()

    def reset(self, *, count: int = 0) -> None:
        """Start a new stream (count: restarts so far to keep; a new stream starts at 0)."""
        self._h = np.zeros(self._state_shape, np.float32)
        self._c = np.zeros(self._state_shape, np.float32)
        self._peak = ENCODER_FLOOR_DB
        self._quiet_run = 0
        self.restarts = count

    def _gains(self, enc_mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) power gain per frame from the level follower (vectorised: peak[t] = max over s <= t of
        (db[s] - r (t - s)), started from the carried peak), and (n,) True where a frame is quiet."""
        n = enc_mel.shape[1]
        db = 10.0 * np.log10(np.maximum(enc_mel.sum(axis=0) * _BIN_SCALE, 1e-12))
        ramp = self._release * np.arange(n)
        peak = np.maximum.accumulate(np.maximum(db + ramp, self._peak - self._release)) - ramp
        peak = np.maximum(peak, ENCODER_FLOOR_DB)
        self._peak = float(peak[-1])
        return np.power(10.0, (ENCODER_PEAK_DB - peak) / 10.0) * _BIN_SCALE, db < peak - PAUSE_QUIET_DB

    def _first_restart(self, quiet: np.ndarray) -> int | None:
        """Index before which the stream restarts (a quiet run reaches the pause length), or None."""
        if self._pause_frames is None:
            return None
        run = self._quiet_run
        for i, q in enumerate(quiet.tolist()):   # ~10 frames per hop: a Python loop costs microseconds
            run = run + 1 if q else 0
            if run == self._pause_frames:
                return i + 1
        self._quiet_run = run
        return None

    def push(self, enc_mel: np.ndarray) -> np.ndarray:
        enc_mel = np.asarray(enc_mel)
        if enc_mel.ndim != 2 or enc_mel.shape[0] != self.n_mels:
            raise ValueError(f"enc_mel must be ({self.n_mels}, n), got {enc_mel.shape}")
        n = enc_mel.shape[1]
        if n == 0:
            return np.zeros((ENCODER_DIM, 0), np.float32)
        parts, lo = [], 0
        while lo < n:
            gains, quiet = self._gains(enc_mel[:, lo:])
            p = self._first_restart(quiet)
            hi = n if p is None else lo + p
            mel = np.ascontiguousarray((enc_mel[:, lo:hi] * gains[: hi - lo]).T, dtype=np.float32)
            parts.append(self._run(mel))
            if p is not None:   # after a pause: a fresh state and level, as a corpus clip starts
                self.reset(count=self.restarts + 1)
            lo = hi
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)).T

    def _run(self, mel: np.ndarray) -> np.ndarray:
        states, self._h, self._c = self._sess.run(None, {"mel": mel, "h0": self._h, "c0": self._c})
        return states
