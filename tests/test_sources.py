"""Audio sources, recording and playback: files and demo offline, the microphone on a virtual mic."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import soxr

from streamer.errors import AudioFileError, DeviceLost, NoInputDevice, PortAudioMissing
from streamer.sources import (
    Block,
    DemoSource,
    FileSource,
    MicSource,
    SessionRecorder,
    list_input_devices,
    play,
    record,
)

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


# --------------------------------------------------------------------------- helpers


def _stereo_sine(path: Path, *, seconds: float, sr: int = 44100) -> None:
    t = np.arange(int(seconds * sr)) / sr
    tone = np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([0.5 * tone, 0.3 * tone], axis=1), sr)  # channel mean: 0.4 * tone


def _concat(blocks) -> np.ndarray:
    return np.concatenate([b.samples for b in blocks])


def _best_alignment(captured: np.ndarray, ref: np.ndarray) -> tuple[int, float]:
    """Lag of ``ref`` inside ``captured`` and the Pearson correlation at that lag."""
    corr = scipy.signal.correlate(captured, ref, mode="valid", method="fft")
    lag = int(np.argmax(np.abs(corr)))
    return lag, float(np.corrcoef(captured[lag:lag + ref.size], ref)[0, 1])


def _capture_while_playing(mic: MicSource, start_player, *, tail_s: float = 0.4) -> np.ndarray:
    """Wait for the first block (the device is live), start playback, keep reading until it ends."""
    blocks = [next(mic)]
    proc_or_thread = start_player()
    alive = proc_or_thread.is_alive if hasattr(proc_or_thread, "is_alive") else (
        lambda: proc_or_thread.poll() is None)
    deadline = time.monotonic() + 20
    while alive() and time.monotonic() < deadline:
        blocks.append(next(mic))
    assert not alive(), "playback did not finish"
    blocks += [next(mic) for _ in range(int(tail_s * SR / blocks[0].samples.size))]
    return blocks


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    """About 1.5 s of espeak-ng speech, 16 kHz mono PCM_16 (the virtual sink's own format)."""
    out = tmp_path_factory.mktemp("speech") / "speech.wav"
    raw = out.with_name("raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us+f3", "-s", "170", "-w", str(raw),
                    "The quick brown fox jumps over the lazy dog."], check=True, timeout=30)
    x, rate = sf.read(raw, dtype="float32")
    x = soxr.resample(x, rate, SR)[: int(1.5 * SR)]
    sf.write(out, 0.8 * x / np.max(np.abs(x)), SR, subtype="PCM_16")
    return out


# --------------------------------------------------------------------------- blocks & files


def test_block_duration_and_end():
    block = Block(samples=np.zeros(320, np.float32), t_start=1.0, wall=5.0, source="mic")
    assert block.sr == SR and block.duration == pytest.approx(0.02)
    assert block.t_end == pytest.approx(1.02)


def test_file_source_stereo_44k1_becomes_16k_mono_blocks(tmp_path):
    path = tmp_path / "tone.wav"
    _stereo_sine(path, seconds=1.0)
    with FileSource(path) as source:
        blocks = list(source)
    assert all(b.source == "file" and b.samples.dtype == np.float32 and b.samples.ndim == 1
               for b in blocks)
    assert all(b.samples.size == 320 for b in blocks[:-1]) and 0 < blocks[-1].samples.size <= 320
    assert sum(b.samples.size for b in blocks) == SR  # total duration 1.0 s at 16 kHz
    starts = np.array([b.t_start for b in blocks])
    np.testing.assert_allclose(starts, np.arange(len(blocks)) * 0.02, atol=1e-9)  # continuous
    walls = np.array([b.wall for b in blocks])
    np.testing.assert_allclose(np.diff(walls), [b.duration for b in blocks[1:]], atol=1e-6)
    y = _concat(blocks)
    t = np.arange(y.size) / SR
    ref = 0.4 * np.sin(2 * np.pi * 440 * t)  # mean of 0.5 and 0.3 times the tone
    np.testing.assert_allclose(y[400:-400], ref[400:-400], atol=2e-3)


def test_file_source_realtime_paces_blocks(tmp_path):
    path = tmp_path / "half.wav"
    _stereo_sine(path, seconds=0.5)
    start = time.monotonic()
    with FileSource(path, realtime=True) as source:
        n = sum(b.samples.size for b in source)
    assert n == SR // 2
    assert time.monotonic() - start >= 0.4  # paced by the wall clock (a lower bound only)


def test_file_source_loop_keeps_the_clock_running(tmp_path):
    path = tmp_path / "short.wav"
    _stereo_sine(path, seconds=0.1)
    with FileSource(path, loop=True) as source:
        blocks = [next(source) for _ in range(40)]  # 0.8 s: eight passes through the file
    np.testing.assert_allclose([b.t_start for b in blocks], np.arange(40) * 0.02, atol=1e-9)
    assert all(b.samples.size == 320 for b in blocks)
    assert np.max(np.abs(_concat(blocks)[-1600:])) > 0.35  # still the tone after the seams


