"""Audio sources: microphone, file and demo, all as iterators of fixed-size 16 kHz mono Blocks.

Every source is a context manager with ``close()`` and yields :class:`Block` objects of exactly
``sr * block_ms / 1000`` samples (a finite file's last block may be shorter). Each block carries
two clocks: ``t_start`` on the stream clock (seconds since the source started, advancing with
the audio) and ``wall`` (unix time at which the block's last sample was captured).

sounddevice is imported lazily, so files and the demo work on machines without PortAudio.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import soxr

from dsp import audio_file

from ._demo import demo_tape
from .errors import (
    AudioFileError,
    DeviceLost,
    NoInputDevice,
    NoOutputDevice,
    PortAudioMissing,
)
from .ring import RingBuffer

__all__ = [
    "PIPELINE_SR",
    "Block",
    "DeviceInfo",
    "MicSource",
    "FileSource",
    "DemoSource",
    "SessionRecorder",
    "list_input_devices",
    "record",
    "play",
    "rescan_devices",
]

PIPELINE_SR = 16000

_FIRST_CALLBACK_S = 3.0  # a PulseAudio null sink may deliver its first buffer ~2 s late
_RETRY_PAUSE_S = 0.5


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
    sr: int = PIPELINE_SR
    gap: bool = False

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sr

    @property
    def t_end(self) -> float:
        return self.t_start + self.duration


@dataclass(frozen=True)
class DeviceInfo:
    """An audio input device as PortAudio lists it; ``hostapi`` is the host API's name."""

    index: int
    name: str
    max_input_channels: int
    default_samplerate: float
    hostapi: str


# --------------------------------------------------------------------------- helpers


def _sounddevice():
    """Import sounddevice, turning a missing PortAudio into a clear one-line error."""
    try:
        import sounddevice
    except OSError as exc:
        raise PortAudioMissing(
            f"PortAudio library not found ({exc}); install it, e.g. "
            "'sudo apt-get install libportaudio2' (Debian/Ubuntu) or 'brew install portaudio' (macOS)"
        ) from exc
    return sounddevice


def rescan_devices() -> None:
    """Re-initialise PortAudio so it enumerates devices again (it lists them only at init).

    Closes every open PortAudio stream of this process, so call it only between streams.
    """
    sd = _sounddevice()
    if sd._initialized > 0:
        sd._terminate()
    sd._initialize()


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


# --------------------------------------------------------------------------- devices


def _device_list(devices, *, kind: str) -> str:
    key = f"max_{kind}_channels"
    listed = [f"{i}: {d['name']}" for i, d in enumerate(devices) if d[key] > 0]
    return "; ".join(listed) if listed else "none"


