"""Speaker-independent cross-validation of a Recipe, and its JSON / HTML report."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .featurize import FeatureSet
from .labels import EMOTIONS, GENDERS
from .metrics import score
from .recipe import FittedClassifier, NormPrior, Recipe, clip_probs, fit_classifier, online_normalise

__all__ = ["Fold", "CvRun", "speaker_folds", "corpus_folds", "random_folds", "task_labels", "prepare_train",
           "cross_validate", "cross_validate_many", "balance_weights", "in_language", "prepare_cnn", "fit_cnn_model"]

TASK_LABELS = {"emotion": EMOTIONS, "gender": GENDERS}


@dataclass(frozen=True)
class Fold:
    """test: clip indices held out; name says which speakers."""

    name: str
    test: tuple[int, ...]


def speaker_folds(utts, *, n_folds: int = 5) -> list[Fold]:
    """n_folds folds, each holding out a share of every corpus's speakers at once: RAVDESS actors in runs of
    4 (01-04 in fold 1, ...), TESS's two speakers in folds 1 and 2, the speakers of every other corpus (and
    the extra voices) dealt round-robin in sorted order. Every speaker is tested exactly once, by models
    that never heard them."""
    by_spk: dict[str, list[int]] = {}
    for i, u in enumerate(utts):
        by_spk.setdefault(u.speaker, []).append(i)
    corpus_of = {u.speaker: u.corpus for u in utts}
    members: list[list[str]] = [[] for _ in range(n_folds)]
    for corpus in sorted(set(corpus_of.values())):
        spk = sorted(s for s in by_spk if corpus_of[s] == corpus)
        per = max(1, -(-len(spk) // n_folds)) if corpus == "ravdess" else 1
        for k, s in enumerate(spk):
            members[(k // per) % n_folds].append(s)
    folds = []
    for k, group in enumerate(members):
        if group:
            counts = {c: sum(corpus_of[s] == c for s in group) for c in sorted({corpus_of[s] for s in group})}
            name = f"fold {k + 1}: " + ", ".join(f"{c} {n}" for c, n in counts.items())
            folds.append(Fold(name, tuple(sorted(i for s in group for i in by_spk[s]))))
    return folds


def corpus_folds(utts, corpora) -> list[Fold]:
    """Leave one corpus out: for each named corpus present, a fold testing all of it (trained on the rest)."""
    out = []
    for c in corpora:
        idx = tuple(i for i, u in enumerate(utts) if u.corpus == c)
        if idx:
            out.append(Fold(f"without {c}", idx))
    return out


def random_folds(utts, *, n_folds: int = 5, seed: int = 0) -> list[Fold]:
    """Clip-level random folds: the same speakers sit in train and test ("random split (speakers leak)")."""
    perm = np.random.default_rng(seed).permutation(len(utts))
    return [Fold(f"random {k + 1}/{n_folds}", tuple(sorted(perm[k::n_folds].tolist()))) for k in range(n_folds)]


def task_labels(utts, task: str) -> np.ndarray:
    """(n_clips,) int label index, -1 where the clip has no label for the task."""
    names = TASK_LABELS[task]
    vals = [u.emotion if task == "emotion" else u.gender for u in utts]
    return np.array([names.index(v) if v is not None else -1 for v in vals], dtype=np.int64)


def in_language(utts, language: str = "any") -> np.ndarray:
    """(n_clips,) bool: the clips of the corpora in language (datasets.CORPUS_LANGUAGE; every clip for "any")."""
    from .datasets import CORPUS_LANGUAGE

    return np.array([language == "any" or CORPUS_LANGUAGE.get(u.corpus) == language for u in utts], bool)


def _speaker_ids(utts) -> np.ndarray:
    names = {s: i for i, s in enumerate(sorted({u.speaker for u in utts}))}
    return np.array([names[u.speaker] for u in utts], dtype=np.int64)


def balance_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y)
    return (len(y) / (len(counts[counts > 0]) * counts[y])).astype(np.float64)


def prepare_train(fs: FeatureSet, rows: np.ndarray, y_clip: np.ndarray, recipe: Recipe, *, seed: int,
                  norm: str = "speaker_mean", task: str = "emotion"):
    """Training matrix for rows of fs: stride, online normalisation per (speaker, augmentation) session.

    -> (x (n, D), y (n,), NormPrior or None)
    """
    rows = rows[y_clip[fs.clip[rows]] >= 0]
    rows = rows[:: recipe.stride_for(task)]
    x = fs.x[rows, : recipe.dims_for(task)]
    prior = None
    if norm in ("speaker_mean", "speaker_meanvar"):
        # (the std floor keeps a feature that never varies in training finite)
        prior = NormPrior(x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6) if norm == "speaker_meanvar" else None)
        spk = _speaker_ids(fs.utts)
        # A session is one speaker under one augmentation (a condition, like one microphone).
        session_clip = fs.clip[rows].astype(np.int64) * len(fs.augs) + fs.aug[rows]
        uniq, inv = np.unique(session_clip, return_inverse=True)
        spk_of_uclip = spk[uniq // len(fs.augs)] * len(fs.augs) + uniq % len(fs.augs)
        x = online_normalise(x, inv, spk_of_uclip, prior.mean, prior_count=recipe.norm_prior_count,
                             rng=np.random.default_rng(seed), prior_std=prior.std)
    elif norm != "none":
        raise ValueError(f"unknown norm {norm!r} (expected 'none', 'speaker_mean' or 'speaker_meanvar')")
    return x, y_clip[fs.clip[rows]], prior


def prepare_cnn(fs: FeatureSet, rows: np.ndarray, y_clip: np.ndarray, recipe: Recipe, *, seed: int):
    """The CNN's training set from rows of fs: the labelled rows of augmentation 0 (the CNN is trained without
    the codec copies), evenly strided to at most recipe.cnn.max_windows, every speaker's spectrograms normalised
    as one live session. -> (spec (n, B, T) float32, y (n,), (band mean, band std) of the training frames)"""
    from .cnn import band_prior

    if fs.spec is None:
        raise ValueError("the recipe has a CNN, but the features hold no spectrograms (featurize(spec=True))")
    rows = rows[(fs.aug[rows] == 0) & (y_clip[fs.clip[rows]] >= 0)]
    rows = rows[:: max(1, -(-len(rows) // recipe.cnn.max_windows))]
    spec = fs.spec[rows].astype(np.float32)
    mean, std = band_prior(spec)
    z = online_normalise(spec, fs.clip[rows], _speaker_ids(fs.utts), mean, prior_count=recipe.norm_prior_count,
                         rng=np.random.default_rng(seed), prior_std=std)
    return z, y_clip[fs.clip[rows]], (mean, std)


def fit_cnn_model(fs: FeatureSet, rows: np.ndarray, y_clip: np.ndarray, recipe: Recipe, *, task: str, seed: int,
                  threads: int = 1, progress=None):
    """Train the recipe's CNN on rows of fs -> (models.cnn.CnnModel, weights, normalised training spectrograms)."""
    from .cnn import CnnModel, build_onnx, fit_cnn

    z, y, (mean, std) = prepare_cnn(fs, rows, y_clip, recipe, seed=seed)
    weights = fit_cnn(z, y, n_classes=len(TASK_LABELS[task]), prior_mean=mean, prior_std=std, recipe=recipe.cnn,
                      seed=seed, threads=threads, progress=progress)
    norm = {"mode": "speaker_meanvar", "prior_count": recipe.norm_prior_count,
            "prior_mean": [round(float(v), 6) for v in mean], "prior_std": [float(f"{v:.7g}") for v in std]}
    model = CnnModel(build_onnx(weights, metadata={"labels": list(TASK_LABELS[task]), "normalisation": norm}))
    return model, weights, z