def _corrupt(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _zero_frames(path: Path) -> Path:
    sf.write(path, np.zeros(0, np.float32), SR)
    return path


@pytest.mark.parametrize("make, reason", [
    (_corrupt, "not recognised"),
    (lambda p: p, "no such file"),
    (lambda p: (p.write_bytes(b""), p)[1], "not recognised"),
    (_zero_frames, "no audio"),
    (lambda p: (p.mkdir(), p)[1], "directory"),
])
def test_file_source_bad_files_raise_one_line_error(tmp_path, make, reason):
    path = make(tmp_path / "clip.wav")
    with pytest.raises(AudioFileError) as info:
        FileSource(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and reason in message.lower()


# --------------------------------------------------------------------------- demo


@pytest.mark.parametrize("engine", ["synth", "auto"])
def test_demo_source_has_speech_and_pauses(engine):
    with DemoSource(realtime=False, engine=engine, seed=3) as demo:
        n_blocks = int(demo.loop_seconds / 0.02) + 25  # a little more than one pass: it loops
        blocks = [next(demo) for _ in range(n_blocks)]
    if engine == "auto":
        assert demo.engine_used == ("espeak-ng" if shutil.which("espeak-ng") else "synth")
    assert {b.source for b in blocks} == {"demo"}
    level = np.array([10 * np.log10(np.mean(b.samples.astype(np.float64) ** 2) + 1e-12)
                      for b in blocks])
    assert np.mean(level < -55) > 0.1  # pauses: near-silent (noise floor, not digital zero)
    assert np.mean(level > -30) > 0.2  # speech
    assert np.all(np.isfinite(level)) and np.min(level) > -90
    np.testing.assert_allclose([b.t_start for b in blocks], np.arange(n_blocks) * 0.02, atol=1e-6)


# --------------------------------------------------------------------------- session recorder


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_session_recorder_file_is_valid_after_an_error_mid_write(tmp_path, error):
    path = tmp_path / "session.wav"
    rng = np.random.default_rng(0)
    written = []
    with pytest.raises(error):
        with SessionRecorder(path, flush_seconds=10.0) as rec:
            for i in range(30):
                x = (0.5 * rng.standard_normal(320)).clip(-0.9, 0.9).astype(np.float32)
                rec.write(Block(samples=x, t_start=i * 0.02, wall=0.0, source="mic"))
                written.append(x)
                if i == 29:
                    raise error("stop mid-session")
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 1, "PCM_16", 9600)
    data, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(data, np.concatenate(written), atol=1 / 32768 + 1e-7)


def test_session_recorder_flushes_a_valid_header_while_open(tmp_path):
    path = tmp_path / "live.wav"
    with SessionRecorder(path, flush_seconds=0.1) as rec:
        rec.write(np.full(3200, 2.0, np.float32))  # out of range: clipped, not wrapped
        assert sf.info(path).frames == 3200  # readable before close (header refreshed)
        with pytest.raises(ValueError, match="mono"):
            rec.write(np.zeros((10, 2), np.float32))
    data, _ = sf.read(path, dtype="float32")
    assert np.all(data > 0.99)


# --------------------------------------------------------------------------- microphone (virtual)


def test_mic_source_records_what_is_played_into_the_virtual_mic(vmic, speech_wav):
    ref, _ = sf.read(speech_wav, dtype="float32")
    with MicSource(block_ms=20) as mic:
        blocks = _capture_while_playing(mic, lambda: vmic.play(speech_wav))
        assert mic.overflows == 0 and mic.overrun_samples == 0
        assert mic.device_name in {d.name for d in list_input_devices()}
    captured = _concat(blocks)
    _, r = _best_alignment(captured, ref)
    assert r > 0.9
    assert all(b.source == "mic" and b.samples.size == 320 for b in blocks)
    starts = np.array([b.t_start for b in blocks])
    np.testing.assert_allclose(np.diff(starts), 0.02, atol=1e-9)  # no gaps: nothing lost
    walls = np.array([b.wall for b in blocks])
    assert np.all(np.diff(walls) > 0) and abs(walls[-1] - time.time()) < 5


def test_mic_source_mixes_and_resamples_other_device_formats(vmic, speech_wav, monkeypatch):
    # Force the path a 44.1 kHz stereo USB microphone takes: PulseAudio upmixes and resamples,
    # MicSource must mix back to mono and resample to 16 kHz with its streaming soxr.
    monkeypatch.setattr(MicSource, "_pick_format", lambda self, index, info: (44100.0, 2))
    ref, _ = sf.read(speech_wav, dtype="float32")
    with MicSource() as mic:
        assert (mic.device_samplerate, mic.device_channels) == (44100.0, 2)
        blocks = _capture_while_playing(mic, lambda: vmic.play(speech_wav))
        assert mic.overflows == 0
    assert all(b.samples.size == 320 for b in blocks)
    _, r = _best_alignment(_concat(blocks), ref)
    assert r > 0.9


def test_mic_source_device_selection(vmic):
    names = [d.name for d in list_input_devices()]
    assert "pulse" in names and "default" in names
    with MicSource(device="PULS") as mic:  # case-insensitive substring
        assert mic.device_name == "pulse"
        next(mic)
    index = names.index("default")
    with MicSource(device=list_input_devices()[index].index) as mic:
        assert mic.device_name == "default"
    with pytest.raises(NoInputDevice) as info:
        MicSource(device="no-such-microphone")
    message = str(info.value)
    assert "no-such-microphone" in message and "pulse" in message and "\n" not in message


def test_play_is_heard_on_the_virtual_mic(vmic, speech_wav):
    ref, _ = sf.read(speech_wav, dtype="float32")

    def start_player():
        thread = threading.Thread(target=play, args=(speech_wav,))
        thread.start()
        return thread

    with MicSource() as mic:
        blocks = _capture_while_playing(mic, start_player)
    _, r = _best_alignment(_concat(blocks), ref)
    assert r > 0.9


def test_record_writes_a_wav_and_reports_levels(vmic, speech_wav, tmp_path):
    out = tmp_path / "rec.wav"
    levels = []
    player = vmic.play(speech_wav)  # 1.5 s of speech; the recording takes the first second
    record(out, seconds=1.0, on_level=levels.append)
    player.wait(timeout=10)  # do not let it bleed into the next test's capture
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 1, "PCM_16", SR)
    assert len(levels) == 50 and all(-121 <= v <= 0 for v in levels)
    assert max(levels) > -30  # the speech was heard, not just silence
    data, _ = sf.read(out, dtype="float32")
    assert np.max(np.abs(data)) > 0.1


