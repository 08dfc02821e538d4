"""VAD benchmark: our StreamingVad against silero on RAVDESS speech mixed with white noise and babble.

    python -m benchmarks.bench_vad [--data ROOT] [--clips N] [--seed S] [--json OUT] [--tune]

Reference labels (per 10 ms frame, on the CLEAN clip): frame energy (the extractor's `power`) above the
clip's maximum minus 35 dB, then gaps shorter than 100 ms between speech frames are closed (pauses
inside a word or between close words count as speech, as every VAD with a minimum silence does).
Mixtures: white Gaussian noise, and babble = 4-6 clips of other actors (each cut to its speech span,
normalised, randomly rotated and looped), scaled to 20, 10 and 0 dB SNR, with the speech power
measured over the reference speech samples only. Both VADs see the same mixtures; scores are frame
precision / recall / F1 pooled over all frames of a condition.

Split: VadConfig defaults were tuned (``--tune``) on actors 01-10; the report uses actors 11-20, and
babble talkers come from the same half as the clip (never the clip's own actor). Silero's
probabilities go through the same decision state machine with dsp.vad.SILERO_CONFIG, whose
thresholds and durations were tuned the same way on actors 01-10.

Cost: median over mixtures of seconds per 10 ms frame; ours is pushed in 100 ms blocks (as live),
the extractor (the baseline every VAD here needs) and silero get the whole clip at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from dsp import FeatureConfig, FeatureFrames, StreamingFeatures
from dsp.descriptive import f0
from dsp.vad import SILERO_CONFIG, SileroVad, StreamingVad, VadConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
TUNE_ACTORS = tuple(range(1, 11))
REPORT_ACTORS = tuple(range(11, 21))
NOISES = ("white", "babble")
SNRS_DB = (20, 10, 0)
REF_BELOW_MAX_DB = 35.0
REF_CLOSE_MS = 100.0
BLOCK_FRAMES = 10  # 100 ms pushes when timing, as the live pipeline does
FC = FeatureConfig()


@dataclasses.dataclass(frozen=True)
class Mixture:
    clip: str
    noise: str
    snr_db: float
    y: np.ndarray  # (n,) float32 mixture
    ref: np.ndarray  # (n_frames,) bool reference labels


# --------------------------------------------------------------------------------------------------
# Data


def actor_clips(root: Path, actors) -> dict[int, list[Path]]:
    """{actor: sorted clip paths}; raises if a folder is missing (the corpus is expected complete)."""
    out = {}
    for a in actors:
        folder = root / "ravdess" / f"Actor_{a:02d}"
        files = sorted(folder.glob("*.flac"))
        if not files:
            raise FileNotFoundError(f"no RAVDESS clips in {folder} (give the corpus root with --data)")
        out[a] = files
    return out


def pick_clips(pool: dict[int, list[Path]], n: int, rng: np.random.Generator) -> list[tuple[int, Path]]:
    """n clips spread round-robin over the actors, random within each actor."""
    order = {a: rng.permutation(len(files)) for a, files in pool.items()}
    actors = sorted(pool)
    return [(actors[i % len(actors)], pool[actors[i % len(actors)]][order[actors[i % len(actors)]][i // len(actors)]])
            for i in range(n)]


def load(path: Path) -> np.ndarray:
    y, sr = sf.read(path, dtype="float32")
    if sr != FC.sr or y.ndim != 1:
        raise ValueError(f"{path}: expected mono {FC.sr} Hz, got {sr} Hz shape {y.shape}")
    return y


def frame_power_db(y: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(StreamingFeatures(FC).push(y).power, FC.amin))


def reference_labels(y: np.ndarray) -> np.ndarray:
    """(n_frames,) bool: energy above clip max - 35 dB, gaps < 100 ms closed (see module docstring)."""
    e = frame_power_db(y)
    ref = e > e.max() - REF_BELOW_MAX_DB
    close = int(round(REF_CLOSE_MS / 10.0))
    idx = np.flatnonzero(ref)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= close:
            ref[a:b] = True
    return ref


def speech_samples(ref: np.ndarray, n: int) -> np.ndarray:
    """(n,) bool sample mask of the reference frames' central hops."""
    mask = np.zeros(n, dtype=bool)
    off = (FC.n_fft - FC.hop_length) // 2
    for i in np.flatnonzero(ref):
        mask[i * FC.hop_length + off:(i + 1) * FC.hop_length + off] = True
    return mask