def _cnn_probs(model, fs: FeatureSet, rows: np.ndarray, *, seed: int) -> np.ndarray:
    """The CNN's probabilities on test rows of fs (augmentation 0), each speaker normalised as one session in the
    same clip order as the MLP's (the same seed)."""
    norm = model.normalisation
    spec = fs.spec[rows].astype(np.float32)
    z = online_normalise(spec, fs.clip[rows], _speaker_ids(fs.utts), np.asarray(norm["prior_mean"]),
                         prior_count=float(norm["prior_count"]), rng=np.random.default_rng(seed),
                         prior_std=np.asarray(norm["prior_std"]))
    return np.concatenate([model.predict_proba(z[k:k + 2048]) for k in range(0, len(z), 2048)])


def _test_matrix(fs: FeatureSet, rows: np.ndarray, prior, recipe: Recipe, *, seed: int, task: str) -> np.ndarray:
    x = fs.x[rows, : recipe.dims_for(task)]
    if prior is None:
        return x
    spk = _speaker_ids(fs.utts)
    return online_normalise(x, fs.clip[rows], spk, prior.mean, prior_count=recipe.norm_prior_count,
                            rng=np.random.default_rng(seed + 7), prior_std=prior.std)


_CV_STATE: dict = {}


@dataclass(frozen=True)
class CvRun:
    """One cross-validation: a task's features, its folds, and the session runner (None: clip mode only).
    language: train and test on the clips of that language's corpora only (a per-language model)."""

    fs: FeatureSet
    task: str
    folds: list
    session: object = None
    language: str = "any"


