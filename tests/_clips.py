"""Generated test audio (never cut from the corpora): espeak-ng speech with silence around it."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 16000


def espeak(text: str, *, voice: str = "en-us+m3", speed: int = 150) -> np.ndarray:
    """espeak-ng speech as float32 at 16 kHz (espeak renders at 22.05 kHz)."""
    proc = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], check=True,
                          capture_output=True)
    import io

    y, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return soxr.resample(y, sr, SR).astype(np.float32)


def speech_clip(path: Path, *, lead_s: float = 1.0, tail_s: float = 1.0, voice: str = "en-us+f3",
                text: str = "I can not believe you did that again. This is the best day of my whole life.") -> tuple:
    """Write silence + speech + silence as 16-bit WAV; return (path, speech_start_s, speech_end_s)."""
    y = espeak(text, voice=voice)
    lead, tail = np.zeros(int(lead_s * SR), np.float32), np.zeros(int(tail_s * SR), np.float32)
    sf.write(path, np.concatenate([lead, 0.5 * y / np.abs(y).max(), tail]), SR, subtype="PCM_16")
    return path, lead_s, lead_s + y.size / SR
