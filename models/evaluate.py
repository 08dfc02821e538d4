"""Speaker-independent cross-validation of a Recipe, and its JSON / HTML report."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .featurize import FeatureSet
from .labels import EMOTIONS, GENDERS
from .metrics import score
from .recipe import Recipe, clip_probs, fit_classifier, online_normalise

__all__ = ["Fold", "speaker_folds", "random_folds", "task_labels", "prepare_train", "cross_validate"]

TASK_LABELS = {"emotion": EMOTIONS, "gender": GENDERS}


@dataclass(frozen=True)
class Fold:
    """test: clip indices held out; name says which speakers."""

    name: str
    test: tuple[int, ...]


def speaker_folds(utts) -> list[Fold]:
    """RAVDESS: 5 folds of 4 actors (1-4, 5-8, ...); TESS and extra voices: leave one speaker out."""
    by_spk: dict[str, list[int]] = {}
    for i, u in enumerate(utts):
        by_spk.setdefault(u.speaker, []).append(i)
    folds = []
    rav = sorted(s for s in by_spk if s.startswith("ravdess_"))
    for k in range(0, len(rav), 4):
        group = rav[k : k + 4]
        folds.append(Fold(f"ravdess actors {group[0][-2:]}-{group[-1][-2:]}",
                          tuple(i for s in group for i in by_spk[s])))
    for s in sorted(s for s in by_spk if s.startswith("tess_")):
        folds.append(Fold(f"tess speaker {s[5:]}", tuple(by_spk[s])))
    for s in sorted(s for s in by_spk if not s.startswith(("ravdess_", "tess_"))):
        folds.append(Fold(f"{s.replace('_', ' voice ', 1)}", tuple(by_spk[s])))   # extra voices: one each
    return folds


def random_folds(utts, *, n_folds: int = 5, seed: int = 0) -> list[Fold]:
    """Clip-level random folds: the same speakers sit in train and test ("random split (speakers leak)")."""
    perm = np.random.default_rng(seed).permutation(len(utts))
    return [Fold(f"random {k + 1}/{n_folds}", tuple(sorted(perm[k::n_folds].tolist()))) for k in range(n_folds)]


def task_labels(utts, task: str) -> np.ndarray:
    """(n_clips,) int label index, -1 where the clip has no label for the task."""
    names = TASK_LABELS[task]
    vals = [u.emotion if task == "emotion" else u.gender for u in utts]
    return np.array([names.index(v) if v is not None else -1 for v in vals], dtype=np.int64)


def _speaker_ids(utts) -> np.ndarray:
    names = {s: i for i, s in enumerate(sorted({u.speaker for u in utts}))}
    return np.array([names[u.speaker] for u in utts], dtype=np.int64)


def _balance_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y)
    return (len(y) / (len(counts[counts > 0]) * counts[y])).astype(np.float64)


def prepare_train(fs: FeatureSet, rows: np.ndarray, y_clip: np.ndarray, recipe: Recipe, *, seed: int,
                  norm: str = "speaker_mean"):
    """Training matrix for rows of fs: stride, online normalisation per (speaker, augmentation) session.

    -> (x (n, D), y (n,), prior_mean (D,) or None)
    """
    rows = rows[y_clip[fs.clip[rows]] >= 0]
    rows = rows[:: recipe.train_stride]
    x = fs.x[rows]
    prior = None
    if norm == "speaker_mean":
        prior = x.mean(axis=0)
        spk = _speaker_ids(fs.utts)
        # A session is one speaker under one augmentation (a condition, like one microphone).
        session_clip = fs.clip[rows].astype(np.int64) * len(fs.augs) + fs.aug[rows]
        uniq, inv = np.unique(session_clip, return_inverse=True)
        spk_of_uclip = spk[uniq // len(fs.augs)] * len(fs.augs) + uniq % len(fs.augs)
        x = online_normalise(x, inv, spk_of_uclip, prior, prior_count=recipe.norm_prior_count,
                             rng=np.random.default_rng(seed))
    elif norm != "none":
        raise ValueError(f"unknown norm {norm!r} (expected 'none' or 'speaker_mean')")
    return x, y_clip[fs.clip[rows]], prior


def _test_matrix(fs: FeatureSet, rows: np.ndarray, prior, recipe: Recipe, *, seed: int) -> np.ndarray:
    x = fs.x[rows]
    if prior is None:
        return x
    spk = _speaker_ids(fs.utts)
    return online_normalise(x, fs.clip[rows], spk, prior, prior_count=recipe.norm_prior_count,
                            rng=np.random.default_rng(seed + 7))


_CV_STATE: dict = {}


def _fold_job(fi: int) -> dict:
    """One fold's held-out predictions (runs in a forked worker; inputs come from _CV_STATE)."""
    fs, task, recipe, folds, seed, y_clip = (_CV_STATE[k] for k in ("fs", "task", "recipe", "folds", "seed", "y"))
    is_test = np.zeros(len(fs.utts), bool)
    is_test[list(folds[fi].test)] = True
    train_rows = np.flatnonzero(~is_test[fs.clip])
    test_rows = np.flatnonzero(is_test[fs.clip] & (fs.aug == 0) & (y_clip[fs.clip] >= 0))
    if test_rows.size == 0:
        return None   # e.g. an emotion fold of a gender-only voice
    x, y, prior = prepare_train(fs, train_rows, y_clip, recipe, seed=seed + fi, norm=recipe.norm_for(task))
    model = fit_classifier(x, y, recipe, task=task, seed=seed,
                           sample_weight=_balance_weights(y) if task == "gender" else None)
    wp = _full_probs(model, _test_matrix(fs, test_rows, prior, recipe, seed=seed + fi), len(TASK_LABELS[task]))
    ids, cp = clip_probs(wp, fs.clip[test_rows])
    return {"clip": ids, "clip_true": y_clip[ids], "clip_probs": cp, "win_clip": fs.clip[test_rows],
            "win_true": y_clip[fs.clip[test_rows]], "win_probs": wp, "fold": np.full(len(ids), fi)}


