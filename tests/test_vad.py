"""StreamingVad / SileroVad: synthetic state-machine sequences, stream parity, one real RAVDESS clip."""
import numpy as np
import pytest

import dsp
from dsp.vad import (SILERO_CONFIG, SileroVad, StreamingVad, VadConfig, VadResult, mask_to_segments, speech_mask,
                     vad_segments)
from tests._corpus import fixture_clip

SR = 16000
CLIP = "ravdess/Actor_01/03-01-01-01-01-01-01.flac"
# Segment edges vs the true burst: the start may come up to speech_pad_ms (60 ms) + a frame early; the end
# is late by the smoothed level's release (20 ms) plus hangover_ms (30 ms) plus the window's reach.
START_TOL_S = 0.1
END_TOL_S = 0.12


def _noise(n, level, seed=0):
    return level * np.random.default_rng(seed).standard_normal(n)


def _voice(n, f0=140.0, amp=0.1):
    """Harmonic complex (10 partials, 1/k amplitudes): a steady vowel-like burst."""
    t = np.arange(n) / SR
    return amp * sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 11))


def _burst_signal(total_s=3.0, start_s=1.0, end_s=2.0, noise=1e-3):
    y = _noise(int(total_s * SR), noise)
    a, b = int(start_s * SR), int(end_s * SR)
    y[a:b] += _voice(b - a)
    return y.astype(np.float32)


def _frames(y):
    return dsp.StreamingFeatures().push(y)


def _run_blocks(y, sizes, config=VadConfig()):
    """Push y through extractor + VAD in blocks of the given sample counts; concatenate everything."""
    fx, vad = dsp.StreamingFeatures(), StreamingVad(config)
    results, pos = [], 0
    for n in sizes:
        results.append(vad.push(fx.push(y[pos:pos + n])))
        pos += n
    results.append(vad.push(fx.push(y[pos:])))
    results.append(vad.flush())
    return results


def _cat(results):
    prob = np.concatenate([r.prob for r in results])
    speech = np.concatenate([r.speech for r in results])
    events = [e for r in results for e in r.events]
    return prob, speech, events


def test_one_burst_gives_one_segment():
    segs = vad_segments(_burst_signal())
    assert len(segs) == 1, segs
    (start, end), = segs
    assert 1.0 - START_TOL_S <= start <= 1.0 + 0.03
    assert 2.0 - 0.03 <= end <= 2.0 + END_TOL_S


def test_events_match_the_mask():
    y = _burst_signal()
    prob, speech, events = _cat(_run_blocks(y, [1600] * 10))
    edges = np.flatnonzero(np.diff(np.concatenate(([0], speech.astype(int), [0]))))
    assert events == [("start", int(edges[0])), ("end", int(edges[1]))]
    assert speech.shape == prob.shape == (_frames(y).n,)
    assert prob.dtype == np.float32 and speech.dtype == bool
    assert prob[speech].mean() > 0.8 and prob[~speech].mean() < 0.2


def test_short_click_is_not_speech():
    y = _noise(3 * SR, 1e-3)
    y[SR:SR + 480] += _voice(480)  # 30 ms, 40 dB above the noise
    assert not speech_mask(y.astype(np.float32)).any()


def test_short_gap_does_not_split():
    y = _burst_signal().astype(np.float64)
    a = int(1.5 * SR)
    y[a:a + 800] = _noise(800, 1e-3, seed=5)  # 50 ms of background only
    segs = vad_segments(y.astype(np.float32))
    assert len(segs) == 1, segs


def test_long_gap_splits():
    y = _burst_signal(total_s=4.0, end_s=3.0).astype(np.float64)
    a = int(1.8 * SR)
    y[a:a + int(0.5 * SR)] = _noise(int(0.5 * SR), 1e-3, seed=5)
    assert len(vad_segments(y.astype(np.float32))) == 2


