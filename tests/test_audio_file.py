"""dsp.audio_file, the one file loader: what it refuses, what it keeps of a damaged file, and that it reads what
the loaders it replaced read."""
from __future__ import annotations

import errno
import os
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf
import soxr

from dsp import audio_file
from dsp.audio_file import AudioFileError, AudioFileWarning, AudioReader, load_audio, read_audio
from streamer.sources import FileSource
from tests._clips import SR, espeak


@pytest.fixture(scope="module")
def speech():
    y = espeak("The quick brown fox jumps over the lazy dog.", voice="en-us+m3")
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def _error(path) -> str:
    with pytest.raises(AudioFileError) as info:
        load_audio(path, sr=SR)
    message = str(info.value)
    assert "\n" not in message
    return message


def _with_rate(tmp_path, speech, rate: int):
    path = tmp_path / f"rate{rate}.wav"
    sf.write(path, speech, SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 24, rate)  # the fmt chunk's sample rate
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate, ok", [(1, False), (3999, False), (4000, True), (768000, True), (768001, False)])
def test_sample_rate_outside_4k_768k_is_refused(tmp_path, speech, rate, ok):
    path = _with_rate(tmp_path, speech, rate)
    if ok:
        assert AudioReader(path).info.samplerate == rate
    else:
        assert f"sample rate {rate} Hz is outside 4000..768000 Hz" in _error(path)


@pytest.mark.parametrize("value, needle", [(np.nan, "not finite"), (np.inf, "not finite"), (-np.inf, "not finite"),
                                           (1e30, "as large as 1e+30"), (-2e3, "as large as 2e+03")])
def test_non_finite_or_absurd_samples_are_an_error(tmp_path, speech, value, needle):
    y = speech.copy()
    y[SR + 5] = value  # one sample, a second in
    path = tmp_path / "bad.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    message = _error(path)
    assert needle in message and "at 1.00 s" in message


def test_loud_float_within_the_limit_is_read(tmp_path, speech):
    path = tmp_path / "loud.wav"
    sf.write(path, speech * 900, SR, subtype="FLOAT")
    assert np.abs(load_audio(path, sr=SR)).max() == pytest.approx(450, rel=1e-3)


def test_cut_flac_keeps_the_readable_part_and_warns_once(tmp_path, speech):
    path = tmp_path / "cut.flac"
    sf.write(path, speech, SR, format="FLAC")
    intact = load_audio(path, sr=SR)
    path.write_bytes(path.read_bytes()[:-1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = load_audio(path, sr=SR)
    assert [w.category for w in caught] == [AudioFileWarning]
    message = str(caught[0].message)
    assert "cut.flac" in message and "flac decoder lost sync" in message and "could not be read" in message
    # Everything before the damaged last FLAC frame (4096 samples) survives, sample for sample.
    assert intact.size - 4096 <= y.size < intact.size
    np.testing.assert_array_equal(y, intact[:y.size])


def test_file_source_loops_over_a_cut_flac(tmp_path, speech):
    path = tmp_path / "cut.flac"
    sf.write(path, speech, SR, format="FLAC")
    path.write_bytes(path.read_bytes()[:-1])
    with warnings.catch_warnings(record=True) as caught, FileSource(path, loop=True) as source:
        warnings.simplefilter("always")
        seconds = 0.0
        for block in source:  # three passes: the decoder is reopened after each damaged end
            seconds = block.t_end
            if seconds > 3 * speech.size / SR:
                break
        assert source.lost_seconds > 0
    assert len(caught) == 1


def _fifo(d):
    os.mkfifo(d / "p.wav")
    return d / "p.wav"


def _symlink_loop(d):
    os.symlink(d / "b.wav", d / "a.wav")
    os.symlink(d / "a.wav", d / "b.wav")
    return d / "a.wav"


def _empty(d):
    (d / "e.wav").write_bytes(b"")
    return d / "e.wav"


def _bad_mp3(d):
    (d / "x.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + np.random.default_rng(0).bytes(3000))
    return d / "x.mp3"


@pytest.mark.parametrize("make, needle", [
    (_fifo, "is a FIFO (named pipe), not a regular file"),
    (lambda d: "/dev/zero", "is a character device"),
    (lambda d: d, "is a directory"),
    (lambda d: "", "the file name is empty"),
    (_symlink_loop, "symbolic links"),
    (lambda d: d / "missing.wav", "no such file"),
    (_empty, "the file is empty"),
    (_bad_mp3, "damaged or unsupported MP3 data"),
])
def test_refusals_have_accurate_messages(tmp_path, make, needle):
    message = _error(make(tmp_path))
    assert needle in message and "pipe?" not in message  # libsndfile's "possibly a pipe" misled for bad MP3


def test_permission_denied(tmp_path, speech, monkeypatch):
    # Tests run as root, which reads any file: the refusal is simulated at the one call that would fail.
    path = tmp_path / "secret.wav"
    sf.write(path, speech, SR)
    real_open = os.open

    def denied(p, flags, *args, **kwargs):
        if os.fspath(p) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(audio_file.os, "open", denied)
    assert _error(path) == f"cannot read audio file {path}: permission denied"


def test_non_utf8_name_is_read(tmp_path, speech):
    raw = os.fsencode(tmp_path) + b"/caf\xe9-\xff.wav"  # Latin-1 bytes: not UTF-8
    sf.write(raw.decode("latin-1"), speech, SR)  # written under a UTF-8 name, then renamed to the raw bytes
    os.rename(raw.decode("latin-1"), raw)
    as_argv = os.fsdecode(raw)  # what sys.argv holds: surrogate escapes
    assert load_audio(as_argv, sr=SR).size == speech.size
    assert audio_file.display_name(as_argv).endswith("caf\\xe9-\\xff.wav")


@pytest.mark.parametrize("fmt, subtype, rate, channels", [("WAV", "PCM_16", 16000, 1), ("WAV", "FLOAT", 44100, 2),
                                                          ("FLAC", "PCM_24", 22050, 1), ("OGG", "VORBIS", 48000, 2)])
def test_load_audio_equals_the_loader_it_replaced(tmp_path, speech, fmt, subtype, rate, channels):
    y = soxr.resample(speech, SR, rate).astype(np.float32)
    y = np.stack([y, 0.5 * y], axis=1) if channels == 2 else y
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, y, rate, format=fmt, subtype=subtype)
    old, old_sr = sf.read(path, dtype="float32", always_2d=True)  # models/featurize.py before the change
    expected = old.mean(axis=1)
    if old_sr != SR:
        expected = soxr.resample(expected, old_sr, SR).astype(np.float32)
    np.testing.assert_array_equal(load_audio(path, sr=SR), expected)
    data, got_rate = read_audio(path)
    assert got_rate == rate and data.shape == old.shape
