"""Keeping and hearing audio: the session recorder (a WAV valid even after a kill), `record` with a level
meter, and `play` on an output device."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr

from dsp import audio_file

from .blocks import PIPELINE_SR, Block, _dbfs, _to_mono
from .clocked import _file_errors
from .devices import _resolve_device, _sounddevice
from .errors import AudioFileError, NoOutputDevice
from .mic import MicSource

__all__ = ["SessionRecorder", "record", "play"]


class SessionRecorder:
    """Streams blocks into a 16-bit PCM WAV that stays valid on Ctrl-C or errors.

    Use as a context manager (``__exit__`` closes the file, which finalises the header) and
    call ``write(block)``. The header is also refreshed every ``flush_seconds`` of audio so
    even a killed process leaves a readable file. Samples are clipped to [-1, 1].
    """

    def __init__(self, path: str | Path, *, sr: int = PIPELINE_SR,
                 flush_seconds: float = 1.0) -> None:
        if not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise ValueError(f"sr must be a positive int, got {sr!r}")
        self._path = Path(path)
        self._sr = sr
        self._flush_frames = max(int(flush_seconds * sr), 1)
        self._since_flush = 0
        self._frames = 0
        try:
            self._file = sf.SoundFile(self._path, "w", samplerate=sr, channels=1,
                                      format="WAV", subtype="PCM_16")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"cannot write audio file {self._path}: {exc}") from exc

    @property
    def path(self) -> Path:
        return self._path

    @property
    def frames(self) -> int:
        return self._frames

    def write(self, block: Block | np.ndarray) -> None:
        """Append a Block (its ``sr`` must match) or a 1-D float array at ``sr``."""
        if isinstance(block, Block):
            if block.sr != self._sr:
                raise ValueError(f"block sr {block.sr} != recorder sr {self._sr}")
            samples = block.samples
        else:
            samples = np.asarray(block)
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples of shape (n,), got {samples.shape}")
        self._file.write(np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False))
        self._frames += samples.shape[0]
        self._since_flush += samples.shape[0]
        if self._since_flush >= self._flush_frames:
            self._file.flush()  # rewrites the header (and fsyncs): keep it infrequent
            self._since_flush = 0

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "SessionRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record(out_path: str | Path, *, seconds: float, device: int | str | None = None,
           sr: int = PIPELINE_SR, on_level: Callable[[float], None] | None = None) -> Path:
    """Record ``seconds`` from the microphone into a 16-bit WAV at ``sr``; returns the path.

    ``on_level(dbfs)`` gets each block's RMS level (dBFS, floored at -120) for a meter.
    The file is finalised (valid header) even on KeyboardInterrupt or an error.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds!r}")
    target = round(seconds * sr)
    with MicSource(device=device, sr=sr) as mic, SessionRecorder(out_path, sr=sr) as rec:
        for block in mic:
            samples = block.samples[:target - rec.frames]
            rec.write(samples)
            if on_level is not None:
                on_level(_dbfs(samples))
            if rec.frames >= target:
                break
    return Path(out_path)


def play(path: str | Path, *, device: int | str | None = None) -> None:
    """Play an audio file on an output device and wait until it has finished.

    Raises NoOutputDevice when there is no (matching) output device, AudioFileError when the
    file cannot be read.
    """
    sd = _sounddevice()
    with _file_errors():
        data, rate = audio_file.read_audio(path)
    index = _resolve_device(sd, device, kind="output")
    info = sd.query_devices(index)
    if data.shape[1] > info["max_output_channels"]:
        data = _to_mono(data)[:, None]
    try:
        sd.check_output_settings(device=index, channels=data.shape[1], samplerate=rate,
                                 dtype="float32")
    except Exception:  # device cannot run the file's rate: resample to its default rate
        target = int(info["default_samplerate"])
        data = soxr.resample(data, rate, target).astype(np.float32)
        rate = target
    try:
        sd.play(data, rate, device=index)
        sd.wait()
    except sd.PortAudioError as exc:
        raise NoOutputDevice(f"cannot play on output device {info['name']!r}: {exc}") from exc
    except BaseException:
        sd.stop()
        raise
