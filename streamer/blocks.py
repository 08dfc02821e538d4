"""The unit every audio source yields: :class:`Block`, fixed-size 16 kHz mono, with two clocks; and the plumbing
the sources share (block sizes, mono mixing, re-blocking, the iterator/context-manager base).

``t_start`` is on the stream clock (seconds since the source started, advancing with the audio, gaps
included); ``wall`` is the unix time at which the block's last sample was captured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from dsp.config import SAMPLE_RATE

__all__ = ["PIPELINE_SR", "Block"]

# The sources' rate is the monitor's one rate; PIPELINE_SR stays as an alias, as the sources and
# streamer.sources' users import it under this name.
PIPELINE_SR = SAMPLE_RATE


@dataclass(frozen=True, eq=False)
class Block:
    """One block of mono audio.

    samples : np.ndarray, shape (n,), float32 at ``sr`` (treat as read-only)
    t_start : stream seconds of the first sample
    wall    : unix time at which the last sample was captured (end of the block)
    source  : "mic" | "file" | "demo"
    sr      : sample rate of ``samples`` (the pipeline rate, 16 kHz by default)
    gap     : True when nothing was captured in this block's time (the input device was lost): the
              samples are zeros standing in for the outage, so that ``t`` and recordings keep real time
    """

    samples: np.ndarray
    t_start: float
    wall: float
    source: str
    sr: int = SAMPLE_RATE
    gap: bool = False

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sr

    @property
    def t_end(self) -> float:
        return self.t_start + self.duration


def _block_frames(sr: int, block_ms: float) -> int:
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive int, got {sr!r}")
    if not block_ms > 0:
        raise ValueError(f"block_ms must be > 0, got {block_ms!r}")
    frames = round(sr * block_ms / 1000)
    if frames < 1:
        raise ValueError(f"block_ms={block_ms} gives less than one sample at sr={sr}")
    return frames


def _to_mono(x: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> contiguous (n,) float32 (channel mean)."""
    mono = x if x.ndim == 1 else (x[:, 0] if x.shape[1] == 1 else x.mean(axis=1))
    return np.ascontiguousarray(mono, dtype=np.float32)


def _dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale, floored at -120 dB."""
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20 * math.log10(max(rms, 1e-6))


class _Reblocker:
    """Accumulates variable-size 1-D chunks and hands out fixed-size blocks."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self._buf = np.zeros(0, np.float32)

    def __len__(self) -> int:
        return self._buf.shape[0]

    def push(self, x: np.ndarray) -> None:
        if x.size:
            self._buf = np.concatenate([self._buf, x.astype(np.float32, copy=False)])

    def pop(self) -> np.ndarray | None:
        if self._buf.shape[0] < self.frames:
            return None
        out, self._buf = self._buf[:self.frames].copy(), self._buf[self.frames:]
        return out

    def pop_rest(self) -> np.ndarray:
        out, self._buf = self._buf, np.zeros(0, np.float32)
        return out

    def clear(self) -> None:
        self._buf = np.zeros(0, np.float32)


class _Source:
    """Iterator + context-manager plumbing shared by all sources."""

    def __iter__(self) -> Iterator[Block]:
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __next__(self) -> Block:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
