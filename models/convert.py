"""Build the shipped speech-encoder ONNX file from the pinned PyPI package's weights (no torch needed).

resemblyzer 0.1.4 (Apache-2.0; Jemine 2019, a GE2E speaker encoder, Wan et al. 2018) ships
``resemblyzer/pretrained.pt``: a 3-layer LSTM (40 -> 256 -> 256 -> 256) saved with torch's legacy
(pre-1.6) serialisation. We read that format directly (a pickle stream whose tensors point into raw
storages that follow it), keep the LSTM's first ENCODER_LAYERS (2) of its 3 layers and drop the rest and the
projection: what the monitor pools is the hidden state of every kept layer at every frame, carried from frame
to frame as the stream runs. The third layer cost 0.2 ms per 100 ms hop and lifted the emotion models by
no more than their run-to-run noise (clip UA over the speaker folds, RAVDESS / ASED / TESS: all three layers 0.686 / 0.867 / 0.585,
the first two 0.690 / 0.850 / 0.645; the first alone 0.607 / 0.791 / 0.402).

    emotion-monitor convert-encoder --out models/encoder.onnx           # pip-downloads the pinned wheel
    emotion-monitor convert-encoder --wheel Resemblyzer-0.1.4-py3-none-any.whl --out models/encoder.onnx

The graph: inputs ``mel`` (T, 40) float32, ``h0``/``c0`` (2, 256); outputs ``states`` (T, 512) (layers
1-2 side by side), ``h``/``c`` (2, 256). ``lstm_reference`` is the same computation in numpy, the parity
reference of the tests.
"""
from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .encoder import ENCODER_HIDDEN, ENCODER_LAYERS
from .errors import ModelError

__all__ = ["RESEMBLYZER_WHEEL", "RESEMBLYZER_SHA256", "read_legacy_torch", "resemblyzer_lstm",
           "lstm_reference", "build_encoder_onnx", "convert_encoder", "check_encoder_parity", "register"]

RESEMBLYZER_WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
RESEMBLYZER_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64,
           "IntStorage": np.int32, "HalfStorage": np.float16}
N_LAYERS, HIDDEN, N_MELS = 3, ENCODER_HIDDEN, 40   # resemblyzer's LSTM (of which the graph keeps ENCODER_LAYERS)


class _Storage:
    def __init__(self, dtype, key: str, numel: int):
        self.dtype, self.key, self.numel, self.data = dtype, key, numel, None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        item = self.storage.data.itemsize
        flat = self.storage.data[self.offset:]
        return np.lib.stride_tricks.as_strided(flat, self.size, tuple(s * item for s in self.stride)).copy()


class _Unpickler(pickle.Unpickler):
    """Maps torch's classes to plain holders; refuses any other global from torch (no code runs)."""

    def __init__(self, f):
        super().__init__(f)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *_: _Tensor(storage, offset, size, stride)
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict
            return OrderedDict
        raise ModelError(f"unexpected object in checkpoint: {module}.{name}")

    def persistent_load(self, pid):
        _tag, dtype, key, _location, numel, _view = pid
        return self.storages.setdefault(key, _Storage(dtype, key, numel))


def read_legacy_torch(path: Path) -> dict:
    """A checkpoint written by torch.save before torch 1.6, as nested dicts of numpy arrays."""
    with open(path, "rb") as f:
        if pickle.load(f) != _LEGACY_MAGIC:
            raise ModelError(f"{path}: not a legacy torch checkpoint")
        pickle.load(f), pickle.load(f)  # protocol version, sys info
        up = _Unpickler(f)
        obj = up.load()
        for key in pickle.load(f):
            st = up.storages[key]
            n = int(np.frombuffer(f.read(8), "<i8")[0])
            st.data = np.frombuffer(f.read(n * np.dtype(st.dtype).itemsize), dtype=st.dtype)

    def walk(o):
        if isinstance(o, _Tensor):
            return o.numpy()
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        return o

    return walk(obj)


