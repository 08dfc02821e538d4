"""Batch features vs librosa 0.11, and the stream vs the batch functions, on real speech and synthetic signals."""
from pathlib import Path

import librosa
import numpy as np
import pytest

import dsp

from tests._corpus import fixture_clip

KW = dict(sr=16000, n_fft=512, hop_length=160, win_length=400, n_mels=64, fmin=0.0, fmax=8000.0)
CLIPS = ["ravdess/Actor_01/03-01-05-02-01-01-01.flac", "ravdess/Actor_02/03-01-04-01-02-02-02.flac",
         "cut/03-01-06-02-01-01-04_speech.flac"]   # committed fixtures (tests/data)


def _synthetic():
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 2) / 16000
    chirp = np.sin(2 * np.pi * (100 + 1800 * t) * t)
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 8))
    noise = rng.standard_normal(t.size) * 0.1
    return [(0.5 * chirp).astype(np.float32), (0.2 * tone).astype(np.float32), noise.astype(np.float32)]


SIGNALS = [pytest.param(rel, id=Path(rel).stem) for rel in CLIPS] + [pytest.param(i, id=f"synth{i}") for i in range(3)]


def _signal(key):
    return fixture_clip(key) if isinstance(key, str) else _synthetic()[key]


@pytest.mark.parametrize("key", SIGNALS)
def test_melspectrogram_matches_librosa(key):
    y = _signal(key)
    ours = dsp.melspectrogram(y, **KW)
    ref = librosa.feature.melspectrogram(y=y, **KW)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("key", SIGNALS)
def test_mfcc_matches_librosa(key):
    y = _signal(key)
    ours = dsp.mfcc(y, n_mfcc=20, **KW)
    ref = librosa.feature.mfcc(y=y, n_mfcc=20, **KW)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-3


def test_librosa_defaults_match():
    y = fixture_clip(CLIPS[0])
    assert np.abs(dsp.melspectrogram(y) - librosa.feature.melspectrogram(y=y)).max() <= 1e-4 * np.abs(
        librosa.feature.melspectrogram(y=y)).max()
    assert np.abs(dsp.mfcc(y) - librosa.feature.mfcc(y=y)).max() <= 1e-3
    assert np.allclose(dsp.log_mel(y, **KW), librosa.power_to_db(librosa.feature.melspectrogram(y=y, **KW)),
                       atol=1e-3)


def test_magnitude_power_and_no_center():
    y = _synthetic()[0]
    for power, center in [(1.0, True), (2.0, False)]:
        ref = librosa.feature.melspectrogram(y=y, power=power, center=center, **KW)
        ours = dsp.melspectrogram(y, power=power, center=center, **KW)
        assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_delta_matches_librosa():
    m = dsp.mfcc(fixture_clip(CLIPS[1]), **KW)
    for order in (1, 2):
        assert np.allclose(dsp.delta(m, order=order), librosa.feature.delta(m, order=order), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_equals_batch_for_random_blocks(seed):
    y = fixture_clip(CLIPS[seed % len(CLIPS)])
    cfg = dsp.FeatureConfig()
    rng = np.random.default_rng(seed)
    fx = dsp.StreamingFeatures(cfg)
    logs, mfccs, starts, i = [], [], [], 0
    while i < y.size:
        # Mix of tiny and large blocks, 1 sample to 1 s, so both ends of the buffering are exercised.
        n = int(rng.integers(1, 40)) if rng.random() < 0.3 else int(rng.integers(1, cfg.sr + 1))
        frames = fx.push(y[i : i + n])
        starts.append((frames.start, frames.n))
        logs.append(frames.log_mel)
        mfccs.append(frames.mfcc)
        i += n
    log_s, mfcc_s = np.concatenate(logs, axis=1), np.concatenate(mfccs, axis=1)
    log_b = dsp.log_mel(y, center=False, top_db=None, **KW)
    mfcc_b = dsp.mfcc(y, n_mfcc=20, center=False, top_db=None, **KW)
    assert log_s.shape == log_b.shape and mfcc_s.shape == mfcc_b.shape
    assert np.abs(log_s - log_b).max() <= 1e-5
    assert np.abs(mfcc_s - mfcc_b).max() <= 1e-5
    # Frame numbering is contiguous: each push starts where the previous one ended.
    expect = 0
    for start, n in starts:
        assert start == expect
        expect += n


def test_stream_reset_restarts():
    y = _synthetic()[1]
    fx = dsp.StreamingFeatures()
    first = fx.push(y)
    fx.reset()
    again = fx.push(y)
    assert again.start == 0 and np.array_equal(first.log_mel, again.log_mel)


def test_stream_power_is_frame_energy():
    y = (0.5 * np.ones(16000)).astype(np.float32)
    silence = np.zeros(16000, dtype=np.float32)
    fx = dsp.StreamingFeatures()
    loud, quiet = fx.push(y).power, fx.push(silence).power
    assert loud.min() > 1.0 and quiet[-10:].max() == 0.0


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((2, 100), dtype=np.float32), "mono"),
    (np.zeros(1000, dtype=np.int16), "floating"),
    (np.array([0.0, np.nan] * 400, dtype=np.float32), "NaN"),
])
def test_bad_input_raises_value_error(bad, msg):
    with pytest.raises(ValueError, match=msg):
        dsp.melspectrogram(bad, **KW)
    with pytest.raises(ValueError, match=msg):
        dsp.StreamingFeatures().push(bad)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="win_length"):
        dsp.FeatureConfig(win_length=1024)
    with pytest.raises(ValueError, match="fmax"):
        dsp.FeatureConfig(fmax=9000.0)
    with pytest.raises(ValueError, match="shorter than n_fft"):
        dsp.melspectrogram(np.zeros(100, dtype=np.float32), center=False, **KW)


