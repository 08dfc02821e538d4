"""Reading audio files: the one loader behind `file`, `predict`, `play`, the demo tape and training.

What a caller can rely on (anything else is an :class:`AudioFileError`, a ``ValueError`` whose message is one
line naming the file and the reason):

- only regular files are read: the file is opened with ``O_NONBLOCK`` and checked with ``fstat`` before any
  decoder sees it, so a FIFO or a device is refused at once instead of blocking forever;
- any name the OS accepts works, non-UTF-8 bytes included (the decoder gets a file descriptor, not a name);
- the sample rate lies in ``MIN_SAMPLE_RATE``..``MAX_SAMPLE_RATE`` (a header claiming 1 Hz would turn three
  seconds of data into 13 hours of audio);
- every sample is finite and within +-``MAX_ABS_SAMPLE`` (+60 dB over full scale): NaN, inf or absurd values
  are an input error at the chunk that holds them, never passed on to become NaN probabilities;
- data damaged after a readable start (a truncated FLAC, a cut MP3) ends the stream there: the readable part
  is kept and one :class:`AudioFileWarning` says how much was lost. Damage before the first sample is an error.

Decoders come from libsndfile (through soundfile): WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...
"""
from __future__ import annotations

import math
import os
import stat
import warnings
from dataclasses import dataclass
from typing import Union

import numpy as np

__all__ = ["AudioFileError", "AudioFileWarning", "AudioInfo", "AudioReader", "MAX_ABS_SAMPLE", "MAX_CHANNELS",
           "MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE", "display_name", "load_audio", "read_audio"]

MIN_SAMPLE_RATE = 4000     # below this nothing of speech survives; lower header values are damage or attack
MAX_SAMPLE_RATE = 768000   # the highest rate real converters use
MAX_ABS_SAMPLE = 1000.0    # float files may exceed full scale (1.0), but not by 60 dB: that is not audio
MAX_CHANNELS = 256         # one read chunk allocates frames x channels; real files have far fewer
_SHORTFALL_S = 0.05        # a clean end this far short of the header's length counts as lost audio
_LOAD_CHUNK = 1 << 14
_UNKNOWN_LENGTH = 1 << 62  # libsndfile reports SF_COUNT_MAX (2**63 - 1) frames when it cannot tell

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class AudioFileError(ValueError):
    """A file is missing, not a regular file, unreadable, not audio, or its audio is invalid. One-line message."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class AudioFileWarning(UserWarning):
    """The file was read only in part (damaged or cut short); the message says how much was lost."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header says: ``frames`` is the claimed length, which damaged files do not reach."""

    samplerate: int
    channels: int
    frames: int
    format: str   # libsndfile's major format: "WAV", "FLAC", "OGG", "MP3", ...
    subtype: str  # "PCM_16", "FLOAT", "VORBIS", "MPEG_LAYER_III", ...

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate


def display_name(path: PathArg) -> str:
    """The path as one line of printable text: bytes that are not UTF-8 become \\xNN and control characters
    (a newline in a name) their escapes, so a message never breaks an encoder or a line-based reader."""
    text = os.fsencode(path).decode("utf-8", errors="backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is, for the error message."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file"),
             (stat.S_ISCHR, "is a character device, not a regular file"),
             (stat.S_ISBLK, "is a block device, not a regular file"),
             (stat.S_ISSOCK, "is a socket, not a regular file"))
    return next((text for test, text in kinds if test(mode)), "is not a regular file")


_OS_REASONS = {"ENOENT": "no such file", "ELOOP": "too many levels of symbolic links (a symlink loop?)",
               "EACCES": "permission denied", "EPERM": "permission denied",
               "ENOTDIR": "a component of the path is not a directory",
               "ENAMETOOLONG": "file name too long", "EISDIR": "is a directory"}


def _os_reason(exc: OSError) -> str:
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    return _OS_REASONS.get(name) or (exc.strerror or str(exc)).lower()