def _fold_job(job: tuple[int, int]) -> dict | None:
    """One fold's held-out predictions (runs in a forked worker; inputs come from _CV_STATE)."""
    ri, fi = job
    run, recipe, seed = _CV_STATE["runs"][ri], _CV_STATE["recipe"], _CV_STATE["seed"]
    fs, task, folds = run.fs, run.task, run.folds
    y_clip = task_labels(fs.utts, task)
    is_test = np.zeros(len(fs.utts), bool)
    is_test[list(folds[fi].test)] = True
    used = in_language(fs.utts, run.language)
    train_rows = np.flatnonzero((~is_test & used)[fs.clip])
    test_rows = np.flatnonzero((is_test & used)[fs.clip] & (fs.aug == 0) & (y_clip[fs.clip] >= 0))
    if test_rows.size == 0:
        return None   # e.g. an emotion fold of a gender-only voice
    x, y, prior = prepare_train(fs, train_rows, y_clip, recipe, seed=seed + fi, norm=recipe.norm_for(task), task=task)
    model = fit_classifier(x, y, recipe, task=task, seed=seed,
                           sample_weight=balance_weights(y) if task == "gender" else None)
    wp = _full_probs(model, _test_matrix(fs, test_rows, prior, recipe, seed=seed + fi, task=task), len(TASK_LABELS[task]))
    cnn = None
    if recipe.uses_cnn(task):
        from .cnn import fuse

        cnn = fit_cnn_model(fs, train_rows, y_clip, recipe, task=task, seed=seed + fi)[0]
        # seed + fi + 7: the clip order _test_matrix's sessions had
        wp = fuse(wp, _cnn_probs(cnn, fs, test_rows, seed=seed + fi + 7))
    ids, cp = clip_probs(wp, fs.clip[test_rows])
    out = {"clip": ids, "clip_true": y_clip[ids], "clip_probs": cp, "win_clip": fs.clip[test_rows],
           "win_true": y_clip[fs.clip[test_rows]], "win_probs": wp, "fold": np.full(len(ids), fi)}
    if run.session is not None:
        fitted = FittedClassifier(model, TASK_LABELS[task], prior=prior, prior_count=recipe.norm_prior_count,
                                  feature_dim=recipe.dims_for(task), cnn=cnn)
        sid, sp, _n, variants = run.session(fs.utts, np.unique(fs.clip[test_rows]), fitted, task=task, seed=seed + fi)
        out.update(sess_clip=sid, sess_true=y_clip[sid], sess_probs=sp)
        # Adaptations measured on the same session stream (e.g. "prior-corrected"), reported beside it.
        out.update({f"sess_probs:{name}": p for name, p in variants.items()})
    return out


