"""Decision machinery shared by both backends: probabilities in, final decisions and segment events out."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._kernels import _CANDIDATE, _HANGING, _LOW_START, _MODE, _SILENCE, _decide_frames
from .config import VadConfig


@dataclass(frozen=True)
class VadResult:
    """Final decisions for frames [start, start + n) of the stream.

    prob: (n,) float32 speech probability; speech: (n,) bool decision; events: ("start", i) at the
    first speech frame of a segment, ("end", i) at the first non-speech frame after it (or at the
    stream's frame count on flush), in order, with i in [start, start + n].
    """

    start: int
    prob: np.ndarray
    speech: np.ndarray
    events: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.prob.shape[0])


def _joined(a: VadResult, b: VadResult) -> VadResult:
    """Two consecutive results as one (b starts where a ends)."""
    if b.start != a.start + a.n:
        raise ValueError(f"results are not consecutive: {a.start}+{a.n} then {b.start}")
    return VadResult(start=a.start, prob=np.concatenate((a.prob, b.prob)),
                     speech=np.concatenate((a.speech, b.speech)), events=a.events + b.events)


class _Decider:
    """Delays probabilities by config.lookahead_frames and turns them into final decisions and events."""

    def __init__(self, config: VadConfig):
        self.config = config
        c = config
        self._params = (float(c.onset), float(c.offset), c.min_speech_frames, c.min_silence_frames,
                        c.hangover_frames, c.speech_pad_frames, c.lookahead_frames)
        self._lookahead = c.lookahead_frames
        self.reset()

    def reset(self) -> None:
        self._state = np.array([_SILENCE, 0, 0, 0], dtype=np.int64)
        self._pend_prob = np.zeros(0, dtype=np.float32)
        self._pend_dec = np.zeros(0, dtype=np.uint8)
        self._n_in = 0
        self._speaking = False  # last emitted decision

    def push(self, prob: np.ndarray) -> VadResult:
        """prob: (n,) float32 probabilities of the next n frames."""
        n_old = self._pend_prob.shape[0]
        base = self._n_in - n_old
        work_p = np.concatenate((self._pend_prob, prob))
        work_d = np.concatenate((self._pend_dec, np.zeros(prob.shape[0], dtype=np.uint8)))
        _decide_frames(work_p, work_d, n_old, base, self._state, *self._params)
        self._n_in += prob.shape[0]
        n_emit = max(0, work_p.shape[0] - self._lookahead)
        self._pend_prob, self._pend_dec = work_p[n_emit:], work_d[n_emit:]
        return self._emit(base, work_p[:n_emit], work_d[:n_emit])

    def flush(self) -> VadResult:
        """End of stream: settle the pending frames as if silence followed, emit them, then reset."""
        base = self._n_in - self._pend_prob.shape[0]
        dec = self._pend_dec.copy()
        mode = self._state[_MODE]
        if mode == _HANGING:
            low = int(self._state[_LOW_START])
            lo, hi = max(low, base), min(low + self.config.hangover_frames, self._n_in)
            dec[lo - base:] = 0
            dec[lo - base:hi - base] = 1
        elif mode == _CANDIDATE:
            # Too short to be speech (it would have been confirmed); the pending decisions are already 0.
            pass
        result = self._emit(base, self._pend_prob, dec)
        if self._speaking:
            result.events.append(("end", self._n_in))
        self.reset()
        return result

    def _emit(self, start: int, prob: np.ndarray, dec: np.ndarray) -> VadResult:
        speech = dec.astype(bool)
        events = []
        prev = self._speaking
        if speech.size:
            change = np.flatnonzero(np.diff(np.concatenate(([prev], speech)).astype(np.int8)))
            events = [("start" if speech[k] else "end", start + int(k)) for k in change]
            self._speaking = bool(speech[-1])
        return VadResult(start=start, prob=prob.astype(np.float32, copy=True), speech=speech, events=events)

