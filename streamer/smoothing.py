"""Small state machines that turn per-window probabilities into a steady display.

All are push-style with reset(); none knows about audio, so they are tested with synthetic sequences.
"""
from __future__ import annotations

import math

import numpy as np


class ExpSmoother:
    """First-order exponential smoothing of a probability vector with time constant ``time_constant_s``.

    The coefficient follows from the actual time step, so a skipped window (dt = 2 hops) is weighted
    correctly. The first update after reset() is taken as is: nothing older exists to average with.
    """

    def __init__(self, *, time_constant_s: float = 0.5):
        if time_constant_s < 0:
            raise ValueError("time_constant_s must be >= 0")
        self.time_constant_s = float(time_constant_s)
        self.reset()

    def reset(self) -> None:
        self.value: np.ndarray | None = None
        self._t: float | None = None

    def update(self, probs: np.ndarray, t: float) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        if self.value is None or self.time_constant_s == 0:
            self.value = probs.copy()
        else:
            dt = max(t - self._t, 0.0)
            alpha = 1.0 - math.exp(-dt / self.time_constant_s)
            self.value = self.value + alpha * (probs - self.value)
        self._t = t
        return self.value


class LabelHysteresis:
    """Displayed label changes only when a challenger leads the current label by ``margin`` for ``min_hold_s``.

    Stops the label from flickering between two classes of nearly equal probability.
    """

    def __init__(self, labels, *, margin: float = 0.05, min_hold_s: float = 0.3):
        self.labels = tuple(labels)
        self.margin = float(margin)
        self.min_hold_s = float(min_hold_s)
        self.reset()

    def reset(self) -> None:
        self.current: int | None = None
        self._challenger: int | None = None
        self._since: float = 0.0

    def update(self, probs: np.ndarray, t: float) -> str:
        best = int(np.argmax(probs))
        if self.current is None:
            self.current = best
        elif best != self.current and probs[best] - probs[self.current] >= self.margin:
            if self._challenger != best:
                self._challenger, self._since = best, t
            if t - self._since >= self.min_hold_s - 1e-9:  # tolerate float hop sums
                self.current, self._challenger = best, None
        else:
            self._challenger = None
        return self.labels[self.current]


class SegmentMean:
    """Running mean of probabilities over the current speech segment (gender is a property of the voice)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._sum: np.ndarray | None = None
        self.count = 0

    def update(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        self._sum = probs.copy() if self._sum is None else self._sum + probs
        self.count += 1
        return self._sum / self.count

    @property
    def value(self) -> np.ndarray | None:
        return None if self._sum is None else self._sum / self.count