def test_record_file_is_valid_when_interrupted(vmic, tmp_path):
    out = tmp_path / "cut.wav"
    calls = []

    def on_level(dbfs):
        calls.append(dbfs)
        if len(calls) == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        record(out, seconds=5.0, on_level=on_level)
    assert sf.info(out).frames == 10 * 320  # header finalised with every block written


def test_device_lost_after_retry_window(vmic_private):
    messages = []
    retry_s = 1.5
    outcome = {}
    mic = MicSource(retry_seconds=retry_s, on_message=messages.append)
    for _ in range(5):
        next(mic)

    def consume():
        try:
            for _ in mic:
                pass
            outcome["error"] = None
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever was raised
            outcome["error"] = exc

    vmic_private.kill_server()
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(timeout=retry_s + 10)  # stall detection + retries + generous margin
    mic.close()
    assert not thread.is_alive(), "MicSource kept waiting for a vanished device"
    assert isinstance(outcome["error"], DeviceLost)
    assert "\n" not in str(outcome["error"]) and "lost" in str(outcome["error"])
    assert messages and all("reopen" in m or "retry" in m for m in messages)


def test_device_coming_back_within_retry_window_resumes(vmic_private):
    messages = []
    with MicSource(retry_seconds=8.0, on_message=messages.append) as mic:
        before = [next(mic) for _ in range(5)]
        vmic_private.restart_server()
        after = [next(mic) for _ in range(25)]
        assert mic.device_name == "default"
    assert messages, "the reconnect was not reported"
    assert after[-1].t_start > before[-1].t_start
    steady = np.diff([b.t_start for b in after[-10:]])
    np.testing.assert_allclose(steady, 0.02, atol=1e-9)


# --------------------------------------------------------------------------- no devices at all


_NO_DEVICE_SCRIPT = r"""
import json, sys
from streamer import sources
from streamer.errors import StreamerError
out = {"devices": [d.name for d in sources.list_input_devices()]}
for name, call in [("mic", lambda: sources.MicSource()),
                   ("record", lambda: sources.record(sys.argv[1], seconds=1)),
                   ("play", lambda: sources.play(sys.argv[2]))]:
    try:
        call()
        out[name] = "no error"
    except StreamerError as exc:
        out[name] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


def test_no_devices_raise_no_input_and_no_output_device(tmp_path):
    """No PulseAudio server and no sound card: PortAudio lists nothing (run in a subprocess,
    because PortAudio enumerates devices once per process)."""
    client_conf = tmp_path / "client.conf"
    client_conf.write_text("autospawn = no\n")  # never start a real daemon in $HOME
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/no-such-socket",
           "PULSE_CLIENTCONFIG": str(client_conf)}
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.zeros(1600, np.float32), SR)
    out = tmp_path / "never.wav"
    done = subprocess.run([sys.executable, "-c", _NO_DEVICE_SCRIPT, str(out), str(clip)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == []
    assert result["mic"][0] == "NoInputDevice" and "no audio input device" in result["mic"][1]
    assert result["record"][0] == "NoInputDevice" and not out.exists()
    assert result["play"][0] == "NoOutputDevice"


def test_missing_portaudio_gives_install_hint(monkeypatch):
    class _NoPortAudio:
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(PortAudioMissing, match="libportaudio2"):
        list_input_devices()