def cross_validate(fs: FeatureSet, task: str, recipe: Recipe, folds: list[Fold], *, seed: int,
                   progress=None, n_jobs: int = 2) -> dict:
    """Held-out predictions of every fold (folds run on n_jobs cores). -> dict of arrays: clip, clip_true,
    clip_probs, win_clip, win_true, win_probs, fold (per clip)."""
    _CV_STATE.update(fs=fs, task=task, recipe=recipe, folds=folds, seed=seed, y=task_labels(fs.utts, task))
    results = []
    try:
        if n_jobs <= 1:
            for fi in range(len(folds)):
                results.append(_fold_job(fi))
                if progress is not None:
                    progress()
        else:
            from multiprocessing import get_context

            with get_context("fork").Pool(n_jobs) as pool:
                for r in pool.imap(_fold_job, range(len(folds)), chunksize=1):
                    results.append(r)
                    if progress is not None:
                        progress()
    finally:
        _CV_STATE.clear()
    results = [r for r in results if r is not None]
    return {k: np.concatenate([r[k] for r in results]) for k in results[0]}


def _full_probs(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with columns for every class, even those absent from a fold's training data."""
    p = model.predict_proba(x)
    full = np.zeros((len(x), n_classes))
    full[:, model.classes_] = p
    return full


def summarise(cv: dict, utts, task: str, *, corpus: str | None = None) -> dict:
    """Clip- and window-level scores of cross-validated predictions, optionally for one corpus."""
    n = len(TASK_LABELS[task])
    corp = np.array([u.corpus for u in utts])
    cm = np.ones(len(cv["clip"]), bool) if corpus is None else corp[cv["clip"]] == corpus
    wm = np.ones(len(cv["win_clip"]), bool) if corpus is None else corp[cv["win_clip"]] == corpus
    if not cm.any():
        return {}
    return {"clip": asdict(score(cv["clip_true"][cm], cv["clip_probs"][cm], n)),
            "window": asdict(score(cv["win_true"][wm], cv["win_probs"][wm], n))}
