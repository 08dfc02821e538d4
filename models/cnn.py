"""The log-mel CNN the emotion models average with their MLP.

It reads what the pipeline already computes: a speech window's log-mel bands (dsp.windows.Window.log_mel,
64 x 150 at 10 ms), averaged to 20 ms frames (CNN_BANDS x CNN_FRAMES) and normalised per band by the
session's running statistics (dsp.pooling.OnlineNorm over the frames, as the MLP's vector is over windows;
replayed in training by models.recipe.online_normalise). Four 3x3 conv layers with batch norm (folded into
the convolutions at export) and ReLU, 2x2 max-pooling after the first three, the mean and spread over time of
each band x channel map, one linear layer: 67.6 K parameters, about 14 M multiply-adds per window.

Trained with torch (the `train` extra); shipped as ONNX built here from the weights, so that the graph, a
numpy reference (``reference_forward``) and torch can be checked against each other.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp.config import FeatureConfig

from .errors import ModelError

__all__ = ["CHANNELS", "CNN_BANDS", "CNN_FRAMES", "CNN_WEIGHT", "CNN_INPUT", "CnnModel", "CnnRecipe", "cnn_input",
           "fuse", "fuse_with_cnn", "band_prior", "reference_forward", "build_onnx", "weights_of", "fit_cnn",
           "torch_net", "folded_weights"]

CNN_BANDS = FeatureConfig().n_mels   # the window's log-mel bands, as the extractor computes them
CNN_FRAMES = 75         # 20 ms frames of a 1.5 s window: half the cost of 10 ms frames
CHANNELS = (16, 32, 64, 64)
POOLED = 3              # layers followed by 2x2 max-pooling
# Equal weights: the experiment's fusion (RAVDESS clip UA 0.726 -> 0.747 for the English model; a weight of
# 0.6 or 0.7 on the MLP was no better).
CNN_WEIGHT = 0.5
CNN_INPUT = "spec"
_OUTPUT = "probs"
_OPSET = 17
_BN_EPS = 1e-5


def cnn_input(log_mel: np.ndarray) -> np.ndarray:
    """A window's log-mel (n_mels, n) at 10 ms -> (n_mels, CNN_FRAMES) float32 at 20 ms. A window shorter than
    1.5 s (a stream's first ones, a short clip) is padded on the left with each band's minimum (its quietest
    frame: silence before the stream, not a value the network never saw)."""
    need = 2 * CNN_FRAMES
    x = np.asarray(log_mel, np.float32)[:, -need:]
    if x.shape[1] < need:
        floor = x.min(axis=1, keepdims=True) if x.shape[1] else np.zeros((x.shape[0], 1), np.float32)
        x = np.concatenate((np.repeat(floor, need - x.shape[1], axis=1), x), axis=1)
    return 0.5 * (x[:, 0::2] + x[:, 1::2])


def fuse(p_mlp: np.ndarray, p_cnn: np.ndarray) -> np.ndarray:
    """The emotion model's raw probabilities: the MLP's and the CNN's averaged (before calibration)."""
    return (1.0 - CNN_WEIGHT) * np.asarray(p_mlp) + CNN_WEIGHT * np.asarray(p_cnn)


def fuse_with_cnn(cnn, p_mlp: np.ndarray, spec) -> np.ndarray:
    """The emotion model's probabilities for windows whose MLP gave p_mlp and whose session-normalised
    spectrograms are spec: fuse(p_mlp, cnn's)."""
    if cnn is None:
        raise ValueError("spectrograms given to a model without a CNN")
    return fuse(p_mlp, cnn.predict_proba(spec)).astype(np.float32)


def band_prior(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training statistics of every band over all frames of spec (N, B, T): (mean (B,), std (B,)) float64."""
    s = spec.astype(np.float64)
    mean = s.mean(axis=(0, 2))
    std = np.sqrt(np.maximum((s * s).mean(axis=(0, 2)) - mean * mean, 1e-6))
    return mean, std


# -- the network: numpy reference and ONNX graph from one weights dict ----------------------------------------
# weights: "in.mean", "in.std" (B,); "conv{i}.w" (C_out, C_in, 3, 3), "conv{i}.b" (C_out,) with batch norm folded
# in; "fc.w" (n_classes, 2 * C * B / 8), "fc.b".

def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, c, h, t = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, t), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", p[:, :, i:i + h, j:j + t], w[:, :, i, j], optimize=True)
    return out + b[None, :, None, None]


def _maxpool2(x: np.ndarray) -> np.ndarray:
    n, c, h, t = x.shape
    x = x[:, :, : h // 2 * 2, : t // 2 * 2]
    return x.reshape(n, c, h // 2, 2, t // 2, 2).max(axis=(3, 5))


def reference_forward(weights: dict, spec: np.ndarray) -> np.ndarray:
    """Probabilities (N, n_classes) of session-normalised spectrograms spec (N, B, T), in numpy float64."""
    h = (np.asarray(spec, np.float64) - weights["in.mean"][None, :, None]) / weights["in.std"][None, :, None]
    h = h[:, None]
    for i in range(len(CHANNELS)):
        h = np.maximum(_conv3x3(h, weights[f"conv{i}.w"].astype(np.float64), weights[f"conv{i}.b"]), 0.0)
        if i < POOLED:
            h = _maxpool2(h)
    f = h.reshape(h.shape[0], -1, h.shape[-1])
    g = np.concatenate((f.mean(axis=-1), f.std(axis=-1, ddof=1)), axis=1)
    z = g @ weights["fc.w"].T.astype(np.float64) + weights["fc.b"]
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _time_after_pooling(frames: int = CNN_FRAMES) -> int:
    for _ in range(POOLED):
        frames //= 2
    return frames


def build_onnx(weights: dict, *, metadata: dict | None = None):
    """The network as an onnx.ModelProto: input "spec" (N, CNN_BANDS, CNN_FRAMES), output "probs" (N, C)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n_classes = weights["fc.w"].shape[0]
    inits, nodes = [], []

    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    const("in.mean", weights["in.mean"].reshape(1, -1, 1))
    const("in.std", weights["in.std"].reshape(1, -1, 1))
    nodes += [helper.make_node("Sub", [CNN_INPUT, "in.mean"], ["centred"]),
              helper.make_node("Div", ["centred", "in.std"], ["standard"]),
              helper.make_node("Unsqueeze", ["standard", const("axis1", [1], np.int64)], ["h0"])]
    h = "h0"
    for i in range(len(CHANNELS)):
        w, b = const(f"conv{i}.w", weights[f"conv{i}.w"]), const(f"conv{i}.b", weights[f"conv{i}.b"])
        nodes += [helper.make_node("Conv", [h, w, b], [f"c{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        h = f"r{i}"
        if i < POOLED:
            nodes.append(helper.make_node("MaxPool", [h], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            h = f"p{i}"
    t = _time_after_pooling()
    nodes += [helper.make_node("Reshape", [h, const("maps", [0, -1, t], np.int64)], ["maps_t"]),
              helper.make_node("ReduceMean", ["maps_t"], ["mean"], axes=[2], keepdims=0),
              helper.make_node("ReduceMean", ["maps_t"], ["mean_k"], axes=[2], keepdims=1),
              helper.make_node("Sub", ["maps_t", "mean_k"], ["dev"]),
              helper.make_node("ReduceSumSquare", ["dev"], ["ss"], axes=[2], keepdims=0),
              helper.make_node("Div", ["ss", const("dof", t - 1)], ["var"]),
              helper.make_node("Sqrt", ["var"], ["std"]),
              helper.make_node("Concat", ["mean", "std"], ["pooled"], axis=1),
              helper.make_node("Gemm", ["pooled", const("fc.w", weights["fc.w"]), const("fc.b", weights["fc.b"])],
                               ["logits"], transB=1),
              helper.make_node("Softmax", ["logits"], [_OUTPUT], axis=1)]
    graph = helper.make_graph(
        nodes, "log-mel CNN",
        [helper.make_tensor_value_info(CNN_INPUT, TensorProto.FLOAT, ["n", CNN_BANDS, CNN_FRAMES])],
        [helper.make_tensor_value_info(_OUTPUT, TensorProto.FLOAT, ["n", n_classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                              producer_name="voice-emotion-monitor", doc_string="log-mel CNN (models.cnn)")
    model.ir_version = 8   # what onnxruntime 1.17+ reads
    for k, v in (metadata or {}).items():
        text = v if isinstance(v, str) else json.dumps(v)
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=text))
    onnx.checker.check_model(model)
    return model


def weights_of(model) -> dict:
    """The weights dict back from a graph build_onnx made (for the parity check of a shipped file)."""
    from onnx import numpy_helper

    w = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    w["in.mean"], w["in.std"] = w["in.mean"].reshape(-1), w["in.std"].reshape(-1)
    return {k: v for k, v in w.items() if k.startswith(("in.", "conv", "fc."))}


class CnnModel:
    """The CNN in onnxruntime (one thread), from a file or a ModelProto, with the normalisation it was
    trained with. predict_proba(spec (n, B, T)) -> (n, C); online_norm() -> a fresh OnlineNorm over frames."""

    def __init__(self, source, *, threads: int = 1):
        from .onnx_model import cpu_session

        self.path = Path(source) if isinstance(source, (str, Path)) else None
        if self.path is not None and not self.path.is_file():
            raise ModelError(f"CNN model file not found: {self.path}")
        self.session = cpu_session(self.path if self.path is not None else source.SerializeToString(),
                                   threads=threads, what="CNN model")
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        try:
            self.labels = tuple(json.loads(meta["labels"]))
            self.normalisation = json.loads(meta["normalisation"])
            self._prior_mean = np.asarray(self.normalisation["prior_mean"], np.float64)
            self._prior_std = np.asarray(self.normalisation["prior_std"], np.float64)
            self._prior_count = float(self.normalisation["prior_count"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"{self.path or 'CNN model'}: malformed metadata ({exc})") from None
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in ins] != [CNN_INPUT] or list(ins[0].shape[1:]) != [CNN_BANDS, CNN_FRAMES] \
                or outs[0].shape[-1] != len(self.labels) or self._prior_mean.shape != (CNN_BANDS,):
            raise ModelError(f"{self.path or 'CNN model'}: expected input {CNN_INPUT!r} (n, {CNN_BANDS}, "
                             f"{CNN_FRAMES}) and {len(self.labels)} outputs (rebuild it with `emotion-monitor train`)")

    def predict_proba(self, spec) -> np.ndarray:
        spec = np.ascontiguousarray(np.asarray(spec, np.float32).reshape(-1, CNN_BANDS, CNN_FRAMES))
        return self.session.run([_OUTPUT], {CNN_INPUT: spec})[0]

    def online_norm(self):
        """Per-band running statistics of the session's speech frames, shrunk toward the training bands with a
        prior of prior_count windows (each window adds CNN_FRAMES frames)."""
        from dsp.pooling import OnlineNorm

        return OnlineNorm(self._prior_mean, prior_count=self._prior_count * CNN_FRAMES, prior_std=self._prior_std)


# -- training (torch: the `train` extra) -------------------------------------------------------------------

@dataclass(frozen=True)
class CnnRecipe:
    """How the CNN is trained: the experiment's recipe (models/HISTORY.md) but for the number of windows and
    epochs. The windows are evenly strided to at most max_windows, which bounds a fit's cost whatever the corpora:
    an epoch costs about 3.2 ms of one core per window, so a fit about 10 min, and `evaluate` makes 12 of them.
    24,000 windows (every 4th or 5th of a fold's 90,000-115,000) for 8 epochs cost about what 12,000 for 15 did, and
    twice the distinct windows lifted the English model's RAVDESS session UA by 0.008 with both seeds tried
    (models/HISTORY.md)."""

    max_windows: int = 24_000
    epochs: int = 8
    batch: int = 64
    peak_lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    dropout: float = 0.3
    freq_mask: int = 8       # SpecAugment: up to freq_mask - 1 bands and time_mask - 1 frames zeroed
    time_mask: int = 10


def torch_net(n_classes: int, dropout: float = CnnRecipe.dropout):
    """The network in torch (train mode after construction), as fit_cnn trains it."""
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 1
            for i, c in enumerate(CHANNELS):
                layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
                if i < POOLED:
                    layers.append(nn.MaxPool2d(2))
                cin = c
            self.body = nn.Sequential(*layers)
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(2 * CHANNELS[-1] * (CNN_BANDS >> POOLED), n_classes)

        def forward(self, x):
            h = self.body(x.unsqueeze(1)).flatten(1, 2)           # (N, C * B', T')
            return self.fc(self.drop(torch.cat([h.mean(-1), h.std(-1)], 1)))

    return Net()


def folded_weights(net, mean: np.ndarray, std: np.ndarray) -> dict:
    """The weights dict of a torch_net (eval mode: batch norm's running statistics folded into the preceding
    convolution), with the input standardisation mean, std (B,)."""
    convs = [m for m in net.body if m.__class__.__name__ == "Conv2d"]
    norms = [m for m in net.body if m.__class__.__name__ == "BatchNorm2d"]
    w = {"in.mean": mean.astype(np.float32), "in.std": std.astype(np.float32)}
    for i, (c, bn) in enumerate(zip(convs, norms)):
        scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().double().numpy()
        w[f"conv{i}.w"] = (c.weight.detach().double().numpy() * scale[:, None, None, None]).astype(np.float32)
        w[f"conv{i}.b"] = (bn.bias.detach().double().numpy()
                           - bn.running_mean.detach().double().numpy() * scale).astype(np.float32)
    w["fc.w"] = net.fc.weight.detach().numpy().astype(np.float32)
    w["fc.b"] = net.fc.bias.detach().numpy().astype(np.float32)
    return w


def fit_cnn(spec: np.ndarray, y: np.ndarray, *, n_classes: int, prior_mean: np.ndarray, prior_std: np.ndarray,
            recipe: CnnRecipe = CnnRecipe(), seed: int = 0, threads: int = 1, progress=None) -> dict:
    """Train on session-normalised spectrograms spec (N, B, T) with labels y (N,); -> the weights dict (batch
    norm folded) for build_onnx / reference_forward. Classes weighted by inverse frequency (neutral holds calm);
    deterministic for a seed and thread count. progress(epoch, loss) is called after every epoch."""
    import torch
    import torch.nn.functional as F

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        net = torch_net(n_classes, recipe.dropout)
        x = torch.from_numpy(((spec - prior_mean[None, :, None]) / prior_std[None, :, None]).astype(np.float32))
        yt = torch.from_numpy(np.asarray(y, np.int64))
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        cw = np.where(counts > 0, len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
        opt = torch.optim.AdamW(net.parameters(), recipe.peak_lr, weight_decay=recipe.weight_decay)
        steps = recipe.epochs * (-(-len(y) // recipe.batch))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.peak_lr, total_steps=steps)
        weight = torch.tensor(cw, dtype=torch.float32)
        for epoch in range(recipe.epochs):
            net.train()
            total = 0.0
            order = torch.from_numpy(rng.permutation(len(y)))
            for lo in range(0, len(y), recipe.batch):
                idx = order[lo:lo + recipe.batch]
                xb = _mask(x[idx], rng, recipe)
                loss = F.cross_entropy(net(xb), yt[idx], weight=weight, label_smoothing=recipe.label_smoothing)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            if progress is not None:
                progress(epoch, total / len(y))
        net.eval()
        return folded_weights(net, prior_mean, prior_std)
    finally:
        torch.set_num_threads(old_threads)


def _mask(xb, rng: np.random.Generator, recipe: CnnRecipe):
    """SpecAugment on a batch (a copy): one band run and one frame run per window set to 0 (the band's mean)."""
    n, bands, frames = xb.shape
    f = rng.integers(0, recipe.freq_mask, n)
    f0 = rng.integers(0, bands - f + 1)
    t = rng.integers(0, recipe.time_mask, n)
    t0 = rng.integers(0, frames - t + 1)
    b_idx, t_idx = np.arange(bands), np.arange(frames)
    keep_b = ~((b_idx[None] >= f0[:, None]) & (b_idx[None] < (f0 + f)[:, None]))
    keep_t = ~((t_idx[None] >= t0[:, None]) & (t_idx[None] < (t0 + t)[:, None]))
    import torch

    keep = torch.from_numpy((keep_b[:, :, None] & keep_t[:, None, :]).astype(np.float32))
    return xb * keep
