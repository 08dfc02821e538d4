"""Clips -> (augmented) audio -> high-pass -> streaming features + VAD + speech encoder -> speech windows ->
dsp.pooling.window_vector.

The same window and pooling code the live monitor runs; features are cached on disk (outside the repo)
keyed by every parameter that changes them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Sequence

import numpy as np

from dsp.config import FeatureConfig
from dsp.gate import SPEECH_GATE
from dsp.pooling import POOLING_VERSION, vector_dim, window_vector
from dsp.stream import StreamingFeatures
from dsp.windows import FrameWindower, Window

from .datasets import Utterance
from .encoder import ENCODER_DIM, ENCODER_STREAM

__all__ = ["Augment", "FeatureSet", "load_audio", "augment_audio", "featurize",
           "default_cache_dir", "GATE_VERSION", "speech_windows"]

GATE_VERSION = "vad-4+voiced"  # 2: 40 Hz high-pass ahead of the VAD; noise floor pulled down to the level's dips;
                               # 3: a stream that starts voiced keeps its floor low until an unvoiced frame;
                               # 4: a stream that opens inside a voice starts its floor at the first 0.5 s's deepest dip;
                               # +voiced: dsp.gate's voicing rule (applied to the cached vectors)


def default_cache_dir() -> Path:
    """$VEM_CACHE_DIR or ~/.cache/voice-emotion-monitor/features (never inside the repo)."""
    env = os.environ.get("VEM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "voice-emotion-monitor" / "features"


@dataclass(frozen=True)
class Augment:
    """One augmentation of a clip. snr_db=None: no noise; semitones: pitch+tempo shift by resampling;
    band_hz: band limit (resampled to 2*band_hz and back); low_hz: high-pass edge (with band_hz 3400 and low_hz
    300, a telephone line)."""

    snr_db: float | None = None
    semitones: float = 0.0
    gain_db: float = 0.0
    band_hz: float | None = None
    low_hz: float | None = None
    opus: bool = False   # through the Ogg Opus codec (as ASED/BAVED are stored), so "Opus" is no corpus cue

    @property
    def is_identity(self) -> bool:
        return (self.snr_db is None and self.semitones == 0.0 and self.gain_db == 0.0 and self.band_hz is None
                and self.low_hz is None and not self.opus)


def load_audio(path: Path, *, sr: int) -> np.ndarray:
    """Mono float32 at sr. (n,) The project's one file loader, dsp.audio_file.load_audio (checked, damage-tolerant)."""
    from dsp import audio_file

    return audio_file.load_audio(path, sr=sr)


