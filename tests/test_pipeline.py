"""The pipeline with the shipped ONNX models: gating, event schema, block-size parity, drop policy."""
import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from streamer.pipeline import Pipeline, PipelineConfig
from streamer.runner import load_models

from tests._corpus import fixture_clip

CLIP = "ravdess/Actor_05/03-01-05-02-01-01-05.flac"   # committed fixture (tests/data)


@pytest.fixture(scope="module")
def models():
    return load_models()


@pytest.fixture(scope="module")
def speech():
    return fixture_clip(CLIP)


def _push_all(pipe, y, block):
    events = []
    for i in range(0, y.size, block):
        events += pipe.push(y[i : i + block], wall_end=1000.0 + (i + block) / 16000)
    return events


def test_silence_gives_no_prediction(models):
    pipe = Pipeline(*models)
    events = _push_all(pipe, np.zeros(16000 * 3, dtype=np.float32), 320)
    n_frames = 1 + (16000 * 3 - 512) // 160
    assert len(events) == n_frames // 10 - 4  # a window every 10 frames from frame 50 (min window 0.5 s)
    assert all(not e.speech and e.emotion is None and e.emotion_probs == {} for e in events)


def test_speech_clip_events(models, speech):
    pipe = Pipeline(*models)
    events = _push_all(pipe, speech, 320)
    speech_ev = [e for e in events if e.speech]
    assert speech_ev and len(speech_ev) < len(events)  # RAVDESS: ~1 s of silence at both ends
    assert not events[0].speech
    for e in speech_ev:
        assert e.emotion in models[0].labels and e.gender in ("female", "male")
        assert sum(e.emotion_probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert sum(e.emotion_probs_raw.values()) == pytest.approx(1.0, abs=1e-3)
        assert set(e.timings_ms) >= {"features", "vad", "pool", "emotion", "gender", "smooth"}
        assert len(e.features["mfcc"]) == 20 and e.features["centroid_hz"] > 0
    ts = [e.t for e in events]
    assert ts == sorted(ts) and np.allclose(np.diff(ts), 0.1)
    d = json.loads(events[-1].to_json())
    assert d["v"] == 1 and d["type"] == "prediction" and d["source"] == "file"


@pytest.mark.parametrize("block", [1, 37, 160, 4096, 16000])
def test_block_size_does_not_change_events(models, speech, block):
    ref = _push_all(Pipeline(*models), speech, 320)
    got = _push_all(Pipeline(*models), speech, block)
    assert [e.t for e in got] == [e.t for e in ref]
    assert [e.speech for e in got] == [e.speech for e in ref]
    for a, b in zip(got, ref):
        assert a.emotion == b.emotion
        for k in a.emotion_probs:
            assert a.emotion_probs[k] == pytest.approx(b.emotion_probs[k], abs=1e-5)


def test_reset_replays_identically(models, speech):
    pipe = Pipeline(*models)
    first = _push_all(pipe, speech, 800)
    pipe.reset()
    again = _push_all(pipe, speech, 800)
    assert [(e.t, e.emotion, e.gender) for e in first] == [(e.t, e.emotion, e.gender) for e in again]


class _Counting:
    """A shipped classifier that counts its calls (to see which stages warm_up reached)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict_proba(self, x, **spec):
        self.calls += 1
        return self.model.predict_proba(x, **spec)


def test_warm_up_reaches_the_speech_stages_and_leaves_no_trace(models, speech):
    """A live pipeline runs warm_up before its first real block (so numba compiles then, not mid-stream): its
    synthetic voice must pass the VAD (the models run) and reset() must leave the stream as if new."""
    emotion, gender = _Counting(models[0]), _Counting(models[1])
    pipe = Pipeline(emotion, gender)
    pipe.warm_up()
    assert emotion.calls > 0 and gender.calls > 0
    assert pipe.samples_in == 0 and pipe.speech_frames == 0
    got, ref = _push_all(pipe, speech, 320), _push_all(Pipeline(*models), speech, 320)
    assert [e.to_dict() | {"timings_ms": None} for e in got] == [e.to_dict() | {"timings_ms": None} for e in ref]


def test_live_drop_policy_keeps_newest_and_counts(models, speech):
    pipe = Pipeline(*models, config=PipelineConfig(max_windows_per_push=1))
    events = pipe.push(speech[:16000 * 2])  # 2 s at once: 197 frames, windows due at frames 50..190
    assert len(events) == 1 and events[0].dropped_windows == 14 and pipe.dropped_windows == 14
    assert events[0].t == pytest.approx((189 * 160 + 512) / 16000)  # the newest window is the one kept


def test_wall_time_is_capture_time_of_last_sample(models):
    pipe = Pipeline(*models)
    events = pipe.push(np.zeros(16000, dtype=np.float32), wall_end=500.0)
    last = events[-1]
    # The window's last sample is (16000 - end) samples before the block's last sample.
    assert last.wall == pytest.approx(500.0 - (1.0 - last.t), abs=1e-6)


def _espeak(tmp_path, text, voice):
    out = tmp_path / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True, capture_output=True)
    y, sr = sf.read(out, dtype="float32")
    import soxr

    return soxr.resample(y, sr, 16000).astype(np.float32)


def test_synthetic_voice_is_detected_as_speech(models, tmp_path):
    y = _espeak(tmp_path, "The quick brown fox jumps over the lazy dog near the river bank.", "en-us+m3")
    pad = np.zeros(16000, dtype=np.float32)
    events = _push_all(Pipeline(*models), np.concatenate([pad, y, pad]), 320)
    flags = [e.speech for e in events]
    assert any(flags) and not flags[0] and not flags[-1]


@pytest.mark.parametrize("block", [320, 4096])
def test_silero_backend_gates_the_same_clip(models, speech, block):
    # 1.5 s of silence after the clip: the last windows hold no speech (until then they still hold the utterance)
    speech = np.concatenate([speech, np.zeros(24000, np.float32)])
    pipe = Pipeline(*models, config=PipelineConfig(vad_backend="silero"))
    events = _push_all(pipe, speech, block)
    flags = [e.speech for e in events]
    assert any(flags) and not flags[0] and not flags[-1]
    ours = [e.speech for e in _push_all(Pipeline(*models), speech, 320)]
    # Two detectors, one clean clip: silero is slower to open and quicker to close, so its speech hops
    # lie inside ours.
    assert all(o for s, o in zip(flags, ours) if s) and sum(flags) >= 0.5 * sum(ours)
    ref = [e.speech for e in _push_all(Pipeline(*models, config=PipelineConfig(vad_backend="silero")), speech, 160)]
    assert flags == ref  # block-size independent with silero too


def test_a_vad_start_hold_longer_than_the_first_window_is_refused(models):
    """The first windows would be gated before any of their frames had a decision."""
    from dsp.vad import VadConfig
    from streamer.errors import ConfigError

    with pytest.raises(ConfigError, match="start hold"):
        Pipeline(*models, config=PipelineConfig(vad=VadConfig(start_hold_ms=800.0)))


def test_unknown_vad_backend_is_rejected():
    with pytest.raises(ValueError, match="vad_backend"):
        PipelineConfig(vad_backend="webrtc")
