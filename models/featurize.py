"""Clips -> (augmented) audio -> dsp.windows.clip_windows -> speech windows -> dsp.pooling.window_vector.

The same window and pooling code the live monitor runs; features are cached on disk (outside the repo)
keyed by every parameter that changes them.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dsp.config import FeatureConfig
from dsp.pooling import FEATURE_DIM, POOLING_VERSION, window_vector
from dsp.windows import Window, clip_windows

from .datasets import Utterance

__all__ = ["Augment", "ClipFeatures", "FeatureSet", "energy_gate", "load_audio", "augment_audio", "featurize",
           "default_cache_dir", "GATE_VERSION"]

GATE_VERSION = "energy-1"
_GATE_MIN_DB = -50.0        # a frame below this absolute power is silence (full-scale sine is about +10 dB)
_GATE_REL_DB = 25.0         # ... or more than this below the window's loud frames
_GATE_MIN_RANGE_DB = 12.0   # stationary noise has a narrow frame-power range; speech does not
_GATE_MIN_FRACTION = 0.3    # share of active frames for the window to count as speech


def default_cache_dir() -> Path:
    """$VEM_CACHE_DIR or ~/.cache/voice-emotion-monitor/features (never inside the repo)."""
    env = os.environ.get("VEM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "voice-emotion-monitor" / "features"


def energy_gate(window: Window) -> bool:
    """True if the window holds enough speech-like frames. A stand-in until a streaming VAD gates windows."""
    p_db = 10.0 * np.log10(window.power.astype(np.float64) + 1e-10)
    srt = np.sort(p_db)
    n = srt.shape[0]
    p10, p95 = srt[int(0.10 * (n - 1) + 0.5)], srt[int(0.95 * (n - 1) + 0.5)]
    if p95 < _GATE_MIN_DB + 5.0 or p95 - p10 < _GATE_MIN_RANGE_DB:
        return False
    active = (p_db > _GATE_MIN_DB) & (p_db > p95 - _GATE_REL_DB)
    return bool(active.mean() >= _GATE_MIN_FRACTION)


@dataclass(frozen=True)
class Augment:
    """One augmentation of a clip. snr_db=None: no noise; semitones: pitch+tempo shift by resampling."""

    snr_db: float | None = None
    semitones: float = 0.0
    gain_db: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.snr_db is None and self.semitones == 0.0 and self.gain_db == 0.0


def load_audio(path: Path, *, sr: int) -> np.ndarray:
    """Mono float32 at sr. (n,)"""
    import soundfile as sf

    y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if file_sr != sr:
        import soxr

        y = soxr.resample(y, file_sr, sr).astype(np.float32)
    return np.ascontiguousarray(y)


def augment_audio(y: np.ndarray, aug: Augment, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Apply a pitch shift (resample, so tempo changes with it), gain and white-ish noise at an SNR. (n,) -> (m,)"""
    if aug.semitones:
        import soxr

        ratio = 2.0 ** (aug.semitones / 12.0)
        # Playing sr*ratio samples per second at sr raises pitch by `ratio`.
        y = soxr.resample(y, sr * ratio, sr).astype(np.float32)
    if aug.gain_db:
        y = y * np.float32(10.0 ** (aug.gain_db / 20.0))
    if aug.snr_db is not None:
        p_db = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) + 1e-12)
        # Speech power over the loud part only: RAVDESS clips carry long silences.
        loud = y[np.abs(y) > 0.05 * np.abs(y).max()]
        if loud.size:
            p_db = 10 * np.log10(np.mean(loud.astype(np.float64) ** 2) + 1e-12)
        noise = rng.standard_normal(y.shape[0])
        # Tilted (pink-ish) noise: first-order low-pass, closer to room/fan noise than white.
        noise = np.convolve(noise, [0.6, 0.4], mode="same")
        noise *= 10 ** ((p_db - aug.snr_db) / 20) / (noise.std() + 1e-12)
        y = (y + noise).astype(np.float32)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class ClipFeatures:
    """Speech-window vectors of one clip: x (n, D) float32; n may be 0."""

    x: np.ndarray


