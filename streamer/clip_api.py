"""Clip analysis for the page (issue 12): the bytes of an audio file in, `predict`'s result and the clip's timeline out.

The page records a clip (or takes an uploaded file, or a bundled sample) and sends the file's bytes over the
``/clip`` websocket (web.clips); streamer.serve injects :func:`clip_analyzer`'s callable there, since web/ does
not import streamer/. The bytes are written to a private temporary file and read by the very loader and
aggregation of ``emotion-monitor predict`` (dsp.audio_file through FileSource, :func:`runner.predict_file`), so
the page's clip result is exactly what ``predict`` prints for the same file.

Bad input raises :class:`ClipRejected` (a ValueError: web.clips closes the connection with its one-line message).
"""
from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from dsp import audio_file

from .errors import StreamerError
from .events import PredictionEvent
from .runner import predict_file

__all__ = ["ClipRejected", "ClipLimits", "ClipAnalyzer", "analyze_clip", "clip_analyzer", "timeline_point",
           "MAX_CLIP_SECONDS"]

MAX_CLIP_SECONDS = 60.0  # the page records up to 30 s; an upload may be twice that (a 60 s clip is ~1 s of CPU)
_DECODE_CHUNK = 1 << 15


class ClipRejected(ValueError):
    """The bytes are not a clip we analyse (empty, not audio, undecodable, too long). One-line message."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


@dataclass(frozen=True)
class ClipLimits:
    max_seconds: float = MAX_CLIP_SECONDS


def timeline_point(event: PredictionEvent) -> dict:
    """The fields of one hop the page's clip timeline draws (the full event is ~1 KB; this is ~200 B)."""
    return {"t": event.t, "speech": event.speech, "emotion": event.emotion, "emotion_probs": event.emotion_probs,
            "gender": event.gender, "level_dbfs": event.level_dbfs, "uncertain": event.uncertain}


def analyze_clip(data: bytes, pipeline, *, name: str = "clip", limits: ClipLimits = ClipLimits()) -> dict:
    """The clip result of ``data`` (the bytes of an audio file: WAV, FLAC, OGG, MP3, ...) through ``pipeline``.

    Returns ``{"name", "duration_s", "sr", "format", "result", "clipped_fraction", "labels", "gender_labels",
    "events"}``: ``result`` is ``ClipPrediction.to_dict()`` with ``path`` = ``name`` (what ``predict --json``
    prints for that file); ``events`` the per-hop :func:`timeline_point` list. ``pipeline`` must be a file-mode
    pipeline (``live=False``: every window classified), as ``predict`` builds it.
    """
    if not data:
        raise ClipRejected(f"{name}: the clip is empty (0 bytes)")
    with tempfile.TemporaryDirectory(prefix="emotion-clip-") as tmp:
        path = Path(tmp) / "clip"
        path.write_bytes(data)
        try:
            info = _checked_info(path, name=name, limits=limits)
            points: list[dict] = []
            result = predict_file(str(path), pipeline, on_event=lambda e: points.append(timeline_point(e)))
        except (audio_file.AudioFileError, StreamerError) as exc:
            # The loader names the temporary file; the user knows the clip by its name.
            raise ClipRejected(str(exc).replace(str(path), name)) from None
    result = replace(result, path=name)
    return {"name": name, "duration_s": round(info.duration, 3), "sr": info.samplerate, "format": info.format,
            "result": result.to_dict(), "clipped_fraction": round(result.clipped_fraction, 6),
            "labels": list(pipeline.emotions), "gender_labels": list(pipeline.genders), "events": points}


def _checked_info(path: Path, *, name: str, limits: ClipLimits) -> audio_file.AudioInfo:
    """The header, after decoding at most ``max_seconds`` (+1 chunk): a header may lie about the length or not
    know it, and an MP3 of a few MB can hold hours, so the decoded length is what is limited."""
    with audio_file.AudioReader(path) as reader:
        limit = int(limits.max_seconds * reader.info.samplerate)
        while reader.frames_read <= limit:
            if reader.read(_DECODE_CHUNK).shape[0] == 0:
                break
        if reader.frames_read > limit:
            raise ClipRejected(f"{name}: the clip is longer than {limits.max_seconds:g} s; send a shorter one")
        return replace(reader.info, frames=reader.frames_read)  # the decoded length, not the header's claim


class ClipAnalyzer:
    """``analyze(data, *, name, language) -> dict`` (:func:`analyze_clip`) over a file-mode pipeline per language,
    each built on first use by ``pipeline_factory(language)``; ``languages`` are those a clip may ask for (the
    first is the default; () offers no choice). The result says which ``language`` analysed it.

    Thread-safe: clips are analysed one at a time (a pipeline is stateful; web.clips runs this in a worker
    thread and refuses clips beyond its queue).
    """

    def __init__(self, pipeline_factory, *, languages: tuple[str, ...] = (), limits: ClipLimits = ClipLimits()) -> None:
        self._factory = pipeline_factory
        self._languages = tuple(languages)
        self._pipelines: dict = {}
        self._limits = limits
        self._lock = threading.Lock()

    def __call__(self, data: bytes, *, name: str = "clip", language: str | None = None) -> dict:
        if language is None:
            language = self._languages[0] if self._languages else None
        elif language not in self._languages:
            raise ClipRejected(f"unknown language {language!r} (offered: {', '.join(self._languages) or 'no choice'})")
        with self._lock:
            if language not in self._pipelines:
                self._pipelines[language] = self._factory(language)
            result = analyze_clip(data, self._pipelines[language], name=name, limits=self._limits)
        return result if language is None else result | {"language": language}


def clip_analyzer(args=None, *, limits: ClipLimits = ClipLimits()) -> ClipAnalyzer:
    """The analyzer ``serve`` injects into web.clips: ``predict``'s pipeline for the parsed pipeline options
    ``args`` (see streamer.options; None: the shipped models and defaults), built lazily in the worker, in the
    language a clip asks for (models.labels.LANGUAGES, ``args.language`` first) unless ``--emotion-model`` names
    one model for all."""
    from models.labels import LANGUAGES

    from .options import offered_languages, pipeline_from_args, with_language
    from .runner import build_pipeline

    if args is None:
        return ClipAnalyzer(lambda language: build_pipeline(source="file", live=False, language=language),
                            languages=LANGUAGES, limits=limits)
    return ClipAnalyzer(lambda language: pipeline_from_args(with_language(args, language), source="file", live=False),
                        languages=offered_languages(args), limits=limits)
