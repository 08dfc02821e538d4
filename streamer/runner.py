"""Drive a source through the pipeline: the loop shared by `live`, `file`, `predict`, `serve` and the benchmark."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp import FeatureConfig

from .errors import NoInputDevice
from .events import PredictionEvent
from .pipeline import Pipeline, PipelineConfig


_CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped (16-bit full scale is 32767/32768)


@dataclass(frozen=True)
class RunSummary:
    """What a run saw: seconds of audio, events, speech, and the loss counters a user should know about."""

    audio_seconds: float
    events: int
    speech_events: int
    overflows: int
    dropped_windows: int
    stopped_by: str  # "end" | "duration" | "interrupt" | "stopped"
    clipped_fraction: float = 0.0  # share of samples at full scale: the input level is too high
    gaps: int = 0  # input-device outages, each a gap of zeros in the stream (t keeps real time)
    gap_seconds: float = 0.0
    overrun_seconds: float = 0.0  # captured audio overwritten because processing fell behind the capture ring

    def describe(self) -> str:
        """The one-line account printed when a live run stops: what it saw and everything it lost."""
        line = (f"stopped ({self.stopped_by}): {self.audio_seconds:.1f} s of audio, {self.events} events, "
                f"{self.speech_events} with speech, {self.overflows} input overflows, "
                f"{self.dropped_windows} dropped windows")
        if self.gaps:
            line += f", {self.gaps} capture gap{'s' if self.gaps > 1 else ''} ({self.gap_seconds:.2f} s)"
        if self.overrun_seconds:
            line += f", {self.overrun_seconds:.2f} s overwritten in the capture buffer"
        return line

    def clipping_warning(self, name: str) -> str | None:
        """A one-line warning when more than 0.1 % of the samples are clipped, else None."""
        if self.clipped_fraction <= 1e-3:
            return None
        return (f"{name}: {100 * self.clipped_fraction:.1f} % of samples are clipped (at full scale); "
                "lower the input gain - clipping distorts the features the models rely on")


def load_models(emotion_path=None, gender_path=None, *, language: str = "any",
                feature_config: FeatureConfig = FeatureConfig()):
    """The ONNX emotion and gender classifiers: the shipped ones (the emotion model for ``language``, see
    models.onnx_model.LANGUAGES) unless paths are given."""
    from models.labels import emotion_model_name
    from models.onnx_model import OnnxClassifier, default_models

    shipped = default_models()
    return (OnnxClassifier(emotion_path or shipped[emotion_model_name(language)], expected_config=feature_config),
            OnnxClassifier(gender_path or shipped["gender"], expected_config=feature_config))


def build_pipeline(*, emotion_model=None, gender_model=None, language: str = "any", window_ms: float | None = None,
                   hop_ms: float | None = None, time_constant_s: float = 0.5, vad_backend: str = "ours",
                   source: str, live: bool) -> Pipeline:
    """A Pipeline over the given (default: shipped, the emotion model for ``language``) models, at the window and
    hop the emotion model was trained on unless overridden. live: keep only the newest window of a push when
    processing falls behind."""
    models = load_models(emotion_model, gender_model, language=language)
    cfg = PipelineConfig(window_ms=models[0].window_ms if window_ms is None else window_ms,
                         hop_ms=models[0].hop_ms if hop_ms is None else hop_ms, time_constant_s=time_constant_s,
                         vad_backend=vad_backend, max_windows_per_push=1 if live else 0)
    return Pipeline(*models, config=cfg, source=source, encoder=load_encoder(models))


def load_encoder(models):
    """The speech encoder the classifiers were trained with (models.encoder.StreamingEncoder), or None.
    A model that reads no encoder (the gender model) takes the leading columns of the same vector."""
    paths = {getattr(m, "encoder_path", None) for m in models} - {None} or {None}
    if len(paths) > 1:
        from models.errors import ModelError

        raise ModelError(f"the emotion and gender models were trained with different encoders: {sorted(map(str, paths))}")
    (path,) = paths
    if path is None:
        return None
    from models.encoder import StreamingEncoder

    return StreamingEncoder(path)


def open_live_source(*, device=None, demo: bool | None = None, on_message=print, realtime_demo: bool = True):
    """The microphone, or the labelled demo stream when there is none (``demo=False`` forbids the fallback).

    Returns (source, kind) with kind "mic" or "demo".
    """
    from .clocked import DemoSource
    from .mic import MicSource

    if demo:
        return DemoSource(realtime=realtime_demo), "demo"
    try:
        return MicSource(device=device, on_message=on_message), "mic"
    except NoInputDevice as exc:
        if demo is False or device is not None:
            raise
        on_message(f"{exc} - playing the bundled DEMO stream instead (use --no-demo to refuse)")
        return DemoSource(realtime=realtime_demo), "demo"


def run(source, pipeline: Pipeline, *, on_event, duration: float | None = None, recorder=None,
        on_block=None, stop=None) -> RunSummary:
    """Push every block of ``source`` through ``pipeline``; call ``on_event(event)`` for each hop.

    Ctrl-C ends the run cleanly (the summary says so); the recorder, if any, has every block written.
    ``stop`` (a threading.Event) ends it from another thread. Gap blocks (zeros standing in for a lost
    input device, see MicSource) go through like audio, so ``t``, the recording and ``duration`` keep real
    time; the events of their hops say ``gap``, and every event carries the source's loss counters.
    """
    seconds, n_events, n_speech, stopped = 0.0, 0, 0, "end"
    overflows, clipped, n_samples = 0, 0, 0
    losses = _Losses(source)
    try:
        for block in source:
            if recorder is not None:
                recorder.write(block)
            overflows = int(getattr(source, "overflows", 0))
            clipped += int(np.count_nonzero(np.abs(block.samples) >= _CLIP_LEVEL))
            n_samples += block.samples.shape[0]
            for event in losses.mark(pipeline.push(block.samples, wall_end=block.wall, overflows=overflows),
                                     gap=getattr(block, "gap", False)):
                n_events += 1
                n_speech += event.speech
                on_event(event)
            seconds = block.t_start + block.samples.shape[0] / pipeline.feature_config.sr
            if on_block is not None:
                on_block(block)
            if duration is not None and seconds >= duration:
                stopped = "duration"
                break
            if stop is not None and stop.is_set():
                stopped = "stopped"
                break
    except KeyboardInterrupt:
        stopped = "interrupt"
    return RunSummary(audio_seconds=round(seconds, 3), events=n_events, speech_events=n_speech,
                      overflows=overflows, dropped_windows=pipeline.dropped_windows, stopped_by=stopped,
                      clipped_fraction=clipped / max(n_samples, 1), **losses.totals())


class _Losses:
    """The source's capture-loss counters (MicSource's; other sources lose nothing), stamped on events."""

    def __init__(self, source):
        self._source = source

    def totals(self) -> dict:
        s = self._source
        return {"gaps": int(getattr(s, "gaps", 0)), "gap_seconds": round(float(getattr(s, "gap_seconds", 0.0)), 3),
                "overrun_seconds": round(float(getattr(s, "overrun_seconds", 0.0)), 3)}

    def mark(self, events: list, *, gap: bool) -> list:
        if not events:
            return events
        totals = self.totals()
        if not gap and not any(totals.values()):
            return events  # nothing lost so far: the pipeline's events as they are (the common case)
        return [dataclasses.replace(e, gap=bool(gap), **totals) for e in events]


@dataclass(frozen=True)
class ClipPrediction:
    """Clip-level result of `predict`: mean probabilities over the clip's speech windows."""

    path: str
    emotion: str | None
    emotion_probs: dict
    gender: str | None
    gender_probs: dict
    speech_seconds: float
    clipped_fraction: float = 0.0

    def to_dict(self) -> dict:
        return {"path": self.path, "emotion": self.emotion, "emotion_probs": self.emotion_probs,
                "gender": self.gender, "gender_probs": self.gender_probs, "speech_seconds": self.speech_seconds}


