"""The training recipe (one frozen dataclass) and the steps shared by evaluate and train:
online speaker normalisation as it runs live, classifier fitting, clip aggregation."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .cnn import CnnRecipe, fuse_with_cnn
from .featurize import Augment

__all__ = ["Recipe", "NormPrior", "online_normalise", "fit_classifier", "clip_probs"]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a trained model besides the data and the seed."""

    window_ms: float = 1500.0
    hop_ms: float = 100.0
    norm: str = "speaker_meanvar"     # emotion: "none" | "speaker_mean" | "speaker_meanvar" (dsp.pooling.OnlineNorm)
    gender_norm: str = "none"         # a speaker's mean voice IS the gender cue: never subtract it
    norm_prior_count: float = 20.0
    classifier: str = "mlp"           # "logreg" | "mlp"
    # On the 1756 statistics of the three-layer encoder (220 spectral/voice + 1536 encoder-state): one MLP(256,
    # 128), 30 epochs, gave clip UA RAVDESS .663 / TESS .511 / ASED .867 against .626 / .496 / .847 for logistic
    # regression (5 speaker folds, 30 epochs on every 3rd window). 20 epochs on every 4th window halve the cost of a fit (about 5 min here),
    # which, with the CNN's 12 fits, keeps `evaluate` and its session passes under an hour on 2 cores (51 min).
    hidden: tuple[int, ...] = (256, 128)
    alpha: float = 1e-3
    max_iter: int = 20
    c_logreg: float = 0.1
    n_members: int = 1                # >1: soft-voting ensemble of MLPs with seeds seed..seed+n-1
    train_stride: int = 4             # use every k-th training window (neighbours overlap by 93%)
    gender_stride: int = 6            # gender has 3 augmentations and the extra voices: every 600 ms is plenty
    # Opus: ASED and BAVED are stored Opus-coded, so the FLAC corpora go through the codec too ("Opus" is no
    # corpus, language or gender cue).
    augs: tuple[Augment, ...] = (Augment(), Augment(opus=True))
    # Telephone band limit for gender: without it the 8 kHz asterisk voices teach "narrow band = female".
    gender_augs: tuple[Augment, ...] = (Augment(), Augment(opus=True), Augment(band_hz=4000.0))
    gender_members: int = 1           # gender is easy enough; one MLP
    # A second layer: (256, 128) against (256,), clip balanced accuracy over the speaker folds, two seeds, rose on
    # every corpus in both (RAVDESS .979-.985 -> .986, ASED .859-.861 -> .869-.871, TESS .978-.983 -> .985-.989,
    # BAVED .929-.933 -> .939-.946, BAVED trained without BAVED .878-.879 -> .880-.908); (512, 256) was mixed.
    gender_hidden: tuple[int, ...] = (256, 128)
    # Gender reads the 220 spectral and voice statistics only: with the encoder states as well it learnt the
    # training speakers rather than their voices' gender (speaker folds: TESS 0.51, ASED 0.90, the telephone
    # prompts 0.75 balanced accuracy, against 0.99 on TESS for the 220 statistics alone).
    gender_encoder: bool = False
    # The emotion models average their MLP's probabilities with a log-mel CNN's (models.cnn; models/HISTORY.md).
    # None: the MLP alone.
    cnn: CnnRecipe | None = CnnRecipe()

    def uses_cnn(self, task: str) -> bool:
        return task == "emotion" and self.cnn is not None

    def uses_encoder(self, task: str) -> bool:
        return self.gender_encoder if task == "gender" else True

    def dims_for(self, task: str) -> int:
        """Leading columns of the pooled vector the task's classifier reads (dsp.pooling: the 220 statistics
        come first, the encoder's after them)."""
        from dsp.pooling import vector_dim

        from .encoder import ENCODER_DIM

        return vector_dim(ENCODER_DIM if self.uses_encoder(task) else 0)

    def augs_for(self, task: str) -> tuple[Augment, ...]:
        return self.gender_augs if task == "gender" else self.augs

    def members_for(self, task: str) -> int:
        return self.gender_members if task == "gender" else self.n_members

    def hidden_for(self, task: str) -> tuple[int, ...]:
        return self.gender_hidden if task == "gender" else self.hidden

    def stride_for(self, task: str) -> int:
        return self.gender_stride if task == "gender" else self.train_stride

    def norm_for(self, task: str) -> str:
        return self.gender_norm if task == "gender" else self.norm

    def asdict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NormPrior:
    """The training statistics a session's normalisation is shrunk toward: mean, and std for "speaker_meanvar"."""

    mean: np.ndarray
    std: np.ndarray | None = None


