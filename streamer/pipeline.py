"""The monitor's pipeline: ``push(samples) -> events`` and ``reset()``, one code path for live and file audio.

samples -> 40 Hz high-pass -> streaming features -> VAD, speech encoder (LSTM states per frame) -> analysis
windows -> (speech only) pooled vector -> ONNX emotion and gender -> smoothing -> PredictionEvent per hop.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dsp import FeatureConfig, StreamingFeatures, mel_frequencies
from dsp.gate import SPEECH_GATE
from dsp.highpass import HighPass
from dsp.pooling import check_pooling_config, window_vector
from dsp.vad import VAD_BACKENDS, VadConfig, make_vad
from dsp.windows import FrameWindower, Window

from models.calibration import apply_temperature
from models.cnn import cnn_input

from .errors import ConfigError
from .events import PredictionEvent
from .smoothing import ExpSmoother, LabelHysteresis, SegmentMean


@dataclass(frozen=True)
class PipelineConfig:
    """Windowing, gating and smoothing parameters (see README, "Defaults", for why these values)."""

    window_ms: float = 1500.0  # the shipped models' window (see README, Defaults)
    hop_ms: float = 100.0
    min_window_ms: float = 500.0
    min_speech_ms: float = 250.0  # speech needed inside a window before it is classified (besides dsp.gate's rules)
    time_constant_s: float = 0.5  # exponential smoothing of emotion probabilities
    label_margin: float = 0.05
    label_hold_ms: float = 150.0
    reset_after_silence_s: float = 3.0  # a pause this long starts a new utterance: forget smoothed state
    max_windows_per_push: int = 0  # 0: keep all (file); n>0: live drop policy, keep the newest n
    vad: VadConfig | None = None  # decision parameters of the chosen backend; None: that backend's tuned default
    vad_backend: str = "ours"  # "ours" (default: meets the F1 goals, 0.07x silero's cost) or "silero" (better at 0 dB)

    def __post_init__(self) -> None:
        if self.vad_backend not in VAD_BACKENDS:
            raise ValueError(f"vad_backend must be one of {VAD_BACKENDS}, got {self.vad_backend!r}")


_LEDGER_SLACK = 64   # frames the speech ledger keeps beyond the analysis window


class _SpeechLedger:
    """Per-frame VAD decisions indexed by frame number, bounded to the analysis window."""

    def __init__(self, capacity: int):
        self._flags = np.zeros(capacity, dtype=bool)
        self.reset()

    def reset(self) -> None:
        self._flags[:] = False
        self.decided = 0  # frames [0, decided) have a final decision

    def add(self, start: int, speech: np.ndarray) -> None:
        cap = self._flags.shape[0]
        for j, s in enumerate(speech):  # n is at most a few frames per push
            self._flags[(start + j) % cap] = s
        self.decided = start + speech.shape[0]

    def count(self, lo: int, hi: int) -> int:
        """Speech frames in [lo, hi), clipped to what is decided and still stored."""
        cap = self._flags.shape[0]
        lo, hi = max(lo, self.decided - cap, 0), min(hi, self.decided)
        if hi <= lo:
            return 0
        # At most two slices of the ring (hi - lo <= cap): no index array built at every hop.
        a, b = lo % cap, hi % cap
        if a < b:
            return int(np.count_nonzero(self._flags[a:b]))
        return int(np.count_nonzero(self._flags[a:])) + int(np.count_nonzero(self._flags[:b]))


class Pipeline:
    """Push audio at ``feature_config.sr``; get one PredictionEvent per hop.

    Each event's ``timings_ms`` is the pipeline's own per-stage cost (the hook benchmarks read): per push,
    shared by the push's events, "features" (high-pass + extractor), "vad", "encoder", "windows"; per window,
    "pool", "normalise", "emotion", "gender", "smooth" and "descriptors" (the latter five on speech only); for an
    emotion model with a log-mel CNN also "spectrogram" (its input and normalisation), and "emotion" includes the CNN.

    The classifiers are objects with ``labels`` and ``predict_proba((n, D)) -> (n, C)``
    (models.onnx_model.OnnxClassifier in the product). encoder: the speech encoder whose per-frame states the
    classifiers were trained with (``push(enc_mel) -> states``, ``reset()``; models.encoder.StreamingEncoder),
    or None for classifiers of the spectral statistics alone.
    """

    def __init__(self, emotion_model, gender_model, *, config: PipelineConfig = PipelineConfig(),
                 feature_config: FeatureConfig = FeatureConfig(), source: str = "file", encoder=None):
        check_pooling_config(feature_config)  # other mel/MFCC counts would fail only at the first speech window
        self.config, self.feature_config, self.source = config, feature_config, source
        self.emotion_model, self.gender_model = emotion_model, gender_model
        self.emotions, self.genders = tuple(emotion_model.labels), tuple(gender_model.labels)
        if encoder is None and any(getattr(m, "encoder_path", None) for m in (emotion_model, gender_model)):
            from .runner import load_encoder   # a model that reads encoder states gets the encoder it names

            encoder = load_encoder((emotion_model, gender_model))
        self.encoder = encoder
        self._hp = HighPass(sr=feature_config.sr)
        self._fx = StreamingFeatures(feature_config)
        self._vad = _make_vad(config, feature_config)
        self._win = FrameWindower(feature_config, window_ms=config.window_ms, hop_ms=config.hop_ms,
                                  min_window_ms=config.min_window_ms)
        if self._vad.start_hold_frames > self._win.min_frames:
            # The first windows would be gated before any of their frames had a decision.
            raise ConfigError(f"the VAD's start hold ({self._vad.start_hold_frames} frames) outlasts the first window "
                              f"({self._win.min_frames} frames, min_window_ms={config.min_window_ms:g})")
        self._ledger = _SpeechLedger(self._win.window_frames + _LEDGER_SLACK)
        self._chunk = (_LEDGER_SLACK - self._vad.delay_frames - 1) * feature_config.hop_length
        self._emo = ExpSmoother(time_constant_s=config.time_constant_s)
        self._label = LabelHysteresis(self.emotions, margin=config.label_margin,
                                      min_hold_s=config.label_hold_ms / 1000.0)
        self._gender = SegmentMean()
        cal = getattr(emotion_model, "calibration", {}) or {}
        self._temperature = float(cal.get("temperature", 1.0))   # fitted on held-out speakers (models.calibration)
        self._uncertain_below = float(cal.get("uncertain_below", 0.0))
        # Per-session (speaker) normalisation, when a model was trained with it: running statistics over this
        # session's speech windows, updated then applied, exactly as models.recipe.online_normalise trains it.
        self._norms = tuple(getattr(m, "online_norm", lambda: None)() for m in (emotion_model, gender_model))
        # An emotion model with a log-mel CNN (models.cnn) also reads the window's spectrogram, its bands normalised
        # by the session's running statistics in the same way (models.recipe.online_normalise replays it).
        self._spec_norm = getattr(emotion_model, "spec_norm", lambda: None)()
        self._dims = tuple(getattr(m, "feature_dim", None) for m in (emotion_model, gender_model))
        # Newest samples: the level is the RMS of the last hop.
        self._tail = np.zeros(int(round(feature_config.sr * config.hop_ms / 1000)), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        for part in (self._hp, self._fx, self._vad, self._win, self._ledger, self._emo, self._label, self._gender,
                     *[p for p in (self.encoder, *self._norms, self._spec_norm) if p is not None]):
            part.reset()
        self._tail[:] = 0.0
        self.samples_in = 0
        self._held, self._held_n, self._held_wall = [], 0, 0.0
        self._due = self._next_due()
        self.dropped_windows = 0
        self.speech_frames = 0
        self._last_speech_t = -math.inf

    def warm_up(self) -> None:
        """Run every stage once on a synthetic voice, then ``reset()``: a live stream must not stall on its first
        speech window while numba compiles (about 30 s on a fresh install, before its on-disk cache exists;
        milliseconds after), or the capture ring overflows and a server's event loop stops for everyone."""
        sr = self.feature_config.sr
        t = np.arange(int(2.0 * sr)) / sr
        # A 140 Hz harmonic voice, syllable-modulated at 4 Hz, after 0.3 s of faint noise: the VAD calls it
        # speech, so the speech-only stages (pooling, models, smoothing, pitch) run too.
        voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        voice = 0.1 * voice * (t >= 0.3) + 1e-3 * np.random.default_rng(0).standard_normal(t.size)
        try:
            self.push(voice.astype(np.float32), wall_end=0.0)
        finally:
            self.reset()

    # -- push ---------------------------------------------------------------------------------------------
    def push(self, samples: np.ndarray, *, wall_end: float | None = None, overflows: int = 0) -> list[PredictionEvent]:
        """Feed mono float samples; ``wall_end`` is the capture time of the last one (default: now).

        Samples are held until the next window is due, then processed in one go: a window cannot be emitted
        before its last sample anyway, so this costs no latency, and the per-call overhead of the extractor
        and the VAD is paid once per hop instead of once per (20 ms) capture block.
        """
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"audio must be mono (1-D), got shape {samples.shape}")
        self._held.append(samples)
        self._held_n += samples.shape[0]
        self._held_wall = time.time() if wall_end is None else wall_end
        if self.samples_in + self._held_n < self._due:
            return []
        block = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        self._held, self._held_n = [], 0
        if self.config.max_windows_per_push or block.shape[0] <= self._chunk:
            return self._process(block, self._held_wall, overflows)
        # Keeping every window of a long push: go in chunks, so that the speech ledger (bounded to the window
        # plus _LEDGER_SLACK frames) still holds each window's decisions when that window is judged.
        out, n, sr = [], block.shape[0], self.feature_config.sr
        for lo in range(0, n, self._chunk):
            part = block[lo : lo + self._chunk]
            out += self._process(part, self._held_wall - (n - lo - part.shape[0]) / sr, overflows)
        return out

    def _process(self, samples: np.ndarray, wall_end: float, overflows: int) -> list[PredictionEvent]:
        t0 = time.perf_counter()
        self._keep_tail(samples)
        samples = self._hp.push(samples)
        frames = self._fx.push(samples)
        t1 = time.perf_counter()
        vad = self._vad.advance(samples=samples, frames=frames)
        self._ledger.add(vad.start, vad.speech)
        self.speech_frames += int(np.count_nonzero(vad.speech))
        t2 = time.perf_counter()
        embed = None if self.encoder is None else self.encoder.push(frames.enc_mel)
        t3 = time.perf_counter()
        windows = self._win.push(frames, embed)
        t4 = time.perf_counter()
        self.samples_in += samples.shape[0]
        self._due = self._next_due()
        keep = self.config.max_windows_per_push
        if keep and len(windows) > keep:
            self.dropped_windows += len(windows) - keep  # live: fell behind, show the present, count the rest
            windows = windows[-keep:]
        # Per push, shared by the push's events (a push that completes two windows reports its cost in both).
        shared = {"features": (t1 - t0) * 1e3, "vad": (t2 - t1) * 1e3, "windows": (t4 - t3) * 1e3}
        if self.encoder is not None:
            shared["encoder"] = (t3 - t2) * 1e3
        return [self._event(w, wall_end, overflows, shared) for w in windows]

    def _next_due(self) -> int:
        """Samples the stream must hold before the next window is emitted (see FrameWindower's rule)."""
        fc, win = self.feature_config, self._win
        k = max(win.min_frames, self._fx.frames_done + 1)
        k = -(-k // win.hop_frames) * win.hop_frames
        return (k - 1) * fc.hop_length + fc.n_fft

    def _keep_tail(self, samples: np.ndarray) -> None:
        n = min(samples.shape[0], self._tail.shape[0])
        if n:  # shift in place: np.roll allocated a new array at every push
            self._tail[:-n] = self._tail[n:]
            self._tail[-n:] = samples[-n:]

    # -- one window ---------------------------------------------------------------------------------------
    def _event(self, win: Window, wall_end: float, overflows: int, shared: dict) -> PredictionEvent:
        c, fc = self.config, self.feature_config
        timings = dict(shared)
        wall = wall_end - (self.samples_in - (win.end_frame * fc.hop_length + fc.n_fft)) / fc.sr
        # Only decisions that are final for any block size: the VAD settles frame i once frame i + delay
        # has arrived, so gate on frames up to end - delay (the VAD's own decision latency, 190 ms for ours).
        # The gate is the one the models were trained with: a window that ends in a pause still holds the
        # utterance before it (the windows that span a whole short utterance end there). Demanding speech in its
        # newest frame as well dropped them: 0.52 against 0.60 clip UA on held-out RAVDESS actors 17-20.
        settled = win.end_frame - self._vad.delay_frames
        speech_frames = self._ledger.count(win.end_frame + 1 - win.n_frames, settled + 1)
        speech = bool(SPEECH_GATE.enough_speech(speech_frames, win.n_frames)
                      and speech_frames * 1000.0 * fc.hop_length / fc.sr >= c.min_speech_ms)
        vector = None
        if speech:
            t0 = time.perf_counter()
            vector = window_vector(win)  # pooled once for both models (it is pure; normalising copies it)
            timings["pool"] = (time.perf_counter() - t0) * 1e3
            speech = bool(SPEECH_GATE.voiced(vector))   # no pitch at all: clicks, knocks, not a voice
        if not speech and win.t_end - self._last_speech_t > c.reset_after_silence_s:
            for part in (self._emo, self._label, self._gender):
                part.reset()
        emotion, probs, raw, gender, gprobs = None, {}, {}, None, {}
        if speech:
            self._last_speech_t = win.t_end
            emotion, probs, raw, gender, gprobs = self._classify(win, vector, timings)
        uncertain = emotion is not None and probs[emotion] < self._uncertain_below
        descriptors = {}
        if speech:
            t0 = time.perf_counter()
            descriptors = self._descriptors(win)
            timings["descriptors"] = (time.perf_counter() - t0) * 1e3
        return PredictionEvent(
            t=round(win.t_end, 4), wall=wall, speech=bool(speech), emotion=emotion, emotion_probs=probs,
            emotion_probs_raw=raw, gender=gender, gender_probs=gprobs, level_dbfs=self._level_dbfs(),
            overflows=int(overflows), dropped_windows=self.dropped_windows,
            timings_ms={k: round(v, 4) for k, v in timings.items()}, source=self.source,
            features=descriptors, uncertain=bool(uncertain))

    def _classify(self, win: Window, vector: np.ndarray, timings: dict):
        t0 = time.perf_counter()
        # Each model reads the leading columns it was trained on (gender: the 220 statistics without the encoder).
        x_emo, x_gen = (self._normalise(vector[:dim], norm) for dim, norm in zip(self._dims, self._norms))
        t1 = time.perf_counter()
        spec = None if self._spec_norm is None else self._normalise(cnn_input(win.log_mel).T, self._spec_norm)[0].T
        ts = time.perf_counter()
        p_emo = (self.emotion_model.predict_proba(x_emo) if spec is None
                 else self.emotion_model.predict_proba(x_emo, spec=spec[None]))
        p_emo = apply_temperature(p_emo[0], self._temperature)
        t2 = time.perf_counter()
        p_gen = self.gender_model.predict_proba(x_gen)[0]
        t3 = time.perf_counter()
        smooth = self._emo.update(p_emo, win.t_end)
        label = self._label.update(smooth, win.t_end)
        g = self._gender.update(p_gen)
        t4 = time.perf_counter()
        timings.update(normalise=(t1 - t0) * 1e3, emotion=(t2 - ts) * 1e3, gender=(t3 - t2) * 1e3,
                       smooth=(t4 - t3) * 1e3)
        if spec is not None:
            timings["spectrogram"] = (ts - t1) * 1e3

        def named(labels, p):
            return {k: round(float(v), 5) for k, v in zip(labels, p)}

        return (label, named(self.emotions, smooth), named(self.emotions, p_emo),
                self.genders[int(np.argmax(g))], named(self.genders, g))

    @staticmethod
    def _normalise(x: np.ndarray, norm) -> np.ndarray:
        """x (D,) -> (1, D) normalised; x (T, D), a window's frames -> (1, T, D)."""
        if norm is None:
            return x[None]
        norm.update(x)
        return norm.transform(x)[None]

    def _level_dbfs(self) -> float:
        """RMS of the newest hop in dB re full scale (a full-scale square wave is 0 dBFS)."""
        hop = int(round(self.feature_config.sr * self.config.hop_ms / 1000))
        x = self._tail[-hop:]
        return round(10.0 * math.log10(float(np.dot(x, x)) / x.shape[0] + 1e-12), 2)   # dot: no temporary

    def _descriptors(self, win: Window) -> dict:
        """Window summaries for the per-emotion comparison view: pitch, energy, mel centroid, MFCC profile."""
        return {"pitch_hz": _pitch_hz(win.voice[0, -self._win.hop_frames:]),
                "energy_db": round(float(np.mean(win.log_mel)), 2),
                "centroid_hz": round(_mel_centroid_hz(win.log_mel, self.feature_config), 1),
                "mfcc": [round(float(v), 3) for v in win.mfcc.mean(axis=1)]}


def _make_vad(config: PipelineConfig, fc: FeatureConfig):
    """The configured VAD (dsp.vad.make_vad); a missing silero model is the user's one-line error."""
    try:
        return make_vad(config.vad_backend, config=config.vad, feature_config=fc)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from None


def _mel_centroid_hz(log_mel: np.ndarray, fc: FeatureConfig) -> float:
    centres = _mel_centres_hz(fc.n_mels, fc.fmin, fc.fmax)
    power = np.power(10.0, log_mel.mean(axis=1) / 10.0)
    return float(np.sum(centres * power) / max(np.sum(power), 1e-20))


@lru_cache(maxsize=8)
def _mel_centres_hz(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies (n_mels,) of the Slaney mel bands; cached, as they were recomputed at every event."""
    centres = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)[1:-1]
    centres.setflags(write=False)  # shared by every call
    return centres


def _pitch_hz(f0_hz: np.ndarray) -> float | None:
    """Median f0 of the voiced frames among f0_hz (the newest hop's, from the stream's voice analysis)."""
    voiced = sorted(float(f) for f in f0_hz if f == f)   # a hop's ~10 values: cheaper than np.median's overhead
    n = len(voiced)
    if not n:
        return None
    return round(voiced[n // 2] if n % 2 else 0.5 * (voiced[n // 2 - 1] + voiced[n // 2]), 1)