def resemblyzer_lstm(pt_path: Path) -> dict[str, np.ndarray]:
    """The LSTM weights of resemblyzer's pretrained.pt: w_ih{l} (1024, in), w_hh{l}, b{l} = b_ih + b_hh."""
    state = read_legacy_torch(pt_path)["model_state"]
    out = {}
    for layer in range(N_LAYERS):
        out[f"w_ih{layer}"] = state[f"lstm.weight_ih_l{layer}"].astype(np.float32)
        out[f"w_hh{layer}"] = state[f"lstm.weight_hh_l{layer}"].astype(np.float32)
        out[f"b{layer}"] = (state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"]).astype(np.float32)
    if out["w_ih0"].shape != (4 * HIDDEN, N_MELS):
        raise ModelError(f"unexpected LSTM shape {out['w_ih0'].shape} in {pt_path}")
    return out


def lstm_reference(weights: dict, mel: np.ndarray, h0: np.ndarray, c0: np.ndarray):
    """torch.nn.LSTM's equations in float64 numpy (gate order i, f, g, o). mel (T, 40), h0/c0 (L, 256) for
    the first L layers -> states (T, 256 L), h (L, 256), c (L, 256)."""
    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    x = mel.astype(np.float64)
    h, c = h0.astype(np.float64).copy(), c0.astype(np.float64).copy()
    outs = []
    for layer in range(h.shape[0]):
        w_ih, w_hh, b = (weights[f"{k}{layer}"].astype(np.float64) for k in ("w_ih", "w_hh", "b"))
        ys = np.empty((x.shape[0], HIDDEN))
        for t in range(x.shape[0]):
            z = w_ih @ x[t] + w_hh @ h[layer] + b
            i, f, g, o = np.split(z, 4)
            c[layer] = sig(f) * c[layer] + sig(i) * np.tanh(g)
            h[layer] = sig(o) * np.tanh(c[layer])
            ys[t] = h[layer]
        outs.append(ys)
        x = ys
    return np.concatenate(outs, axis=1), h, c


def _onnx_gates(w: np.ndarray) -> np.ndarray:
    """torch's gate blocks (i, f, g, o) in ONNX's order (i, o, f, c)."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def build_encoder_onnx(weights: dict, *, layers: int = ENCODER_LAYERS, metadata: dict | None = None):
    """The streaming LSTM's first ``layers`` layers as an ONNX graph (opset 17): one LSTM node per layer, with
    state in and out."""
    if not 1 <= layers <= N_LAYERS:
        raise ValueError(f"layers must be 1..{N_LAYERS}, got {layers}")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes, layer_outs = [], [], []
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    inits.append(numpy_helper.from_array(np.array([-1, layers * HIDDEN], np.int64), "flat"))
    nodes.append(helper.make_node("Unsqueeze", ["mel", "axis1"], ["x0"]))          # (T, 1, 40)
    x = "x0"
    for layer in range(layers):
        w = _onnx_gates(weights[f"w_ih{layer}"])[None]
        r = _onnx_gates(weights[f"w_hh{layer}"])[None]
        b = np.concatenate([_onnx_gates(weights[f"b{layer}"]), np.zeros(4 * HIDDEN, np.float32)])[None]
        for name, arr in ((f"W{layer}", w), (f"R{layer}", r), (f"B{layer}", b)):
            inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        inits.append(numpy_helper.from_array(np.array([layer], np.int64), f"idx{layer}"))
        nodes += [
            helper.make_node("Gather", ["h0", f"idx{layer}"], [f"h0_{layer}"], axis=0),   # (1, 256) = (dir, batch*)
            helper.make_node("Gather", ["c0", f"idx{layer}"], [f"c0_{layer}"], axis=0),
            helper.make_node("Unsqueeze", [f"h0_{layer}", "axis1"], [f"h0u_{layer}"]),      # (1, 1, 256)
            helper.make_node("Unsqueeze", [f"c0_{layer}", "axis1"], [f"c0u_{layer}"]),
            helper.make_node("LSTM", [x, f"W{layer}", f"R{layer}", f"B{layer}", "", f"h0u_{layer}", f"c0u_{layer}"],
                             [f"Y{layer}", f"Yh{layer}", f"Yc{layer}"], hidden_size=HIDDEN),
            helper.make_node("Squeeze", [f"Y{layer}", "axis1"], [f"y{layer}"]),            # (T, 1, 256)
            helper.make_node("Squeeze", [f"Yh{layer}", "axis1"], [f"hn{layer}"]),          # (1, 256)
            helper.make_node("Squeeze", [f"Yc{layer}", "axis1"], [f"cn{layer}"]),
        ]
        x = f"y{layer}"
        layer_outs.append(x)
    nodes += [helper.make_node("Concat", layer_outs, ["cat"], axis=2),
              helper.make_node("Reshape", ["cat", "flat"], ["states"]),
              helper.make_node("Concat", [f"hn{k}" for k in range(layers)], ["h"], axis=0),
              helper.make_node("Concat", [f"cn{k}" for k in range(layers)], ["c"], axis=0)]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "speech_encoder",
        [helper.make_tensor_value_info("mel", f32, ["T", N_MELS]),
         helper.make_tensor_value_info("h0", f32, [layers, HIDDEN]),
         helper.make_tensor_value_info("c0", f32, [layers, HIDDEN])],
        [helper.make_tensor_value_info("states", f32, ["T", layers * HIDDEN]),
         helper.make_tensor_value_info("h", f32, [layers, HIDDEN]),
         helper.make_tensor_value_info("c", f32, [layers, HIDDEN])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="voice-emotion-monitor")
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(model)
    return model


def _fetch_wheel(dest: Path) -> Path:
    """pip-download the pinned wheel (the only network step; the converted file is committed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest),
           "resemblyzer==0.1.4"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ModelError(f"pip download resemblyzer==0.1.4 failed: {res.stderr.strip().splitlines()[-1:]}")
    return dest / RESEMBLYZER_WHEEL


def convert_encoder(out: Path, *, wheel: Path | None = None) -> Path:
    """Write the encoder ONNX file from the pinned wheel (checked by sha256) and check it against
    lstm_reference on random input."""
    import onnx

    from .train import output_dir

    out = Path(out)
    if wheel is not None and not Path(wheel).is_file():
        raise ModelError(f"wheel not found: {wheel}")
    output_dir(out.parent)   # before the download: a folder that cannot be written fails first
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _fetch_wheel(Path(tmp)) if wheel is None else Path(wheel)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != RESEMBLYZER_SHA256:
            raise ModelError(f"{wheel}: sha256 {digest} is not the pinned resemblyzer 0.1.4 wheel")
        with zipfile.ZipFile(wheel) as z:
            pt = Path(tmp) / "pretrained.pt"
            pt.write_bytes(z.read("resemblyzer/pretrained.pt"))
        weights = resemblyzer_lstm(pt)
    meta = {"name": f"speech encoder (resemblyzer 0.1.4 GE2E LSTM, its first {ENCODER_LAYERS} layers of 3, 256 each)",
            "source": "https://pypi.org/project/Resemblyzer/0.1.4/ resemblyzer/pretrained.pt",
            "source_sha256": RESEMBLYZER_SHA256, "licence": "Apache-2.0 (Corentin Jemine, resemblyzer)",
            "input": "40 Slaney mel bands (power) of a 25 ms Hann frame every 10 ms at 16 kHz, "
                     "level-normalised (models.encoder)"}
    model = build_encoder_onnx(weights, metadata=meta)
    try:
        onnx.save(model, str(out))
    except OSError as exc:
        raise ModelError(f"cannot write {out}: {exc.strerror or exc}") from None
    check_encoder_parity(out, weights)
    return out


def check_encoder_parity(path: Path, weights: dict, *, n_frames: int = 50, seed: int = 0) -> float:
    """Max |onnx - numpy reference| over random mel input and random start state; raises above 1e-4."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    mel = (rng.random((n_frames, N_MELS)) * 2.0).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((ENCODER_LAYERS, HIDDEN))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((ENCODER_LAYERS, HIDDEN))).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"mel": mel, "h0": h0, "c0": c0})
    want = lstm_reference(weights, mel, h0, c0)
    err = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    if err > 1e-4:
        raise ModelError(f"{path}: ONNX encoder differs from the numpy reference by {err:.2e}")
    return err


def register(subparsers) -> None:
    p = subparsers.add_parser("convert-encoder", help="build models/encoder.onnx from the pinned resemblyzer wheel")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("encoder.onnx"),
                   help="ONNX file to write (default: the shipped models/encoder.onnx)")
    p.add_argument("--wheel", type=Path, default=None,
                   help=f"a local {RESEMBLYZER_WHEEL} (default: pip download it)")
    p.set_defaults(run=_run)


def _run(args) -> int:
    path = convert_encoder(args.out, wheel=args.wheel)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); parity with the numpy reference checked")
    return 0
