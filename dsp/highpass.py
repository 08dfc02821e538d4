"""DC and rumble removal ahead of everything else: a push-style high-pass with carried filter state.

Microphones and cheap sound cards add a DC offset and sub-audio rumble; both raise the energy the VAD
sees in every frame (an offset of 0.02 alone read as "no speech" before this filter) and shift the
lowest mel bands. A 2nd-order Butterworth high-pass at 40 Hz removes them and leaves the voice (the
lowest f0 searched is 60 Hz). The filter state is carried across pushes, so any block split gives the
same output as one call on the whole signal.

The filter is scipy.signal's (``butter(..., output="sos")``, ``sosfilt``, ``sosfilt_zi``), bit for bit, without
importing scipy.signal at run time: that import (with scipy.stats behind it) was a third of the monitor's cold
start. The default design's coefficients are stored (tests check them against scipy); other designs ask scipy.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["HighPass", "HIGHPASS_HZ", "design"]

HIGHPASS_HZ = 40.0

# butter(2, 40.0, btype="highpass", fs=16000, output="sos") and sosfilt_zi of it, as scipy 1.x computes them.
_DESIGNS = {(16000, 40.0, 2): (
    np.array([[0.9889542480671399, -1.9779084961342799, 0.9889542480671399,
               1.0, -1.9777864837767636, 0.9780305084917958]]),
    np.array([[-0.9889542480668427, 0.9889542480668493]]))}


def design(*, sr: int, cutoff_hz: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(sos (n, 6), unit initial state (n, 2)) of a Butterworth high-pass, as scipy.signal computes them."""
    stored = _DESIGNS.get((int(sr), float(cutoff_hz), int(order)))
    if stored is not None:
        return stored[0].copy(), stored[1].copy()
    from scipy.signal import butter, sosfilt_zi  # deferred: slow to import, and only other designs need it

    sos = butter(order, cutoff_hz, btype="highpass", fs=sr, output="sos")
    return sos, sosfilt_zi(sos)


@njit(cache=True, nogil=True)
def _sosfilt(sos, x, zi):
    """scipy.signal.sosfilt's direct form II transposed, in its operation order (so the result is the same
    to the bit); zi (n_sections, 2) is updated in place."""
    y = np.empty_like(x)
    for n in range(x.shape[0]):
        cur = x[n]
        for s in range(sos.shape[0]):
            new = sos[s, 0] * cur + zi[s, 0]
            zi[s, 0] = sos[s, 1] * cur - sos[s, 4] * new + zi[s, 1]
            zi[s, 1] = sos[s, 2] * cur - sos[s, 5] * new
            cur = new
        y[n] = cur
    return y


class HighPass:
    """``push(block) -> filtered block`` (float64, same length); ``reset()`` forgets the state."""

    def __init__(self, *, sr: int, cutoff_hz: float = HIGHPASS_HZ, order: int = 2):
        if not 0 < cutoff_hz < sr / 2:
            raise ValueError(f"cutoff_hz must be in (0, {sr / 2:g}), got {cutoff_hz}")
        self.sr, self.cutoff_hz = sr, cutoff_hz
        self._sos, self._zi_unit = design(sr=sr, cutoff_hz=cutoff_hz, order=order)
        self.reset()

    def reset(self) -> None:
        self._zi = None  # set from the first sample, so a stream that starts at an offset has no step

    def push(self, block) -> np.ndarray:
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"audio must be mono (1-D), got shape {x.shape}")
        if x.shape[0] == 0:
            return x.copy()
        if self._zi is None:
            self._zi = self._zi_unit * x[0]
        return _sosfilt(self._sos, np.ascontiguousarray(x), self._zi)
