"""The stream's per-frame voice analysis (YIN f0, LPC formants) and its pooled statistics."""
import numpy as np
import pytest
import scipy.signal
import soxr

import dsp
from dsp import descriptive
from dsp.pooling import FEATURE_NAMES, window_vector

from tests._corpus import fixture_clip

CLIPS = ["ravdess/Actor_01/03-01-05-02-01-01-01.flac", "ravdess/Actor_02/03-01-04-01-02-02-02.flac",
         "cut/03-01-06-02-01-01-04_speech.flac"]   # committed fixtures (tests/data)
SR = 16000
VOWEL_HZ = (700.0, 1220.0, 2600.0)   # an /a/-like vowel


def _vowel(f0_hz=120.0, seconds=1.0, formants=VOWEL_HZ):
    """A glottal pulse train through three resonators (Klatt-style cascade): known f0 and formants."""
    n = int(SR * seconds)
    src = np.zeros(n)
    src[(np.arange(0, seconds, 1.0 / f0_hz) * SR).astype(int)] = 1.0
    src = scipy.signal.lfilter([1.0], [1.0, -0.98], src)   # glottal roll-off
    y = src
    for f in formants:
        r = np.exp(-np.pi * 90.0 / SR)
        y = scipy.signal.lfilter([1.0 - r], [1.0, -2 * r * np.cos(2 * np.pi * f / SR), r * r], y)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def _voice(y, block=None):
    fx = dsp.StreamingFeatures()
    if block is None:
        return fx.push(y).voice
    return np.concatenate([fx.push(y[i : i + block]).voice for i in range(0, y.size, block)], axis=1)


@pytest.mark.parametrize("rel", CLIPS)
def test_stream_f0_is_descriptive_f0_on_the_same_frames(rel):
    y = fixture_clip(rel)
    voice = _voice(y)
    ref = descriptive.f0(y, fmin=60.0, fmax=500.0, sr=SR, frame_length=512, hop_length=160, center=False,
                         aperiodicity_threshold=0.35, silence_top_db=200.0)
    n = voice.shape[1]
    assert ref.f0.shape[0] >= n
    voiced = ~np.isnan(voice[0])
    # digital silence aside (descriptive's loudness test is relative), the voicing decisions agree
    assert np.mean(voiced == ref.voiced_flag[:n]) > 0.99 and voiced.mean() > 0.15
    both = voiced & ref.voiced_flag[:n]
    assert np.allclose(voice[0, both], ref.f0[:n][both], rtol=1e-5)


def test_voice_is_the_same_for_any_block_size():
    y = fixture_clip(CLIPS[2])[: SR]
    whole = _voice(y)
    for block in (1, 37, 4096):
        assert np.array_equal(_voice(y, block), whole, equal_nan=True), block


def test_formants_of_a_synthetic_vowel_wideband_and_telephone():
    y = _vowel()
    voice = _voice(y)
    f0 = np.nanmedian(voice[0])
    assert f0 == pytest.approx(120.0, rel=0.01)
    wide = np.nanmedian(voice[2:], axis=1)
    for got, want in zip(wide, VOWEL_HZ):
        assert got == pytest.approx(want, rel=0.06)
    # an 8 kHz line keeps the 0-4 kHz band the formants come from
    phone = soxr.resample(soxr.resample(y, SR, 8000), 8000, SR).astype(np.float32)
    tel = np.nanmedian(_voice(phone)[2:], axis=1)
    assert np.allclose(tel, wide, rtol=0.03)


def test_unvoiced_frames_have_no_f0_or_formants():
    noise = (0.1 * np.random.default_rng(3).standard_normal(SR)).astype(np.float32)
    for y in (noise, np.zeros(SR, np.float32)):
        voice = _voice(y)
        assert np.isnan(voice[0]).mean() > 0.95
        assert np.all(np.isnan(voice[2:, np.isnan(voice[0])]))


def _stats(vec):
    return dict(zip(FEATURE_NAMES[-12:], vec[-12:].tolist()))


def test_pooled_voice_statistics():
    win = dsp.clip_windows(_vowel(f0_hz=200.0, seconds=1.6), window_ms=1500, hop_ms=100)[-1]
    s = _stats(window_vector(win))
    assert s["voiced_fraction"] > 0.9
    assert s["f0_st_median"] == pytest.approx(12 * np.log2(2.0), abs=0.2)   # 200 Hz: 12 semitones re 100 Hz
    assert s["f0_st_std"] < 0.2 and s["f0_st_slope"] < 0.1
    assert s["f1_khz_median"] == pytest.approx(0.7, rel=0.08) and s["f3_khz_median"] == pytest.approx(2.6, rel=0.06)


def test_pooled_voice_statistics_without_voicing_are_neutral():
    noise = (0.1 * np.random.default_rng(4).standard_normal(2 * SR)).astype(np.float32)
    fx, windower = dsp.StreamingFeatures(voice=False), dsp.FrameWindower(window_ms=1500, hop_ms=100)
    frames = fx.push(noise)
    assert frames.voice is None
    for win in (dsp.clip_windows(noise, window_ms=1500, hop_ms=100)[-1], windower.push(frames)[-1]):
        s = _stats(window_vector(win))
        assert s["voiced_fraction"] < 0.05
        assert s["f0_st_median"] == pytest.approx(8.1) and s["f2_khz_median"] == pytest.approx(1.5)
        assert np.all(np.isfinite(window_vector(win)))


def test_window_vector_rejects_a_voice_of_the_wrong_shape():
    win = dsp.clip_windows(_vowel(), window_ms=1000, hop_ms=100)[-1]
    bad = dsp.Window(end_frame=win.end_frame, t_end=win.t_end, log_mel=win.log_mel, mfcc=win.mfcc,
                     power=win.power, voice=win.voice[:, 1:])
    with pytest.raises(ValueError, match="voice"):
        window_vector(bad)
