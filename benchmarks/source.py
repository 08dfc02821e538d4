"""The bench's source audio: a file, the demo, or held-out RAVDESS speech, as 16 kHz mono samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dsp.config import SAMPLE_RATE as SR  # the monitor's rate


def _take(blocks, n: int) -> np.ndarray:
    out, got = [], 0
    for b in blocks:
        out.append(b.samples)
        got += b.samples.size
        if got >= n:
            break
    return np.concatenate(out)[:n] if out else np.zeros(0, np.float32)


def source_audio(source: str | None, *, seconds: float, data_dir: Path) -> tuple[np.ndarray, str]:
    """``seconds`` of 16 kHz mono audio and its description."""
    from streamer.sources import DemoSource, FileSource

    n = int(round(seconds * SR))
    if source == "demo":
        with DemoSource(realtime=False, seed=0) as demo:
            return _take(demo, n), f"demo ({demo.engine_used})"
    if source is not None:
        with FileSource(source, loop=True) as src:
            return _take(src, n), str(source)
    from .reaction import HELD_OUT_ACTORS, heldout_clips

    import soundfile as sf

    clips = [u for a in HELD_OUT_ACTORS for u in heldout_clips(data_dir, a)]
    order = np.random.default_rng(1).permutation(len(clips))
    parts, got = [], 0
    for i in order:
        y, _ = sf.read(clips[i].path, dtype="float32")
        parts.append(y)
        got += y.size
        if got >= n:
            break
    return np.concatenate(parts)[:n], "RAVDESS held-out actors 19-20, clips as recorded (with their pauses)"