def cross_validate_many(runs: list[CvRun], recipe: Recipe, *, seed: int, progress=None, n_jobs: int = 2) -> list[dict]:
    """Held-out predictions of every fold of every run, all folds in one pool of n_jobs workers (so no core
    idles between runs). -> one dict per run, of arrays: clip, clip_true, clip_probs, win_clip, win_true,
    win_probs, fold (per clip); with a session runner (see streamer.session_eval.session_clip_probs; called
    as session(utts, clip_ids, model, task=, seed=)) also sess_clip, sess_true, sess_probs and
    "sess_probs:<adaptation>": the fold's model run over each test speaker's clips as one stream."""
    _CV_STATE.update(runs=list(runs), recipe=recipe, seed=seed)
    jobs = [(ri, fi) for ri, run in enumerate(runs) for fi in range(len(run.folds))]
    results: dict = {}
    try:
        if n_jobs <= 1:
            it = map(_fold_job, jobs)
            for job, r in zip(jobs, it):
                results[job] = r
                if progress is not None:
                    progress()
        else:
            from multiprocessing import get_context

            with get_context("fork").Pool(n_jobs) as pool:
                for job, r in zip(jobs, pool.imap(_fold_job, jobs, chunksize=1)):
                    results[job] = r
                    if progress is not None:
                        progress()
    finally:
        _CV_STATE.clear()
    out = []
    for ri in range(len(runs)):
        rs = [results[(ri, fi)] for fi in range(len(runs[ri].folds)) if results[(ri, fi)] is not None]
        out.append({k: np.concatenate([r[k] for r in rs]) for k in rs[0]})
    return out


def cross_validate(fs: FeatureSet, task: str, recipe: Recipe, folds: list[Fold], *, seed: int,
                   progress=None, n_jobs: int = 2, session=None) -> dict:
    """cross_validate_many for one run."""
    return cross_validate_many([CvRun(fs, task, folds, session)], recipe, seed=seed, progress=progress,
                               n_jobs=n_jobs)[0]


def _full_probs(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with columns for every class, even those absent from a fold's training data."""
    p = model.predict_proba(x)
    full = np.zeros((len(x), n_classes))
    if len(model.classes_) == 1:   # a one-class training set: sklearn still returns two columns
        full[:, model.classes_[0]] = 1.0
        return full
    full[:, model.classes_] = p
    return full


def summarise(cv: dict, utts, task: str, *, corpus: str | None = None, labels=None, clips=None) -> dict:
    """Clip-, window- and (when run) session-level scores of cross-validated predictions, optionally for one
    corpus, optionally over a subset of the labels (the classes a corpus shares with the training set:
    probabilities of the other classes are dropped before the arg max), and optionally over the clips where
    clips (n_utts,) bool is True (a clip's windows and session decision go with it)."""
    n = len(TASK_LABELS[task])
    corp = np.array([u.corpus for u in utts])
    keep = np.arange(n) if labels is None else np.array([TASK_LABELS[task].index(c) for c in labels])

    def one(ids, true, probs):
        m = np.ones(len(ids), bool) if corpus is None else corp[ids] == corpus
        if clips is not None:
            m &= clips[ids]
        m &= np.isin(true, keep)
        if not m.any():
            return None
        remap = np.full(n, -1)
        remap[keep] = np.arange(len(keep))
        return asdict(score(remap[true[m]], probs[m][:, keep], len(keep)))

    out = {"clip": one(cv["clip"], cv["clip_true"], cv["clip_probs"]),
           "window": one(cv["win_clip"], cv["win_true"], cv["win_probs"])}
    if "sess_clip" in cv:
        out["session"] = one(cv["sess_clip"], cv["sess_true"], cv["sess_probs"])
        for key in sorted(k for k in cv if k.startswith("sess_probs:")):
            out[f"session {key.split(':', 1)[1]}"] = one(cv["sess_clip"], cv["sess_true"], cv[key])
    if out["clip"] is None:
        return {}
    return {k: v for k, v in out.items() if v is not None}