def _open_regular(path: PathArg, name: str) -> int:
    """A blocking read-only descriptor of a regular file, or AudioFileError. Never blocks on a FIFO."""
    if os.fspath(path) in ("", b""):
        raise AudioFileError("cannot read audio file: the file name is empty")
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise AudioFileError(f"cannot read audio file {name}: {_os_reason(exc)}") from exc
    try:
        kind = _file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise AudioFileError(f"cannot read audio file {name}: {kind}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sniff(fd: int) -> str | None:
    """The container the first bytes announce (for messages only; libsndfile decides what it decodes)."""
    try:
        head = os.pread(fd, 12, 0) if hasattr(os, "pread") else b""
    except OSError:
        return None
    if head[:4] in (b"RIFF", b"RIFX", b"RF64"):
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:4] == b"FORM":
        return "AIFF"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"
    return None


def _decoder_reason(exc: BaseException) -> str:
    text = getattr(exc, "error_string", None) or str(exc)
    return " ".join(text.replace("Error :", "").split()).rstrip(".")


def _open_reason(exc: BaseException, *, kind: str | None, size: int) -> str:
    """An accurate reason for a failed open: libsndfile's own text misleads for damaged MP3 ("possibly a pipe")."""
    if size == 0:
        return "format not recognised: the file is empty"
    reason = _decoder_reason(exc)
    if "regular file" in reason or "possibly a pipe" in reason or "unknown error" in reason:
        reason = ""  # libsndfile says this of any stream its decoder rejects; the file itself was checked above
    if kind is None:
        return reason.lower() if reason else "format not recognised"
    return f"damaged or unsupported {kind} data" + (f" ({reason.lower()})" if reason else "")