def _resolve_device(sd, spec: int | str | None, *, kind: str) -> int:
    """Device index for ``spec`` (None = default, int = index, str = name substring).

    Raises NoInputDevice / NoOutputDevice (by ``kind``: "input" | "output") with the list of
    devices when nothing matches.
    """
    error = NoInputDevice if kind == "input" else NoOutputDevice
    key = f"max_{kind}_channels"
    devices = sd.query_devices()
    usable = [i for i, d in enumerate(devices) if d[key] > 0]
    if not usable:
        raise error(f"no audio {kind} device found (PortAudio lists none)")
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec)
    if spec is None:
        default = sd.default.device[0 if kind == "input" else 1]
        return default if default in usable else usable[0]
    if isinstance(spec, (int, np.integer)):
        if int(spec) in usable:
            return int(spec)
        raise error(f"no {kind} device with index {spec}; {kind} devices: "
                    f"{_device_list(devices, kind=kind)}")
    wanted = str(spec).lower()
    exact = [i for i in usable if devices[i]["name"].lower() == wanted]
    matches = exact or [i for i in usable if wanted in devices[i]["name"].lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise error(f"no {kind} device matches {spec!r}; {kind} devices: "
                    f"{_device_list(devices, kind=kind)}")
    names = "; ".join(f"{i}: {devices[i]['name']}" for i in matches)
    raise error(f"{kind} device name {spec!r} is ambiguous; it matches {names}")


def list_input_devices() -> list[DeviceInfo]:
    """Input-capable devices PortAudio currently lists (empty list when there are none)."""
    sd = _sounddevice()
    hostapis = sd.query_hostapis()
    return [
        DeviceInfo(index=i, name=d["name"], max_input_channels=int(d["max_input_channels"]),
                   default_samplerate=float(d["default_samplerate"]),
                   hostapi=hostapis[d["hostapi"]]["name"])
        for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0
    ]


# --------------------------------------------------------------------------- microphone


@dataclass(frozen=True)
class _Outage:
    """A lost device's clock: t of the first sample not delivered, and t - wall of the old stream."""

    t0: float
    t_minus_wall: float
    latency: float

    def block_wall(self, t_end: float) -> float:
        """Unix time at which a sample at ``t_end`` would have been captured (for the gap blocks)."""
        return t_end - self.t_minus_wall - self.latency


class MicSource(_Source):
    """Live microphone: PortAudio callback -> RingBuffer -> mono -> soxr (streaming) -> Blocks.

    The stream opens at 16 kHz when the device accepts it, else at the device's default rate,
    with 1 channel if accepted, else 2 or all; the consumer mixes to mono and resamples.
    The audio callback only copies into a preallocated :class:`RingBuffer` and counts
    ``status.input_overflow``; everything else happens in the iterating thread.

    Clocks: ``t_start`` counts captured samples (jumping forward over samples lost to
    overruns, so it stays on real time). ``wall`` is computed from
    ``time.time()`` at the moment the ring buffer is drained minus the audio still queued
    after the block's end, minus the stream's reported input latency; PortAudio's ADC
    timestamps are not used because reading them would add work to the callback. Error:
    up to one callback period (the drain happens after the last callback, not at it).

    Device loss: if the stream goes inactive, PortAudio raises, or no callback arrives for
    ``stall_seconds`` (3 s before the very first one), the device is reopened (re-enumerating
    devices) every 0.5 s for ``retry_seconds``; each attempt is reported through
    ``on_message``; then :class:`DeviceLost` is raised. When the device comes back, the outage
    (from the last sample delivered to the new stream's first captured one, on the wall clock) is
    delivered as blocks of zeros flagged ``gap=True`` before the new audio, so the stream's
    ``t``, a session recording and a ``--duration`` stay on real time; ``gaps`` and
    ``gap_seconds`` count them. The gap is a whole number of blocks (rounded: ``t`` stays within
    half a block of the wall clock). Samples pending at the loss (< 1 block) are part of the gap.

    Parameters
    ----------
    device : int | str | None
        Index, or case-insensitive substring of the name; None = system default input.
    sr, block_ms : output rate and block length (block = ``sr * block_ms / 1000`` samples).
    ring_seconds : ring buffer size; the consumer may fall this far behind before overruns.
    latency : passed to ``sounddevice.InputStream`` ("low", "high" or seconds).
    retry_seconds, stall_seconds : device-loss handling, see above.
    on_message : called with one-line status messages (reconnect attempts).
    """

    def __init__(self, *, device: int | str | None = None, sr: int = PIPELINE_SR,
                 block_ms: float = 20, ring_seconds: float = 30, latency: str | float = "low",
                 retry_seconds: float = 5.0, stall_seconds: float = 1.0,
                 on_message: Callable[[str], None] | None = None) -> None:
        self._frames = _block_frames(sr, block_ms)
        if not ring_seconds > 0:
            raise ValueError(f"ring_seconds must be > 0, got {ring_seconds!r}")
        if retry_seconds < 0 or not stall_seconds > 0:
            raise ValueError("retry_seconds must be >= 0 and stall_seconds > 0")
        self._sd = _sounddevice()
        self._spec = device
        self._sr = sr
        self._poll_s = max(self._frames / sr / 4, 0.001)
        self._ring_seconds = ring_seconds
        self._latency_req = latency
        self._retry_s = retry_seconds
        self._stall_s = stall_seconds
        self._on_message = on_message
        self._overflows = 0  # written only by the audio callback
        self._overrun_base = 0  # overruns of rings replaced on reopen
        self._ring: RingBuffer | None = None
        self._stream = None
        self._closed = False
        self._lost_since: float | None = None
        self._pending = _Reblocker(self._frames)
        self._device_name: str | None = None
        self._gaps, self._gap_blocks = 0, 0  # outages delivered as zero blocks, and those blocks
        self._gap_left, self._gap_t = 0, 0.0  # zero blocks still to deliver, t of the next one
        self._gap_wall: Callable[[float], float] = time.time  # t -> wall for gap blocks (set per outage)
        self._outage: _Outage | None = None  # from a loss until the reopened stream delivers audio
        self._overrun_base_s = 0.0  # overrun seconds of rings replaced on reopen
        try:
            self._open(resume=False)
        except self._sd.PortAudioError as exc:  # e.g. busy or unplugged between listing and opening
            raise NoInputDevice(f"cannot open input device {device!r}: {exc}") from exc

    # ---- public state
    @property
    def overflows(self) -> int:
        """Callbacks that reported ``input_overflow`` (the OS/driver dropped input)."""
        return self._overflows

    @property
    def overrun_samples(self) -> int:
        """Input frames overwritten in the ring buffer because this consumer fell behind."""
        ring = self._ring.overrun_samples if self._ring is not None else 0
        return self._overrun_base + ring

    @property
    def overrun_seconds(self) -> float:
        """``overrun_samples`` in seconds of audio (the device rate may change on reopen)."""
        ring = self._ring.overrun_samples / self._rate if self._ring is not None else 0.0
        return self._overrun_base_s + ring

    @property
    def gaps(self) -> int:
        """Device outages delivered as gap blocks (zeros) so far."""
        return self._gaps

    @property
    def gap_seconds(self) -> float:
        """Total length of the gap blocks delivered so far (zeros standing in for outages)."""
        return self._gap_blocks * self._frames / self._sr

    @property
    def device_name(self) -> str:
        return self._device_name or ""

    @property
    def device_samplerate(self) -> float:
        """Rate the device stream runs at (before resampling to ``sr``)."""
        return self._rate

    @property
    def device_channels(self) -> int:
        return self._channels

    @property
    def latency(self) -> float:
        """Input latency PortAudio reports for the open stream, seconds."""
        return self._stream_latency

    # ---- opening
    def _pick_format(self, index: int, info) -> tuple[float, int]:
        rates = dict.fromkeys([float(self._sr), float(info["default_samplerate"])])
        max_ch = int(info["max_input_channels"])
        for rate in rates:
            for channels in dict.fromkeys([1, min(2, max_ch), max_ch]):
                try:
                    self._sd.check_input_settings(device=index, channels=channels,
                                                  samplerate=rate, dtype="float32")
                    return rate, channels
                except Exception:  # sounddevice raises PortAudioError or ValueError here
                    continue
        raise NoInputDevice(f"input device {info['name']!r} accepts neither {self._sr} Hz nor "
                            f"its default {info['default_samplerate']:g} Hz")

    def _open(self, *, resume: bool) -> None:
        """Open the device (again); ``resume``: after a loss, continuing the stream clock."""
        sd = self._sd
        # After a loss, prefer the exact device we had (indices change on re-enumeration).
        spec = self._device_name if self._device_name is not None else self._spec
        try:
            index = _resolve_device(sd, spec, kind="input")
        except NoInputDevice:
            if spec is self._spec:
                raise
            index = _resolve_device(sd, self._spec, kind="input")
        info = sd.query_devices(index)
        rate, channels = self._pick_format(index, info)
        capacity = max(int(self._ring_seconds * rate), self._frames)
        if self._ring is not None:
            self._overrun_base += self._ring.overrun_samples
            self._overrun_base_s += self._ring.overrun_samples / self._rate
        if self._ring is None or (self._ring.capacity, self._ring.channels) != (capacity, channels):
            self._ring = RingBuffer(capacity, channels=channels)
        else:
            self._ring.reset()  # the old stream is closed, so the producer is stopped
        ring = self._ring

        def callback(indata, frames, time_info, status):
            # Real-time thread: copy and count, nothing else (no allocation, locks or I/O).
            if status.input_overflow:
                self._overflows += 1
            ring.write(indata)

        stream = sd.InputStream(device=index, samplerate=rate, channels=channels,
                                dtype="float32", latency=self._latency_req, callback=callback)
        try:
            stream.start()
        except Exception:
            stream.close()
            raise
        # After a loss, the new segment's t is known only once its first audio arrives (_end_outage): a
        # PulseAudio stream may start capturing well after start() returns.
        seg_t0 = self._outage.t0 if resume else 0.0
        self._stream = stream
        self._stream_latency = float(stream.latency)
        self._device_name = info["name"]
        self._rate, self._channels = rate, channels
        self._resampler = (None if rate == self._sr else
                           soxr.ResampleStream(rate, self._sr, 1, dtype="float32"))
        # Segment clock: t of the segment's first sample, input/output frame counts since.
        self._seg_t0, self._seg_in, self._seg_out, self._seg_drop_s = seg_t0, 0, 0, 0.0
        self._ring_drops_seen = 0
        self._pending.clear()
        self._pending_t0 = seg_t0
        self._anchor_wall, self._anchor_t_end = time.time(), seg_t0
        self._last_progress = time.monotonic()

    def _end_outage(self, *, now: float, frames: int) -> None:
        """The reopened stream delivered its first ``frames`` (drained at ``now``): queue the outage as
        zero blocks and start the new segment's clock right after them."""
        outage, self._outage = self._outage, None
        first_wall = now - frames / self._rate  # capture time of the first new sample
        t_first = first_wall + outage.t_minus_wall  # on the old stream's clock
        n = max(0, round((t_first - outage.t0) * self._sr / self._frames))
        if n:
            self._gaps += 1
            self._gap_blocks += n
        self._gap_left, self._gap_t, self._gap_wall = n, outage.t0, outage.block_wall
        self._seg_t0 = self._pending_t0 = outage.t0 + n * self._frames / self._sr

    def _gap_block(self) -> Block:
        t_start = self._gap_t
        self._gap_t += self._frames / self._sr
        self._gap_left -= 1
        return Block(samples=np.zeros(self._frames, np.float32), t_start=t_start,
                     wall=self._gap_wall(self._gap_t), source="mic", sr=self._sr, gap=True)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()
        except Exception:  # an already-dead device may fail to abort; closing still frees it
            pass
        try:
            stream.close()
        except Exception:
            pass

    # ---- consuming
    def __next__(self) -> Block:
        if self._closed:
            raise StopIteration
        while True:
            if self._gap_left:
                return self._gap_block()
            samples = self._pending.pop()
            if samples is not None:
                return self._make_block(samples)
            if not self._drain():
                self._check_health()
                time.sleep(self._poll_s)

    def _drain(self) -> bool:
        """Move everything in the ring through mono + resampling into pending; False if empty."""
        x = self._ring.read()
        if x.shape[0] == 0:
            return False
        now = time.time()
        if self._outage is not None:
            self._end_outage(now=now, frames=x.shape[0])
        drops = self._ring.overrun_samples - self._ring_drops_seen
        self._ring_drops_seen += drops
        self._seg_drop_s += drops / self._rate
        self._seg_in += drops + x.shape[0]
        mono = _to_mono(x)
        y = mono if self._resampler is None else self._resampler.resample_chunk(mono)
        if len(self._pending) == 0:
            self._pending_t0 = self._seg_t0 + self._seg_drop_s + self._seg_out / self._sr
        self._pending.push(y)
        self._seg_out += y.shape[0]
        self._anchor_wall = now
        self._anchor_t_end = self._seg_t0 + self._seg_in / self._rate
        self._last_progress = time.monotonic()
        self._lost_since = None  # audio flows again
        return True

    def _make_block(self, samples: np.ndarray) -> Block:
        t_start = self._pending_t0
        self._pending_t0 += samples.shape[0] / self._sr
        # Audio queued after this block's end was captured later: subtract it from the drain time.
        wall = self._anchor_wall - self._stream_latency - (self._anchor_t_end - self._pending_t0)
        return Block(samples=samples, t_start=t_start, wall=wall, source="mic", sr=self._sr)

    def _check_health(self) -> None:
        now = time.monotonic()
        limit = self._stall_s if self._ring.total_written else max(self._stall_s, _FIRST_CALLBACK_S)
        if self._lost_since is not None:  # reopened but silent: do not outlive the retry window
            limit = min(limit, max(self._lost_since + self._retry_s - self._last_progress, 0.0))
        if now - self._last_progress > limit:
            self._recover(f"no audio for {now - self._last_progress:.1f} s")
            return
        try:
            active = self._stream.active
        except self._sd.PortAudioError as exc:
            self._recover(f"PortAudio error: {exc}")
            return
        if not active:
            self._recover("stream stopped")

    def _recover(self, reason: str) -> None:
        if self._lost_since is None:
            self._lost_since = time.monotonic()
        deadline = self._lost_since + self._retry_s
        name = self._device_name
        if self._outage is None:  # (not when a reopened stream died before delivering anything)
            self._outage = _Outage(t0=self._pending_t0, t_minus_wall=self._anchor_t_end - self._anchor_wall,
                                   latency=self._stream_latency)
        self._close_stream()
        lost = f"input device {name!r} lost ({reason})"
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceLost(f"{lost}; could not reopen it within {self._retry_s:g} s"
                                 + (f" (last error: {reason})" if attempt else ""))
            attempt += 1
            status = lost if attempt == 1 else f"reopening input device {name!r} failed ({reason})"
            self._message(f"{status}; retrying (attempt {attempt}, {remaining:.1f} s left)")
            try:
                rescan_devices()
                self._open(resume=True)  # stream time runs on through the outage (see _end_outage)
                return
            except (self._sd.PortAudioError, NoInputDevice, OSError, ValueError) as exc:
                reason = " ".join(str(exc).split())
                time.sleep(min(_RETRY_PAUSE_S, max(deadline - time.monotonic(), 0.0)))

    def _message(self, text: str) -> None:
        if self._on_message is not None:
            self._on_message(text)

    def close(self) -> None:
        """Stop and close the stream; idempotent. Iteration then stops."""
        self._closed = True
        self._close_stream()


# --------------------------------------------------------------------------- clocked sources


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


# --------------------------------------------------------------------------- record / play


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
