"""Overlapping analysis windows over the stream's frames: the one path that training crops and live audio take."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import FeatureConfig
from .stream import VOICE_ROWS, FeatureFrames, StreamingFeatures


@dataclass(frozen=True)
class Window:
    """The most recent frames of the stream at one hop.

    end_frame: index of the last frame (inclusive); t_end: stream seconds of the window's last sample;
    log_mel: (n_mels, n), mfcc: (n_mfcc, n), power: (n,) with n <= window frames (shorter at stream start);
    voice: (VOICE_ROWS, n) as FeatureFrames.voice (all NaN where the frames came without it);
    embed: (E, n) per-frame encoder states pushed beside the frames, or None.
    """

    end_frame: int
    t_end: float
    log_mel: np.ndarray
    mfcc: np.ndarray
    power: np.ndarray
    voice: np.ndarray
    embed: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return int(self.power.shape[0])


class FrameWindower:
    """Push frames, get a Window every ``hop_ms`` covering the last ``window_ms`` of frames.

    Frames are kept in a doubled ring (each frame written twice, ``W`` apart) so the newest W frames are
    always one contiguous slice: no reordering copy per hop. Windows shorter than ``min_window_ms`` (the
    stream's first moments) are not emitted. window_ms and hop_ms have no default here: they are the model's
    (its metadata; streamer.runner.build_pipeline reads them), so no second default can drift from it.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig(), *, window_ms: float, hop_ms: float,
                 min_window_ms: float = 500.0):
        frame_ms = 1000.0 * config.hop_length / config.sr
        if window_ms < frame_ms or hop_ms < frame_ms:
            raise ValueError(f"window_ms and hop_ms must be at least one frame ({frame_ms:g} ms)")
        if min_window_ms > window_ms:
            raise ValueError("min_window_ms cannot exceed window_ms")
        self.config = config
        self.window_frames = int(round(window_ms / frame_ms))
        self.hop_frames = int(round(hop_ms / frame_ms))
        self.min_frames = max(1, int(round(min_window_ms / frame_ms)))
        w = self.window_frames
        # (rows, 2W), the layout of the Window's arrays: a window is a slice of columns, copied without a transpose.
        self._log = np.zeros((config.n_mels, 2 * w), dtype=np.float32)
        self._mfcc = np.zeros((config.n_mfcc, 2 * w), dtype=np.float32)
        self._power = np.zeros(2 * w, dtype=np.float32)
        self._voice = np.full((VOICE_ROWS, 2 * w), np.nan, dtype=np.float32)
        self._embed: np.ndarray | None = None  # (E, 2W), allocated at the first push that brings states
        self.reset()

    def reset(self) -> None:
        self._count = 0  # frames seen

    def _store(self, frames: FeatureFrames, lo: int, hi: int, embed: np.ndarray | None) -> None:
        """Frames lo..hi-1 of the push, each written twice (W apart), as at most two contiguous runs."""
        w = self.window_frames
        parts = [(self._log, frames.log_mel), (self._mfcc, frames.mfcc)]
        if embed is not None:
            parts.append((self._embed, embed))
        if frames.voice is not None:
            parts.append((self._voice, frames.voice))
        while lo < hi:
            pos = self._count % w
            k = min(hi - lo, w - pos)  # up to the ring's end
            for buf, src in parts:
                buf[:, pos : pos + k] = buf[:, pos + w : pos + w + k] = src[:, lo : lo + k]
            self._power[pos : pos + k] = self._power[pos + w : pos + w + k] = frames.power[lo : lo + k]
            self._count += k
            lo += k

    def _window(self) -> Window:
        c, w = self.config, self.window_frames
        n = min(self._count, w)
        end = (self._count - 1) % w + w + 1  # one past the newest frame's second copy
        last = self._count - 1
        return Window(end_frame=last, t_end=(last * c.hop_length + c.n_fft) / c.sr,
                      log_mel=self._log[:, end - n : end].copy(), mfcc=self._mfcc[:, end - n : end].copy(),
                      power=self._power[end - n : end].copy(), voice=self._voice[:, end - n : end].copy(),
                      embed=None if self._embed is None else self._embed[:, end - n : end].copy())

    def push(self, frames: FeatureFrames, embed: np.ndarray | None = None) -> list[Window]:
        """Store frames (and embed (E, n), per-frame encoder states, if given); return the windows whose
        hop boundary they reach (oldest first)."""
        if frames.start != self._count:
            raise ValueError(f"frames out of order: expected frame {self._count}, got {frames.start}")
        if embed is not None:
            if embed.ndim != 2 or embed.shape[1] != frames.n:
                raise ValueError(f"embed must be (E, {frames.n}), got {embed.shape}")
            if self._embed is None or self._embed.shape[0] != embed.shape[0]:
                self._embed = np.zeros((embed.shape[0], 2 * self.window_frames), dtype=np.float32)
        out, j, hop = [], 0, self.hop_frames
        while j < frames.n:
            # Up to the next hop boundary (a window is taken there, before later frames overwrite it).
            k = min(frames.n, j + hop - self._count % hop)
            self._store(frames, j, k, embed)
            j = k
            if self._count % hop == 0 and self._count >= self.min_frames:
                out.append(self._window())
        return out


def clip_windows(y, *, config: FeatureConfig = FeatureConfig(), window_ms: float, hop_ms: float,
                 min_window_ms: float = 500.0) -> list[Window]:
    """All windows of a whole signal, through the streaming extractor (the live path).

    A clip shorter than the window but longer than ``min_window_ms`` yields windows over what it has.
    """
    fx = StreamingFeatures(config)
    win = FrameWindower(config, window_ms=window_ms, hop_ms=hop_ms, min_window_ms=min_window_ms)
    return win.push(fx.push(y))
