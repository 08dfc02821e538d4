"""The shared corpus beside the project (../shared/data), for tests on real speech."""
from pathlib import Path

import pytest
import soundfile as sf

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def corpus_clip(rel: str, *, sr: int = 16000):
    """float32 samples of DATA/rel; a missing corpus fails the test (it is part of the test setup)."""
    path = DATA / rel
    if not path.exists():
        pytest.fail(f"corpus file missing: {path} (../shared/data must sit beside the project)")
    y, file_sr = sf.read(path, dtype="float32")
    assert file_sr == sr
    return y