def augment_audio(y: np.ndarray, aug: Augment, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Apply a pitch shift (resample, so tempo changes with it), gain and white-ish noise at an SNR. (n,) -> (m,)"""
    if aug.semitones:
        import soxr

        ratio = 2.0 ** (aug.semitones / 12.0)
        # Playing sr*ratio samples per second at sr raises pitch by `ratio`.
        y = soxr.resample(y, sr * ratio, sr).astype(np.float32)
    if aug.band_hz is not None:
        import soxr

        low = soxr.resample(y, sr, 2 * aug.band_hz)
        y = soxr.resample(low, 2 * aug.band_hz, sr).astype(np.float32)
    if aug.low_hz is not None:
        from scipy.signal import butter, sosfilt

        y = sosfilt(butter(4, aug.low_hz, btype="highpass", fs=sr, output="sos"), y).astype(np.float32)
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
    y = np.clip(y, -1.0, 1.0).astype(np.float32)
    if aug.opus:
        y = _opus_roundtrip(y, sr=sr)
    return y


def _opus_roundtrip(y: np.ndarray, *, sr: int) -> np.ndarray:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="OGG", subtype="OPUS")
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    return np.ascontiguousarray(z[: y.shape[0]])


_ENCODER = None


def _encoder():
    """One speech encoder per process (an onnxruntime session is costly to make; reset per clip)."""
    global _ENCODER
    if _ENCODER is None:
        from .encoder import StreamingEncoder

        # Restarting after pauses exactly as live: trained without the restarts, the model met states it had never
        # seen (held-out RAVDESS actors 17-20 through the live pipeline clip by clip: clip UA 0.60 with them, 0.64
        # without).
        _ENCODER = StreamingEncoder()
    _ENCODER.reset()
    return _ENCODER


def speech_windows(y: np.ndarray, *, config: FeatureConfig = FeatureConfig(), window_ms: float,
                   hop_ms: float) -> list[Window]:
    """The windows of a whole signal that the gate's VAD rule passes (dsp.gate.SPEECH_GATE.enough_speech; its
    voicing rule needs the pooled vector and is applied by the caller). The live path: the high-pass, then one pass of
    StreamingFeatures feeding the VAD, the speech encoder (fresh state, restarted after pauses as live) and the
    windower."""
    from dsp.highpass import HighPass
    from dsp.vad import StreamingVad

    frames = StreamingFeatures(config).push(HighPass(sr=config.sr).push(y))
    vad = StreamingVad(feature_config=config)
    speech = np.concatenate((vad.push(frames).speech, vad.flush().speech)).astype(np.float64)
    csum = np.concatenate(([0.0], np.cumsum(speech)))
    embed = _encoder().push(frames.enc_mel) if config.encoder_mels else None
    wins = FrameWindower(config, window_ms=window_ms, hop_ms=hop_ms).push(frames, embed)
    return [w for w in wins
            if SPEECH_GATE.enough_speech(csum[w.end_frame + 1] - csum[w.end_frame + 1 - w.n_frames], w.n_frames)]


def _clip_vectors(y: np.ndarray, *, config: FeatureConfig, window_ms: float, hop_ms: float) -> np.ndarray:
    vecs = [window_vector(w) for w in speech_windows(y, config=config, window_ms=window_ms, hop_ms=hop_ms)]
    dim = vector_dim(ENCODER_DIM if config.encoder_mels else 0)
    return np.stack(vecs) if vecs else np.zeros((0, dim), np.float32)


def _job(args) -> np.ndarray:
    path, aug, seed, cfg, window_ms, hop_ms = args
    rng = np.random.default_rng(seed)
    y = load_audio(path, sr=cfg.sr)
    if not aug.is_identity:
        y = augment_audio(y, aug, sr=cfg.sr, rng=rng)
    return _clip_vectors(y, config=cfg, window_ms=window_ms, hop_ms=hop_ms)


@dataclass(frozen=True)
class FeatureSet:
    """Window vectors of many clips. x (N, D) float32; clip (N,) int index into utts; aug (N,) int index into augs.
    spec: None, or (n0, CNN_BANDS, CNN_FRAMES) float16, the CNN input (models.cnn.cnn_input) of rows 0..n0-1, the
    rows of augmentation 0 (they come first); zeros for clips without an emotion label (the CNN reads emotion)."""

    x: np.ndarray
    clip: np.ndarray
    aug: np.ndarray
    utts: tuple[Utterance, ...]
    augs: tuple[Augment, ...]
    spec: np.ndarray | None = None


def _cache_key(utts, augs, cfg, window_ms, hop_ms, seed) -> str:
    h = hashlib.sha256()
    from dsp.vad import VadConfig

    # The VAD's every parameter, not only the gate's version name: a tuning run that kept the name once reused
    # the features of a rule it had replaced.
    meta = dict(cfg=cfg.asdict(), window_ms=window_ms, hop_ms=hop_ms, pooling=POOLING_VERSION,
                gate=GATE_VERSION.split("+")[0], vad=VadConfig().asdict(), encoder=ENCODER_STREAM,
                augs=[asdict(a) for a in augs], seed=seed, dim=vector_dim(ENCODER_DIM))
    h.update(json.dumps(meta, sort_keys=True).encode())
    # Each clip by its name and content, not its path and mtime: a corpus copied again (a fresh checkout of
    # ../shared, another mount point) is the same corpus, and its features (hours of CPU) stay valid.
    for u in utts:
        h.update(f"{u.path.name}|{hashlib.blake2b(u.path.read_bytes(), digest_size=16).hexdigest()}\n".encode())
    return h.hexdigest()[:20]


def featurize(utts: Sequence[Utterance], *, augs: Sequence[Augment] = (Augment(),), config: FeatureConfig = FeatureConfig(),
              window_ms: float = 2000.0, hop_ms: float = 100.0, seed: int = 0, cache_dir: Path | None = None,
              n_jobs: int = 2, progress: bool = True, spec: bool = False) -> FeatureSet:
    """Featurise every clip under every augmentation (both cores), with an on-disk cache per augmentation
    (so that tasks sharing an augmentation, and later runs adding one, compute it once). spec: also the CNN's
    spectrograms of the first augmentation's windows (it must be the identity; FeatureSet.spec)."""
    utts, augs = tuple(utts), tuple(augs)
    if spec and not augs[0].is_identity:
        raise ValueError("spectrograms are made for the first augmentation, which must be the identity")
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    xs, clips, aug_ids, specs = [], [], [], None
    for ai, aug in enumerate(augs):
        parts = []
        for lo, hi in _groups(utts):   # the corpora and the extra voices are cached apart
            x, clip = _featurize_one(utts[lo:hi], aug, config=config, window_ms=window_ms, hop_ms=hop_ms,
                                     seed=seed, cache_dir=cache_dir, n_jobs=n_jobs, progress=progress)
            s = None
            if spec and ai == 0:
                s = _spectrograms(utts[lo:hi], clip, config=config, window_ms=window_ms, hop_ms=hop_ms, seed=seed,
                                  cache_dir=cache_dir, n_jobs=n_jobs, progress=progress)
            parts.append((x, clip + lo, s))
        x, clip = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        keep = SPEECH_GATE.voiced(x)
        if spec and ai == 0:
            specs = np.concatenate([p[2] for p in parts])[keep]
        x, clip = x[keep], clip[keep]
        xs.append(x)
        clips.append(clip)
        aug_ids.append(np.full(x.shape[0], ai, np.int16))
    return FeatureSet(np.concatenate(xs), np.concatenate(clips), np.concatenate(aug_ids), utts, augs, specs)


