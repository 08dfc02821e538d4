"""The training recipe (one frozen dataclass) and the steps shared by evaluate and train:
online speaker normalisation as it runs live, classifier fitting, clip aggregation."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .featurize import Augment

__all__ = ["Recipe", "online_normalise", "fit_classifier", "clip_probs"]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a trained model besides the data and the seed."""

    window_ms: float = 1500.0
    hop_ms: float = 100.0
    norm: str = "speaker_mean"        # emotion: "none" | "speaker_mean" (dsp.pooling.OnlineNorm)
    gender_norm: str = "none"         # a speaker's mean voice IS the gender cue: never subtract it
    norm_prior_count: float = 20.0
    classifier: str = "mlp"           # "logreg" | "mlp"
    hidden: tuple[int, ...] = (256, 128)   # emotion UA RAVDESS / TESS: .632 / .595; (256,) gave .622 / .574
    alpha: float = 1e-3
    max_iter: int = 60
    c_logreg: float = 0.1
    n_members: int = 3                # >1: soft-voting ensemble of MLPs with seeds seed..seed+n-1
    train_stride: int = 2             # use every k-th training window (neighbours overlap by 95%)
    augs: tuple[Augment, ...] = (Augment(),)
    # Telephone band limit for gender: without it the 8 kHz asterisk voices teach "narrow band = female".
    gender_augs: tuple[Augment, ...] = (Augment(), Augment(band_hz=4000.0))
    gender_members: int = 1           # gender is easy enough; one MLP
    gender_hidden: tuple[int, ...] = (256,)

    def augs_for(self, task: str) -> tuple[Augment, ...]:
        return self.gender_augs if task == "gender" else self.augs

    def members_for(self, task: str) -> int:
        return self.gender_members if task == "gender" else self.n_members

    def hidden_for(self, task: str) -> tuple[int, ...]:
        return self.gender_hidden if task == "gender" else self.hidden

    def norm_for(self, task: str) -> str:
        return self.gender_norm if task == "gender" else self.norm

    def asdict(self) -> dict:
        return asdict(self)


def online_normalise(x: np.ndarray, clip: np.ndarray, speaker_of_clip: np.ndarray, prior_mean: np.ndarray,
                     *, prior_count: float, rng: np.random.Generator) -> np.ndarray:
    """What dsp.pooling.OnlineNorm does live, for every speaker session at once.

    Each speaker's clips are visited in a random order, windows in time order; every window is normalised
    with the statistics of the windows seen so far in that session, itself included (update, then transform).
    x (N, D), clip (N,) clip ids, speaker_of_clip (n_clips,) -> (N, D) float32.
    """
    out = np.empty_like(x, dtype=np.float32)
    spk = speaker_of_clip[clip]
    mu = prior_mean.astype(np.float64)
    for s in np.unique(spk):
        idx = np.flatnonzero(spk == s)
        clips = np.unique(clip[idx])
        rank = np.empty(clips.max() + 1, np.int64)
        rank[rng.permutation(clips)] = np.arange(len(clips))
        # stable sort keeps the time order of windows inside a clip
        order = idx[np.argsort(rank[clip[idx]], kind="stable")]
        xs = x[order].astype(np.float64)
        csum = np.cumsum(xs, axis=0)
        n = np.arange(1, len(order) + 1)[:, None]
        m = (csum + prior_count * mu) / (n + prior_count)
        out[order] = (xs - m + mu).astype(np.float32)
    return out


def fit_classifier(x: np.ndarray, y: np.ndarray, recipe: Recipe, *, task: str, seed: int, sample_weight=None):
    """A StandardScaler + classifier Pipeline fitted on window vectors x (N, D) with integer labels y (N,),
    shaped as the recipe says for task ("emotion" or "gender")."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if recipe.classifier == "logreg":
        clf = LogisticRegression(C=recipe.c_logreg, max_iter=500)
    elif recipe.classifier == "mlp":
        def mlp(s):
            return MLPClassifier(hidden_layer_sizes=recipe.hidden_for(task), alpha=recipe.alpha, max_iter=recipe.max_iter,
                                 batch_size=256, learning_rate_init=1e-3, early_stopping=False, random_state=s)

        n_members = recipe.members_for(task)
        if n_members > 1:
            from sklearn.ensemble import VotingClassifier

            clf = VotingClassifier([(f"mlp{i}", mlp(seed + i)) for i in range(n_members)], voting="soft",
                                   flatten_transform=False)
        else:
            clf = mlp(seed)
    else:
        raise ValueError(f"unknown classifier {recipe.classifier!r} (expected 'logreg' or 'mlp')")
    import warnings
    from sklearn.exceptions import ConvergenceWarning

    from threadpoolctl import threadpool_limits

    # One BLAS thread: with small batches OpenBLAS threads spin against each other (16x slower on 2 cores).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), clf)
        fit_kw = {} if sample_weight is None else {pipe.steps[-1][0] + "__sample_weight": sample_weight}
        return pipe.fit(x, y, **fit_kw)


def clip_probs(window_probs: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of window probabilities per clip. -> (clip ids (k,), probs (k, C))."""
    ids, inv = np.unique(clip, return_inverse=True)
    sums = np.zeros((len(ids), window_probs.shape[1]))
    np.add.at(sums, inv, window_probs)
    counts = np.bincount(inv, minlength=len(ids))[:, None]
    return ids, sums / counts