def test_noise_floor_adapts_to_a_step():
    # 2 s of quiet noise, then 38 s of stationary noise 20 dB louder: first taken for speech, then learnt.
    y = np.concatenate((_noise(2 * SR, 1e-3), _noise(38 * SR, 1e-2, seed=1))).astype(np.float32)
    mask = speech_mask(y)
    assert mask[210:260].all()  # the step itself looks like speech
    assert not mask[-1000:].any()  # the last 10 s are noise again
    # and a voice in the louder noise is still found after adaptation
    z = y.copy()
    z[35 * SR:36 * SR] += _voice(SR, amp=0.3).astype(np.float32)
    mask = speech_mask(z)
    assert mask[3510:3590].all() and not mask[-300:].any()


def test_stationary_noise_alone_is_not_speech():
    for level in (1e-4, 1e-2, 0.3):
        assert not speech_mask(_noise(5 * SR, level, seed=3).astype(np.float32)).any()


def test_digital_silence_is_not_speech():
    assert not speech_mask(np.zeros(2 * SR, dtype=np.float32)).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_blocks_equal_one_push(seed):
    y = _burst_signal(total_s=4.0)
    y[int(2.5 * SR):int(2.9 * SR)] += _voice(int(0.4 * SR), f0=210.0, amp=0.05).astype(np.float32)
    whole = _cat(_run_blocks(y, []))
    rng = np.random.default_rng(seed)
    sizes = list(rng.integers(0, 3000, size=60))
    parts = _cat(_run_blocks(y, sizes))
    np.testing.assert_array_equal(parts[0], whole[0])
    np.testing.assert_array_equal(parts[1], whole[1])
    assert parts[2] == whole[2]


def test_results_are_contiguous_and_delayed_by_the_lookahead():
    """Final decisions trail by the lookahead, after the start hold (none is final before its end)."""
    y = _burst_signal()
    fx, vad = dsp.StreamingFeatures(), StreamingVad()
    expected_start = 0
    for k in range(0, y.size, 1600):
        frames = fx.push(y[k:k + 1600])
        res = vad.push(frames)
        assert isinstance(res, VadResult) and res.start == expected_start
        expected_start += res.n
        end = frames.start + frames.n
        assert expected_start == (0 if end < vad.start_hold_frames else max(0, end - vad.lookahead_frames))
    tail = vad.flush()
    assert tail.start == expected_start and expected_start + tail.n == fx.frames_done
    assert VadConfig().lookahead_ms <= 200


def test_reset_restores_initial_state():
    y = _burst_signal()
    fresh = _cat(_run_blocks(y, [4000] * 5))
    fx, vad = dsp.StreamingFeatures(), StreamingVad()
    vad.push(fx.push(_noise(SR, 0.05, seed=9).astype(np.float32)))  # leave floors and pending frames behind
    vad.reset()
    fx.reset()
    again = [vad.push(fx.push(y[k:k + 4000])) for k in range(0, y.size, 4000)] + [vad.flush()]
    again = _cat(again)
    np.testing.assert_array_equal(again[0], fresh[0])
    np.testing.assert_array_equal(again[1], fresh[1])
    assert again[2] == fresh[2]


def test_flush_resets_for_the_next_stream():
    y = _burst_signal()
    first = _cat(_run_blocks(y, []))
    fx, vad = dsp.StreamingFeatures(), StreamingVad()
    for _ in range(2):
        fx.reset()
        out = _cat([vad.push(fx.push(y)), vad.flush()])
        np.testing.assert_array_equal(out[1], first[1])


