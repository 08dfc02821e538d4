"""Lock-free single-producer / single-consumer ring buffer for the audio callback.

The producer is the PortAudio callback thread (``write``); the consumer is the thread that
iterates a source (``read``). Neither side ever waits for the other.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Bounded SPSC audio FIFO of ``capacity`` frames, shape ``(capacity, channels)``.

    Drop policy: the producer never blocks and never refuses data. When the consumer has
    fallen behind by more than ``capacity`` frames, the oldest unread frames are overwritten
    and counted in ``overrun_samples`` (in frames: one frame is one sample per channel).
    ``read`` then resumes at the oldest frame that is still intact.

    Memory ordering (why no lock is needed under the GIL):

    * Each counter has exactly one writer: ``_claimed`` and ``_written`` belong to the
      producer, ``_read`` and ``_dropped`` to the consumer. Rebinding a Python attribute to
      an int is a single atomic reference store under the GIL, so the other thread sees the
      old or the new value, never a torn one.
    * ``write`` stores ``_claimed`` (the end of the frames it is about to touch), then the
      frames, then ``_written``. GIL hand-offs are mutex operations and act as memory
      barriers, so a consumer that sees ``_written == w`` also sees every frame below ``w``.
    * numpy may release the GIL inside a large slice copy, so producer and consumer copies
      can really overlap. The consumer therefore validates after copying, seqlock style:
      it re-reads ``_claimed`` and discards (and counts as overrun) any copied frame older
      than ``_claimed - capacity``, because the producer may have overwritten it meanwhile.

    Not for free-threaded (no-GIL) Python builds, where the stores above would need atomics.

    Parameters
    ----------
    capacity : int
        Frames the buffer holds (> 0).
    dtype : numpy dtype
        Sample type of the storage (float32 by default).
    channels : int
        Samples per frame (> 0).
    """

    def __init__(self, capacity: int, *, dtype=np.float32, channels: int = 1) -> None:
        if not isinstance(capacity, (int, np.integer)) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        if not isinstance(channels, (int, np.integer)) or channels <= 0:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self._capacity = int(capacity)
        self._channels = int(channels)
        self._buf = np.zeros((self._capacity, self._channels), dtype=dtype)
        self._claimed = 0  # producer: end of the frames a write in progress may touch
        self._written = 0  # producer: end of the frames fully written (published)
        self._read = 0  # consumer: end of the frames consumed or dropped
        self._dropped = 0  # consumer: frames lost to overruns and already accounted

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def dtype(self) -> np.dtype:
        return self._buf.dtype

    @property
    def total_written(self) -> int:
        """Frames ever written (including those later overwritten)."""
        return self._written

    @property
    def available(self) -> int:
        """Frames ``read`` would return now (at most ``capacity``)."""
        return min(self._written - self._read, self._capacity)

    @property
    def overrun_samples(self) -> int:
        """Frames overwritten before the consumer read them (cumulative since ``reset``)."""
        return self._dropped + max(0, self._written - self._read - self._capacity)

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` of shape ``(frames, channels)`` (or ``(frames,)`` when mono).

        Producer side, safe in a real-time callback: no allocation besides numpy views and
        the slice assignment, no locks, never blocks. Only the newest ``capacity`` frames of
        an oversized block are stored; the rest count as overrun.
        """
        if block.ndim == 1:
            if self._channels != 1:
                raise ValueError(f"1-D block given to a {self._channels}-channel ring buffer")
            block = block.reshape(-1, 1)
        elif block.ndim != 2 or block.shape[1] != self._channels:
            raise ValueError(f"block shape {block.shape} does not match (frames, {self._channels})")
        frames = block.shape[0]
        if frames == 0:
            return
        end = self._written + frames
        if frames > self._capacity:
            block = block[frames - self._capacity:]
        n = block.shape[0]
        self._claimed = end  # publish intent first: the consumer validates copies against it
        i = (end - n) % self._capacity
        first = min(n, self._capacity - i)
        self._buf[i:i + first] = block[:first]
        if first < n:
            self._buf[:n - first] = block[first:]
        self._written = end

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Copy out and consume up to ``max_frames`` of the oldest unread frames.

        Returns
        -------
        np.ndarray
            Shape ``(n,)`` for a mono buffer, ``(n, channels)`` otherwise; ``n`` may be 0.
        """
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        written = self._written  # snapshot once: frames below it are complete
        start = self._read
        lost = written - start - self._capacity
        if lost > 0:
            start += lost
            self._dropped += lost
        n = written - start
        if max_frames is not None:
            n = min(n, int(max_frames))
        out = np.empty((n, self._channels), dtype=self._buf.dtype)
        i = start % self._capacity
        first = min(n, self._capacity - i)
        out[:first] = self._buf[i:i + first]
        out[first:] = self._buf[:n - first]
        # Seqlock check: frames older than claimed - capacity may have been overwritten
        # by a write that ran while we copied (numpy can drop the GIL during the copy).
        unsafe = min(self._claimed - self._capacity - start, n)
        if unsafe > 0:
            out = out[unsafe:]
            start += unsafe
            n -= unsafe
            self._dropped += unsafe
        self._read = start + n
        return out[:, 0] if self._channels == 1 else out

    def reset(self) -> None:
        """Discard everything and zero the counters. Call only while the producer is stopped."""
        self._claimed = 0
        self._written = 0
        self._read = 0
        self._dropped = 0