def _spec_job(args) -> np.ndarray:
    """One clip's CNN spectrograms, for every window the gate's VAD rule passes (as _job's vectors); zeros of the
    vector cache's count for a clip the CNN never reads."""
    from .cnn import CNN_BANDS, CNN_FRAMES, cnn_input

    path, needed, count, cfg, window_ms, hop_ms = args
    if not needed:
        return np.zeros((count, CNN_BANDS, CNN_FRAMES), np.float16)
    y = load_audio(path, sr=cfg.sr)
    # The encoder does not decide which windows pass (the VAD does): skip it, the spectrograms do not read it.
    wins = speech_windows(y, config=dataclasses.replace(cfg, encoder_mels=0), window_ms=window_ms, hop_ms=hop_ms)
    out = np.stack([cnn_input(w.log_mel) for w in wins]) if wins else np.zeros((0, CNN_BANDS, CNN_FRAMES))
    if out.shape[0] != count:
        raise RuntimeError(f"{path}: {out.shape[0]} spectrogram windows against {count} feature windows")
    return out.astype(np.float16)


def _spectrograms(utts, clip: np.ndarray, *, config, window_ms, hop_ms, seed, cache_dir: Path, n_jobs,
                  progress) -> np.ndarray:
    """(rows of the vector cache, CNN_BANDS, CNN_FRAMES) float16, cached beside the vectors."""
    from .cnn import CNN_BANDS, CNN_FRAMES

    if not any(u.emotion is not None for u in utts):   # e.g. the extra voices: nothing to compute or cache
        return np.zeros((len(clip), CNN_BANDS, CNN_FRAMES), np.float16)
    key = _cache_key(utts, (Augment(),), config, window_ms, hop_ms, seed)
    path = cache_dir / f"spec_{key}_{CNN_BANDS}x{CNN_FRAMES}.npz"
    if path.exists():
        return np.load(path)["spec"]
    counts = np.bincount(clip, minlength=len(utts))
    jobs = [(u.path, u.emotion is not None, int(n), config, window_ms, hop_ms) for u, n in zip(utts, counts)]
    spec = np.concatenate(_run_jobs(jobs, n_jobs=n_jobs, progress=progress, label="spectrograms", fn=_spec_job))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, spec=spec)
    tmp.replace(path)
    return spec


def _groups(utts) -> list[tuple[int, int]]:
    """[lo, hi) runs of utts that share a cache file: consecutive clips of the emotion corpora, or not."""
    from .datasets import CORPORA

    runs, lo = [], 0
    for i in range(1, len(utts) + 1):
        if i == len(utts) or (utts[i].corpus in CORPORA) != (utts[lo].corpus in CORPORA):
            runs.append((lo, i))
            lo = i
    return runs


def _featurize_one(utts, aug: Augment, *, config, window_ms, hop_ms, seed, cache_dir: Path, n_jobs, progress):
    key = _cache_key(utts, (aug,), config, window_ms, hop_ms, seed)
    path = cache_dir / f"feat_{key}.npz"
    if path.exists():
        z = np.load(path)
        return z["x"], z["clip"]
    # The RNG seed depends on the augmentation itself, not its place in a list.
    aug_seed = int(hashlib.sha256(json.dumps(asdict(aug), sort_keys=True).encode()).hexdigest()[:6], 16) % 100_003
    jobs = [(u.path, aug, seed * 1_000_003 + aug_seed + ci, config, window_ms, hop_ms) for ci, u in enumerate(utts)]
    label = "features" + ("" if aug.is_identity else f" ({_aug_label(aug)})")
    results = _run_jobs(jobs, n_jobs=n_jobs, progress=progress, label=label)
    x = np.concatenate(results)
    clip = np.concatenate([np.full(r.shape[0], ci, np.int32) for ci, r in enumerate(results)])
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, clip=clip)
    tmp.replace(path)
    return x, clip


def _aug_label(aug: Augment) -> str:
    return ", ".join(f"{k}={v}" for k, v in asdict(aug).items() if v not in (None, 0.0, False))


def _run_jobs(jobs, *, n_jobs: int, progress: bool, label: str, fn=_job) -> list[np.ndarray]:
    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task(label, total=len(jobs))
        if n_jobs <= 1:
            out = []
            for j in jobs:
                out.append(fn(j))
                bar.advance(task)
            return out
        # spawn-free fork context: workers inherit the imported numba kernels.
        with get_context("fork").Pool(n_jobs) as pool:
            out = []
            for r in pool.imap(fn, jobs, chunksize=16):
                out.append(r)
                bar.advance(task)
            return out
