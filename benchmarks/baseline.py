"""The old app's approach, ported to streaming: the baseline that `bench` compares the pipeline against.

At every hop the last window of audio (same length as the pipeline's window) goes through the old app's
180 librosa features, recomputed from scratch, and a scikit-learn RandomForest (100 trees):

* 40 MFCC means   (librosa.feature.mfcc, n_mfcc=40, librosa's defaults otherwise: n_fft 2048, hop 512),
* 12 chroma means (librosa.feature.chroma_stft on |STFT|),
* 128 mel means   (librosa.feature.melspectrogram, n_mels 128).

The forest is fitted in the run on a couple hundred RAVDESS windows of the training actors (never the
held-out 19 and 20) so that predict_proba walks real trees; its accuracy is not the point.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["OLD_FEATURE_DIM", "old_features", "BaselineModel", "train_baseline", "training_windows"]

OLD_FEATURE_DIM = 40 + 12 + 128
_TRAIN_ACTORS = tuple(range(1, 19))  # 19 and 20 are held out of everything (see models/emotion.md)


def old_features(y: np.ndarray, *, sr: int) -> np.ndarray:
    """The old app's feature vector of one window. y: (n,) float32 -> (180,) float64."""
    import librosa

    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"old_features needs a non-empty 1-D signal, got shape {y.shape}")
    stft = np.abs(librosa.stft(y))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).mean(axis=1)
    chroma = librosa.feature.chroma_stft(S=stft, sr=sr).mean(axis=1)
    mel = librosa.feature.melspectrogram(y=y, sr=sr).mean(axis=1)
    return np.concatenate((mfcc, chroma, mel))


@dataclass(frozen=True)
class BaselineModel:
    """A fitted forest and what it was fitted on."""

    forest: object  # sklearn.ensemble.RandomForestClassifier
    n_train: int
    train_seconds: float


def training_windows(data_dir: Path, *, n: int, window_samples: int, seed: int = 0):
    """n (window, emotion) pairs: the middle ``window_samples`` of random RAVDESS clips of actors 01-18."""
    import soundfile as sf

    from models.datasets import iter_ravdess

    utts = [u for u in iter_ravdess(Path(data_dir) / "ravdess") if int(u.speaker.split("_")[1]) in _TRAIN_ACTORS]
    if not utts:
        raise FileNotFoundError(f"no RAVDESS clips of actors 01-18 under {Path(data_dir) / 'ravdess'} "
                                "(give the corpus root with --data)")
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.permutation(len(utts))[:n]:
        y, _ = sf.read(utts[i].path, dtype="float32")
        mid = max(0, (y.size - window_samples) // 2)
        seg = y[mid:mid + window_samples]
        out.append((np.pad(seg, (0, window_samples - seg.size)), utts[i].emotion))
    return out


def train_baseline(windows, *, sr: int, seed: int = 0) -> BaselineModel:
    """Fit RandomForestClassifier(100 trees, one job) on the old features of ``windows`` [(y, label), ...]."""
    import time

    from sklearn.ensemble import RandomForestClassifier

    if len(windows) < 2:
        raise ValueError(f"the baseline needs at least 2 training windows, got {len(windows)}")
    t0 = time.perf_counter()
    x = np.stack([old_features(y, sr=sr) for y, _ in windows])
    labels = [lab for _, lab in windows]
    forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1).fit(x, labels)
    return BaselineModel(forest=forest, n_train=len(windows), train_seconds=time.perf_counter() - t0)
