"""ONNX classifier wrapper: lazy CPU session, names and dims checked at load, metadata checked against dsp."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dsp.config import FeatureConfig

from .errors import ModelError
from .labels import EMOTION_MODELS

__all__ = ["OnnxClassifier", "cpu_session", "default_models", "INPUT_NAME", "OUTPUT_NAME", "REQUIRED_METADATA"]

INPUT_NAME = "features"
OUTPUT_NAME = "probs"
REQUIRED_METADATA = ("labels", "feature_config", "window_ms", "hop_ms", "pooling_version", "feature_dim",
                     "normalisation")
_HERE = Path(__file__).resolve().parent


def cpu_session(source, *, threads: int = 1, what: str = "ONNX model"):
    """An onnxruntime CPU session of a file (path) or serialised model (bytes) with `threads` intra-op threads;
    a file onnxruntime refuses is a one-line ModelError naming `what`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
    name = source if isinstance(source, bytes) else str(source)
    try:
        return ort.InferenceSession(name, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for corrupt files
        where = "(in memory)" if isinstance(source, bytes) else source
        raise ModelError(f"cannot load {what} {where}: {str(exc).splitlines()[0][:200]}") from None


def default_models() -> dict[str, Path]:
    """Paths of the shipped models by name: "emotion" (every language), "emotion-en" (English), "gender"."""
    return {name: _HERE / f"{name}.onnx" for name in (*EMOTION_MODELS.values(), "gender")}


class OnnxClassifier:
    """A window-vector classifier exported by models.train.

    >>> clf = OnnxClassifier(default_models()["emotion"], expected_config=FeatureConfig())
    >>> clf.predict_proba(x)   # x: (n, D) or (D,) float -> (n, C) float32, columns in clf.labels order

    The metadata is read (and checked) at construction; the inference session is created on first use.
    """

    def __init__(self, path, *, expected_config: FeatureConfig | None = None, intra_op_threads: int = 1):
        self.path = Path(path)
        self.intra_op_threads = int(intra_op_threads)
        self._session = None
        self._io_checked = False
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self.metadata = self._read_metadata()
        try:
            self.labels: tuple[str, ...] = tuple(json.loads(self.metadata["labels"]))
            self.feature_config = FeatureConfig.fromdict(json.loads(self.metadata["feature_config"]))
            self.feature_dim = int(self.metadata["feature_dim"])
            self.window_ms = float(self.metadata["window_ms"])
            self.hop_ms = float(self.metadata["hop_ms"])
            self.normalisation = json.loads(self.metadata["normalisation"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"{self.path}: malformed metadata ({exc})") from None
        if expected_config is not None and self.feature_config != expected_config:
            diff = {k: (v, getattr(expected_config, k)) for k, v in self.feature_config.asdict().items()
                    if getattr(expected_config, k) != v}
            raise ModelError(f"{self.path} was trained with other feature parameters: "
                             + ", ".join(f"{k}={a} (expected {b})" for k, (a, b) in diff.items()))
        from dsp.pooling import POOLING_VERSION, READS_POOLING, vector_dim

        from .encoder import ENCODER_DIM

        # The speech encoder whose states the model reads: a file next to the model, named in its metadata.
        enc = self.metadata.get("encoder")
        self.encoder_path: Path | None = (self.path.parent / enc) if enc else None
        want = vector_dim(ENCODER_DIM if enc else 0)
        if self.metadata["pooling_version"] not in READS_POOLING or self.feature_dim != want:
            raise ModelError(f"{self.path} expects pooling v{self.metadata['pooling_version']} with "
                             f"{self.feature_dim} features; dsp.pooling is v{POOLING_VERSION} with {want}")
        self.calibration = json.loads(self.metadata.get("calibration", "{}"))
        # The log-mel CNN averaged with this model (models.cnn), a file next to it named in its metadata.
        self.cnn = None
        if self.metadata.get("cnn"):
            from .cnn import CnnModel

            self.cnn = CnnModel(self.path.parent / self.metadata["cnn"], threads=self.intra_op_threads)
            if self.cnn.labels != self.labels:
                raise ModelError(f"{self.cnn.path}: labels {self.cnn.labels} differ from {self.path}'s {self.labels}")

    def _read_metadata(self) -> dict[str, str]:
        try:
            import onnx

            model = onnx.load(str(self.path), load_external_data=False)
        except ImportError:
            return self._session_metadata()
        except Exception as exc:  # onnx raises DecodeError and friends for a corrupt file
            raise ModelError(f"cannot read ONNX model {self.path}: {type(exc).__name__}") from None
        meta = {p.key: p.value for p in model.metadata_props}
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise ModelError(f"{self.path} lacks metadata {', '.join(missing)} (not exported by models.train?)")
        return meta

    def _session_metadata(self) -> dict[str, str]:
        """Without the onnx package (a training extra), read the metadata through onnxruntime instead."""
        self._session = self._new_session()   # checked against the metadata in predict_proba's first call
        self._io_checked = False
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise ModelError(f"{self.path} lacks metadata {', '.join(missing)} (not exported by models.train?)")
        return meta

    def _new_session(self):
        return cpu_session(self.path, threads=self.intra_op_threads, what="ONNX model")

    @property
    def session(self):
        """The onnxruntime InferenceSession (CPU, intra_op_threads), created on first use and checked."""
        if self._session is None:
            self._session = self._new_session()
            self._io_checked = False
        if not self._io_checked:
            self._check_io(self._session)
            self._io_checked = True
        return self._session

    def _check_io(self, sess) -> None:
        ins, outs = sess.get_inputs(), sess.get_outputs()
        if len(ins) != 1 or ins[0].name != INPUT_NAME:
            raise ModelError(f"{self.path}: expected one input {INPUT_NAME!r}, got {[i.name for i in ins]}")
        if OUTPUT_NAME not in [o.name for o in outs]:
            raise ModelError(f"{self.path}: no output {OUTPUT_NAME!r} (outputs {[o.name for o in outs]})")
        d = ins[0].shape[-1]
        if isinstance(d, int) and d != self.feature_dim:
            raise ModelError(f"{self.path}: input width {d} differs from metadata feature_dim {self.feature_dim}")
        c = next(o for o in outs if o.name == OUTPUT_NAME).shape[-1]
        if isinstance(c, int) and c != len(self.labels):
            raise ModelError(f"{self.path}: output width {c} differs from {len(self.labels)} labels")

    def predict_proba(self, x, spec=None) -> np.ndarray:
        """x: (n, D) or (D,) -> (n, C) float32 probabilities (rows sum to 1). spec: the windows' session-normalised
        spectrograms (n, CNN_BANDS, CNN_FRAMES) for a model with a CNN: its probabilities are averaged in."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.feature_dim:
            raise ValueError(f"features must be (n, {self.feature_dim}) or ({self.feature_dim},), got {x.shape}")
        (p,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x)})
        if spec is None:
            return p
        from .cnn import fuse_with_cnn

        return fuse_with_cnn(self.cnn, p, spec)

    def spec_norm(self):
        """A fresh dsp.pooling.OnlineNorm for the CNN's spectrogram frames, or None for a model without a CNN."""
        return None if self.cnn is None else self.cnn.online_norm()

    def online_norm(self):
        """A fresh dsp.pooling.OnlineNorm for this model's normalisation, or None if it uses none."""
        from dsp.pooling import OnlineNorm

        if self.normalisation.get("mode", "none") == "none":
            return None
        std = self.normalisation.get("prior_std")   # present for "speaker_meanvar"
        return OnlineNorm(np.asarray(self.normalisation["prior_mean"], np.float32),
                          prior_count=float(self.normalisation["prior_count"]),
                          prior_std=None if std is None else np.asarray(std, np.float32))