def speech_span(y: np.ndarray) -> np.ndarray:
    """The clip cut to its first..last reference speech sample, normalised to unit RMS."""
    mask = speech_samples(reference_labels(y), y.shape[0])
    idx = np.flatnonzero(mask)
    seg = y[idx[0]:idx[-1] + 1].astype(np.float64)
    return seg / np.sqrt(np.mean(seg ** 2))


def make_babble(sources: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of the sources, each rotated at random and looped to n samples."""
    out = np.zeros(n)
    for s in sources:
        rolled = np.roll(s, rng.integers(s.shape[0]))
        out += np.resize(rolled, n)
    return out


def mix(y: np.ndarray, ref: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    speech_power = np.mean(y[speech_samples(ref, y.shape[0])].astype(np.float64) ** 2)
    gain = np.sqrt(speech_power / (np.mean(noise ** 2) * 10.0 ** (snr_db / 10.0)))
    return (y + gain * noise).astype(np.float32)


def build_mixtures(root: Path, actors, n_clips: int, seed: int, *, tail_s: float = 0.0) -> list[Mixture]:
    """Every picked clip in each noise at each SNR; tail_s seconds of silence appended to the clean clip."""
    rng = np.random.default_rng(seed)
    pool = actor_clips(root, actors)
    spans: dict[Path, np.ndarray] = {}
    out = []
    for actor, path in pick_clips(pool, n_clips, rng):
        y = np.concatenate((load(path), np.zeros(int(tail_s * FC.sr), dtype=np.float32)))
        ref = reference_labels(y)
        others = [a for a in pool if a != actor]
        talkers = rng.choice(others, size=rng.integers(4, 7), replace=False)
        srcs = []
        for a in talkers:
            p = pool[a][rng.integers(len(pool[a]))]
            if p not in spans:
                spans[p] = speech_span(load(p))
            srcs.append(spans[p])
        noises = {"white": rng.standard_normal(y.shape[0]), "babble": make_babble(srcs, y.shape[0], rng)}
        for name in NOISES:
            for snr in SNRS_DB:
                out.append(Mixture(path.stem, name, snr, mix(y, ref, noises[name], snr), ref))
    return out


# --------------------------------------------------------------------------------------------------
# Running the VADs


def blocks(frames: FeatureFrames, size: int):
    for lo in range(0, frames.n, size):
        hi = min(frames.n, lo + size)
        yield FeatureFrames(start=frames.start + lo, log_mel=frames.log_mel[:, lo:hi], mfcc=frames.mfcc[:, lo:hi],
                            power=frames.power[lo:hi], voice=None if frames.voice is None else frames.voice[:, lo:hi])


def run_ours(vad: StreamingVad, frames: FeatureFrames) -> tuple[np.ndarray, float]:
    """(speech (n,), seconds of VAD work) with frames pushed in 100 ms blocks."""
    vad.reset()
    t0 = time.perf_counter()
    parts = [vad.push(b).speech for b in blocks(frames, BLOCK_FRAMES)]
    parts.append(vad.flush().speech)
    return np.concatenate(parts), time.perf_counter() - t0


def run_silero(vad: SileroVad, y: np.ndarray) -> tuple[np.ndarray, float]:
    vad.reset()
    t0 = time.perf_counter()
    head = vad.push(y)
    tail = vad.flush()
    return np.concatenate((head.speech, tail.speech)), time.perf_counter() - t0


def prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def counts(ref: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    if ref.shape != hyp.shape:
        raise ValueError(f"reference {ref.shape} and decisions {hyp.shape} differ in length")
    return np.array([np.sum(ref & hyp), np.sum(~ref & hyp), np.sum(ref & ~hyp)])


def evaluate(mixtures: list[Mixture], config: VadConfig, silero: SileroVad | None) -> dict:
    """Scores per (backend, noise, snr) and per-frame costs."""
    fx, ours = StreamingFeatures(FC), StreamingVad(config, feature_config=FC)
    tallies: dict[tuple, np.ndarray] = {}
    cost = {"features": [], "ours": [], "silero": []}
    for m in mixtures:
        fx.reset()
        t0 = time.perf_counter()
        frames = fx.push(m.y)
        cost["features"].append((time.perf_counter() - t0) / frames.n)
        hyp, secs = run_ours(ours, frames)
        cost["ours"].append(secs / frames.n)
        tallies[("ours", m.noise, m.snr_db)] = tallies.get(("ours", m.noise, m.snr_db), 0) + counts(m.ref, hyp)
        if silero is not None:
            hyp, secs = run_silero(silero, m.y)
            cost["silero"].append(secs / frames.n)
            tallies[("silero", m.noise, m.snr_db)] = tallies.get(("silero", m.noise, m.snr_db), 0) + counts(m.ref, hyp)
    scores = [{"backend": b, "noise": n, "snr_db": s, **prf(*map(int, c))} for (b, n, s), c in tallies.items()]
    us = {k: float(np.median(v) * 1e6) for k, v in cost.items() if v}
    return {"scores": scores, "us_per_frame": us}


def mean_f1(scores: list[dict], backend: str, snr_db: float) -> float:
    return float(np.mean([s["f1"] for s in scores if s["backend"] == backend and s["snr_db"] == snr_db]))


# --------------------------------------------------------------------------------------------------
# Tuning (actors 01-10 only)


def _fit_logistic(x: np.ndarray, y: np.ndarray, iters: int = 50, l2: float = 1e-3) -> np.ndarray:
    """Newton/IRLS logistic regression; x: (n, d) -> weights (d + 1,), bias first."""
    X = np.hstack((np.ones((x.shape[0], 1)), x))
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-X @ w))
        g = X.T @ (p - y) + l2 * w
        H = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(X.shape[1])
        w -= np.linalg.solve(H, g)
    return w


FEATURE_GRID = {"smooth_ms": [10, 20, 30, 50], "release_ms": [10, 20, 50], "snr_cap_db": [20.0, 30.0, 40.0],
                "noise_down_ms": [200, 400, 800],
                "noise_up_ms": [300, 500, 1000, 2000], "noise_up_far_ms": [2000, 5000, 10000],
                "noise_near_db": [2.0, 3.0, 5.0], "noise_var_ms": [1000, 2000, 5000], "noise_z_gate": [0.0, 2.0, 3.0]}
DECISION_GRID = {"onset": [0.6, 0.7, 0.8, 0.9, 0.95], "offset": [0.05, 0.1, 0.2, 0.3, 0.4],
                 "min_speech_ms": [60, 80, 100, 120, 150], "min_silence_ms": [150, 200],
                 "hangover_ms": [0, 30, 60, 100], "speech_pad_ms": [0, 30, 60]}
LOW_SNR_WEIGHT = 0.03
TUNE_TAIL_S = 3.0  # extra trailing noise while tuning, so that settings which never let go of speech lose


def _fit_weights(config: VadConfig, mixtures: list[Mixture], frames: list[FeatureFrames]) -> VadConfig:
    """Refit the logistic weights for config's features (frames above 0 dB SNR, all pooled)."""
    feats, labels = [], []
    for m, fr in zip(mixtures, frames):
        if m.snr_db > 0:
            f = np.empty((fr.n, 3))
            StreamingVad(config, feature_config=FC).probabilities(fr, out_features=f)
            feats.append(f)
            labels.append(m.ref)
    w = _fit_logistic(np.vstack(feats), np.concatenate(labels).astype(float))
    return dataclasses.replace(config, bias=round(float(w[0]), 3), w_energy_snr=round(float(w[1]), 4),
                               w_energy_z=round(float(w[2]), 4), w_flatness_z=round(float(w[3]), 4))


def _objective(config: VadConfig, mixtures: list[Mixture], frames: list[FeatureFrames]) -> tuple[float, dict]:
    """Mean frame F1 over both noises at 20 and 10 dB, plus LOW_SNR_WEIGHT x the mean at 0 dB (so that
    the low-SNR behaviour is not traded away for nothing), and the F1 of each (noise, snr).

    -1 if speech is still on in the last second of any white-noise mixture (its tail is noise only).
    """
    vad = StreamingVad(config, feature_config=FC)
    tally = {}
    for m, fr in zip(mixtures, frames):
        vad.reset()
        hyp = np.concatenate((vad.push(fr).speech, vad.flush().speech))
        if m.noise == "white" and hyp[-100:].any() and not m.ref[-100:].any():
            return -1.0, {"stuck in speech": m.clip}
        tally[(m.noise, m.snr_db)] = tally.get((m.noise, m.snr_db), 0) + counts(m.ref, hyp)
    f1 = {f"{n} {s}": round(prf(*c)["f1"], 4) for (n, s), c in tally.items()}
    main = np.mean([v for (n, s), v in zip(tally, f1.values()) if s > 0])
    low = np.mean([v for (n, s), v in zip(tally, f1.values()) if s <= 0])
    return float(main + LOW_SNR_WEIGHT * low), f1


def tune(mixtures: list[Mixture], base: VadConfig, sweeps: int = 2) -> VadConfig:
    """Coordinate descent over FEATURE_GRID (refitting the logistic weights each time) and DECISION_GRID.

    Objective: see _objective; decision lookahead capped at 200 ms.
    """
    fx = StreamingFeatures(FC)
    frames = []
    for m in mixtures:
        fx.reset()
        frames.append(fx.push(m.y))
    best = _fit_weights(base, mixtures, frames)
    best_f1, detail = _objective(best, mixtures, frames)
    print(f"start: mean F1 {best_f1:.4f} {detail}")
    for sweep in range(sweeps):
        for name, values in {**FEATURE_GRID, **DECISION_GRID}.items():
            for v in values:
                try:
                    c = dataclasses.replace(best, **{name: v})
                except ValueError:
                    continue
                if c.lookahead_ms > 200 or c == best:
                    continue
                if name in FEATURE_GRID:
                    c = _fit_weights(c, mixtures, frames)
                f1, d = _objective(c, mixtures, frames)
                if f1 > best_f1 + 1e-4:
                    best, best_f1, detail = c, f1, d
            print(f"sweep {sweep} {name}={getattr(best, name)}: mean F1 {best_f1:.4f} {detail}", flush=True)
    return best


# --------------------------------------------------------------------------------------------------
# Report


# --------------------------------------------------------------------------------------------------
# Continuous speech: no silence to learn the noise from


def _recall(pairs) -> float:
    vad = StreamingVad(VadConfig(), feature_config=FC)
    tp = fn = 0
    for y, ref in pairs:
        hyp, _ = run_ours(vad, StreamingFeatures(FC).push(y))
        tp += int(np.sum(ref & hyp))
        fn += int(np.sum(ref & ~hyp))
    return tp / max(tp + fn, 1)


def _trimmed(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clip from its first reference speech frame on (energy: often a breath or a click), and its labels."""
    start = int(np.flatnonzero(reference_labels(y))[0])
    cut = y[start * FC.hop_length:]
    return cut, reference_labels(cut)


def voiced_start(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clip from its first voiced reference speech frame on (dsp.descriptive.f0's voicing on the
    extractor's frames, not the VAD's own), and its labels: a stream that starts inside a vowel."""
    ref = reference_labels(y)
    track = f0(y, fmin=65.0, fmax=600.0, sr=FC.sr, frame_length=FC.n_fft, hop_length=FC.hop_length, center=False)
    n = min(ref.size, track.voiced_flag.size)
    start = int(np.flatnonzero(ref[:n] & track.voiced_flag[:n])[0])
    cut = y[start * FC.hop_length:]
    return cut, reference_labels(cut)


def continuous(root: Path, n_clips: int, seed: int) -> dict:
    """Share of reference speech frames detected (recall) when a stream starts at the first speech frame
    (energy) or at the first voiced frame (RAVDESS actors 11-20 and, if present, ASED clips), and on 20 s of
    speech spans joined without pauses."""
    rng = np.random.default_rng(seed)
    pool = actor_clips(root, REPORT_ACTORS)
    rav = [load_any(p) for _, p in pick_clips(pool, n_clips, rng)]
    out = {"ravdess_trimmed": _recall([_trimmed(y) for y in rav]),
           "ravdess_voiced_start": _recall([voiced_start(y) for y in rav])}
    ased = sorted((root / "ased").glob("*/*.ogg"))
    if ased:
        picked = [load_any(ased[i]) for i in rng.choice(len(ased), n_clips, replace=False)]
        out["ased_trimmed"] = _recall([_trimmed(y) for y in picked])
        out["ased_voiced_start"] = _recall([voiced_start(y) for y in picked])
    streams = []
    for _ in range(3):
        spans = [speech_span(rav[i]).astype(np.float32) * 0.05 for i in rng.permutation(len(rav))]
        y = np.resize(np.concatenate(spans), 20 * FC.sr)
        streams.append((y, reference_labels(y)))
    out["no_pause_20s"] = _recall(streams)
    return out


def load_any(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz from any of the corpora's formats (ASED is Ogg Opus)."""
    from dsp.audio_file import load_audio

    return load_audio(path, sr=FC.sr)


def print_report(result: dict, meta: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"VAD frame scores — {meta['clips']} RAVDESS clips of actors "
                        f"{meta['report_actors']} (defaults tuned on actors {meta['tune_actors']})")
    for col in ("noise", "SNR dB", "backend", "precision", "recall", "F1"):
        table.add_column(col, justify="right" if col not in ("noise", "backend") else "left")
    for noise in NOISES:
        for snr in SNRS_DB:
            for s in result["scores"]:
                if s["noise"] == noise and s["snr_db"] == snr:
                    table.add_row(noise, str(snr), s["backend"], f"{s['precision']:.3f}", f"{s['recall']:.3f}",
                                  f"{s['f1']:.3f}")
        table.add_section()
    console.print(table)
    us = result["us_per_frame"]
    budget = 1e4  # µs of audio per 10 ms frame
    console.print("per-frame cost (median µs per 10 ms frame, share of real time): " + ", ".join(
        f"{k} {v:.2f} µs ({100 * v / budget:.3f} %)" for k, v in us.items()))
    if "silero" in us:
        console.print(f"ours / silero cost ratio: {us['ours'] / us['silero']:.3f}")
    for backend in sorted({s["backend"] for s in result["scores"]}):
        f20, f10 = mean_f1(result["scores"], backend, 20), mean_f1(result["scores"], backend, 10)
        ok = f20 >= 0.95 and f10 >= 0.90
        console.print(f"{backend}: mean F1 {f20:.3f} at 20 dB, {f10:.3f} at 10 dB -> goal (>= 0.95 / >= 0.90) "
                      f"{'MET' if ok else 'NOT MET'}")
    cont = result.get("continuous")
    if cont:
        console.print("continuous speech, share of speech frames detected (goal >= 0.95): " + ", ".join(
            f"{k.replace('_', ' ')} {v:.3f}" for k, v in cont.items()))
    console.print(f"decision lookahead: ours {meta['lookahead_ms']:.0f} ms, silero "
                  f"{meta['silero_lookahead_ms']:.0f} ms + up to 16 ms chunk alignment")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="corpus root holding ravdess/ (default ../shared/data)")
    ap.add_argument("--clips", type=int, default=40, help="clips to report on (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write all numbers here")
    ap.add_argument("--html", type=Path, help="write the F1 table as a chart (HTML with inline SVG)")
    ap.add_argument("--tune", action="store_true", help="tune VadConfig on actors 01-10 and print it")
    ap.add_argument("--no-silero", action="store_true", help="skip silero even if installed")
    args = ap.parse_args(argv)
    if args.clips <= 0:
        ap.error("--clips must be positive")

    config = VadConfig()
    if args.tune:
        t0 = time.perf_counter()
        tuned = tune(build_mixtures(args.data, TUNE_ACTORS, args.clips, args.seed + 1000, tail_s=TUNE_TAIL_S),
                     config)
        print(f"tuned on actors 01-10 in {time.perf_counter() - t0:.0f} s:")
        print(tuned)
        config = tuned

    silero = None
    if not args.no_silero:
        try:
            silero = SileroVad(SILERO_CONFIG, feature_config=FC)
        except ModuleNotFoundError as e:
            print(f"silero skipped: {e}", file=sys.stderr)
    t0 = time.perf_counter()
    mixtures = build_mixtures(args.data, REPORT_ACTORS, args.clips, args.seed)
    result = evaluate(mixtures, config, silero)
    result["continuous"] = continuous(args.data, args.clips, args.seed)
    meta = {"clips": args.clips, "seed": args.seed, "report_actors": "11-20", "tune_actors": "01-10",
            "noises": list(NOISES), "snrs_db": list(SNRS_DB), "ref_below_max_db": REF_BELOW_MAX_DB,
            "ref_close_ms": REF_CLOSE_MS, "lookahead_ms": config.lookahead_ms,
            "silero_lookahead_ms": SILERO_CONFIG.lookahead_ms, "seconds": None,
            "config": config.asdict(), "silero_config": SILERO_CONFIG.asdict() if silero else None}
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    print_report(result, meta)
    print(f"({meta['seconds']} s)")
    if args.json:
        goal = {b: {"f1_20db": mean_f1(result["scores"], b, 20), "f1_10db": mean_f1(result["scores"], b, 10)}
                for b in sorted({s["backend"] for s in result["scores"]})}
        args.json.write_text(json.dumps({"meta": meta, **result, "goal": goal}, indent=2))
    if args.html:
        write_vad_html(args.html, result["scores"], meta)
    return 0


def write_vad_html(path: Path, scores: list, meta: dict) -> None:
    """Precision / recall / F1 per noise, SNR and backend as bar charts."""
    from ._util import bars_svg, write_html

    body = (f"<p>Frame-level scores on {meta['clips']} RAVDESS clips of actors {meta['report_actors']} "
            f"(tuned on {meta['tune_actors']}), seed {meta['seed']}.</p>")
    for metric in ("f1", "precision", "recall"):
        rows = [(f"{s['noise']} {s['snr_db']} dB · {s['backend']}", s[metric], s["backend"]) for s in scores]
        body += bars_svg(rows, title=f"{metric} per condition", vmax=1.0,
                         colors={"ours": "#4a90e2", "silero": "#e67e22"})
    write_html(path, title="VAD benchmark", body=body)


if __name__ == "__main__":
    sys.exit(main())
