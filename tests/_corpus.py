"""Real speech for tests: the committed fixture clips, and the whole corpora for `corpus` tests.

Fixture clips (tests/data, see its README.md) travel with the repository, so every clone has them.
The whole corpora do not: their root is read here and nowhere else, from the environment variable
EMOTION_MONITOR_DATA, else ../shared/data beside the project when the corpora are there. Tests that
need them are marked ``@pytest.mark.corpus`` and take the ``corpus_root`` fixture (conftest.py): with no
corpus they are skipped, with an EMOTION_MONITOR_DATA that names no corpus they fail.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT / "tests" / "data"
ENV = "EMOTION_MONITOR_DATA"
DEFAULT_CORPUS = PROJECT.parent / "shared" / "data"
SKIP_REASON = f"needs the corpora: set {ENV}=/path/to/data (the folder holding ravdess/ and tess/) to run it"


def fixture_path(rel: str) -> Path:
    """tests/data/rel; a missing one fails the test (the clips are committed, so it is a broken checkout)."""
    path = FIXTURES / rel
    if not path.is_file():
        pytest.fail(f"fixture clip missing: {path} (committed under tests/data)", pytrace=False)
    return path


def fixture_clip(rel: str, *, sr: int = 16000, dtype: str = "float32") -> np.ndarray:
    """Mono samples of tests/data/rel, which must be at sr."""
    y, file_sr = sf.read(fixture_path(rel), dtype=dtype)
    assert file_sr == sr and y.ndim == 1, (rel, file_sr, y.shape)
    return y


@dataclass(frozen=True)
class CorpusLocation:
    """Where the corpora should be, whether they are there, and whether the user named the place."""

    root: Path
    present: bool
    explicit: bool

    @property
    def problem(self) -> str:
        return "" if self.present else f"{ENV}={self.root}: no corpus there (expected {self.root / 'ravdess'})"


def locate_corpus(environ=None, *, default: Path | None = None) -> CorpusLocation:
    """The corpus root from EMOTION_MONITOR_DATA (explicit), else ``default`` (../shared/data beside the project)."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV, "").strip()
    root = Path(value).expanduser().resolve() if value else (DEFAULT_CORPUS if default is None else default)
    return CorpusLocation(root, present=(root / "ravdess").is_dir(), explicit=bool(value))
