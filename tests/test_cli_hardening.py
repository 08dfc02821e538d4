"""The command line under hostile arguments and noisy libraries: numeric options are range-checked at parse time
with one line, and stderr carries one line per problem (library chatter only with --verbose)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamer.cli import main
from tests._clips import speech_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv, option", [
    (["predict", "x.wav", "--window-ms", "1e9"], "--window-ms"),
    (["predict", "x.wav", "--window-ms", "0"], "--window-ms"),
    (["file", "x.wav", "--hop-ms", "-5"], "--hop-ms"),
    (["file", "x.wav", "--hop-ms", "nan"], "--hop-ms"),
    (["file", "x.wav", "--tau", "inf"], "--tau"),
    (["live", "--duration", "0"], "--duration"),
    (["live", "--duration", "inf"], "--duration"),
    (["record", "out.wav", "--seconds", "-1"], "--seconds"),
    (["serve", "--history-seconds", "inf"], "--history-seconds"),
    (["serve", "--history-seconds", "nan"], "--history-seconds"),
    (["serve", "--history-seconds", "-1"], "--history-seconds"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--port", "80.5"], "--port"),
    (["view", "ws://127.0.0.1:1/ws", "--duration", "-1"], "--duration"),
])
def test_numeric_options_are_range_checked_at_parse_time(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.count("\n") == 1 and err.startswith("emotion-monitor: error:") and option in err, err


def test_in_range_values_still_parse():
    from streamer.cli import build_parser

    args = build_parser().parse_args(["predict", "x.wav", "--window-ms", "2000", "--hop-ms", "50", "--tau", "0"])
    assert (args.window_ms, args.hop_ms, args.tau) == (2000.0, 50.0, 0.0)


@pytest.fixture(scope="module")
def mp3(tmp_path_factory):
    wav, *_ = speech_clip(tmp_path_factory.mktemp("mp3") / "speech.wav")
    y, sr = sf.read(wav, dtype="float32")
    path = wav.with_suffix(".mp3")
    sf.write(path, y, sr, format="MP3")
    return path


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "streamer", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_mp3_decoder_chatter_only_with_verbose(mp3, tmp_path):
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[: mp3.stat().st_size * 2 // 3])  # mpg123 reports the damage it meets
    quiet = _cli("predict", str(mp3), str(cut), "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert len(quiet.stdout.splitlines()) == 2 and all(json.loads(ln)["emotion"] for ln in quiet.stdout.splitlines())
    assert all(ln.startswith("emotion-monitor: warning:") for ln in quiet.stderr.splitlines()), quiet.stderr
    assert len(quiet.stderr.splitlines()) == 1 and "cut.mp3" in quiet.stderr  # the cut file, said once
    verbose = _cli("predict", str(mp3), str(cut), "--json", "--verbose")
    assert verbose.stdout == quiet.stdout
    assert "libmpg123" in verbose.stderr or "Note:" in verbose.stderr or "Warning:" in verbose.stderr


@pytest.mark.parametrize("argv, ready", [(["live", "--no-ui", "--jsonl", "--no-demo"], "listening"),
                                         (["serve", "--source", "mic", "--port", "0"], "serving")])
def test_device_loss_is_one_line_per_problem(vmic_private, argv, ready):
    proc = subprocess.Popen([sys.executable, "-m", "streamer", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline and not any(ready in ln for ln in seen):
            seen.append(proc.stderr.readline())
        time.sleep(0.5)
        vmic_private.kill_server()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines = [ln for ln in ("".join(seen) + err).splitlines() if ln]
    assert proc.returncode == 1
    # PortAudio's "Expression ... failed" lines and each failed reopen are not shown (--verbose shows them).
    assert not any("Expression" in ln or "reopening" in ln for ln in lines), lines
    assert len(lines) == 3, lines
    assert lines[0].startswith(ready) and "lost" in lines[1] and "retrying" in lines[1]
    assert lines[2].startswith("emotion-monitor: error:") and "could not reopen" in lines[2]


def test_hop_longer_than_the_window_is_refused(capsys):
    assert main(["predict", "x.wav", "--window-ms", "500", "--hop-ms", "600"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emotion-monitor: error: --hop-ms 600 exceeds"), err
