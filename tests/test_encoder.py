"""The speech encoder: converter (legacy torch reader, ONNX graph) against the numpy LSTM reference, the
streaming stage against a one-shot run, and its place in the pipeline."""
from __future__ import annotations

import json
import pickle

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from dsp import FeatureConfig, StreamingFeatures
from models.convert import (HIDDEN, N_LAYERS, N_MELS, RESEMBLYZER_SHA256, build_encoder_onnx, lstm_reference,
                            read_legacy_torch, resemblyzer_lstm)
from models.encoder import DEFAULT_ENCODER, ENCODER_DIM, ENCODER_LAYERS, StreamingEncoder
from models.errors import ModelError
from tests._corpus import fixture_clip

CLIP = "ravdess/Actor_01/03-01-05-02-01-01-01.flac"


def _random_weights(rng) -> dict:
    w = {}
    for layer in range(N_LAYERS):
        n_in = N_MELS if layer == 0 else HIDDEN
        w[f"w_ih{layer}"] = (0.1 * rng.standard_normal((4 * HIDDEN, n_in))).astype(np.float32)
        w[f"w_hh{layer}"] = (0.1 * rng.standard_normal((4 * HIDDEN, HIDDEN))).astype(np.float32)
        w[f"b{layer}"] = (0.1 * rng.standard_normal(4 * HIDDEN)).astype(np.float32)
    return w


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_onnx_graph_equals_numpy_lstm(tmp_path, layers):
    """The converter's graph (gate reordering, state in/out, layer concatenation) computes torch's LSTM, for
    any number of the checkpoint's layers kept."""
    rng = np.random.default_rng(1)
    w = _random_weights(rng)
    path = tmp_path / "enc.onnx"
    onnx.save(build_encoder_onnx(w, layers=layers), str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    mel = rng.random((30, N_MELS)).astype(np.float32)
    h0 = rng.standard_normal((layers, HIDDEN)).astype(np.float32) * 0.3
    c0 = rng.standard_normal((layers, HIDDEN)).astype(np.float32) * 0.3
    got = sess.run(None, {"mel": mel, "h0": h0, "c0": c0})
    want = lstm_reference(w, mel, h0, c0)
    assert got[0].shape == (30, layers * HIDDEN)
    for g, r in zip(got, want):
        assert np.abs(g - r).max() < 1e-5


def test_fewer_layers_are_the_leading_states_of_more(tmp_path):
    """A layer never sees the layers above it: the kept layers' states are exactly the full LSTM's leading
    columns, so dropping the top layer changes no state the monitor keeps."""
    rng = np.random.default_rng(4)
    w = _random_weights(rng)
    mel = rng.random((25, N_MELS)).astype(np.float32)
    states = {}
    for layers in (ENCODER_LAYERS, N_LAYERS):
        sess = ort.InferenceSession(build_encoder_onnx(w, layers=layers).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        z = np.zeros((layers, HIDDEN), np.float32)
        states[layers] = sess.run(None, {"mel": mel, "h0": z, "c0": z})[0]
    assert np.array_equal(states[ENCODER_LAYERS], states[N_LAYERS][:, :ENCODER_DIM])
    with pytest.raises(ValueError, match="layers must be"):
        build_encoder_onnx(w, layers=N_LAYERS + 1)


def test_encoder_of_another_width_is_refused(tmp_path):
    path = tmp_path / "enc3.onnx"
    onnx.save(build_encoder_onnx(_random_weights(np.random.default_rng(5)), layers=N_LAYERS), str(path))
    with pytest.raises(ModelError, match="convert-encoder"):
        StreamingEncoder(path)


def _legacy_bytes(obj_tensors: dict) -> bytes:
    """A torch<1.6 style checkpoint written without torch: the format read_legacy_torch parses."""
    import io

    storages = {}

    class Rebuild:  # pickled as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
        pass

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and obj and obj[0] == "__storage__":
                return ("storage", FloatStorage, obj[1], "cpu", obj[2], None)
            return None

    class FloatStorage:
        __module__, __qualname__ = "torch", "FloatStorage"

    def rebuild(*a):  # placeholder; reduce below names the real global
        raise AssertionError

    rebuild.__module__, rebuild.__qualname__ = "torch._utils", "_rebuild_tensor_v2"

    class T:
        def __init__(self, key, arr):
            self.key, self.arr = key, arr

        def __reduce__(self):
            return (rebuild, (("__storage__", self.key, self.arr.size), 0, self.arr.shape,
                              tuple(s // 4 for s in self.arr.strides), False, {}))

    import sys
    import types

    fake_torch = types.ModuleType("torch")
    fake_torch.FloatStorage = FloatStorage
    fake_utils = types.ModuleType("torch._utils")
    fake_utils._rebuild_tensor_v2 = rebuild
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = fake_torch, fake_utils
    try:
        buf = io.BytesIO()
        for head in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001}):
            pickle.dump(head, buf, protocol=2)
        state = {}
        for k, arr in obj_tensors.items():
            storages[k] = np.ascontiguousarray(arr, np.float32)
            state[k] = T(k, storages[k])
        P(buf, protocol=2).dump({"model_state": state})
        pickle.dump(list(storages), buf, protocol=2)
        for k, arr in storages.items():
            buf.write(np.int64(arr.size).tobytes())
            buf.write(arr.tobytes())
        return buf.getvalue()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_legacy_checkpoint_reader_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    w = _random_weights(rng)
    tensors = {}
    for layer in range(N_LAYERS):
        tensors[f"lstm.weight_ih_l{layer}"] = w[f"w_ih{layer}"]
        tensors[f"lstm.weight_hh_l{layer}"] = w[f"w_hh{layer}"]
        tensors[f"lstm.bias_ih_l{layer}"] = w[f"b{layer}"]
        tensors[f"lstm.bias_hh_l{layer}"] = np.zeros(4 * HIDDEN, np.float32)
    pt = tmp_path / "pretrained.pt"
    pt.write_bytes(_legacy_bytes(tensors))
    assert np.array_equal(read_legacy_torch(pt)["model_state"]["lstm.weight_hh_l1"], w["w_hh1"])
    got = resemblyzer_lstm(pt)
    for k in w:
        assert np.array_equal(got[k], w[k]), k


def test_legacy_reader_refuses_other_files(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(pickle.dumps(123))
    with pytest.raises(ModelError, match="not a legacy torch checkpoint"):
        read_legacy_torch(bad)


def test_shipped_encoder_is_the_pinned_conversion():
    """models/encoder.onnx: converted from the pinned wheel, and its graph computes the LSTM of its weights."""
    model = onnx.load(str(DEFAULT_ENCODER))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["source_sha256"] == RESEMBLYZER_SHA256 and "Apache-2.0" in meta["licence"]
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # Back from ONNX gate order (i, o, f, c) to torch's (i, f, g, o) for the reference.
    def torch_order(a):
        i, o, f, c = np.split(a, 4, axis=0)
        return np.concatenate([i, f, c, o], axis=0)

    assert [n.op_type for n in model.graph.node].count("LSTM") == ENCODER_LAYERS
    w = {}
    for layer in range(ENCODER_LAYERS):
        w[f"w_ih{layer}"] = torch_order(init[f"W{layer}"][0])
        w[f"w_hh{layer}"] = torch_order(init[f"R{layer}"][0])
        w[f"b{layer}"] = torch_order(init[f"B{layer}"][0][: 4 * HIDDEN])
    rng = np.random.default_rng(3)
    mel = rng.random((20, N_MELS)).astype(np.float32)
    z = np.zeros((ENCODER_LAYERS, HIDDEN), np.float32)
    got = ort.InferenceSession(str(DEFAULT_ENCODER), providers=["CPUExecutionProvider"]).run(
        None, {"mel": mel, "h0": z, "c0": z})[0]
    assert np.abs(got - lstm_reference(w, mel, z, z)[0]).max() < 1e-4


def test_streaming_encoder_any_block_split_equals_one_run():
    """State carried across pushes: the stream in random blocks equals one push of all frames."""
    y = fixture_clip(CLIP).astype(np.float64)
    enc_mel = StreamingFeatures(FeatureConfig()).push(y).enc_mel
    whole = StreamingEncoder().push(enc_mel)
    enc = StreamingEncoder()
    rng = np.random.default_rng(0)
    parts, i = [], 0
    while i < enc_mel.shape[1]:
        k = int(rng.integers(0, 40))
        parts.append(enc.push(enc_mel[:, i:i + k]))
        i += k
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == whole.shape == (ENCODER_DIM, enc_mel.shape[1])
    assert np.abs(streamed - whole).max() < 1e-4
    enc.reset()
    assert np.abs(enc.push(enc_mel) - whole).max() < 1e-4


def test_level_follower_makes_the_encoder_gain_invariant():
    """A quieter microphone (−20 dB) gives nearly the same states once the level follower has caught on."""
    y = fixture_clip(CLIP).astype(np.float64)
    fx = FeatureConfig()
    loud = StreamingEncoder().push(StreamingFeatures(fx).push(y).enc_mel)
    quiet = StreamingEncoder().push(StreamingFeatures(fx).push(0.1 * y).enc_mel)
    speech = slice(150, 300)   # inside the utterance, after its first peak
    # Measured with the two layers kept: 0.0001 mean absolute difference (states ~0.09).
    assert np.abs(loud[:, speech] - quiet[:, speech]).mean() < 0.02


def test_missing_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="speech encoder not found"):
        StreamingEncoder(tmp_path / "none.onnx")


def test_shipped_models_name_their_encoder():
    from models.onnx_model import OnnxClassifier, default_models

    for path in default_models().values():
        clf = OnnxClassifier(path, expected_config=FeatureConfig())
        if clf.metadata.get("encoder"):
            assert clf.encoder_path == DEFAULT_ENCODER and clf.feature_dim == 220 + 2 * ENCODER_DIM
            assert json.loads(clf.metadata["training_data"])["clips"] > 0
        else:   # the gender model reads the 220 statistics only
            assert clf.encoder_path is None and clf.feature_dim == 220


def _states_of_last(first: np.ndarray, last: np.ndarray, **kw) -> np.ndarray:
    """Encoder states over `last`, streamed after `first` and one second of silence."""
    y = np.concatenate([first, np.zeros(16000), last])
    states = StreamingEncoder(**kw).push(StreamingFeatures(FeatureConfig()).push(y).enc_mel)
    return states[:, -(last.shape[0] // 160 - 5):]


def test_encoder_restarts_after_a_pause_so_earlier_speech_does_not_leak():
    """After a pause the state and level start afresh, as each training clip did: what came before the pause
    (another utterance, at another level) leaves little trace in the states of the next utterance. Not none:
    in a long pause of digital silence the restarts recur every 300 ms, so the state at the onset has run
    over a different remainder of the pause."""
    a, b = fixture_clip(CLIP).astype(np.float64), fixture_clip("ravdess/Actor_02/03-01-04-01-02-02-02.flac")
    last = fixture_clip("ravdess/Actor_19/03-01-04-01-01-01-19.flac").astype(np.float64)
    b = 3.0 * b.astype(np.float64)
    # Measured (the two layers kept): 0.011 mean absolute difference with the restart, 0.034 without (states ~0.05).
    assert np.abs(_states_of_last(a, last) - _states_of_last(b, last)).mean() < 0.017
    carried = [_states_of_last(x, last, restart_after_pause=False) for x in (a, b)]
    assert np.abs(carried[0] - carried[1]).mean() > 0.025
