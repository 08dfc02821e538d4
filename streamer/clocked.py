"""Sources on their own clock: an audio file (as fast as pulled, or paced in real time) and the demo stream."""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import numpy as np
import soxr

from dsp import audio_file

from ._demo import demo_tape
from .blocks import PIPELINE_SR, Block, _block_frames, _Reblocker, _Source, _to_mono
from .errors import AudioFileError

__all__ = ["FileSource", "DemoSource"]


class _ClockedSource(_Source):
    """Blocks from a 16 kHz sample supply, on a clock that is either free-running or paced.

    ``wall = start wall + t_end`` where start is the first ``next()``; with ``realtime`` each
    block is released when its last sample would have been captured.
    """

    _label = "file"

    def __init__(self, *, sr: int, block_ms: float, realtime: bool) -> None:
        self._frames = _block_frames(sr, block_ms)
        self._sr = sr
        self._realtime = bool(realtime)
        self._pending = _Reblocker(self._frames)
        self._emitted = 0
        self._t0_wall: float | None = None
        self._t0_mono = 0.0
        self._closed = False
        self._exhausted = False

    def _pull(self) -> np.ndarray | None:
        """Next chunk of (n,) float32 samples at ``sr``, or None when the supply ends."""
        raise NotImplementedError

    def __next__(self) -> Block:
        if self._closed:
            raise StopIteration
        if self._t0_wall is None:
            self._t0_wall, self._t0_mono = time.time(), time.monotonic()
        samples = self._pending.pop()
        while samples is None and not self._exhausted:
            chunk = self._pull()
            if chunk is None:
                self._exhausted = True
            else:
                self._pending.push(chunk)
                samples = self._pending.pop()
        if samples is None:
            samples = self._pending.pop_rest()
            if samples.size == 0:
                raise StopIteration
        t_start = self._emitted / self._sr
        self._emitted += samples.shape[0]
        t_end = self._emitted / self._sr
        if self._realtime:
            delay = self._t0_mono + t_end - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return Block(samples=samples, t_start=t_start, wall=self._t0_wall + t_end,
                     source=self._label, sr=self._sr)


class FileSource(_ClockedSource):
    """Any file libsndfile reads (WAV, FLAC, OGG, MP3, ...), as mono blocks at ``sr``.

    Read incrementally (long files are fine) through :class:`dsp.audio_file.AudioReader`, mixed to mono by
    channel mean, resampled with a streaming soxr resampler. ``realtime`` paces blocks by the wall clock;
    otherwise blocks come as fast as they are pulled. ``loop`` restarts at the end, keeping the clock running.
    Missing, non-regular (FIFO, device), unreadable, unsupported or empty files, absurd sample rates and
    non-finite or absurd sample values raise :class:`AudioFileError`; a file damaged after a readable start
    ends at the damage with one :class:`dsp.audio_file.AudioFileWarning` saying how much was lost.
    """

    _label = "file"

    def __init__(self, path: str | bytes | Path, *, sr: int = PIPELINE_SR, block_ms: float = 20,
                 realtime: bool = False, loop: bool = False) -> None:
        super().__init__(sr=sr, block_ms=block_ms, realtime=realtime)
        self._file = _open_audio(path)  # before Path(): Path("") would silently become "."
        self._path = Path(os.fsdecode(path))
        self._loop = bool(loop)
        self._file_sr = self._file.info.samplerate
        self._chunk = max(math.ceil(self._file_sr * block_ms / 1000), 64)
        self._resampler = (None if self._file_sr == sr else
                           soxr.ResampleStream(self._file_sr, sr, 1, dtype="float32"))
        self._read_since_seek = 0

    @property
    def path(self) -> Path:
        return self._path

    @property
    def duration_seconds(self) -> float:
        """Length of one pass through the file, as its header announces it."""
        return self._file.info.duration

    @property
    def lost_seconds(self) -> float:
        """Audio the header announced but damage or a short file kept from being read (0.0 if none)."""
        return self._file.lost_seconds

    def _pull(self) -> np.ndarray | None:
        while True:
            with _file_errors():
                x = self._file.read(self._chunk)
            if x.shape[0]:
                self._read_since_seek += x.shape[0]
                mono = _to_mono(x)
                return mono if self._resampler is None else self._resampler.resample_chunk(mono)
            if self._loop and self._read_since_seek:
                with _file_errors():
                    self._file.rewind()  # the resampler keeps running: the loop seam is continuous
                self._read_since_seek = 0
                continue
            if self._resampler is not None:
                tail, self._resampler = self._resampler.resample_chunk(
                    np.zeros(0, np.float32), last=True), None
                return tail
            return None

    def close(self) -> None:
        self._closed = True
        self._file.close()


@contextlib.contextmanager
def _file_errors():
    """dsp's AudioFileError (a ValueError) as the streamer's AudioFileError (a StreamerError)."""
    try:
        yield
    except audio_file.AudioFileError as exc:
        raise AudioFileError(str(exc)) from None


def _open_audio(path: str | bytes | Path) -> audio_file.AudioReader:
    """Open for reading or raise a one-line AudioFileError naming the path and the reason."""
    with _file_errors():
        return audio_file.AudioReader(path)


class DemoSource(_ClockedSource):
    """Endless demo stream of speech-like audio with pauses (``source="demo"``).

    ``engine``: "auto" uses espeak-ng (voices en-us+m3 / en-us+f3, varied pitch and rate,
    rendered once into a cache dir under the temp dir) when installed, else a synthetic
    source-filter voice; "espeak" or "synth" force one. ``seed`` fixes order, levels and
    pauses. ``engine_used`` tells which one ran.
    """

    _label = "demo"

    def __init__(self, *, sr: int = PIPELINE_SR, block_ms: float = 20, realtime: bool = True,
                 seed: int = 0, engine: str = "auto") -> None:
        super().__init__(sr=sr, block_ms=block_ms, realtime=realtime)
        self._tape, self.engine_used = demo_tape(sr=sr, seed=seed, engine=engine)
        self._pos = 0

    @property
    def loop_seconds(self) -> float:
        """Duration of one pass of the demo tape."""
        return self._tape.shape[0] / self._sr

    def _pull(self) -> np.ndarray:
        chunk = self._tape[self._pos:self._pos + 4 * self._frames]
        self._pos = (self._pos + chunk.shape[0]) % self._tape.shape[0]
        return chunk

    def close(self) -> None:
        self._closed = True