class AudioReader:
    """A validated audio file read in chunks: ``read(frames) -> (k, channels) float32``, ``k == 0`` at the end.

    Context manager. ``info`` is the header; ``frames_read`` counts frames since the start (or ``rewind``);
    ``lost_seconds`` is set once damage or a short file ended the stream early (0.0 otherwise).
    """

    def __init__(self, path: PathArg) -> None:
        self.name = display_name(path)
        self._path = path
        self._sf = self._open()
        try:
            self.info = AudioInfo(samplerate=int(self._sf.samplerate), channels=int(self._sf.channels),
                                  frames=int(self._sf.frames), format=self._sf.format, subtype=self._sf.subtype)
            self._check_header()
        except BaseException:
            self._sf.close()
            raise
        self.frames_read = 0
        self.lost_seconds = 0.0
        self._ended = False
        self._warned = False

    def _open(self):
        import soundfile as sf

        fd = _open_regular(self._path, self.name)
        kind, size = _sniff(fd), os.fstat(fd).st_size
        try:
            # closefd: libsndfile owns the descriptor from here on, and closes it itself when opening fails.
            return sf.SoundFile(fd, closefd=True)
        except (RuntimeError, ValueError, TypeError, OSError, MemoryError, OverflowError) as exc:
            raise AudioFileError(f"cannot read audio file {self.name}: "
                                 f"{_open_reason(exc, kind=kind, size=size)}") from exc

    def _check_header(self) -> None:
        info = self.info
        if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
            raise AudioFileError(f"cannot read audio file {self.name}: sample rate {info.samplerate} Hz is outside "
                                 f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz (damaged header?)")
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise AudioFileError(f"cannot read audio file {self.name}: {info.channels} channels "
                                 f"(at most {MAX_CHANNELS})")
        if info.frames <= 0:
            raise AudioFileError(f"cannot read audio file {self.name}: it contains no audio")

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames, shape (k, channels) float32; k == 0 once the readable audio has ended."""
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames!r}")
        if self._ended:
            return np.zeros((0, self.info.channels), np.float32)
        out = np.empty((frames, self.info.channels), np.float32)
        reason = None
        try:
            x = self._sf.read(out=out)
        except (RuntimeError, ValueError, OSError, MemoryError) as exc:
            # libsndfile fills `out` up to the damage and advances its position, but soundfile raises without
            # the count: recover it from tell(), so a cut FLAC keeps every frame before the cut.
            reason, x = _decoder_reason(exc), out[:self._decoded_before_error(frames)]
        if x.shape[0]:
            self._check_values(x)
            self.frames_read += x.shape[0]
        if reason is not None or x.shape[0] == 0:
            self._end(reason=reason)
        return x

    def _decoded_before_error(self, asked: int) -> int:
        try:
            done = self._sf.tell() - self.frames_read
        except (RuntimeError, ValueError, OSError):
            return 0
        return done if 0 <= done <= asked else 0

    def _check_values(self, x: np.ndarray) -> None:
        magnitude = np.abs(x)
        if float(np.max(magnitude)) <= MAX_ABS_SAMPLE:  # the common case, one pass; False for NaN as well
            return
        row = int(np.argmax(~(magnitude <= MAX_ABS_SAMPLE).all(axis=1)))  # the first offending frame
        peak = float(np.max(np.where(np.isnan(magnitude[row]), np.inf, magnitude[row])))
        at = (self.frames_read + row) / self.info.samplerate
        what = "not finite (NaN or inf)" if not math.isfinite(peak) else f"as large as {peak:.3g}"
        raise AudioFileError(f"cannot read audio file {self.name}: sample values {what} at {at:.2f} s "
                             f"(full scale is 1.0; limit +-{MAX_ABS_SAMPLE:g}): not valid audio")

    def _end(self, *, reason: str | None) -> None:
        """The stream ended (cleanly or at damage): keep what came before, warn once if audio was lost."""
        self._ended = True
        rate = self.info.samplerate
        known = self.info.frames < _UNKNOWN_LENGTH  # else libsndfile could not tell the length: nothing to compare
        lost = max(self.info.frames - self.frames_read, 0) / rate if known else 0.0
        if reason is not None and self.frames_read == 0:
            raise AudioFileError(f"cannot read audio file {self.name}: no audio could be decoded ({reason})")
        if reason is None and lost < _SHORTFALL_S:
            return
        self.lost_seconds = lost
        if self._warned:
            return
        self._warned = True
        read = self.frames_read / rate
        cause = f"damaged data ({reason})" if reason else "the file ends early"
        amount = (f"{lost:.2f} s of the {self.info.duration:.2f} s the header announces could not be read" if known
                  else "the rest could not be read")
        warnings.warn(f"{self.name}: {cause} after {read:.2f} s; {amount}; using the readable part",
                      AudioFileWarning, stacklevel=3)

    def rewind(self) -> None:
        """Back to the first frame (for looping); a decoder that cannot seek after damage is reopened."""
        try:
            self._sf.seek(0)
        except (RuntimeError, ValueError, OSError):
            self._sf.close()
            self._sf = self._open()
        self.frames_read = 0
        self._ended = False

    def close(self) -> None:
        self._sf.close()

    @property
    def closed(self) -> bool:
        return self._sf.closed

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_audio(path: PathArg) -> tuple[np.ndarray, int]:
    """The whole readable file: (samples of shape (n, channels) float32, sample rate)."""
    with AudioReader(path) as reader:
        chunks = []
        while (x := reader.read(_LOAD_CHUNK)).shape[0]:
            chunks.append(x)
        rate = reader.info.samplerate
        data = np.concatenate(chunks) if chunks else np.zeros((0, reader.info.channels), np.float32)
    return data, rate


def load_audio(path: PathArg, *, sr: int) -> np.ndarray:
    """The whole readable file as mono (channel mean) float32 at ``sr`` (soxr, its default quality). (n,)"""
    data, rate = read_audio(path)
    y = data.mean(axis=1)
    if rate != sr:
        import soxr

        y = soxr.resample(y, rate, sr).astype(np.float32)
    return np.ascontiguousarray(y, dtype=np.float32)
