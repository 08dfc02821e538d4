"""`emotion-monitor live` on a real PortAudio device: the PulseAudio virtual microphone (tests/vmic.py)."""
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import soundfile as sf

from tests._clips import speech_clip

ROOT = Path(__file__).resolve().parents[1]


class LiveProcess:
    """`live --no-ui --jsonl` in a subprocess, its stdout events and stderr lines collected by threads."""

    def __init__(self, *args, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "streamer", "live", "--no-ui", "--jsonl", *args],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **env})
        self.events, self.stderr = [], queue.Queue()
        self.err_lines = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def _read_err(self):
        for line in self.proc.stderr:
            self.err_lines.append(line)
            self.stderr.put(line)

    def wait_for_stderr(self, needle, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.stderr.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if needle in line:
                return line
        raise AssertionError(f"no {needle!r} on stderr; got: {''.join(self.err_lines)}")

    def finish(self, timeout):
        self.proc.wait(timeout=timeout)
        time.sleep(0.2)  # let the reader threads drain
        return self.proc.returncode, "".join(self.err_lines)


def test_live_on_virtual_mic_sees_speech_where_it_is(vmic, tmp_path):
    path, s0, s1 = speech_clip(tmp_path / "speech.wav", lead_s=0.0, tail_s=0.0)
    live = LiveProcess("--duration", str(2.0 + s1 + 2.0), "--no-demo", env=vmic.env)
    live.wait_for_stderr("listening:")
    time.sleep(2.0)  # two seconds of silence before the speech starts
    w0 = time.time()
    vmic.play(path).wait(timeout=30)
    rc, err = live.finish(timeout=30)
    assert rc == 0, err
    events = live.events
    assert events and all(e["source"] == "mic" for e in events)
    before = [e for e in events if e["wall"] < w0]
    # Windows ending well inside the speech (past the VAD's 0.2 s onset delay and 0.25 s of needed speech).
    during = [e for e in events if w0 + 0.8 < e["wall"] < w0 + s1 - 0.1]
    assert len(before) >= 5 and not any(e["speech"] for e in before)
    assert len(during) >= 10
    assert sum(e["speech"] for e in during) >= 0.8 * len(during)
    assert all(e["emotion"] in e["emotion_probs"] for e in during if e["speech"])
    assert events[-1]["overflows"] == 0 and events[-1]["dropped_windows"] == 0
    assert "0 input overflows" in err


def test_device_lost_mid_stream_exits_cleanly_with_recording(vmic_private, tmp_path):
    rec = tmp_path / "session.wav"
    live = LiveProcess("--no-demo", "--record-session", str(rec), env=vmic_private.env)
    live.wait_for_stderr("listening:")
    time.sleep(1.5)
    t_kill = time.time()
    vmic_private.kill_server()
    rc, err = live.finish(timeout=30)
    took = time.time() - t_kill
    assert rc == 1 and "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ln.startswith("emotion-monitor: error:")]
    assert len(errors) == 1 and "lost" in errors[0].lower()
    assert 2.0 < took < 15.0  # it retried for a few seconds, then gave up
    info = sf.info(rec)  # the session recording is a valid, finalised WAV
    assert info.samplerate == 16000 and info.frames > 16000


def test_play_shows_prediction_and_plays_into_the_virtual_device(vmic, tmp_path):
    path, _, _ = speech_clip(tmp_path / "speech.wav", lead_s=0.3, tail_s=0.3)
    out = subprocess.run([sys.executable, "-m", "streamer", "play", str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={**os.environ, **vmic.env})
    assert out.returncode == 0, out.stderr
    assert str(path) in out.stdout and ("female" in out.stdout or "male" in out.stdout)


def test_record_writes_the_clip_it_hears(vmic, tmp_path):
    path, _, _ = speech_clip(tmp_path / "speech.wav", lead_s=0.3, tail_s=0.3)
    rec = tmp_path / "rec.wav"
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "record", str(rec), "--seconds", "3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **vmic.env})
    time.sleep(1.0)
    vmic.play(path)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    y, sr = sf.read(rec, dtype="float32")
    assert sr == 16000 and abs(y.size / sr - 3.0) < 0.1 and abs(y).max() > 0.05
