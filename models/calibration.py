"""Probability calibration on held-out speakers, and the "uncertain" threshold.

Temperature scaling (Guo et al. 2017): p_T ∝ p^(1/T), one scalar fitted by minimising the negative
log-likelihood of speaker-independent cross-validated window predictions. It changes no decision
(the arg max stays), only how far the probabilities can be trusted; ECE before/after (models.metrics.reliability) is in the report.

The uncertain state: when the (calibrated, smoothed) probability of the current label is below
``uncertain_below``, the monitor says "uncertain" instead of committing. The threshold is the lowest
one at which the committed windows are right at least ``lift`` more often than all windows together,
so that a committed label is worth more than the average one.
"""
from __future__ import annotations

import numpy as np

__all__ = ["apply_temperature", "fit_temperature", "choose_uncertain_threshold"]


def apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    """p (..., C) probabilities -> the same with logits divided by temperature (rows sum to 1)."""
    if temperature == 1.0:
        return p
    logp = np.log(np.clip(np.asarray(p, np.float64), 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=-1, keepdims=True)
    e = np.exp(logp)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.asarray(p).dtype)


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The T in [0.25, 8] minimising the NLL of labels y (n,) under apply_temperature(p (n, C), T)."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(p.astype(np.float64), 1e-12, 1.0))

    def nll(log_t):
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(lse - z[np.arange(len(y)), y]))

    res = minimize_scalar(nll, bounds=(np.log(0.25), np.log(8.0)), method="bounded")
    return float(np.exp(res.x))


def choose_uncertain_threshold(p: np.ndarray, y: np.ndarray, *, lift: float = 0.10,
                               min_coverage: float = 0.3) -> dict:
    """Lowest top-probability threshold whose committed windows are right >= lift more often than all
    windows, keeping at least min_coverage of them committed (else the threshold at that coverage).
    -> {"uncertain_below", "accuracy_all", "accuracy_committed", "coverage"}."""
    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    base = float(right.mean())
    best = None
    for t in np.round(np.arange(0.0, 0.96, 0.01), 2):
        m = conf >= t
        if m.mean() < min_coverage:
            break
        best = (t, float(right[m].mean()), float(m.mean()))
        if best[1] >= base + lift:
            break
    t, acc, cov = best if best is not None else (0.0, base, 1.0)
    return {"uncertain_below": float(t), "accuracy_all": base, "accuracy_committed": acc, "coverage": cov}
