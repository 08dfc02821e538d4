"""What `bench` runs (BenchOptions), what it keeps for the HTML report (Artifacts), and its one-line error."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamer.errors import StreamerError

from ._util import DEFAULT_DATA, ROOT


class BenchError(StreamerError):
    """A part of the benchmark could not run; one line, so `emotion-monitor` prints it without a traceback."""


@dataclass(frozen=True)
class BenchOptions:
    """What `bench` runs. ``source`` None: held-out RAVDESS speech (actors 19 and 20, pauses included)."""

    source: str | None = None
    seconds: float = 30.0  # source audio: streamed once end to end in real time, looped for the compute part
    data_dir: Path = DEFAULT_DATA
    json_path: Path | None = ROOT / "artifacts" / "bench.json"
    html_path: Path | None = ROOT / "artifacts" / "bench.html"
    clips_per_actor: int = 60  # reaction streams (RAVDESS has 60 per actor)
    min_hops: int = 1000  # timed hops of the compute part
    baseline_windows: int = 200  # RandomForest training windows
    baseline_hops: int = 200  # timed baseline hops
    e2e: str = "auto"  # auto | vmic | file
    viewers: tuple[int, ...] = ()  # viewer counts of the stalled-viewer part; empty: skipped
    sessions: tuple[int, ...] = ()  # capturing-session counts (benchmarks.sessions); (0,): find; empty: skipped
    language: str = "any"  # the emotion model every part runs (models.labels.LANGUAGES)

    def __post_init__(self):
        if not self.seconds >= 1.0:
            raise BenchError(f"--seconds must be at least 1, got {self.seconds}")
        from models.labels import LANGUAGES

        if self.language not in LANGUAGES:
            raise BenchError(f"--language must be one of {', '.join(LANGUAGES)}, got {self.language!r}")
        if self.e2e not in ("auto", "vmic", "file"):
            raise BenchError(f"--e2e must be auto, vmic or file, got {self.e2e!r}")
        if not all(1 <= n <= 5000 for n in self.viewers):
            raise BenchError(f"--viewers counts must be 1..5000, got {self.viewers}")
        for name in ("clips_per_actor", "min_hops", "baseline_windows", "baseline_hops"):
            if getattr(self, name) < 2:
                raise BenchError(f"{name} must be at least 2, got {getattr(self, name)}")


@dataclass(frozen=True)
class Artifacts:
    """Samples kept for the HTML report (not written to the JSON)."""

    hop_total_ms: list  # total hop compute of each speech hop
    e2e_ms: list  # end-to-end latency of each event
    timelines: list  # (ReactionStream, rows) per reaction stream
