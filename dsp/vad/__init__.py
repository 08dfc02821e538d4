"""Streaming voice activity detection on the feature extractor's frames (no FFT of its own).

Two backends share one decision state machine (hysteresis + minimum durations + padding):

* ``StreamingVad``: the frame energy (FeatureFrames.power) against an adaptive noise floor, as an SNR
  and as a z-score over the noise's own spread, plus the spectral flatness of the 300-3400 Hz log-mel
  bands as a z-score against the noise's flatness, combined by a logistic function into a per-frame
  speech probability. One numba pass, about 2 us per frame (see benchmarks/bench_vad.py).
* ``SileroVad`` (optional): silero's ONNX model through onnxruntime, its 32 ms chunk probabilities
  spread over our 10 ms frames.

Frame i covers samples [i*hop, i*hop + n_fft) (the extractor's framing); in seconds a frame stands for
its central hop, [i*hop + (n_fft - hop)/2, (i+1)*hop + (n_fft - hop)/2) / sr.

Decision latency: the decision for frame i is final when it is emitted, ``lookahead_frames`` frames
after frame i arrived: max(min_speech + speech_pad - 1, min_silence - 1) frames, 190 ms with the
default VadConfig (plus the frame's own 32 ms of audio). Probabilities are emitted with the same
delay so that ``prob`` and ``speech`` of a VadResult describe the same frames. Ours also holds a stream's
first ``start_hold_frames`` (500 ms) until all of them have arrived, to see whether it opened inside a
voice (VadConfig); those frames are then emitted together, and from then on the usual lookahead
applies. Segment edges: a start is found up to speech_pad_ms early; an end is reported hangover_ms +
~20 ms (the level's release) after the sound falls back to the noise.

One concern per module: config (VadConfig), _kernels (the numba kernels), decision (VadResult and the
state machine both backends share), energy (StreamingVad), silero (SileroVad, SILERO_CONFIG), backends
(make_vad), segments (whole-signal helpers). Every public name is importable from dsp.vad.
"""
from .backends import VAD_BACKENDS, make_vad
from .config import VadConfig
from .decision import VadResult
from .energy import StreamingVad
from .segments import mask_to_segments, speech_mask, vad_segments
from .silero import SILERO_CONFIG, SileroVad, find_silero_model

__all__ = ["VAD_BACKENDS", "SILERO_CONFIG", "SileroVad", "StreamingVad", "VadConfig", "VadResult", "find_silero_model",
           "make_vad", "mask_to_segments", "speech_mask", "vad_segments"]
