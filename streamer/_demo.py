"""The demo "tape": a few seconds of speech-like audio with pauses, built once per process.

espeak-ng renders varied English sentences when it is installed (cached on disk); otherwise a
source-filter synthesiser (glottal pulses through formant resonators) stands in.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from dsp import audio_file

from .errors import StreamerError

# (voice, pitch 0-99, words per minute, text): two voices, varied pitch / rate / mood.
DEMO_LINES: tuple[tuple[str, int, int, str], ...] = (
    ("en-us+m3", 40, 160, "Hello, this is the demo stream of the voice emotion monitor."),
    ("en-us+f3", 65, 180, "I am really happy to see that everything is working today!"),
    ("en-us+m3", 25, 135, "Honestly, I am a little tired, and the weather is grey again."),
    ("en-us+f3", 80, 205, "Wait, what? You moved the meeting to tomorrow morning?"),
    ("en-us+m3", 55, 190, "Stop doing that right now. I told you twice already!"),
    ("en-us+f3", 45, 150, "Let us take a deep breath and read the numbers slowly."),
)

_NOISE_DBFS = -66.0  # noise floor so pauses are near-silent, not digital zero
_PAUSE_S = (0.4, 1.3)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


@lru_cache(maxsize=8)
def demo_tape(*, sr: int, seed: int, engine: str) -> tuple[np.ndarray, str]:
    """Return ``(tape, engine_used)``; tape shape ``(n,)`` float32 at ``sr``, read-only.

    ``engine``: "auto" (espeak-ng if installed, else synthetic), "espeak" or "synth".
    """
    if engine not in ("auto", "espeak", "synth"):
        raise ValueError(f"engine must be 'auto', 'espeak' or 'synth', got {engine!r}")
    rng = np.random.default_rng(seed)
    use_espeak = engine == "espeak" or (engine == "auto" and espeak_available())
    clips = None
    if use_espeak:
        try:
            clips = [_espeak_clip(line, sr=sr) for line in DEMO_LINES]
        except (StreamerError, OSError, subprocess.SubprocessError):
            if engine == "espeak":
                raise
            use_espeak = False  # "auto": a broken espeak-ng or cache falls back to the synth voice
    if clips is None:
        clips = [_synth_utterance(rng, sr=sr, female=i % 2 == 1) for i in range(6)]
    order = rng.permutation(len(clips))
    parts = [np.zeros(int(0.3 * sr), np.float32)]
    for i in order:
        peak = rng.uniform(0.3, 0.7)  # level variety between utterances
        clip = clips[i] * np.float32(peak / max(float(np.max(np.abs(clips[i]))), 1e-9))
        parts += [clip, np.zeros(int(rng.uniform(*_PAUSE_S) * sr), np.float32)]
    tape = np.concatenate(parts)
    tape += rng.normal(0.0, 10 ** (_NOISE_DBFS / 20), tape.size).astype(np.float32)
    tape.flags.writeable = False
    return tape, "espeak-ng" if use_espeak else "synth"


def _cache_dir() -> Path:
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha1(repr((DEMO_LINES, version)).encode()).hexdigest()[:12]
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    path = Path(tempfile.gettempdir()) / f"voice-emotion-monitor-{user}" / f"demo-{key}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _espeak_clip(line: tuple[str, int, int, str], *, sr: int) -> np.ndarray:
    """One sentence, rendered once into the cache dir; shape ``(n,)`` float32 at ``sr``."""
    if not espeak_available():
        raise StreamerError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    voice, pitch, wpm, text = line
    name = hashlib.sha1(repr(line).encode()).hexdigest()[:12] + ".wav"
    path = _cache_dir() / name
    if not path.exists():
        # Write beside and rename: concurrent processes may render the same clip.
        fd, tmp = tempfile.mkstemp(suffix=".wav", dir=path.parent)
        os.close(fd)
        cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(wpm), "-w", tmp, text]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            os.unlink(tmp)
            raise StreamerError(f"espeak-ng failed: {done.stderr.strip() or done.returncode}")
        os.replace(tmp, path)
    return audio_file.load_audio(path, sr=sr)


# Vowel formants F1-F3 in Hz (adult male, Peterson & Barney style averages).
_VOWELS = np.array([
    [730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
    [530, 1840, 2480], [570, 840, 2410], [660, 1720, 2410],
], dtype=np.float64)
_BANDWIDTHS = (80.0, 100.0, 140.0)
_SEG_S = 0.01  # formants are piecewise constant over 10 ms segments


def _synth_utterance(rng: np.random.Generator, *, sr: int, female: bool) -> np.ndarray:
    """A 1.2-2.6 s voiced phrase: pitch contour, syllable envelopes, moving formants.

    Returns shape ``(n,)`` float32, peak-normalised.
    """
    seconds = rng.uniform(1.2, 2.6)
    import scipy.signal  # deferred: only the fallback voice needs it, and it is slow to import

    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0_base = rng.uniform(190, 230) if female else rng.uniform(95, 130)
    # Declination plus a few pitch accents: the contour real intonation roughly has.
    f0 = f0_base * (1.12 - 0.25 * t / seconds)
    for centre in rng.uniform(0.1, 0.9, size=rng.integers(1, 4)) * seconds:
        f0 *= 1 + rng.uniform(0.1, 0.35) * np.exp(-0.5 * ((t - centre) / 0.08) ** 2)
    f0 *= 1 + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(np.arange(1, n + 1))  # jitter
    phase = np.cumsum(f0 / sr)
    source = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal cycle
    # Glottal pulse shape ~ two one-pole low-passes (-12 dB/oct tilt).
    b_tilt, a_tilt = [1.0], np.polymul([1.0, -0.97], [1.0, -0.9])
    source = scipy.signal.lfilter(b_tilt, a_tilt, source)
    syllables = _syllable_plan(rng, seconds=seconds)
    envelope = np.zeros(n)
    formants = np.empty((n, 3))
    scale = 1.17 if female else 1.0  # shorter vocal tract, higher formants
    for start, stop, vowel in syllables:
        i0, i1 = int(start * sr), min(int(stop * sr), n)
        envelope[i0:i1] = np.sin(np.linspace(0, np.pi, i1 - i0)) ** 0.7
        formants[0 if start == syllables[0][0] else i0:] = _VOWELS[vowel] * scale  # hold to next
    formants = _smooth_columns(formants, width=int(0.04 * sr))
    voiced = _formant_cascade(source * envelope, formants, sr=sr)
    noise = rng.standard_normal(n) * 0.02 * envelope  # breathiness
    out = np.diff(voiced + noise, prepend=0.0)  # lip radiation (+6 dB/oct)
    return (out / max(np.max(np.abs(out)), 1e-12)).astype(np.float32)


def _syllable_plan(rng: np.random.Generator, *, seconds: float) -> list[tuple[float, float, int]]:
    plan, t = [], 0.05
    while t < seconds - 0.15:
        length = rng.uniform(0.12, 0.26)
        plan.append((t, min(t + length, seconds), int(rng.integers(len(_VOWELS)))))
        t += length + rng.uniform(0.01, 0.06)  # short consonant-like gaps
    return plan


def _smooth_columns(x: np.ndarray, *, width: int) -> np.ndarray:
    """Moving average down each column so formant targets glide between syllables."""
    kernel = np.ones(max(width, 1)) / max(width, 1)
    padded = np.pad(x, ((width, width), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, k], kernel, mode="same")[width:-width or None]
                     for k in range(x.shape[1])], axis=1)


def _formant_cascade(x: np.ndarray, formants: np.ndarray, *, sr: int) -> np.ndarray:
    """Klatt-style cascade of two-pole resonators with time-varying centre frequencies."""
    import scipy.signal

    seg = max(int(_SEG_S * sr), 1)
    y = x.copy()
    for k, bw in enumerate(_BANDWIDTHS):
        state = np.zeros(2)
        out = np.empty_like(y)
        for i0 in range(0, y.size, seg):
            freq = formants[i0, k]
            c = -np.exp(-2 * np.pi * bw / sr)
            b = 2 * np.exp(-np.pi * bw / sr) * np.cos(2 * np.pi * freq / sr)
            out[i0:i0 + seg], state = scipy.signal.lfilter(
                [1 - b - c], [1.0, -b, -c], y[i0:i0 + seg], zi=state)
        y = out
    return y
