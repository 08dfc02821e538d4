"""Per-hop cost of the streaming feature engine against the naive ways to stream the old app's features.

    python -m benchmarks.bench_dsp [--json OUT] [--seconds S]

(a) ours: StreamingFeatures(voice=False).push of one 10 ms hop -> one new log-mel + MFCC frame (like for like with
    b and c; the monitor also runs the per-frame voice analysis, f0 + formants, reported as its own row);
(b) librosa: log-mel + MFCC recomputed over the whole 2 s window at every hop (the old app's features, streamed);
(c) numpy: the same new frame per hop, vectorised numpy (rfft, mel matmul, log, DCT matmul), no numba.
Reports medians, ratios (b/a, c/a), the real-time factor and the cold-start cost, measured in this run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import soundfile as sf

from ._util import DEFAULT_DATA, median_us, time_calls, write_json

CLIP = "ravdess/Actor_03/03-01-05-02-01-01-03.flac"


def _signal(data_dir, seconds: float) -> np.ndarray:
    path = data_dir / CLIP
    if path.exists():
        y, _ = sf.read(path, dtype="float32")
    else:  # still runnable without the corpus: a harmonic tone with vibrato
        t = np.arange(int(16000 * seconds)) / 16000
        y = (0.1 * np.sin(2 * np.pi * (150 + 10 * np.sin(3 * t)) * t)).astype(np.float32)
    reps = int(np.ceil(seconds * 16000 / y.size))
    return np.tile(y, reps)[: int(seconds * 16000)]


def _cold_start() -> float:
    """Seconds for a fresh interpreter to import dsp and produce its first frame (numba cache load or compile)."""
    code = ("import time,numpy as np;t=time.perf_counter();import dsp;fx=dsp.StreamingFeatures();"
            "fx.push(np.zeros(1024,np.float32));print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _ours(y, hop, n_hops, *, voice: bool = False):
    import dsp

    fx = dsp.StreamingFeatures(voice=voice)
    fx.push(y[:400])
    i = [400]

    def step():
        fx.push(y[i[0] : i[0] + hop])
        i[0] += hop

    return time_calls(step, n_hops)


def _librosa(y, hop, n_hops, window):
    import librosa

    kw = dict(sr=16000, n_fft=512, hop_length=160, win_length=400, n_mels=64, fmin=0.0, fmax=8000.0)
    pos = [window]

    def step():
        seg = y[pos[0] - window : pos[0]]
        S = librosa.power_to_db(librosa.feature.melspectrogram(y=seg, **kw))
        librosa.feature.mfcc(S=S, n_mfcc=20)
        pos[0] += hop

    return time_calls(step, n_hops)


def _numpy(y, hop, n_hops):
    from dsp.features import dct_matrix, hann_window, mel_basis

    win, basis, dct = hann_window(512, 400), mel_basis(16000, 512, 64, 0.0, 8000.0), dct_matrix(20, 64)
    pos = [0]

    def step():
        frame = y[pos[0] : pos[0] + 512] * win
        power = np.abs(np.fft.rfft(frame)) ** 2
        log = 10.0 * np.log10(np.maximum(basis @ power, 1e-10))
        dct @ log
        pos[0] += hop

    return time_calls(step, n_hops)


def run(*, data_dir=DEFAULT_DATA, seconds: float = 30.0, librosa_hops: int = 300) -> dict:
    hop, window = 160, 32000
    cold = _cold_start()
    y = _signal(data_dir, seconds + 3)
    n_hops = int(seconds * 100) - 50
    a = median_us(_ours(y, hop, n_hops))
    v = median_us(_ours(y, hop, n_hops, voice=True))
    b = median_us(_librosa(y, hop, min(librosa_hops, n_hops), window))
    c = median_us(_numpy(y, hop, n_hops))
    return {"hop_ms": 10, "window_ms_librosa": 2000, "n_mels": 64, "n_mfcc": 20, "hops": n_hops,
            "ours_us_per_hop": round(a, 2), "ours_with_voice_us_per_hop": round(v, 2),
            "librosa_us_per_hop": round(b, 2), "numpy_us_per_hop": round(c, 2),
            "ratio_librosa": round(b / a, 1), "ratio_numpy": round(c / a, 2),
            "rtf": round(a / 10_000, 5), "cold_start_s": round(cold, 3)}


def _print(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("engine", "median µs per 10 ms hop", "× ours", title="streaming log-mel + MFCC, 16 kHz")
    t.add_row("ours (numba stream)", f"{res['ours_us_per_hop']:.1f}", "1.0")
    t.add_row("ours + voice analysis (f0, formants)", f"{res['ours_with_voice_us_per_hop']:.1f}",
              f"{res['ours_with_voice_us_per_hop'] / res['ours_us_per_hop']:.2f}")
    t.add_row("librosa, 2 s window each hop", f"{res['librosa_us_per_hop']:.1f}", f"{res['ratio_librosa']:.1f}")
    t.add_row("numpy, new frame each hop", f"{res['numpy_us_per_hop']:.1f}", f"{res['ratio_numpy']:.2f}")
    Console().print(t)
    Console().print(f"real-time factor {res['rtf']:.5f}; cold start (import + first frame) {res['cold_start_s']:.2f} s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_dsp", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=None, metavar="OUT")
    p.add_argument("--html", default=None, metavar="OUT", help="write the comparison as a chart")
    p.add_argument("--seconds", type=float, default=30.0, help="audio streamed through ours and numpy")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="corpus root (for a real speech clip)")
    args = p.parse_args(argv)
    from pathlib import Path

    res = run(data_dir=Path(args.data), seconds=args.seconds)
    _print(res)
    if args.json:
        write_json(args.json, res)
    if args.html:
        from ._util import bars_svg, write_html

        rows = [("ours (numba stream)", res["ours_us_per_hop"], "ours"),
                ("ours + voice analysis", res["ours_with_voice_us_per_hop"], "ours"),
                ("numpy, new frame per hop", res["numpy_us_per_hop"], "numpy"),
                ("librosa, 2 s window per hop", res["librosa_us_per_hop"], "librosa")]
        write_html(args.html, title="Streaming feature cost", body=bars_svg(
            rows, title="median µs per 10 ms hop (log scale not used: librosa dwarfs the others)", unit="µs"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