def _clip_vectors(y: np.ndarray, *, config: FeatureConfig, window_ms: float, hop_ms: float,
                  gate: Callable[[Window], bool]) -> np.ndarray:
    wins = clip_windows(y, config=config, window_ms=window_ms, hop_ms=hop_ms)
    vecs = [window_vector(w) for w in wins if gate(w)]
    return np.stack(vecs) if vecs else np.zeros((0, FEATURE_DIM), np.float32)


def _job(args) -> np.ndarray:
    path, aug, seed, cfg, window_ms, hop_ms = args
    rng = np.random.default_rng(seed)
    y = load_audio(path, sr=cfg.sr)
    if not aug.is_identity:
        y = augment_audio(y, aug, sr=cfg.sr, rng=rng)
    return _clip_vectors(y, config=cfg, window_ms=window_ms, hop_ms=hop_ms, gate=energy_gate)


@dataclass(frozen=True)
class FeatureSet:
    """Window vectors of many clips. x (N, D) float32; clip (N,) int index into utts; aug (N,) int index into augs."""

    x: np.ndarray
    clip: np.ndarray
    aug: np.ndarray
    utts: tuple[Utterance, ...]
    augs: tuple[Augment, ...]


def _cache_key(utts, augs, cfg, window_ms, hop_ms, seed) -> str:
    h = hashlib.sha256()
    meta = dict(cfg=cfg.asdict(), window_ms=window_ms, hop_ms=hop_ms, pooling=POOLING_VERSION, gate=GATE_VERSION,
                augs=[asdict(a) for a in augs], seed=seed, dim=FEATURE_DIM)
    h.update(json.dumps(meta, sort_keys=True).encode())
    for u in utts:
        st = u.path.stat()
        h.update(f"{u.path}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:20]


def featurize(utts: Sequence[Utterance], *, augs: Sequence[Augment] = (Augment(),), config: FeatureConfig = FeatureConfig(),
              window_ms: float = 2000.0, hop_ms: float = 100.0, seed: int = 0, cache_dir: Path | None = None,
              n_jobs: int = 2, progress: bool = True) -> FeatureSet:
    """Featurise every clip under every augmentation (both cores), with an on-disk cache."""
    utts, augs = tuple(utts), tuple(augs)
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    key = _cache_key(utts, augs, config, window_ms, hop_ms, seed)
    path = cache_dir / f"feat_{key}.npz"
    if path.exists():
        z = np.load(path)
        return FeatureSet(z["x"], z["clip"], z["aug"], utts, augs)
    jobs = [(u.path, a, seed * 1_000_003 + ai * 100_003 + ci, config, window_ms, hop_ms)
            for ai, a in enumerate(augs) for ci, u in enumerate(utts)]
    results = _run_jobs(jobs, n_jobs=n_jobs, progress=progress, label=f"features {window_ms:g}/{hop_ms:g} ms")
    xs, clips, aug_ids = [], [], []
    for j, r in enumerate(results):
        ai, ci = divmod(j, len(utts))
        xs.append(r)
        clips.append(np.full(r.shape[0], ci, np.int32))
        aug_ids.append(np.full(r.shape[0], ai, np.int16))
    fs = FeatureSet(np.concatenate(xs), np.concatenate(clips), np.concatenate(aug_ids), utts, augs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=fs.x, clip=fs.clip, aug=fs.aug)
    tmp.replace(path)
    return fs


def _run_jobs(jobs, *, n_jobs: int, progress: bool, label: str) -> list[np.ndarray]:
    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task(label, total=len(jobs))
        if n_jobs <= 1:
            out = []
            for j in jobs:
                out.append(_job(j))
                bar.advance(task)
            return out
        # spawn-free fork context: workers inherit the imported numba kernels.
        with get_context("fork").Pool(n_jobs) as pool:
            out = []
            for r in pool.imap(_job, jobs, chunksize=16):
                out.append(r)
                bar.advance(task)
            return out