def predict_file(path: str, pipeline: Pipeline, *, on_event=None) -> ClipPrediction:
    """Push a file through the live pipeline (as fast as possible) and average over its speech windows.

    ``on_event(event)``, if given, sees every hop's event too (the clip's timeline, streamer.clip_api)."""
    from .clocked import FileSource

    pipeline.reset()
    emo, gen = [], []

    def collect(event: PredictionEvent) -> None:
        if on_event is not None:
            on_event(event)
        if event.speech and event.emotion_probs_raw:
            emo.append([event.emotion_probs_raw[k] for k in pipeline.emotions])
            gen.append([event.gender_probs[k] for k in pipeline.genders])

    with FileSource(Path(path), realtime=False) as source:
        summary = run(source, pipeline, on_event=collect)
    speech_s = round(pipeline.speech_frames * pipeline.feature_config.hop_length / pipeline.feature_config.sr, 2)
    if not emo:
        return ClipPrediction(path, None, {}, None, {}, speech_s, summary.clipped_fraction)
    pe, pg = np.mean(emo, axis=0), np.mean(gen, axis=0)
    return ClipPrediction(
        path, pipeline.emotions[int(np.argmax(pe))], {k: round(float(v), 4) for k, v in zip(pipeline.emotions, pe)},
        pipeline.genders[int(np.argmax(pg))], {k: round(float(v), 4) for k, v in zip(pipeline.genders, pg)},
        speech_s, summary.clipped_fraction)