def online_normalise(x: np.ndarray, clip: np.ndarray, speaker_of_clip: np.ndarray, prior_mean: np.ndarray,
                     *, prior_count: float, rng: np.random.Generator, prior_std: np.ndarray | None = None) -> np.ndarray:
    """What dsp.pooling.OnlineNorm does live, for every speaker session at once.

    Each speaker's clips are visited in a random order, windows in time order; every window is normalised
    with the statistics of the windows seen so far in that session, itself included (update, then transform).
    x (N, D), clip (N,) clip ids, speaker_of_clip (n_clips,) -> (N, D) float32.

    x (N, D, T), a window of T frames each (the CNN's spectrograms): every frame of a window is normalised with
    the statistics of the frames seen so far, the window's own included, with a prior of prior_count windows
    (prior_count * T frames): what OnlineNorm does live when it is updated with a window's frames, then
    transforms them.
    """
    from dsp.pooling import shrunk_normalise

    out = np.empty_like(x, dtype=np.float32)
    spk = speaker_of_clip[clip]
    mu = prior_mean.astype(np.float64)
    sd = None if prior_std is None else prior_std.astype(np.float64)
    for s in np.unique(spk):
        idx = np.flatnonzero(spk == s)
        clips = np.unique(clip[idx])
        rank = np.empty(clips.max() + 1, np.int64)
        rank[rng.permutation(clips)] = np.arange(len(clips))
        # stable sort keeps the time order of windows inside a clip
        order = idx[np.argsort(rank[clip[idx]], kind="stable")]
        xs = x[order].astype(np.float64)
        frames = 1 if x.ndim == 2 else x.shape[2]
        sums, sq = (xs, xs * xs) if x.ndim == 2 else (xs.sum(axis=2), (xs * xs).sum(axis=2))
        # Row i is normalised with the sums of rows 0..i (update, then transform).
        shape = (-1, 1) if x.ndim == 2 else (-1, 1, 1)
        out[order] = shrunk_normalise(
            xs, total=_frames_axis(np.cumsum(sums, axis=0), x.ndim),
            total_sq=None if sd is None else _frames_axis(np.cumsum(sq, axis=0), x.ndim),
            n=(frames * np.arange(1, len(order) + 1)).reshape(shape), prior_mean=_frames_axis(mu, x.ndim),
            prior_count=prior_count * frames, prior_std=None if sd is None else _frames_axis(sd, x.ndim),
        ).astype(np.float32)
    return out


def _frames_axis(a: np.ndarray, ndim: int) -> np.ndarray:
    """Per-feature statistics broadcast over a window's frames when x is (N, D, T)."""
    return a if ndim == 2 else a[..., None]


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


class FittedClassifier:
    """A fitted recipe model with the interface the Pipeline reads from models.onnx_model.OnnxClassifier:
    labels, predict_proba((n, D)) -> (n, C) with a column per label, online_norm(), calibration, encoder_path.
    Used to run a cross-validation fold's model through the real pipeline (session-mode evaluation)."""

    def __init__(self, model, labels, *, prior: NormPrior | None = None, prior_count: float = 20.0, calibration=None,
                 encoder_path=None, feature_dim: int | None = None, cnn=None):
        self.model, self.labels = model, tuple(labels)
        self.cnn = cnn   # models.cnn.CnnModel whose probabilities are averaged with the MLP's, or None
        self.feature_dim = feature_dim
        self.prior, self.prior_count = prior, prior_count
        self.calibration = dict(calibration or {})
        self.encoder_path = encoder_path

    def predict_proba(self, x, spec=None) -> np.ndarray:
        """x (n, D) -> (n, C); with spec (n, B, T), the session-normalised spectrograms, fused with the CNN's."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float32))
        full = np.zeros((x.shape[0], len(self.labels)), np.float32)
        if len(self.model.classes_) == 1:   # a one-class training set: sklearn still returns two columns
            full[:, self.model.classes_[0]] = 1.0
        else:
            full[:, self.model.classes_] = self.model.predict_proba(x)
        return full if spec is None else fuse_with_cnn(self.cnn, full, spec)

    def spec_norm(self):
        """A fresh OnlineNorm for the CNN's spectrogram frames, or None without a CNN."""
        return None if self.cnn is None else self.cnn.online_norm()

    def online_norm(self):
        from dsp.pooling import OnlineNorm

        if self.prior is None:
            return None
        return OnlineNorm(self.prior.mean, prior_count=self.prior_count, prior_std=self.prior.std)