def test_windows_cover_the_last_frames_at_each_hop():
    from dsp.windows import FrameWindower, clip_windows

    y = fixture_clip(CLIPS[0])
    cfg = dsp.FeatureConfig()
    log_b = dsp.log_mel(y, center=False, top_db=None, **KW)
    wins = clip_windows(y, config=cfg, window_ms=1000, hop_ms=100, min_window_ms=300)
    assert [w.end_frame + 1 for w in wins] == list(range(30, log_b.shape[1] + 1, 10))
    for w in wins:
        lo = max(0, w.end_frame + 1 - 100)
        assert np.array_equal(w.log_mel, log_b[:, lo : w.end_frame + 1])
        assert w.t_end == pytest.approx((w.end_frame * 160 + 512) / 16000)
    # Pushing frames in odd-sized pieces yields identical windows.
    fx, win = dsp.StreamingFeatures(cfg), FrameWindower(cfg, window_ms=1000, hop_ms=100, min_window_ms=300)
    rng, i, got = np.random.default_rng(3), 0, []
    while i < y.size:
        n = int(rng.integers(1, 5000))
        frames = fx.push(y[i : i + n])
        # Per-frame states beside the frames (as the encoder's): here each frame's index, twice.
        embed = np.tile(np.arange(frames.start, frames.start + frames.n, dtype=np.float32), (2, 1))
        got += win.push(frames, embed)
        i += n
    assert len(got) == len(wins)
    for a, b in zip(got, wins):
        assert a.end_frame == b.end_frame and np.array_equal(a.mfcc, b.mfcc) and np.array_equal(a.power, b.power)
        assert np.array_equal(a.voice, b.voice, equal_nan=True)
        assert np.array_equal(a.embed, np.tile(np.arange(a.end_frame + 1 - a.n_frames, a.end_frame + 1), (2, 1)))


# The stream re-implements librosa's filterbank, scipy's Hann window and scipy's Butterworth high-pass, to the
# bit, so that it never imports librosa or scipy.signal (half of the cold start). Exact equality, not allclose:
# the shipped models were trained on features from the originals.
@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(16000, 512, 64, 0.0, 8000.0), (16000, 400, 40, 0.0, 8000.0),
                                                       (22050, 2048, 128, 0.0, 11025.0), (16000, 512, 64, 60.0, 7600.0)])
def test_mel_filterbank_is_librosas_to_the_bit(sr, n_fft, n_mels, fmin, fmax):
    from dsp.features import mel_basis

    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float64)
    assert np.array_equal(mel_basis(sr, n_fft, n_mels, fmin, fmax), ref)
    assert np.array_equal(dsp.mel_frequencies(n_mels, fmin=fmin, fmax=fmax),
                          librosa.mel_frequencies(n_mels=n_mels, fmin=fmin, fmax=fmax))


@pytest.mark.parametrize("n", [2, 400, 401, 512])
def test_hann_window_is_scipys_to_the_bit(n):
    import scipy.signal

    from dsp.features import hann_window

    assert np.array_equal(hann_window(n, n), scipy.signal.get_window("hann", n, fftbins=True))


def test_highpass_is_scipys_sosfilt_to_the_bit():
    import scipy.signal

    from dsp.highpass import HighPass, design

    sos = scipy.signal.butter(2, 40.0, btype="highpass", fs=16000, output="sos")
    stored, zi = design(sr=16000, cutoff_hz=40.0, order=2)
    assert np.array_equal(stored, sos) and np.array_equal(zi, scipy.signal.sosfilt_zi(sos))
    x = np.random.default_rng(3).standard_normal(40000) * 0.1 + 0.02  # with a DC offset
    ref, _ = scipy.signal.sosfilt(sos, x, zi=scipy.signal.sosfilt_zi(sos) * x[0])
    hp = HighPass(sr=16000)
    assert np.array_equal(np.concatenate([hp.push(x[i:i + 333]) for i in range(0, x.size, 333)]), ref)
    # Another design (not stored) is scipy's own.
    other = scipy.signal.butter(4, 80.0, btype="highpass", fs=48000, output="sos")
    assert np.array_equal(design(sr=48000, cutoff_hz=80.0, order=4)[0], other)


def test_the_stream_imports_neither_librosa_nor_scipy_signal():
    import subprocess
    import sys

    code = ("import sys, numpy as np\nfrom streamer.runner import build_pipeline\n"
            "p = build_pipeline(source='file', live=False)\n"
            "p.warm_up()\n"
            "print(sorted(m for m in sys.modules if m.startswith(('librosa', 'scipy.signal', 'scipy.stats'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    assert out.strip() == "[]"
