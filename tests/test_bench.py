"""`emotion-monitor bench` on a tiny input writes the documented JSON keys and an HTML report (timings are
not asserted: they belong to benchmarks/RESULTS.md); the reaction-time scoring on synthetic timelines."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.reaction import StreamedClip, order_clips, score
from streamer.cli import build_parser
from tests._corpus import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
NUMBER = (int, float)


def _stats(d, keys=("p50", "p95", "p99")):
    return all(isinstance(d[k], NUMBER) for k in keys)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    # The committed fixtures hold three clips of each held-out actor (19, 20), the cold-start clip among them.
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, "-m", "benchmarks", "--seconds", "3", "--clips", "3", "--hops", "60",
           "--baseline-windows", "20", "--baseline-hops", "10", "--data", str(FIXTURES),
           "--json", str(out / "bench.json"), "--html", str(out / "bench.html")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "bench.json").read_text()), (out / "bench.html").read_text(), done.stdout


def test_bench_json_has_the_documented_keys_and_types(bench):
    res, _, _ = bench
    for key in ("speedup_vs_baseline", "rtf", "peak_rss_mb", "cold_start_s", "timeline_accuracy",
                "baseline_ms_per_hop", "ours_ms_per_hop"):
        assert isinstance(res[key], NUMBER) and res[key] > 0, key
    assert _stats(res["hop_latency_ms"]) and _stats(res["e2e_latency_ms"])
    assert res["hop_latency_ms"]["p50"] <= res["hop_latency_ms"]["p95"] <= res["hop_latency_ms"]["p99"]
    assert set(res["stages_ms"]) == {"vad", "features", "encoder", "windowing", "pooling", "normalise", "spectrogram",
                                     "emotion", "gender", "smoothing", "descriptors", "other", "encode_broadcast"}
    for name, st in res["stages_ms"].items():
        assert _stats(st, ("median", "p95", "p99", "max")), name
    r = res["reaction_s"]
    for variant in (r, r["with_pauses"], r["without_pauses"]):
        assert 0.0 <= variant["miss_rate"] <= 1.0 and variant["changes"] >= 1
        assert variant["median"] is None or isinstance(variant["median"], NUMBER)
    assert 0.0 <= res["timeline_accuracy"] <= 1.0
    # CI installs PulseAudio, so the end-to-end part goes through the virtual microphone there.
    assert res["e2e_source"] == ("virtual-mic" if shutil.which("pulseaudio") else "paced-file")
    assert res["e2e_latency_ms"]["n"] > 5
    assert set(res["goals"]) == {"speedup_vs_baseline", "rtf", "hop_compute_p99_ms", "reaction_median_s",
                                 "cold_start_s"}
    assert all(isinstance(g["met"], bool) for g in res["goals"].values())
    assert res["window_ms"] >= res["hop_ms"] > 0 and res["updates_per_s"] > 0
    assert isinstance(res["machine"]["cpu_count"], int) and res["machine"]["pinned_cpu"] is not None
    assert res["language"] == "any" and set(res["models"]) == {"emotion", "emotion-en", "gender"}
    assert res["cold_start_emotion_model"] == "emotion"


def test_bench_html_report_has_the_charts(bench):
    _, page, stdout = bench
    assert page.count("<svg") >= 3 + 4  # two histograms, the stage bars, a timeline per stream (2 actors x 2)
    assert "hop compute" in page and "end to end" in page and "actor 19" in page
    assert "speedup" in stdout  # the rich table on the terminal


def test_bench_is_a_subcommand_of_emotion_monitor():
    args = build_parser().parse_args(["bench", "--seconds", "5", "--source", "demo"])
    assert args.func.__module__ == "benchmarks.cli" and args.seconds == 5 and args.source == "demo"


def test_cold_start_runs_the_emotion_model_of_the_language():
    """Two fresh interpreters to the first prediction on the committed held-out clip, with the English model."""
    from benchmarks.cold_start import run_cold_start

    res = run_cold_start(FIXTURES, lambda done, total: None, language="en")
    assert res["cold_start_emotion_model"] == "emotion-en"
    assert res["cold_start_s"] > 0 and res["peak_rss_mb"] > 0


def test_bench_language_picks_the_emotion_model_and_is_checked():
    from benchmarks.bench_options import BenchOptions
    from benchmarks.cli import options

    assert options(build_parser().parse_args(["bench", "--language", "en"])).language == "en"
    from benchmarks.bench_options import BenchError

    with pytest.raises(BenchError, match="--language must be one of any, en"):
        BenchOptions(language="xx")
    bad = subprocess.run([sys.executable, "-m", "benchmarks", "--language", "xx"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'xx'" in bad.stderr and "Traceback" not in bad.stderr


def _u(emotion, onset):
    return StreamedClip(emotion=emotion, onset_s=onset, end_s=onset + 3, path="")


def test_reaction_scoring_on_a_synthetic_timeline():
    utts = (_u("sad", 0.0), _u("happy", 3.0), _u("angry", 6.0))
    rows = []  # (t, speech, smoothed label, raw label), one every 0.1 s
    for i in range(90):
        t = round(0.1 * i, 1)
        label = "sad" if t < 4.2 else "happy"  # reacts 1.2 s after the change to happy, never to angry
        rows.append((t, i % 10 != 0, label, "angry" if t >= 6.5 else label))
    s = score(rows, utts)
    assert s["changes"] == 2 and s["misses"] == 1
    assert s["reactions_s"] == pytest.approx([1.2])
    speech = [r for r in rows if r[1]]
    truth = ["sad" if r[0] < 3 else "happy" if r[0] < 6 else "angry" for r in speech]
    assert s["judged"] == len(speech)
    assert s["correct"] == sum(r[2] == t for r, t in zip(speech, truth))
    raw = score(rows, utts, raw=True)
    assert raw["misses"] == 0 and raw["reactions_s"] == pytest.approx([1.2, 0.5])


def test_order_clips_alternates_emotions():
    class U:
        def __init__(self, emotion):
            self.emotion = emotion

    utts = [U(e) for e in ["neutral"] * 8 + ["sad"] * 8 + ["happy"] * 4 + ["angry"] * 2]
    order = order_clips(utts, rng=np.random.default_rng(0))
    assert len(order) == len(utts)
    assert all(a.emotion != b.emotion for a, b in zip(order, order[1:]))
    assert len(order_clips(utts, rng=np.random.default_rng(1), n=5)) <= 5
