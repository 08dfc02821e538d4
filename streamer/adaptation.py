"""Output-side session adaptation: per-class prior correction of a classifier's probabilities.

Measured in session mode by `evaluate` (streamer.session_eval) beside the plain output; see the model
card for whether the live monitor uses it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PriorCorrection"]


class PriorCorrection:
    """Divides each speech window's probabilities by the session's running mean prediction, push-style.

    q = (sum of the session's raw probabilities so far + prior_count * uniform) / (n + prior_count);
    p' ∝ p * (uniform / q) ** strength. One step of Saerens et al. (2002) prior adaptation: a speaker whom the
    model keeps calling "angry" gets that class discounted. It assumes a session's classes are not all one,
    which acted corpora satisfy by design and a calm user does not: hence measured, not assumed.
    """

    def __init__(self, n_classes: int, *, prior_count: float = 20.0, strength: float = 1.0):
        if n_classes < 2 or prior_count <= 0 or strength < 0:
            raise ValueError("PriorCorrection needs n_classes >= 2, prior_count > 0, strength >= 0")
        self.n_classes, self.prior_count, self.strength = n_classes, float(prior_count), float(strength)
        self.reset()

    def reset(self) -> None:
        self._sum = np.zeros(self.n_classes)
        self._n = 0

    def push(self, p) -> np.ndarray:
        """Update with one window's raw probabilities (C,), then return them corrected (C,)."""
        p = np.asarray(p, np.float64)
        self._sum += p
        self._n += 1
        u = 1.0 / self.n_classes
        q = (self._sum + self.prior_count * u) / (self._n + self.prior_count)
        out = p * (u / q) ** self.strength
        return out / out.sum()