def test_input_checks():
    vad = StreamingVad()
    frames = _frames(_burst_signal())
    with pytest.raises(ValueError, match="expected 0"):
        vad.push(dsp.FeatureFrames(start=5, log_mel=frames.log_mel, mfcc=frames.mfcc, power=frames.power))
    with pytest.raises(ValueError, match="offset"):
        VadConfig(onset=0.3, offset=0.5)
    with pytest.raises(ValueError, match="hangover_ms"):
        VadConfig(hangover_ms=300.0, min_silence_ms=200.0)
    with pytest.raises(ValueError, match="frame_ms"):
        StreamingVad(VadConfig(frame_ms=20.0))
    with pytest.raises(ValueError, match="start_hold_ms"):
        VadConfig(start_hold_ms=-1.0)
    with pytest.raises(ValueError, match="start_loud_voiced"):
        VadConfig(start_loud_voiced=1.5)
    with pytest.raises(ValueError, match="is held"):   # the tuning features need the frames of the push itself
        StreamingVad().probabilities(dsp.FeatureFrames(start=0, log_mel=frames.log_mel[:, :10],
                                                       mfcc=frames.mfcc[:, :10], power=frames.power[:10]),
                                     out_features=np.empty((10, 3)))
    with pytest.raises(ValueError, match="sr"):
        speech_mask(np.zeros(SR, dtype=np.float32), sr=8000, feature_config=dsp.FeatureConfig())


def test_mask_to_segments():
    mask = np.zeros(100, dtype=bool)
    mask[10:20] = True
    mask[95:] = True
    segs = mask_to_segments(mask)
    off = (512 - 160) / 2
    assert segs == [((10 * 160 + off) / SR, (20 * 160 + off) / SR), ((95 * 160 + off) / SR, (100 * 160 + off) / SR)]
    assert mask_to_segments(np.zeros(5, dtype=bool)) == []


def test_real_clip_one_segment():
    y = fixture_clip(CLIP)
    segs = vad_segments(y)
    assert len(segs) == 1, segs
    (start, end), = segs
    duration = y.size / SR
    # RAVDESS: about 1 s of near-silence at both ends; the sentence itself lasts ~1.5 s.
    assert 0.5 < start < 1.2 and start + 1.0 < end < duration - 0.3


def test_silero_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        SileroVad(model_path=tmp_path / "nope.onnx")


def test_silero_backend():
    # Needs `pip install --no-deps silero-vad` (the model file only; torch is not imported).
    vad = SileroVad()
    y = fixture_clip(CLIP)
    head = vad.push(y[: 7 * 1000])
    rest = [vad.push(y[k:k + 1000]) for k in range(7000, y.size, 1000)]
    out = _cat([head, *rest, vad.flush()])
    n_frames = _frames(y).n
    assert out[1].shape == (n_frames,) and out[0].dtype == np.float32
    segs = mask_to_segments(out[1])
    assert len(segs) >= 1 and 0.5 < segs[0][0] < 1.3 and segs[-1][1] < y.size / SR - 0.3
    # Chunk alignment: frame i carries the probability of the 512-sample chunk holding its centre.
    whole = SileroVad()
    probs = np.concatenate([whole.push(y).prob, whole.flush().prob])
    np.testing.assert_array_equal(probs, out[0])
    centre_chunk = (np.arange(n_frames) * 160 + 256) // 512
    assert np.all(np.diff(probs)[np.diff(centre_chunk) == 0] == 0)
    assert SILERO_CONFIG.lookahead_ms <= 200


def test_one_interface_for_both_backends_and_config_applies_to_each():
    """make_vad: the pipeline's one VAD step for either backend; a given VadConfig is used, never ignored."""
    from dsp import StreamingFeatures
    import dataclasses

    from dsp.vad import find_silero_model, make_vad

    custom = dataclasses.replace(SILERO_CONFIG, onset=0.8, offset=0.7)
    for backend, default in (("ours", VadConfig()), ("silero", SILERO_CONFIG)):
        if backend == "silero":
            try:
                find_silero_model()
            except ModuleNotFoundError:
                pytest.skip("silero's model is not installed (pip install --no-deps silero-vad)")
        assert make_vad(backend).config == default
        vad = make_vad(backend, config=custom)
        assert vad.config == custom
        assert vad.delay_frames >= custom.lookahead_frames
        y = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.01
        frames = StreamingFeatures().push(y)
        res = vad.advance(samples=y, frames=frames)
        assert res.start == 0 and res.n >= frames.n - vad.delay_frames - 1
    with pytest.raises(ValueError, match="backend"):
        make_vad("webrtc")
