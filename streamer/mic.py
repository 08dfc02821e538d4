"""The live microphone: PortAudio callback -> lock-free ring -> mono -> streaming resampler -> Blocks, with
device-loss recovery that keeps the stream clock on real time (an outage becomes a gap of zeros)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import soxr

from .blocks import PIPELINE_SR, Block, _block_frames, _Reblocker, _Source, _to_mono
from .devices import _resolve_device, _sounddevice, rescan_devices
from .errors import DeviceLost, NoInputDevice
from .ring import RingBuffer

__all__ = ["MicSource"]

_FIRST_CALLBACK_S = 3.0  # a PulseAudio null sink may deliver its first buffer ~2 s late
_RETRY_PAUSE_S = 0.5


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
