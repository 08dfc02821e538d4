"""Classification metrics computed from labels and probabilities (no sklearn needed at inference)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scores", "score", "confusion", "reliability"]


@dataclass(frozen=True)
class Scores:
    """ua: mean per-class recall (unweighted accuracy); balanced accuracy is the same number."""

    n: int
    ua: float
    accuracy: float
    macro_f1: float
    ece: float
    confusion: list      # [true][pred] counts
    recall: list         # per class
    reliability: dict    # bins: confidence, accuracy, count


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts, rows = true class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def reliability(probs: np.ndarray, y_true: np.ndarray, *, n_bins: int = 10) -> tuple[float, dict]:
    """Expected calibration error of the top-class confidence, and the per-bin table."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    bins = {"confidence": [], "accuracy": [], "count": []}
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        c = int(m.sum())
        bc = float(conf[m].mean()) if c else float((edges[b] + edges[b + 1]) / 2)
        ba = float(correct[m].mean()) if c else 0.0
        bins["confidence"].append(bc)
        bins["accuracy"].append(ba)
        bins["count"].append(c)
        ece += c / max(1, len(conf)) * abs(bc - ba)
    return float(ece), bins


def score(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> Scores:
    """Scores of probabilities probs (n, C) against integer labels y_true (n,). Classes absent from y_true
    are left out of UA and macro-F1 (e.g. 'male' in a TESS-only fold)."""
    y_true = np.asarray(y_true)
    pred = probs.argmax(axis=1)
    cm = confusion(y_true, pred, n_classes)
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.divide(np.diag(cm), support, out=np.zeros(n_classes), where=present)
    col = cm.sum(axis=0)
    precision = np.divide(np.diag(cm), col, out=np.zeros(n_classes), where=col > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n_classes),
                   where=(precision + recall) > 0)
    ece, bins = reliability(probs, y_true)
    return Scores(n=int(len(y_true)), ua=float(recall[present].mean()), accuracy=float((pred == y_true).mean()),
                  macro_f1=float(f1[present].mean()), ece=ece, confusion=cm.tolist(),
                  recall=[float(r) if p else None for r, p in zip(recall, present)], reliability=bins)
