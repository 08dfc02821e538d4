"""The command line as a user meets it: help, predict/file outputs, and one-line errors with non-zero exits."""
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests._clips import speech_clip

ROOT = Path(__file__).resolve().parents[1]
NO_DEVICE_ENV = {"PULSE_SERVER": "unix:/nonexistent/pulse/native", "PULSE_CONFIG_PATH": "/nonexistent"}


def cli(*args, env=None, timeout=120):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "streamer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def one_line_error(stderr: str) -> bool:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("emotion-monitor: error:")]
    return len(errors) >= 1 and "Traceback" not in stderr


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("clip") / "speech.wav")


def test_help_lists_working_subcommands():
    out = cli("--help")
    assert out.returncode == 0
    for cmd in ("live", "file", "predict", "devices", "record", "play", "serve", "view", "train", "evaluate",
                "bench"):
        assert cmd in out.stdout, cmd
        sub = cli(cmd, "--help")
        assert sub.returncode == 0 and "usage:" in sub.stdout, cmd


def test_predict_json_reports_each_file_and_fails_at_the_end(clip, tmp_path):
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16000 * 3, np.float32), 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00garbage" * 50)
    out = cli("predict", str(clip[0]), str(tmp_path / "missing.wav"), str(corrupt), str(silence), "--json")
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(clip[0]), str(silence)]
    speech, quiet = rows
    assert speech["emotion"] in speech["emotion_probs"] and speech["gender"] in ("female", "male")
    assert sum(speech["emotion_probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert speech["speech_seconds"] > 1.0
    assert quiet["emotion"] is None and quiet["emotion_probs"] == {} and quiet["speech_seconds"] == 0
    assert "no speech" in out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("emotion-monitor: error:")]
    assert len(errors) == 2 and "missing.wav" in errors[0] and "corrupt.wav" in errors[1]
    assert "Traceback" not in out.stderr


def test_file_jsonl_and_csv_agree(clip, tmp_path):
    out_csv = tmp_path / "events.csv"
    j = cli("file", str(clip[0]), "--jsonl")
    c = cli("file", str(clip[0]), "--csv", "--out", str(out_csv))
    assert j.returncode == 0 and c.returncode == 0
    events = [json.loads(line) for line in j.stdout.splitlines()]
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(rows) == len(events) > 10
    assert all(e["v"] == 1 and e["type"] == "prediction" and e["source"] == "file" for e in events)
    assert [float(r["t"]) for r in rows] == pytest.approx([e["t"] for e in events], abs=1e-3)
    assert [r["speech"] == "1" for r in rows] == [e["speech"] for e in events]
    assert any(e["speech"] for e in events) and not events[0]["speech"]


@pytest.mark.parametrize("args, needle", [
    (["file", "/nonexistent/a.wav"], "a.wav"),
    (["predict", "x.wav", "--emotion-model", "/nonexistent/model.onnx"], "model"),
    (["file", "README.md"], "README.md"),
    (["models", "--language", "en", "--emotion-model", "/tmp/any.onnx"], "--language or --emotion-model"),
    # The training commands and the benchmark: bad arguments are caught before any work starts.
    (["train", "--data", "/nonexistent/corpora", "--out", "/tmp/unused"], "corpus dir not found"),
    (["evaluate", "--data", "dsp", "--out", "/tmp/unused"], "no RAVDESS"),
    (["train", "--data", "tests/data", "--out", "/tmp/unused", "--voices", "/nonexistent/v"], "voices dir not found"),
    (["train", "--data", "tests/data", "--out", "/tmp/unused", "--report", "README.md"], "not valid JSON"),
    (["train", "--data", "tests/data", "--out", "/tmp/unused", "--report", "/nonexistent.json"], "cannot read report"),
    (["evaluate", "--data", "tests/data", "--out", "/tmp/unused", "--experiments", "README.md"], "not valid JSON"),
    (["train", "--data", "tests/data", "--out", "/tmp/unused", "--window-ms", "0"], "--hop-ms <= --window-ms"),
    (["evaluate", "--data", "tests/data", "--out", "/tmp/unused", "--hop-ms", "2000"], "--hop-ms <= --window-ms"),
    (["train", "--data", "tests/data", "--out", "README.md/models"], "output folder README.md"),
    (["evaluate", "--data", "tests/data", "--out", "README.md"], "a file of that name exists"),
    (["fetch-voices", "--out", "README.md/voices"], "output folder README.md"),
    (["convert-encoder", "--out", "README.md/encoder.onnx"], "output folder README.md"),
    (["convert-encoder", "--out", "/tmp/unused/encoder.onnx", "--wheel", "/nonexistent.whl"], "wheel not found"),
    (["bench", "--data", "/nonexistent/corpora"], "corpus root not found"),
    (["bench", "--seconds", "-1"], "--seconds must be at least 1"),
])
def test_bad_input_is_one_line_error(args, needle):
    out = cli(*args)
    assert out.returncode == 1 and one_line_error(out.stderr) and needle in out.stderr


def test_training_data_without_a_label_is_one_line_error(tmp_path):
    """The fixture clips hold four of the seven emotions: train must say which are missing, not fail inside
    the ONNX export with a traceback."""
    out = cli("train", "--data", str(ROOT / "tests/data"), "--out", str(tmp_path / "m"), "--cache-dir",
              str(tmp_path / "cache"), timeout=300)
    assert out.returncode == 1 and one_line_error(out.stderr), out.stderr[-2000:]
    assert "no speech windows labelled" in out.stderr and "disgust" in out.stderr


def test_fetch_voices_with_a_package_apt_cannot_get_is_one_line_error(tmp_path):
    out = cli("fetch-voices", "--out", str(tmp_path / "voices"), "--packages", "no-such-package-xyz", "--sdists")
    assert out.returncode == 1 and one_line_error(out.stderr) and "apt-get" in out.stderr, out.stderr[-2000:]


def test_language_picks_the_emotion_model(clip):
    """--language en loads the English emotion model (its card says so) and analyses a file with it."""
    shown = {lang: cli("models", "--language", lang) for lang in ("any", "en")}
    assert all(out.returncode == 0 for out in shown.values())
    assert "emotion-en.onnx" in shown["en"].stdout and "of English speech" in shown["en"].stdout
    assert "emotion-en.onnx" not in shown["any"].stdout and "emotion.onnx" in shown["any"].stdout
    assert shown["en"].stdout.split("gender:")[1] == shown["any"].stdout.split("gender:")[1]   # one gender model
    runs = {lang: cli("file", str(clip[0]), "--jsonl", "--language", lang) for lang in ("any", "en")}
    assert all(out.returncode == 0 for out in runs.values()), runs["en"].stderr
    probs = {lang: [json.loads(line)["emotion_probs"] for line in out.stdout.splitlines()]
             for lang, out in runs.items()}
    speech = [i for i, p in enumerate(probs["any"]) if p]
    assert speech and [i for i, p in enumerate(probs["en"]) if p] == speech   # one gate, whichever model
    assert any(probs["en"][i] != probs["any"][i] for i in speech)             # two different models
    bad = cli("models", "--language", "xx")
    assert bad.returncode == 2 and "invalid choice: 'xx'" in bad.stderr


def test_no_device_falls_back_to_labelled_demo():
    out = cli("live", "--no-ui", "--jsonl", "--duration", "2", env=NO_DEVICE_ENV)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events and all(e["source"] == "demo" for e in events)
    assert "DEMO" in out.stderr


def test_no_device_with_no_demo_fails_cleanly():
    out = cli("live", "--no-ui", "--no-demo", "--duration", "2", env=NO_DEVICE_ENV)
    assert out.returncode == 1 and one_line_error(out.stderr) and out.stdout == ""


def test_devices_without_any_device():
    out = cli("devices", env=NO_DEVICE_ENV)
    assert out.returncode == 0 and "no audio input devices" in out.stdout


def test_ctrl_c_stops_cleanly(tmp_path):
    rec = tmp_path / "session.wav"
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "live", "--no-ui", "--jsonl", "--demo",
                             "--record-session", str(rec)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **NO_DEVICE_ENV})
    deadline = time.time() + 60
    while time.time() < deadline:  # wait for a few events so the session has audio
        line = proc.stdout.readline()
        if line and json.loads(line)["t"] > 1.0:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130) and "Traceback" not in err
    assert "stopped (interrupt)" in err
    info = sf.info(rec)
    assert info.samplerate == 16000 and info.duration > 1.0


def test_clipped_input_is_flagged(clip, tmp_path):
    y, sr = sf.read(clip[0], dtype="float32")
    loud = tmp_path / "clipped.wav"
    sf.write(loud, np.clip(8.0 * y, -1.0, 1.0), sr, subtype="PCM_16")
    out = cli("predict", str(loud), "--json")
    assert out.returncode == 0 and "clipped" in out.stderr and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["emotion"] is not None
    quiet = cli("predict", str(clip[0]))
    assert "clipped" not in quiet.stderr


def test_busy_port_and_bad_window_are_one_line_errors():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = cli("serve", "--source", "demo", "--port", str(port), timeout=60)
    assert out.returncode == 1 and one_line_error(out.stderr) and "address already in use" in out.stderr
    out = cli("file", "README.md", "--window-ms", "0")
    assert out.returncode == 2 and one_line_error(out.stderr) and "--window-ms" in out.stderr
